"""The sampling loop: read every source on a monotonic schedule into the sample buffer.

Intervals are measured with ``time.monotonic_ns()`` (immune to NTP steps); wall-clock UTC
time is attached once per cycle as an offset. A tick that overruns is skipped, never caught
up in a burst. A source that raises is logged once and the others keep being read; a source
with ``min_interval_s`` (a Prometheus scrape) is read only when due. Engine stats scraped in a
cycle are handed to modeled sources (``observe``) before those are read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from wattledger.collectors.collector.buffer import SampleBuffer, SampleCycle
from wattledger.collectors.sources.base import (
    DeviceInfo,
    EnergyReading,
    EnergySource,
    OnceLogger,
    WorkloadEnergy,
)
from wattledger.collectors.sources.prometheus import EngineStats

logger = logging.getLogger(__name__)


class Sampler:
    """Reads all sources once per :meth:`sample` call and keeps per-device series state.

    Args:
        sources: Opened sources (may be empty: then cycles are empty, said once).
        buffer: Where cycles go (None: cycles are only returned).
        clock_ns: Monotonic clock.
        wall_ns: Wall clock, Unix epoch ns (UTC).
        honor_min_interval: Read sources with ``min_interval_s`` only when due (False for a
            one-off reading such as ``collect --once``).
    """

    def __init__(
        self,
        sources: Sequence[EnergySource],
        buffer: SampleBuffer | None = None,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
        honor_min_interval: bool = True,
    ) -> None:
        self.sources = list(sources)
        self._honor_min_interval = honor_min_interval
        self.buffer = buffer
        self._clock_ns = clock_ns
        self._wall_ns = wall_ns
        self._once = OnceLogger(logger)
        self._last_read_ns: dict[int, int] = {}
        self._devices: dict[str, DeviceInfo] = {}
        #: Device id -> Unix ns of its first reading: the start of its cumulative series.
        self.start_times: dict[str, int] = {}
        self.cycles = 0
        if not self.sources:
            logger.warning(
                "No power sources found: the collector runs but has nothing to report. "
                "Run `wattledger doctor` to see why each source is unavailable."
            )

    def _refresh_devices(self) -> None:
        for source in self.sources:
            for info in source.devices():
                self._devices[info.device_id] = info

    def _due(self, index: int, source: EnergySource, now_ns: int) -> bool:
        if not self._honor_min_interval:
            return True
        min_ns = int(getattr(source, "min_interval_s", 0.0) * 1e9)
        last = self._last_read_ns.get(index)
        return last is None or now_ns - last >= min_ns

    def sample(self) -> SampleCycle:
        """Read every due source once; store and return the cycle."""
        offset = self._wall_ns() - self._clock_ns()
        readings: list[EnergyReading] = []
        engines: list[EngineStats] = []
        workloads: list[WorkloadEnergy] = []
        now_ns = self._clock_ns()
        # Modeled sources turn this cycle's scraped token counts into energy: read them last.
        order = sorted(enumerate(self.sources), key=lambda p: hasattr(p[1], "observe"))
        for index, source in order:
            observe = getattr(source, "observe", None)
            if observe is not None:
                observe(engines)
            if not self._due(index, source, now_ns):
                continue
            self._last_read_ns[index] = now_ns
            try:
                readings.extend(source.read())
                stats = getattr(source, "engine_stats", None)
                if stats is not None:
                    engines.extend(stats())
                shares = getattr(source, "workload_energy", None)
                if shares is not None:
                    workloads.extend(shares())
            except Exception as e:  # one broken source must not stop the others
                self._once.log(
                    logging.ERROR,
                    (source.name, type(e)),
                    "Reading source %s failed (%s: %s); continuing with the others.",
                    source.name,
                    type(e).__name__,
                    e,
                )
        if any(r.device_id not in self._devices for r in readings):
            self._refresh_devices()
        for r in readings:
            self.start_times.setdefault(r.device_id, r.monotonic_ns + offset)
        cycle = SampleCycle(
            offset, tuple(readings), self._devices, tuple(engines), tuple(workloads)
        )
        self.cycles += 1
        if self.buffer is not None:
            self.buffer.put(cycle)
        return cycle

    def run(self, interval_s: float, stop: threading.Event) -> None:
        """Sample every ``interval_s`` seconds until ``stop`` is set."""
        interval_ns = int(interval_s * 1e9)
        next_ns = self._clock_ns()
        skipped = 0
        while not stop.is_set():
            self.sample()
            next_ns += interval_ns
            now = self._clock_ns()
            if now > next_ns:
                missed = (now - next_ns) // interval_ns + 1
                skipped += missed
                next_ns += missed * interval_ns
                self._once.log(
                    logging.WARNING,
                    ("overrun",),
                    "Sampling took longer than the %.3f s interval; skipping missed ticks "
                    "(raise --interval if this repeats).",
                    interval_s,
                )
            stop.wait(max(next_ns - self._clock_ns(), 0) / 1e9)

    def close(self) -> None:
        """Close every source."""
        for source in self.sources:
            try:
                source.close()
            except Exception:
                logger.exception("Closing source %s failed", source.name)


__all__ = ["Sampler"]
