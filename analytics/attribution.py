"""Attribute device energy to requests over a window, reading and staging through Arrow.

For each device this loads its samples and the requests that ran on it, runs the numpy core in
:mod:`wattledger.analytics.timeline`, spreads idle energy and idle time over the requests of each
hour, and returns Arrow tables ready to stage: one row per request, one per device-hour.
Requests without a device (hosted APIs) get modeled energy where a per-token figure is
configured, labelled ``modeled``; otherwise their energy is unknown (NULL).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from wattledger.analytics.idle import IdleBaseline, idle_baseline
from wattledger.analytics.queries.attribution import (
    devices,
    requests_in_window,
    samples_in_window,
)
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.analytics.timeline import (
    DeviceAttribution,
    Requests,
    Series,
    attribute_device,
    spread_by_bucket,
)
from wattledger.analytics.weights import power_shape, prefill_seconds, token_weights
from wattledger.hardware import catalog_idle_power_w, catalog_tdp_w
from wattledger.models.bulk import fetch_arrow

log = logging.getLogger(__name__)
HOUR_S = 3600.0
#: Range of a hosted request's modeled energy relative to its figure (published per-token
#: figures for hosted APIs are estimates, good to about a factor of two).
HOSTED_RANGE = (0.5, 2.0)
#: Share of (TDP − idle) taken as a busy device's draw when its gauge never caught it busy.
BUSY_SHARE_OF_TDP = 0.5


@dataclass
class WindowAttribution:
    """Everything attribution derived for one window ``[start, end)``.

    Attributes:
        requests: Per request: ``trace_id``, ``span_id``, ``energy_j``, ``energy_source``,
            ``energy_j_low``, ``energy_j_high`` (the range the direct energy can lie in),
            ``idle_share_j``, ``device_time_s``, ``idle_time_share_s``.
        device_hours: Per device and hour: the :class:`~wattledger.models.DeviceEnergyHourly`
            columns.
        late_or_uncovered: Requests on a device whose samples do not cover them.
        without_idle_baseline: Devices with samples but no evidence of their idle power (no
            idle interval, no configured or catalog figure): their baseline was taken as 0 W.
    """

    requests: pa.Table
    device_hours: pa.Table
    late_or_uncovered: int = 0
    devices: int = 0
    warnings: list[str] = field(default_factory=list)
    without_idle_baseline: list[str] = field(default_factory=list)


def _f64(table: pa.Table, name: str) -> np.ndarray:
    col = pc.cast(table.column(name), pa.float64())
    return col.to_numpy(zero_copy_only=False).astype(np.float64)


def _groups(keys: pa.ChunkedArray | pa.Array) -> dict[str, tuple[int, int]]:
    """Start/stop row ranges of each key in an array sorted by key (NULL keys skipped)."""
    if len(keys) == 0:
        return {}
    encoded = pc.dictionary_encode(
        keys.combine_chunks() if hasattr(keys, "combine_chunks") else keys
    )
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    names = encoded.dictionary.to_pylist()
    bounds = np.concatenate(([0], np.flatnonzero(codes[1:] != codes[:-1]) + 1, [codes.size]))
    return {
        names[codes[a]]: (int(a), int(b))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if codes[a] >= 0
    }


def attribute_window(
    conn: Connection,
    settings: AnalyticsSettings,
    start: dt.datetime,
    end: dt.datetime,
    *,
    horizon: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> WindowAttribution:
    """Attribute every device's energy to the requests that started in ``[start, end)``.

    ``start`` must be on the hour. Energy is followed up to ``horizon`` (default ``end``) so a
    request running past ``end`` gets its whole energy; requests that started up to
    ``settings.max_request_s`` before ``start`` or after ``end`` are read as context (they share
    the device) but are not returned. Device-hour rows cover ``[start, end)`` only.
    """
    margin = dt.timedelta(seconds=settings.max_request_s)
    horizon = max(horizon or end, end)
    reqs = fetch_arrow(conn, requests_in_window(start - margin, horizon))
    samples = _best_sources(fetch_arrow(conn, samples_in_window(start - margin, horizon)))
    dev = fetch_arrow(conn, devices()).to_pylist()
    dev_info = {d["device_id"]: d for d in dev}
    t0, t1, t_h = start.timestamp(), end.timestamp(), horizon.timestamp()
    n_hours = max(int(np.ceil((t1 - t0) / HOUR_S)), 1)

    start_s = _f64(reqs, "start_s")
    in_window = (start_s >= t0) & (start_s < t1)
    energy = np.full(reqs.num_rows, np.nan)
    energy_low = np.full(reqs.num_rows, np.nan)
    energy_high = np.full(reqs.num_rows, np.nan)
    source: list[str | None] = [None] * reqs.num_rows
    idle_share = np.zeros(reqs.num_rows)
    dev_time = np.zeros(reqs.num_rows)
    idle_time_share = np.zeros(reqs.num_rows)
    uncovered = 0

    req_groups = _groups(reqs.column("device_id"))
    sample_groups = _groups(samples.column("device_id"))
    hour_rows: list[dict[str, object]] = []
    no_idle: list[str] = []
    done = 0
    for device_id in sorted(set(req_groups) | set(sample_groups)):
        lo, hi = req_groups.get(device_id, (0, 0))
        s_lo, s_hi = sample_groups.get(device_id, (0, 0))
        dev_samples = samples.slice(s_lo, s_hi - s_lo)
        info = dev_info.get(device_id, {})
        series = Series(
            t_s=_f64(dev_samples, "t_s"),
            power_w=_f64(dev_samples, "power_w"),
            counter_j=_hardware_counter(dev_samples),
        )
        sub = reqs.slice(lo, hi - lo)
        model, quant = _main_route(sub)
        start_s_dev = _f64(sub, "start_s")
        first_s_dev = _f64(sub, "first_token_s")
        hardware = info.get("hardware_model")
        prefill = prefill_seconds(hardware, model, quant)  # type: ignore[arg-type]
        prior = None
        if prefill is not None:  # a prior only: what the device drew decides (timeline.py)
            est = prefill(_f64(sub, "input_tokens"))
            prior = np.where(
                first_s_dev > start_s_dev, np.maximum(start_s_dev, first_s_dev - est), start_s_dev
            )
        rq = Requests(
            start_s=start_s_dev,
            first_token_s=first_s_dev,
            end_s=_f64(sub, "end_s"),
            input_tokens=_f64(sub, "input_tokens"),
            output_tokens=_f64(sub, "output_tokens"),
            prefill_start_s=prior,
        )
        idle = _idle_power(info, series, sub, settings.idle_power_quantile)
        if idle.source == "none" and series.t_s.size:
            no_idle.append(device_id)
        idle_w = idle.power_w
        busy_w, max_dyn_w = _dynamic_power(info, idle_w)
        w_p, w_d, _ = token_weights(settings, info.get("hardware_model"), model, quant)  # type: ignore[arg-type]
        shape = None
        if sub.num_rows:
            inp, out = np.median(rq.input_tokens), np.median(rq.output_tokens)
            shape = power_shape(
                info.get("hardware_model"),
                model,
                quant,
                float(inp),
                float(inp + out / 2),  # type: ignore[arg-type]
            )
        result = attribute_device(
            series,
            rq,
            t0=t0,
            t1=t_h,
            idle_power_w=idle_w,
            prefill_weight=w_p,
            decode_weight=w_d,
            power_shape=shape,
            idle_power_range_w=idle.range_w,
            busy_power_w=busy_w,
            max_dynamic_power_w=max_dyn_w,
            fit_max_in_flight=settings.overlap_fit_max_in_flight,
        )
        method = "modeled" if _is_modeled(dev_samples) else result.method
        mine = in_window[lo:hi]
        started = _f64(sub, "start_s")
        hour_of = np.clip(((started - t0) // HOUR_S).astype(np.int64), 0, n_hours - 1)
        weights = np.where(mine, result.energy_j, 0.0)
        idle_j, unalloc_j = _spread(hour_of, mine, weights, result.idle_j_by_bucket[:n_hours])
        idle_s, _ = _spread(hour_of, mine, result.device_time_s, result.idle_s_by_bucket[:n_hours])
        covered = _covered(series, rq)
        uncovered += int(np.count_nonzero(mine & ~covered))
        energy[lo:hi] = np.where(covered, result.energy_j, np.nan)
        if result.energy_low_j is not None and result.energy_high_j is not None:
            energy_low[lo:hi] = np.where(covered, result.energy_low_j, np.nan)
            energy_high[lo:hi] = np.where(covered, result.energy_high_j, np.nan)
        for i in np.nonzero(mine & covered)[0]:
            source[lo + i] = method
        idle_share[lo:hi] = idle_j
        dev_time[lo:hi] = result.device_time_s
        idle_time_share[lo:hi] = idle_s
        hour_rows += _hour_rows(
            device_id,
            t0,
            n_hours,
            result,
            method,
            unalloc_j,
            hour_of[mine],
            dev_samples,
            series,
            idle,
        )
        done += int(np.count_nonzero(mine))
        if progress:
            progress(done)

    hosted = pc.is_null(reqs.column("device_id")).to_numpy(zero_copy_only=False)
    _model_hosted(reqs, hosted & in_window, settings, energy, source)
    modeled_hosted = hosted & in_window & np.isfinite(energy)
    energy_low = np.where(modeled_hosted, energy * HOSTED_RANGE[0], energy_low)
    energy_high = np.where(modeled_hosted, energy * HOSTED_RANGE[1], energy_high)
    keep = pa.array(in_window)
    table = pa.table(
        {
            "trace_id": reqs.column("trace_id"),
            "span_id": reqs.column("span_id"),
            "energy_j": pa.array(energy, mask=np.isnan(energy)),
            "energy_source": pa.array(source, pa.string()),
            "energy_j_low": pa.array(energy_low, mask=np.isnan(energy_low)),
            "energy_j_high": pa.array(energy_high, mask=np.isnan(energy_high)),
            "idle_share_j": pa.array(idle_share),
            "device_time_s": pa.array(dev_time),
            "idle_time_share_s": pa.array(idle_time_share),
        }
    ).filter(keep)
    return WindowAttribution(
        requests=table,
        device_hours=pa.Table.from_pylist(hour_rows, schema=_HOUR_SCHEMA),
        late_or_uncovered=uncovered,
        devices=len(set(req_groups) | set(sample_groups)),
        without_idle_baseline=no_idle,
    )


def _main_route(requests: pa.Table) -> tuple[str | None, str | None]:
    """The (model, quantization) serving most of a device's requests."""
    if requests.num_rows == 0:
        return None, None
    counts = requests.group_by(["llm_model", "quantization"]).aggregate([("span_id", "count")])
    best = max(counts.to_pylist(), key=lambda r: r["span_id_count"])
    return best["llm_model"], best["quantization"]


def _best_sources(samples: pa.Table) -> pa.Table:
    """Keep one source per device: one whose samples all carry counters, else the largest."""
    if samples.num_rows == 0:
        return samples
    stats = samples.group_by(["device_id", "source"]).aggregate(
        [("energy_counter_j", "count"), ("t_s", "count")]
    )
    best: dict[str, tuple[bool, int, str]] = {}
    for row in stats.to_pylist():
        rank = (row["energy_counter_j_count"] == row["t_s_count"], row["t_s_count"], row["source"])
        if row["device_id"] not in best or rank > best[row["device_id"]]:
            best[row["device_id"]] = rank
    if stats.num_rows == len(best):  # one source per device already
        return samples
    key = pc.binary_join_element_wise(samples.column("device_id"), samples.column("source"), "\x1f")
    wanted = pa.array([f"{d}\x1f{rank[2]}" for d, rank in best.items()])
    return samples.filter(pc.is_in(key, value_set=wanted))


def _hardware_counter(samples: pa.Table) -> np.ndarray:
    """The energy counter where the hardware kept it; NaN where the producer integrated its own
    power readings (``method=power``, e.g. NVML without a counter): that "counter" knows no
    more than the gauge it came from, and is treated as the gauge (timeline.py)."""
    counter = _f64(samples, "energy_counter_j")
    integrated = pc.fill_null(pc.equal(samples.column("method"), "power"), False)
    return np.where(integrated.to_numpy(zero_copy_only=False), np.nan, counter)


def _is_modeled(samples: pa.Table) -> bool:
    return samples.num_rows > 0 and "modeled" in set(samples.column("method").to_pylist())


def _idle_power(
    info: dict[str, object], series: Series, requests: pa.Table, quantile: float
) -> IdleBaseline:
    """The device's idle baseline: measured where it can be, else configured or catalog."""
    hardware = info.get("hardware_model")
    return idle_baseline(
        series,
        _f64(requests, "start_s"),
        _f64(requests, "end_s"),
        configured_w=info.get("idle_power_w"),
        catalog_w=catalog_idle_power_w(hardware if isinstance(hardware, str) else None),
        quantile=quantile,
    )


def _dynamic_power(info: dict[str, object], idle_w: float) -> tuple[float | None, float | None]:
    """(typical busy power above idle, most power above idle), W, from TDP; None if unknown."""
    tdp = info.get("tdp_w")
    if not (isinstance(tdp, float | int) and np.isfinite(tdp) and tdp > 0):
        hardware = info.get("hardware_model")
        tdp = catalog_tdp_w(hardware if isinstance(hardware, str) else None)
    if tdp is None or tdp <= idle_w:
        return None, None
    headroom = float(tdp) - idle_w
    return BUSY_SHARE_OF_TDP * headroom, headroom


def _covered(series: Series, rq: Requests) -> np.ndarray:
    if series.t_s.size < 2:
        return np.zeros(rq.start_s.size, dtype=bool)
    return (rq.start_s >= series.t_s[0]) & (rq.start_s <= series.t_s[-1])


def _spread(
    hour_of: np.ndarray, mine: np.ndarray, weights: np.ndarray, per_hour: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.nonzero(mine)[0]
    share = np.zeros(hour_of.size)
    if idx.size:
        got, unallocated = spread_by_bucket(hour_of[idx], weights[idx], per_hour)
        share[idx] = got
    else:
        unallocated = per_hour.copy()
    return share, unallocated


def _hour_rows(
    device_id: str,
    t0: float,
    n_hours: int,
    result: DeviceAttribution,
    method: str,
    unalloc_j: np.ndarray,
    hours_of_mine: np.ndarray,
    samples: pa.Table,
    series: Series,
    idle: IdleBaseline,
) -> list[dict[str, object]]:
    counts = np.bincount(hours_of_mine, minlength=n_hours)
    util = _f64(samples, "utilization_ratio")
    hour_of_sample = ((series.t_s - t0) // HOUR_S).astype(np.int64)
    rows = []
    for h in range(n_hours):
        if result.coverage_s_by_bucket[h] <= 0 and counts[h] == 0:
            continue
        in_h = hour_of_sample == h
        power = series.power_w[in_h]
        power = power[np.isfinite(power)]
        u = util[in_h]
        u = u[np.isfinite(u)]
        rows.append(
            {
                "device_id": device_id,
                "bucket_start": dt.datetime.fromtimestamp(t0 + h * HOUR_S, dt.UTC),
                "method": method,
                "measured_j": float(result.measured_j_by_bucket[h]),
                "attributed_j": float(result.attributed_j_by_bucket[h]),
                "idle_j": float(result.idle_j_by_bucket[h]),
                "unallocated_idle_j": float(unalloc_j[h]),
                "active_s": float(result.active_s_by_bucket[h]),
                "idle_s": float(result.idle_s_by_bucket[h]),
                "coverage_s": float(result.coverage_s_by_bucket[h]),
                "mean_power_w": float(power.mean()) if power.size else None,
                "mean_utilization_ratio": float(u.mean()) if u.size else None,
                "requests": int(counts[h]),
                "gaps": result.gaps if h == 0 else 0,
                "idle_power_w": idle.power_w,
                "idle_source": idle.source,
            }
        )
    return rows


_HOUR_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("bucket_start", pa.timestamp("us", tz="UTC")),
        ("method", pa.string()),
        ("measured_j", pa.float64()),
        ("attributed_j", pa.float64()),
        ("idle_j", pa.float64()),
        ("unallocated_idle_j", pa.float64()),
        ("active_s", pa.float64()),
        ("idle_s", pa.float64()),
        ("coverage_s", pa.float64()),
        ("mean_power_w", pa.float64()),
        ("mean_utilization_ratio", pa.float64()),
        ("requests", pa.int64()),
        ("gaps", pa.int64()),
        ("idle_power_w", pa.float64()),
        ("idle_source", pa.string()),
    ]
)


def _model_hosted(
    reqs: pa.Table,
    mask: np.ndarray,
    settings: AnalyticsSettings,
    energy: np.ndarray,
    source: list[str | None],
) -> None:
    table = settings.modeled_j_per_output_token
    if not table or not mask.any():
        return
    providers = reqs.column("provider").to_pylist()
    models = reqs.column("llm_model").to_pylist()
    out = _f64(reqs, "output_tokens")
    for i in np.nonzero(mask)[0]:
        per_token = table.get(f"{providers[i]}/{models[i]}", table.get(providers[i]))
        if per_token is not None:
            energy[i] = per_token * out[i]
            source[i] = "modeled"
