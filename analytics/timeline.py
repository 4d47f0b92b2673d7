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
    """The requests on one device: times in seconds since the epoch, token counts.

    ``prefill_start_s``, where given, is a prior for when prefill began inside the time to
    first token (the roofline's estimate); before it the request may have been queued. That
    part is still active, at a small fraction of the prefill rate: alone on the device it takes
    whatever energy the device drew (a prefill longer than the estimate), beside other work it
    takes almost nothing (a queue wait).
    """

    start_s: Array
    first_token_s: Array
    end_s: Array
    input_tokens: Array
    output_tokens: Array
    prefill_start_s: Array | None = None


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
        energy_low_j: Per request, the least direct energy consistent with the samples.
        energy_high_j: Per request, the most direct energy consistent with the samples.
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
    energy_low_j: Array | None = None
    energy_high_j: Array | None = None


#: Rate of a request's possible queue wait relative to its prefill rate (see :class:`Requests`).
QUEUE_RATE_SHARE = 1e-3
#: How far the work-rate split among concurrent requests may be off (relative), for intervals.
SPLIT_UNCERTAINTY = 0.5
#: How far the fitted split (per-piece powers from the samples) may be off at 10 Hz, for
#: intervals; it grows as (interval / 0.1 s) ** FIT_UNCERTAINTY_GROWTH (calibrated on truth
#: traces of other seeds than the tests': about 90 % of requests inside at every rate).
FIT_UNCERTAINTY = 0.25
FIT_REFERENCE_S = 0.1
FIT_UNCERTAINTY_GROWTH = 0.28
#: Weight of the work-rate prior in the fit, relative to each phase's own data.
FIT_PRIOR_WEIGHT = 1e-3
#: Longest gauge interval whose endpoint readings are taken to speak for all of it (±10 %).
GAUGE_DENSE_S = 1.0
#: Weight of the shrinkage of a TTFT piece's power towards its request's mean TTFT power.
FIT_DEVIATION_WEIGHT = 0.02
#: The fit runs only where at most this many requests run at once on average. A few requests
#: on a device each draw their own power, which the samples can tell apart; a batch of many
#: shares one forward pass per step, whose power does not divide into per-request draws: there the
#: work-rate split is the better model (on the simulator's batched fleet the fit gave a 24 %
#: median error against 3 % for the work-rate split).
MAX_FIT_IN_FLIGHT = 4.0  # the value the truth tests and the bench use
#: Largest fit (request-phase × sample-interval entries); beyond it, the work-rate split stays.
MAX_FIT_ENTRIES = 2_000_000


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
    idle_power_range_w: tuple[float, float] | None = None,
    busy_power_w: float | None = None,
    max_dynamic_power_w: float | None = None,
    fit_max_in_flight: float = 0.0,
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
        idle_power_range_w: The range the idle baseline may lie in (for the intervals);
            default: exactly ``idle_power_w``.
        busy_power_w: Power above idle of a busy device, used only for a power gauge whose
            samples never caught the device busy (e.g. the catalog's); None: unknown.
        max_dynamic_power_w: The most a device can draw above idle (TDP − idle), a cap on the
            intervals of a power gauge; None: unknown.
    """
    n_buckets = max(int(np.ceil((t1 - t0) / bucket_s)), 1)
    st, cum, method, gaps = cumulative_energy(series, max_gap_s)
    n = requests.start_s.size
    start = np.clip(requests.start_s, t0, t1)
    first = np.clip(np.maximum(requests.first_token_s, requests.start_s), t0, t1)
    end = np.clip(np.maximum(requests.end_s, requests.first_token_s), t0, t1)
    raw_first = np.maximum(requests.first_token_s, requests.start_s)
    prior = requests.prefill_start_s
    if prior is None:
        raw_work = requests.start_s
    else:
        raw_work = np.clip(
            np.where(np.isfinite(prior), prior, requests.start_s), requests.start_s, raw_first
        )
    work = np.clip(raw_work, t0, t1)
    prefill_s = raw_first - raw_work
    decode_s = requests.end_s - raw_first
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
    # A possible queue wait before the prior prefill start: active at a small rate.
    queued = work > start
    rate_q = np.where(queued, np.maximum(rate_p, scale * 1e-6) * QUEUE_RATE_SHARE, 0.0)

    buckets = t0 + bucket_s * np.arange(n_buckets + 1, dtype=np.float64)
    buckets[-1] = min(buckets[-1], t1)
    # Energy cells: between consecutive samples (and the window's ends). E is only known at
    # sample times, so a cell's energy above idle is put where the work was inside the cell,
    # not spread evenly over it: with sparse samples and short requests, the difference is
    # large.
    inside = st[(st > t0) & (st < t1)]
    cells = np.unique(np.concatenate(([t0, t1], inside)))
    points = np.unique(np.concatenate((cells, buckets, start, work, first, end)))
    points = points[(points >= t0) & (points <= t1)]
    seg_len = np.diff(points)

    # Total work rate on each segment: +rate at phase start, -rate at phase end.
    i_s, i_w, i_f, i_e = (np.searchsorted(points, x) for x in (start, work, first, end))
    delta = np.zeros(points.size)
    np.add.at(delta, i_s, rate_q)
    np.add.at(delta, i_w, rate_p - rate_q)
    np.add.at(delta, i_f, rate_d - rate_p)
    np.add.at(delta, i_e, -rate_d)
    rate = np.cumsum(delta)[:-1]
    active = rate > scale * 1e-12  # cumsum leaves ~1e-16·scale residue where nothing runs
    shape = np.ones(points.size - 1)
    if power_shape is not None and n:
        counts = np.zeros((2, points.size))
        real_p = (first > work).astype(np.float64)
        real_d = (end > first).astype(np.float64)
        np.add.at(counts[0], i_f, real_d)
        np.add.at(counts[0], i_e, -real_d)
        np.add.at(counts[1], i_w, real_p)
        np.add.at(counts[1], i_f, -real_p)
        running = np.rint(np.cumsum(counts, axis=1)[:, :-1])
        shape = np.maximum(power_shape(running[0], running[1]), 1e-9)

    cell_len = np.diff(cells)
    n_cells = cell_len.size
    if st.size > 1:
        cell_energy = np.maximum(np.diff(np.interp(cells, st, cum)), 0.0)
        cell_cov = np.clip(np.minimum(cells[1:], st[-1]) - np.maximum(cells[:-1], st[0]), 0, None)
    else:
        cell_energy = np.zeros(n_cells)
        cell_cov = np.zeros(n_cells)
    cell_of = np.clip(np.searchsorted(cells, points[:-1], side="right") - 1, 0, n_cells - 1)
    # Within a cell, power above idle is taken as constant while any request runs (decode
    # steps draw similar power at any batch size): the cell's dynamic energy goes to its active
    # time; inside each piece it is split among the active requests by work rate.
    busy = np.where(active, seg_len * shape, 0.0)
    cell_busy = np.bincount(cell_of, weights=busy, minlength=n_cells)
    has_work = cell_busy > 0
    lo_idle, hi_idle = idle_power_range_w or (idle_power_w, idle_power_w)
    lo_idle, hi_idle = min(lo_idle, idle_power_w), max(hi_idle, idle_power_w)
    cell_dyn = np.where(has_work, np.maximum(cell_energy - idle_power_w * cell_cov, 0.0), 0.0)
    dyn_low = np.where(has_work, np.maximum(cell_energy - hi_idle * cell_cov, 0.0), 0.0)
    dyn_high = np.where(has_work, np.maximum(cell_energy - lo_idle * cell_cov, 0.0), 0.0)
    if method == "power" and st.size > 1 and n:
        cell_energy, cell_dyn, dyn_low, dyn_high = _gauge_cells(
            series,
            points,
            active,
            seg_len,
            cells,
            cell_of,
            cell_cov,
            cell_energy,
            has_work,
            idle_power_w,
            (lo_idle, hi_idle),
            busy_power_w,
            max_dynamic_power_w,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        per_busy_s = np.where(has_work, cell_dyn / cell_busy, 0.0)  # dynamic watts when busy
        per_s = np.where(cell_len > 0, (cell_energy - cell_dyn) / cell_len, 0.0)
        low_ratio = np.where(cell_dyn > 0, dyn_low / cell_dyn, 0.0)
        high_busy_s = np.where(has_work, dyn_high / cell_busy, 0.0)
    dynamic = busy * per_busy_s[cell_of]
    idle = seg_len * per_s[cell_of]
    seg_energy = dynamic + idle
    covered = (
        seg_len * np.where(cell_len > 0, cell_cov / np.where(cell_len > 0, cell_len, 1), 0)[cell_of]
    )

    # Intervals: a cell whose active time one request holds alone is split exactly; otherwise
    # the split among its requests is a model, good to ±SPLIT_UNCERTAINTY.
    if n:
        c_s = np.clip(np.searchsorted(cells, start, side="right") - 1, 0, n_cells - 1)
        c_e = np.clip(np.searchsorted(cells, end, side="left") - 1, 0, n_cells - 1)
        c_e = np.maximum(c_e, c_s)
        overlap = np.zeros(n_cells + 1)
        np.add.at(overlap, c_s, 1.0)
        np.add.at(overlap, c_e + 1, -1.0)
        shared = np.cumsum(overlap)[:-1] > 1.5
    else:
        shared = np.zeros(n_cells, dtype=bool)
    split = np.where(shared, SPLIT_UNCERTAINTY, 0.0)[cell_of]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(active, dynamic / rate, 0.0)
        h = np.where(active, seg_len / rate, 0.0)
        g_low = g * low_ratio[cell_of] * (1.0 - split)
        g_high = np.where(active, busy * high_busy_s[cell_of] / rate, 0.0) * (1.0 + split)

    def per_request(x: Array) -> Array:
        big = np.concatenate(([0.0], np.cumsum(x)))
        return (
            rate_q * (big[i_w] - big[i_s])
            + rate_p * (big[i_f] - big[i_w])
            + rate_d * (big[i_e] - big[i_f])
        )

    energy = per_request(g)
    dev_time = per_request(h)
    low = np.minimum(per_request(g_low), energy)
    high = np.maximum(per_request(g_high), energy)
    fit = None
    if n and shared.any() and _mean_in_flight(start, end) <= fit_max_in_flight:
        big = np.concatenate(([0.0], np.cumsum(g)))
        ttft_j = rate_q * (big[i_w] - big[i_s]) + rate_p * (big[i_f] - big[i_w])
        touches = np.concatenate(([0], np.cumsum(shared)))
        ttft_on = (rate_q > 0) | (rate_p > 0)
        fit = _fit_piece_power(
            cells,
            cell_energy - idle_power_w * cell_cov,
            start,
            first,
            end,
            ttft_j,
            energy - ttft_j,
            (touches[c_e + 1] - touches[c_s] > 0) & (ttft_on | (rate_d > 0)),
            ttft_on,
            rate_d > 0,
        )
    if fit is not None:
        # Measured activity beats the model: split each cell by the powers that explain the
        # device's energy over all cells best (rates are now watts, not tokens per second).
        owner, p_a, p_z, p_w = fit
        floor = max(float(p_w.max(initial=0.0)), tiny) * 1e-6
        p_w = np.maximum(p_w, floor)
        at_a, at_z = np.searchsorted(points, p_a), np.searchsorted(points, p_z)
        delta2 = np.zeros(points.size)
        np.add.at(delta2, at_a, p_w)
        np.add.at(delta2, at_z, -p_w)
        rate2 = np.where(active, np.maximum(np.cumsum(delta2)[:-1], floor * 1e-3), 0.0)
        busy2 = seg_len * rate2
        cell_busy2 = np.bincount(cell_of, weights=busy2, minlength=n_cells)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_busy2 = np.where(cell_busy2 > 0, cell_dyn / cell_busy2, 0.0)
            high_busy2 = np.where(cell_busy2 > 0, dyn_high / cell_busy2, 0.0)
        dynamic = busy2 * per_busy2[cell_of]
        # The fit resolves less the longer the sample interval: its uncertainty grows with it.
        resolution = np.maximum(cell_len / FIT_REFERENCE_S, 1.0) ** FIT_UNCERTAINTY_GROWTH
        fit_split = np.where(shared, np.minimum(FIT_UNCERTAINTY * resolution, 1.0), 0.0)[cell_of]
        g2 = np.where(active, seg_len * per_busy2[cell_of], 0.0)
        g2_low = g2 * low_ratio[cell_of] * (1.0 - fit_split)
        g2_high = np.where(active, seg_len * high_busy2[cell_of], 0.0) * (1.0 + fit_split)

        def fitted(x: Array) -> Array:
            big = np.concatenate(([0.0], np.cumsum(x)))
            return np.bincount(owner, weights=p_w * (big[at_z] - big[at_a]), minlength=n)

        rated = energy
        energy = fitted(g2)
        # The range spans the fitted split's and the work-rate split's answers.
        low = np.minimum(np.minimum(fitted(g2_low), energy), rated)
        high = np.maximum(np.maximum(fitted(g2_high), energy), rated)
    if n:  # a request can never hold more than all the dynamic energy of the cells it touched
        dyn_cum = np.concatenate(([0.0], np.cumsum(np.maximum(dyn_high, cell_dyn))))
        high = np.minimum(high, np.maximum(dyn_cum[c_e + 1] - dyn_cum[c_s], energy))

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
        energy_low_j=low if n else np.zeros(0),
        energy_high_j=high if n else np.zeros(0),
    )


def _gauge_cells(
    series: Series,
    points: Array,
    active: npt.NDArray[np.bool_],
    seg_len: Array,
    cells: Array,
    cell_of: npt.NDArray[np.int64],
    cell_cov: Array,
    trapezoid: Array,
    has_work: npt.NDArray[np.bool_],
    idle_w: float,
    idle_range_w: tuple[float, float],
    busy_power_w: float | None,
    max_dynamic_w: float | None,
) -> tuple[Array, Array, Array, Array]:
    """Cell energies of a power gauge, from what the samples saw of the device when busy.

    A gauge sample is one instant. The trapezoid between two samples taken while the device
    was idle sees nothing of a request that ran between them (0 J, though it drew hundreds of
    watts). Here a busy cell's energy is idle power over its covered time plus its active time
    at the power above idle that the samples at its ends saw while busy; where neither end
    caught the device busy, at the device's median busy reading in the window (else
    ``busy_power_w``). Bounds: the endpoint readings' range (±10 %) for a cell they saw, half to
    twice the typical reading for one they did not (capped at ``max_dynamic_w``).

    Returns:
        (cell energy, cell dynamic energy, its lower and upper bounds), joules.
    """
    n_cells = cells.size - 1
    t, p = series.t_s, series.power_w
    seg_at = np.clip(np.searchsorted(points, t, side="right") - 1, 0, active.size - 1)
    inside = (t >= points[0]) & (t < points[-1])
    busy_sample = inside & active[seg_at] & np.isfinite(p)
    obs = np.where(busy_sample, np.maximum(np.nan_to_num(p) - idle_w, 0.0), np.nan)
    seen = obs[np.isfinite(obs)]
    typical = float(np.median(seen)) if seen.size else busy_power_w
    active_s = np.bincount(cell_of, weights=np.where(active, seg_len, 0.0), minlength=n_cells)
    # The samples at each cell's two ends (cells are cut at sample times).
    left = np.clip(np.searchsorted(t, cells[:-1], side="right") - 1, 0, t.size - 1)
    right = np.clip(np.searchsorted(t, cells[1:], side="left"), 0, t.size - 1)
    ends = np.stack((obs[left], obs[right]))
    ends = np.where(np.stack((t[left] <= cells[:-1], t[right] >= cells[1:])), ends, np.nan)
    n_seen = np.isfinite(ends).sum(axis=0)
    with np.errstate(invalid="ignore"):
        e_mean = np.where(n_seen > 0, np.nansum(ends, axis=0) / np.maximum(n_seen, 1), 0.0)
        e_lo = np.where(n_seen > 0, np.nanmin(np.where(n_seen > 0, ends, 0.0), axis=0), 0.0)
        e_hi = np.where(n_seen > 0, np.nanmax(np.where(n_seen > 0, ends, 0.0), axis=0), 0.0)
    if typical is None:  # never seen busy, nothing known: keep the trapezoid
        w, w_lo, w_hi = (
            np.where(n_seen > 0, e_mean, np.nan),
            np.where(n_seen > 0, e_lo, 0.0),
            np.where(n_seen > 0, e_hi, np.nan),
        )
    else:
        w = np.where(n_seen > 0, e_mean, typical)
        # An endpoint reading speaks for the cell's busy time only when the cell is short:
        # over a long one the request may have drawn quite differently (prefill vs decode).
        dense = np.diff(cells) <= GAUGE_DENSE_S
        seen_lo = np.where(dense, e_lo * 0.9, np.minimum(e_lo, typical) * 0.5)
        seen_hi = np.where(dense, e_hi * 1.1, np.maximum(e_hi, typical) * 2.0)
        w_lo = np.where(n_seen > 0, seen_lo, typical * 0.5)
        w_hi = np.where(n_seen > 0, seen_hi, typical * 2.0)
    if max_dynamic_w is not None:
        w_hi = np.fmin(w_hi, max(max_dynamic_w, 0.0))
        w_hi = np.maximum(w_hi, np.nan_to_num(w, nan=0.0))
    active_cov = np.minimum(active_s, cell_cov)
    lo_idle, hi_idle = idle_range_w
    trap_dyn = np.maximum(trapezoid - idle_w * cell_cov, 0.0)
    est = np.where(np.isfinite(w), w * active_cov, trap_dyn)
    dyn = np.where(has_work, est, 0.0)
    energy = np.where(has_work, idle_w * cell_cov + dyn, trapezoid)
    hi_from_idle = np.where(has_work, (idle_w - lo_idle) * active_cov, 0.0)
    dyn_low = np.where(
        has_work, np.maximum(w_lo * active_cov - (hi_idle - idle_w) * active_cov, 0.0), 0.0
    )
    # Never seen busy and no TDP known: up to four times what the trapezoid saw.
    w_hi_j = np.where(
        np.isfinite(w_hi), np.nan_to_num(w_hi) * active_cov, 4.0 * np.maximum(dyn, trap_dyn)
    )
    dyn_high = np.where(has_work, w_hi_j + hi_from_idle, 0.0)
    return energy, dyn, np.minimum(dyn_low, dyn), np.maximum(dyn_high, dyn)


def _mean_in_flight(start: Array, end: Array) -> float:
    """How many requests run at once on average while any runs."""
    ends = end > start
    times = np.concatenate((start[ends], end[ends]))
    steps = np.concatenate((np.ones(int(ends.sum())), -np.ones(int(ends.sum()))))
    order = np.lexsort((steps, times))  # an end before a start at the same instant
    running = np.cumsum(steps[order])[:-1]
    dt = np.diff(times[order])
    busy = float(dt[running > 0].sum())
    return float((running * dt).sum()) / busy if busy > 0 else 0.0


def _fit_piece_power(
    cells: Array,
    cell_dyn: Array,
    start: Array,
    first: Array,
    end: Array,
    prior_ttft_j: Array,
    prior_decode_j: Array,
    fit: npt.NDArray[np.bool_],
    ttft_on: npt.NDArray[np.bool_],
    decode_on: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], Array, Array, Array] | None:
    """What each request drew above idle, piece by piece, fitted to the samples.

    A request's decode draws about constant power; its time to first token may hold a queue
    wait (nothing) and then prefill (much), so each of its sample intervals is its own piece.
    The device's energy above idle in each sample interval (``cell_dyn``) is the sum of piece
    power × overlap seconds over the pieces running in it. Where requests overlap partially,
    the intervals they do not share tell their powers apart: a bounded sparse least-squares fit
    (power ≥ 0, pulled weakly towards the work-rate split's answer, which decides where the
    samples cannot) finds them. Requests in ``fit`` (those sharing an interval with another)
    are fitted; the others keep their prior.

    Returns:
        Pieces as (request index, start s, end s, power W); None when there is nothing to fit
        or the problem is larger than ``MAX_FIT_ENTRIES``.
    """
    from scipy.optimize import lsq_linear
    from scipy.sparse import csr_matrix, diags, vstack

    n, n_cells = start.size, cells.size - 1
    if n_cells <= 0:
        return None
    idx = np.arange(n)
    ttft_s, decode_s = first - start, end - first
    with np.errstate(divide="ignore", invalid="ignore"):
        ttft_w = np.where(ttft_s > 0, prior_ttft_j / ttft_s, 0.0)
        decode_w = np.where(decode_s > 0, prior_decode_j / decode_s, 0.0)
    # TTFT: one piece per sample interval it overlaps.
    ttft = ttft_on & (ttft_s > MIN_PHASE_S)
    k0 = np.clip(np.searchsorted(cells, start, side="right") - 1, 0, n_cells - 1)
    k1 = np.clip(np.searchsorted(cells, first, side="left") - 1, 0, n_cells - 1)
    counts = np.where(ttft, np.maximum(k1, k0) - k0 + 1, 0)
    if int(counts.sum()) > MAX_FIT_ENTRIES:
        return None
    owner_t = np.repeat(idx, counts)
    cell_t = k0[owner_t] + np.arange(owner_t.size) - np.repeat(np.cumsum(counts) - counts, counts)
    a_t = np.maximum(start[owner_t], cells[cell_t])
    z_t = np.minimum(first[owner_t], cells[cell_t + 1])
    keep = z_t - a_t > 0
    owner_t, a_t, z_t = owner_t[keep], a_t[keep], z_t[keep]
    decode = decode_on & (decode_s > MIN_PHASE_S)
    owner = np.concatenate((owner_t, idx[decode]))
    p_a = np.concatenate((a_t, first[decode]))
    p_z = np.concatenate((z_t, end[decode]))
    prior = np.concatenate((ttft_w[owner_t], decode_w[decode]))
    col = np.flatnonzero(fit[owner])
    if col.size == 0:
        return None
    n_t = owner_t.size
    # Unknowns: each fitted piece's power; and, per fitted request with a TTFT, its mean TTFT
    # power: a TTFT piece's power is that mean plus a deviation (unbounded, shrunk towards 0)
    # so that sparse samples fall back on one TTFT power and dense ones resolve wait and
    # prefill.
    is_t = col < n_t
    means = np.unique(owner[col[is_t]])
    mean_of = np.searchsorted(means, owner[col[is_t]])
    entries_rows, entries_cols, entries_secs = [], [], []
    for c_ids, a_, z_ in (
        (np.arange(col.size), p_a[col], p_z[col]),
        (col.size + mean_of, p_a[col[is_t]], p_z[col[is_t]]),
    ):
        j0 = np.clip(np.searchsorted(cells, a_, side="right") - 1, 0, n_cells - 1)
        j1 = np.clip(np.searchsorted(cells, z_, side="left") - 1, 0, n_cells - 1)
        spans = np.maximum(j1, j0) - j0 + 1
        if int(spans.sum()) > MAX_FIT_ENTRIES:
            return None
        rep = np.repeat(np.arange(a_.size), spans)
        rows = j0[rep] + np.arange(rep.size) - np.repeat(np.cumsum(spans) - spans, spans)
        secs = np.minimum(z_[rep], cells[rows + 1]) - np.maximum(a_[rep], cells[rows])
        good = secs > 0
        entries_rows.append(rows[good])
        entries_cols.append(c_ids[rep[good]])
        entries_secs.append(secs[good])
    rows, cols, secs = (np.concatenate(x) for x in (entries_rows, entries_cols, entries_secs))
    if secs.size == 0:
        return None
    n_var = col.size + means.size
    used_rows, r_idx = np.unique(rows, return_inverse=True)
    matrix = csr_matrix((secs, (r_idx, cols)), shape=(used_rows.size, n_var))
    norm2 = np.bincount(cols, weights=secs**2, minlength=n_var)
    prior_var = np.concatenate(
        (np.where(is_t, 0.0, prior[col]), ttft_w[means])
    )  # deviations shrink to 0; decode and TTFT means to the work-rate prior
    strength = np.concatenate(
        (
            np.where(is_t, FIT_DEVIATION_WEIGHT, FIT_PRIOR_WEIGHT),
            np.full(means.size, FIT_PRIOR_WEIGHT),
        )
    )
    weight = np.sqrt(strength * norm2)
    system = vstack([matrix, diags(weight)]).tocsr()
    target = np.concatenate((cell_dyn[used_rows], weight * prior_var))
    lower = np.concatenate((np.where(is_t, -np.inf, 0.0), np.zeros(means.size)))
    result = lsq_linear(system, target, bounds=(lower, np.inf), lsmr_tol="auto", max_iter=200)
    x = result.x
    value = x[: col.size].copy()
    value[is_t] += x[col.size + mean_of]
    power = prior.copy()
    power[col] = np.maximum(value, 0.0)
    return owner.astype(np.int64), p_a, p_z, power


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
