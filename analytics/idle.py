"""A device's idle baseline from the best evidence it gives, and where that came from.

Attribution charges requests only the energy a device drew above its idle power, so the
baseline decides how much of a device's energy is the requests'. In order of preference:

1. ``counter``: the energy counter's rise over sample intervals in which no request was active
   (their length-weighted median power). A device that sends only the counter still gets a
   measured baseline.
2. ``gauge``: the median of power samples taken while no request was active.
3. ``configured``: the device's ``idle_power_w`` as registered (``[collector]`` or the device
   table).
4. ``catalog``: the hardware catalog's idle figure for the part the device's reported name
   resolves to (:func:`wattledger.hardware.resolve`).
5. ``gauge`` again: a low quantile of all power samples (a device that is never idle).
6. ``none``: no evidence at all; the baseline is 0 W and every joule goes to the requests.
   ``analytics run``, ``doctor`` and the Fleet page warn about such devices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattledger.analytics.timeline import Array, Series

#: Idle-interval time (s) the counter needs before its baseline is trusted.
MIN_IDLE_COUNTER_S = 1.0
#: Power samples outside any request the gauge needs before its median is trusted.
MIN_IDLE_SAMPLES = 3
SOURCES = ("counter", "gauge", "configured", "catalog", "none")


#: Relative uncertainty of an idle figure that was not measured on the device.
CONFIGURED_SPREAD = 0.10
CATALOG_SPREAD = 0.25


@dataclass(frozen=True)
class IdleBaseline:
    """Idle power (W), which evidence gave it (one of :data:`SOURCES`) and its range (W).

    The range is where the device's idle draw may lie while it serves: the 10th to 90th
    percentile of the idle readings when measured, ±10 % of a configured figure, ±25 % of the
    catalog's or of a quantile taken from a device that was never idle.
    """

    power_w: float
    source: str
    low_w: float | None = None
    high_w: float | None = None

    @property
    def range_w(self) -> tuple[float, float]:
        low = self.power_w if self.low_w is None else min(self.low_w, self.power_w)
        high = self.power_w if self.high_w is None else max(self.high_w, self.power_w)
        return low, high


def _spread(power_w: float, source: str, rel: float) -> IdleBaseline:
    return IdleBaseline(power_w, source, power_w * (1 - rel), power_w * (1 + rel))


def busy_union(start_s: Array, end_s: Array) -> tuple[Array, Array]:
    """The union of request intervals ``[start, end]`` as sorted, disjoint (starts, ends)."""
    ok = np.isfinite(start_s) & np.isfinite(end_s)
    s, e = start_s[ok], np.maximum(end_s[ok], start_s[ok])
    if s.size == 0:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], np.maximum.accumulate(e[order])
    new = np.concatenate(([True], s[1:] > e[:-1]))
    group = np.cumsum(new) - 1
    starts = s[new]
    ends = np.zeros(starts.size)
    np.maximum.at(ends, group, e)
    return starts, ends


def _overlaps(a: Array, b: Array, starts: Array, ends: Array) -> np.ndarray:
    """Whether each interval ``(a, b)`` overlaps the busy union."""
    if starts.size == 0:
        return np.zeros(a.size, dtype=bool)
    idx = np.searchsorted(ends, a, side="right")  # first busy interval ending after a
    hit = idx < starts.size
    return hit & (starts[np.minimum(idx, starts.size - 1)] < b)


def _weighted_quantiles(values: Array, weights: Array, q: tuple[float, ...]) -> list[float]:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    return [float(v[min(np.searchsorted(cum, x * cum[-1]), v.size - 1)]) for x in q]


def counter_idle(series: Series, starts: Array, ends: Array) -> IdleBaseline | None:
    """Median power over the sample intervals with no request active, from the counter."""
    t, c = series.t_s, series.counter_j
    if t.size < 2:
        return None
    a, b = t[:-1], t[1:]
    dt = b - a
    step = np.diff(c)
    ok = np.isfinite(step) & (step >= 0) & (dt > 0)
    ok &= ~_overlaps(a, b, starts, ends)
    if dt[ok].sum() < MIN_IDLE_COUNTER_S:
        return None
    low, mid, high = _weighted_quantiles(step[ok] / dt[ok], dt[ok], (0.1, 0.5, 0.9))
    return IdleBaseline(mid, "counter", low, high)


def gauge_idle(series: Series, starts: Array, ends: Array) -> IdleBaseline | None:
    """Median of the power samples taken while no request was active."""
    t, p = series.t_s, series.power_w
    ok = np.isfinite(p) & np.isfinite(t)
    if starts.size:
        idx = np.searchsorted(starts, t, side="right") - 1
        inside = (idx >= 0) & (t <= ends[np.maximum(idx, 0)])
        ok &= ~inside
    if np.count_nonzero(ok) < MIN_IDLE_SAMPLES:
        return None
    low, mid, high = np.quantile(p[ok], (0.1, 0.5, 0.9))
    return IdleBaseline(float(mid), "gauge", float(low), float(high))


def idle_baseline(
    series: Series,
    start_s: Array,
    end_s: Array,
    *,
    configured_w: object = None,
    catalog_w: float | None = None,
    quantile: float = 0.05,
) -> IdleBaseline:
    """The idle baseline of one device over a window (see the module docstring)."""
    starts, ends = busy_union(start_s, end_s)
    measured = counter_idle(series, starts, ends) or gauge_idle(series, starts, ends)
    if measured is not None:
        return measured
    if isinstance(configured_w, float | int) and np.isfinite(configured_w) and configured_w >= 0:
        return _spread(float(configured_w), "configured", CONFIGURED_SPREAD)
    if catalog_w is not None:
        return _spread(float(catalog_w), "catalog", CATALOG_SPREAD)
    finite = series.power_w[np.isfinite(series.power_w)]
    if finite.size:
        return _spread(float(np.quantile(finite, quantile)), "gauge", CATALOG_SPREAD)
    return IdleBaseline(0.0, "none", 0.0, 0.0)
