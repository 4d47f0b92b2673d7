"""Energy attribution on one device's timeline: the core method, in vectorised numpy.

The method (DESIGN.md "Energy attribution"):

1. The device's cumulative energy ``E(t)`` comes from its hardware energy counter where it
   reports one, else from integrating power samples (trapezoid). ``E`` is linear between
   samples, so the energy of any interval is ``E(b) - E(a)`` exactly.
2. Time is cut at every request boundary (start, first token, end), every sample time and every
   bucket boundary. On each resulting piece the set of active requests and their phases are
   constant. A request in prefill does work at rate ``w_p · input_tokens / prefill_s``; in
   decode at ``w_d · output_tokens / decode_s``.
3. Between two samples only the interval's total energy is known. Its energy above the idle
   baseline, ``max(E(b) − E(a) − P_idle·(b − a), 0)``, goes to the pieces of the interval where
   some request was active, in proportion to length × relative power (the roofline's power
   shape by batch and phase when the route is known, else constant); inside each piece it is
   split among the active requests by work rate. The rest of the interval's energy is idle.
   With ``g`` = dynamic energy / total rate per piece and ``G`` its prefix sum, a request's
   energy is ``rate_p·(G(first_token) − G(start)) + rate_d·(G(end) − G(first_token))``; the same
   with piece length instead of energy gives its share of device time.
4. Conservation holds by construction: attributed + idle = measured, per device and window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
#: Shortest phase that can carry energy, seconds (timestamps are microseconds).
MIN_PHASE_S = 1e-6


@dataclass(frozen=True)
class Series:
    """One device's samples over a window: times (s since epoch), power (W), counter (J)."""

    t_s: Array
    power_w: Array
    counter_j: Array


@dataclass(frozen=True)
class Requests:
    """The requests on one device: times in seconds since the epoch, token counts."""

    start_s: Array
    first_token_s: Array
    end_s: Array
    input_tokens: Array
    output_tokens: Array


@dataclass(frozen=True)
class DeviceAttribution:
    """Result for one device and window ``[t0, t1)``.

    Attributes:
        energy_j: Direct energy above idle per request, joules.
        device_time_s: Each request's work-weighted share of device time, seconds.
        method: ``counter`` or ``power`` (how ``E(t)`` was obtained).
        measured_j: Device energy in the window, joules.
        idle_j_by_bucket: Idle energy per bucket of the window (no request active, plus the
            baseline under active ones), joules.
        idle_s_by_bucket: Device time per bucket with no request active, seconds.
        measured_j_by_bucket: Device energy per bucket, joules.
        attributed_j_by_bucket: Energy attributed to requests per bucket, joules.
        coverage_s_by_bucket: Seconds of each bucket covered by samples.
        active_s_by_bucket: Seconds of each bucket with at least one request active.
        gaps: Sample intervals longer than ``max_gap_s`` (energy bridged linearly; flagged).
        coverage_s: Seconds of the window covered by samples.
    """

    energy_j: Array
    device_time_s: Array
    method: str
    measured_j: float
    idle_j_by_bucket: Array
    idle_s_by_bucket: Array
    gaps: int
    coverage_s: float
    measured_j_by_bucket: Array
    attributed_j_by_bucket: Array
    coverage_s_by_bucket: Array
    active_s_by_bucket: Array


def cumulative_energy(series: Series, max_gap_s: float = 30.0) -> tuple[Array, Array, str, int]:
    """Cumulative energy ``E`` at each sample time, in joules from the first sample.

    Counter readings are used where every sample has one; a counter that goes backwards (a
    reset) contributes the power-integrated energy of that interval instead, never a negative
    or huge jump. Without counters, power is integrated with the trapezoid rule.

    Returns:
        (sample times, cumulative joules, method, number of gaps longer than ``max_gap_s``).
    """
    t = series.t_s
    if t.size == 0:
        return t, t.copy(), "power", 0
    dt = np.diff(t)
    power = np.nan_to_num(series.power_w, nan=0.0)
    trapezoid = 0.5 * (power[1:] + power[:-1]) * dt
    counter = series.counter_j
    if np.isfinite(counter).all() and t.size > 1:
        steps = np.diff(counter)
        bad = steps < 0
        steps = np.where(bad, trapezoid, steps)
        method = "counter"
    else:
        steps = trapezoid
        method = "power"
    cum = np.concatenate(([0.0], np.cumsum(steps)))
    gaps = int(np.count_nonzero(dt > max_gap_s))
    return t, cum, method, gaps


def attribute_device(
    series: Series,
    requests: Requests,
    *,
    t0: float,
    t1: float,
    idle_power_w: float,
    prefill_weight: float,
    decode_weight: float,
    bucket_s: float = 3600.0,
    max_gap_s: float = 30.0,
    power_shape: Callable[[Array, Array], Array] | None = None,
) -> DeviceAttribution:
    """Attribute one device's energy in ``[t0, t1)`` to its requests.

    Args:
        series: Samples covering the window (may extend beyond it).
        requests: Every request active in the window (including ones that started before).
        t0: Window start, seconds since the epoch; must be a multiple of ``bucket_s``.
        t1: Window end, seconds since the epoch.
        idle_power_w: Idle baseline power, watts.
        prefill_weight: Work per prefill token.
        decode_weight: Work per decode token.
        bucket_s: Bucket length for the idle energy breakdown, seconds.
        max_gap_s: Sample intervals longer than this are counted as gaps.
        power_shape: ``f(decoding, prefilling)`` → relative power above idle of a piece of
            time with that many requests decoding and prefilling (e.g. from the roofline
            model). Inside one sample interval, dynamic energy is spread in proportion to it.
            Default: constant while any request runs.
    """
    n_buckets = max(int(np.ceil((t1 - t0) / bucket_s)), 1)
    st, cum, method, gaps = cumulative_energy(series, max_gap_s)
    n = requests.start_s.size
    start = np.clip(requests.start_s, t0, t1)
    first = np.clip(np.maximum(requests.first_token_s, requests.start_s), t0, t1)
    end = np.clip(np.maximum(requests.end_s, requests.first_token_s), t0, t1)
    prefill_s = np.maximum(requests.first_token_s, requests.start_s) - requests.start_s
    decode_s = requests.end_s - np.maximum(requests.first_token_s, requests.start_s)
    # Timestamps have microsecond resolution: shorter phases carry no measurable energy.
    prefill_s = np.where(prefill_s >= MIN_PHASE_S, prefill_s, 0.0)
    decode_s = np.where(decode_s >= MIN_PHASE_S, decode_s, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_p = np.where(prefill_s > 0, prefill_weight * requests.input_tokens / prefill_s, 0.0)
        rate_d = np.where(decode_s > 0, decode_weight * requests.output_tokens / decode_s, 0.0)
    # Zero-work requests still occupy the device: give them a token rate (a millionth of the
    # largest) so they hold the device when alone but take almost nothing beside real work.
    tiny = 1e-9
    scale = max(float(rate_p.max(initial=0.0)), float(rate_d.max(initial=0.0)), tiny)
    rate_d = np.where((rate_p == 0) & (rate_d == 0) & (decode_s > 0), scale * 1e-6, rate_d)

    buckets = t0 + bucket_s * np.arange(n_buckets + 1, dtype=np.float64)
    buckets[-1] = min(buckets[-1], t1)
    # Energy cells: between consecutive samples (and the window's ends). E is only known at
    # sample times, so a cell's energy above idle is put where the work was inside the cell,
    # not spread evenly over it: with sparse samples and short requests, the difference is
    # large.
    inside = st[(st > t0) & (st < t1)]
    cells = np.unique(np.concatenate(([t0, t1], inside)))
    points = np.unique(np.concatenate((cells, buckets, start, first, end)))
    points = points[(points >= t0) & (points <= t1)]
    seg_len = np.diff(points)

    # Total work rate on each segment: +rate at phase start, -rate at phase end.
    delta = np.zeros(points.size)
    np.add.at(delta, np.searchsorted(points, start), rate_p)
    np.add.at(delta, np.searchsorted(points, first), rate_d - rate_p)
    np.add.at(delta, np.searchsorted(points, end), -rate_d)
    rate = np.cumsum(delta)[:-1]
    active = rate > scale * 1e-12  # cumsum leaves ~1e-16·scale residue where nothing runs
    shape = np.ones(points.size - 1)
    if power_shape is not None and n:
        counts = np.zeros((2, points.size))
        real_p = (first > start).astype(np.float64)
        real_d = (end > first).astype(np.float64)
        np.add.at(counts[0], np.searchsorted(points, first), real_d)
        np.add.at(counts[0], np.searchsorted(points, end), -real_d)
        np.add.at(counts[1], np.searchsorted(points, start), real_p)
        np.add.at(counts[1], np.searchsorted(points, first), -real_p)
        running = np.rint(np.cumsum(counts, axis=1)[:, :-1])
        shape = np.maximum(power_shape(running[0], running[1]), 1e-9)

    cell_len = np.diff(cells)
    if st.size > 1:
        cell_energy = np.maximum(np.diff(np.interp(cells, st, cum)), 0.0)
        cell_cov = np.clip(np.minimum(cells[1:], st[-1]) - np.maximum(cells[:-1], st[0]), 0, None)
    else:
        cell_energy = np.zeros(cell_len.size)
        cell_cov = np.zeros(cell_len.size)
    cell_of = np.clip(np.searchsorted(cells, points[:-1], side="right") - 1, 0, cell_len.size - 1)
    # Within a cell, power above idle is taken as constant while any request runs (decode
    # steps draw similar power at any batch size): the cell's dynamic energy goes to its active
    # time; inside each piece it is split among the active requests by work rate.
    busy = np.where(active, seg_len * shape, 0.0)
    cell_busy = np.bincount(cell_of, weights=busy, minlength=cell_len.size)
    has_work = cell_busy > 0
    cell_dyn = np.where(has_work, np.maximum(cell_energy - idle_power_w * cell_cov, 0.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_busy_s = np.where(has_work, cell_dyn / cell_busy, 0.0)  # dynamic watts when busy
        per_s = np.where(cell_len > 0, (cell_energy - cell_dyn) / cell_len, 0.0)
    dynamic = busy * per_busy_s[cell_of]
    idle = seg_len * per_s[cell_of]
    seg_energy = dynamic + idle
    covered = (
        seg_len * np.where(cell_len > 0, cell_cov / np.where(cell_len > 0, cell_len, 1), 0)[cell_of]
    )

    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(active, dynamic / rate, 0.0)
        h = np.where(active, seg_len / rate, 0.0)
    big_g = np.concatenate(([0.0], np.cumsum(g)))
    big_h = np.concatenate(([0.0], np.cumsum(h)))
    i_s, i_f, i_e = (np.searchsorted(points, x) for x in (start, first, end))
    energy = rate_p * (big_g[i_f] - big_g[i_s]) + rate_d * (big_g[i_e] - big_g[i_f])
    dev_time = rate_p * (big_h[i_f] - big_h[i_s]) + rate_d * (big_h[i_e] - big_h[i_f])

    seg_bucket = np.minimum(((points[:-1] - t0) // bucket_s).astype(np.int64), n_buckets - 1)
    idle_by_bucket = np.bincount(seg_bucket, weights=idle, minlength=n_buckets)
    idle_s = np.bincount(seg_bucket, weights=np.where(active, 0.0, seg_len), minlength=n_buckets)
    measured = np.bincount(seg_bucket, weights=seg_energy, minlength=n_buckets)
    attributed = np.bincount(seg_bucket, weights=dynamic, minlength=n_buckets)
    coverage = np.bincount(seg_bucket, weights=covered, minlength=n_buckets)
    active_s = np.bincount(seg_bucket, weights=np.where(active, seg_len, 0.0), minlength=n_buckets)
    return DeviceAttribution(
        energy_j=energy if n else np.zeros(0),
        device_time_s=dev_time if n else np.zeros(0),
        method=method,
        measured_j=float(seg_energy.sum()),
        idle_j_by_bucket=idle_by_bucket,
        idle_s_by_bucket=idle_s,
        gaps=gaps,
        coverage_s=float(covered.sum()),
        measured_j_by_bucket=measured,
        attributed_j_by_bucket=attributed,
        coverage_s_by_bucket=coverage,
        active_s_by_bucket=active_s,
    )


def spread_by_bucket(
    bucket_of_request: npt.NDArray[np.int64], weights: Array, per_bucket: Array
) -> tuple[Array, Array]:
    """Spread each bucket's amount over the requests that started in it.

    Shares are proportional to ``weights`` (equal where a bucket's weights sum to zero).

    Returns:
        (share per request, the amount of each bucket that had no request to take it).
    """
    n_buckets = per_bucket.size
    total_w = np.bincount(bucket_of_request, weights=weights, minlength=n_buckets)
    count = np.bincount(bucket_of_request, minlength=n_buckets).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        by_weight = per_bucket[bucket_of_request] * weights / total_w[bucket_of_request]
        equal = per_bucket[bucket_of_request] / count[bucket_of_request]
    share = np.where(total_w[bucket_of_request] > 0, by_weight, equal)
    unallocated = np.where(count > 0, 0.0, per_bucket)
    return np.nan_to_num(share), unallocated
