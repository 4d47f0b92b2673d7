"""What one sampling cycle produced, and the bounded queue it waits in until it is exported.

The queue holds whole cycles. When the ingest endpoint is down it fills up; past
``max_cycles`` the **oldest** cycles are dropped and counted (the newest data is the most
useful when the endpoint comes back, and cumulative energy counters lose no joules when
intermediate points are dropped: the next point still carries the total).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from wattledger.collectors.sources.base import DeviceInfo, EnergyReading, WorkloadEnergy
from wattledger.collectors.sources.prometheus import EngineStats


@dataclass(frozen=True, slots=True)
class SampleCycle:
    """Everything read in one cycle.

    Attributes:
        wall_offset_ns: ``time.time_ns() - time.monotonic_ns()`` at the cycle, so a reading's
            UTC time is ``monotonic_ns + wall_offset_ns`` (one offset per cycle: all the
            metrics of a device in a cycle share one timestamp).
        readings: Device readings.
        devices: Device descriptions by id (for export attributes).
        engines: Serving-engine stats scraped in this cycle.
        workloads: Per-pod energy an exporter (Kepler) attributed, scraped in this cycle.
    """

    wall_offset_ns: int
    readings: tuple[EnergyReading, ...]
    devices: dict[str, DeviceInfo]
    engines: tuple[EngineStats, ...] = field(default_factory=tuple)
    workloads: tuple[WorkloadEnergy, ...] = field(default_factory=tuple)

    def time_unix_nano(self, reading: EnergyReading) -> int:
        """The reading's wall-clock (UTC, Unix epoch) time in nanoseconds."""
        return reading.monotonic_ns + self.wall_offset_ns


class SampleBuffer:
    """A thread-safe FIFO of cycles that drops the oldest beyond ``max_cycles``.

    Args:
        max_cycles: Capacity in cycles.
    """

    def __init__(self, max_cycles: int) -> None:
        self.max_cycles = max_cycles
        self._items: deque[SampleCycle] = deque()
        self._lock = threading.Lock()
        self.dropped = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def put(self, cycle: SampleCycle) -> None:
        """Append a cycle, dropping the oldest if full."""
        with self._lock:
            self._items.append(cycle)
            self._trim()

    def take(self, n: int) -> list[SampleCycle]:
        """Remove and return up to ``n`` of the oldest cycles."""
        with self._lock:
            return [self._items.popleft() for _ in range(min(n, len(self._items)))]

    def put_back(self, cycles: Sequence[SampleCycle]) -> None:
        """Return cycles that could not be sent to the front, keeping the bound."""
        with self._lock:
            self._items.extendleft(reversed(cycles))
            self._trim()

    def _trim(self) -> None:
        while len(self._items) > self.max_cycles:
            self._items.popleft()
            self.dropped += 1


__all__ = ["SampleBuffer", "SampleCycle"]
