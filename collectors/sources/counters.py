"""Turning raw hardware counters and power samples into cumulative joules that never go back.

All counter arithmetic lives here, once:

* :func:`counter_delta` is the wraparound rule (RAPL ``max_energy_range_uj``; Zeus's
  ``RaplWraparoundTracker``), covered by a Hypothesis property test.
* :class:`CounterTracker` keeps a device's cumulative energy from a raw counter: it applies the
  wrap rule, treats a decrease of a non-wrapping counter as a reset (driver reload: NVML
  counts "since the driver was last reloaded"), and rejects any delta that would mean more
  than ``max_power_w`` over the elapsed time, so a reset is never read as a huge energy.
* :class:`PowerIntegrator` integrates power samples with the trapezoid rule where a device
  has no counter; gaps longer than ``max_gap_s`` are bounded and counted.

Times are ``time.monotonic_ns()`` values; energies are joules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Highest power any single device we read can draw; a larger apparent power is a reset.
DEFAULT_MAX_POWER_W = 5_000.0
#: Longest gap between power samples that is integrated in full (seconds).
DEFAULT_MAX_GAP_S = 10.0


def counter_delta(previous: int, current: int, modulus: int | None) -> int | None:
    """The increase of a counter between two reads, allowing for one wraparound.

    Args:
        previous: The earlier raw value (counter units, e.g. µJ).
        current: The later raw value.
        modulus: The counter's range in raw units, after which it starts again from zero
            (RAPL: ``max_energy_range_uj``); None if it never wraps.

    Returns:
        The non-negative increase, or None when ``current < previous`` on a counter that does
        not wrap (a reset: the caller decides what that means).
    """
    if current >= previous:
        return current - previous
    if modulus is None:
        return None
    return current + modulus - previous


@dataclass
class CounterStats:
    """What a tracker has seen: resets and rejected (implausible) deltas."""

    resets: int = 0
    rejected: int = 0


class CounterTracker:
    """Cumulative joules from a raw energy counter, corrected for wraps and resets.

    The cumulative value starts at the first raw reading (converted to joules), so an NVML
    device's ``energy_j`` equals ``nvidia-smi``'s ``total_energy_consumption`` until the
    driver is reloaded; afterwards it keeps increasing by the corrected deltas.

    Args:
        joules_per_unit: Unit conversion, e.g. ``1e-3`` for mJ, ``1e-6`` for µJ.
        modulus: Counter range in raw units for wrapping counters, else None.
        max_power_w: Deltas implying more than this average power are rejected (counted).
    """

    def __init__(
        self,
        joules_per_unit: float,
        modulus: int | None = None,
        max_power_w: float = DEFAULT_MAX_POWER_W,
    ) -> None:
        self.joules_per_unit = joules_per_unit
        self.modulus = modulus
        self.max_power_w = max_power_w
        self.stats = CounterStats()
        self._raw: int | None = None
        self._t_ns: int | None = None
        self.energy_j: float | None = None

    def update(self, raw: int, t_ns: int) -> float:
        """Feed a raw reading taken at monotonic time ``t_ns``; return cumulative joules."""
        if self._raw is None or self._t_ns is None or self.energy_j is None:
            self._raw, self._t_ns = raw, t_ns
            self.energy_j = max(raw, 0) * self.joules_per_unit
            return self.energy_j
        dt_s = max(t_ns - self._t_ns, 0) / 1e9
        delta = counter_delta(self._raw, raw, self.modulus)
        limit_j = self.max_power_w * max(dt_s, 1e-3)
        if delta is None:
            # A non-wrapping counter went down: the driver or device was reset and the counter
            # restarted from zero, so what it shows now was consumed since the reset.
            self.stats.resets += 1
            delta_j = max(raw, 0) * self.joules_per_unit
            if delta_j > limit_j:
                self.stats.rejected += 1
                delta_j = 0.0
        else:
            delta_j = delta * self.joules_per_unit
            if delta_j > limit_j:
                # A wrapping counter that was reset looks like an almost full wrap.
                self.stats.rejected += 1
                self.stats.resets += 1
                reset_j = max(raw, 0) * self.joules_per_unit
                delta_j = reset_j if reset_j <= limit_j else 0.0
        self._raw, self._t_ns = raw, t_ns
        self.energy_j += delta_j
        return self.energy_j


class PowerIntegrator:
    """Cumulative joules from power samples (trapezoid rule), starting at zero.

    Args:
        max_gap_s: A gap between samples longer than this is integrated only over this many
            seconds and counted in :attr:`gaps` (the device was not observed in between).
    """

    def __init__(self, max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        self.max_gap_s = max_gap_s
        self.energy_j = 0.0
        self.gaps = 0
        self._p_w: float | None = None
        self._t_ns: int | None = None

    def update(self, power_w: float, t_ns: int) -> float:
        """Feed a power sample (watts) taken at monotonic time ``t_ns``; return joules."""
        power_w = max(power_w, 0.0)
        if self._p_w is not None and self._t_ns is not None:
            dt_s = max(t_ns - self._t_ns, 0) / 1e9
            if dt_s > self.max_gap_s:
                self.gaps += 1
                dt_s = self.max_gap_s
            self.energy_j += (self._p_w + power_w) / 2.0 * dt_s
        self._p_w, self._t_ns = power_w, t_ns
        return self.energy_j


__all__ = [
    "DEFAULT_MAX_GAP_S",
    "DEFAULT_MAX_POWER_W",
    "CounterStats",
    "CounterTracker",
    "PowerIntegrator",
    "counter_delta",
]
