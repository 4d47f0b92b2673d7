"""What the dashboard reads: rollups and marts only, filtered the same way on every page.

Every function returns a Core ``Select`` whose columns carry their unit in the label. Money
stays exact NUMERIC; token sums are cast to BIGINT so both backends return ``int``. Energy is
kept apart by provenance (``*_measured_j``, ``*_modeled_j``, ``idle_energy_j``), never summed
silently into one figure without the parts beside it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from wattledger.models import (
    Device,
    DeviceEnergyHourly,
    Money,
    QuarantineHourly,
    Recommendation,
    ReportRun,
    RollupDaily,
    RollupHourly,
    Watermark,
)

_MTOK = sa.literal(1_000_000, sa.BigInteger)
#: The rollup dimensions a filter can restrict, as (filter field, rollup column name).
FILTER_DIMENSIONS = (
    ("tenants", "tenant"),
    ("services", "service"),
    ("workloads", "workload"),
    ("providers", "provider"),
    ("hardware", "hardware_model"),
    ("llm_models", "llm_model"),
)
ROUTE_COLUMNS = ("provider", "hardware_model", "llm_model", "quantization")
_Rollup = type[RollupHourly] | type[RollupDaily]


@dataclass(frozen=True)
class RollupFilter:
    """The shared dashboard filters. An empty tuple means "all".

    ``start``/``end`` bound the bucket start times, ``[start, end)``, UTC.
    """

    start: dt.datetime
    end: dt.datetime
    tenants: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    hardware: tuple[str, ...] = ()
    llm_models: tuple[str, ...] = ()

    def shifted(self, delta: dt.timedelta) -> RollupFilter:
        """The same filter over a window moved by ``delta`` (e.g. the previous week)."""
        return RollupFilter(self.start + delta, self.end + delta, *self._dims())

    def _dims(self) -> tuple[tuple[str, ...], ...]:
        return tuple(getattr(self, field) for field, _ in FILTER_DIMENSIONS)


def _where(table: _Rollup, f: RollupFilter) -> list[sa.ColumnElement[bool]]:
    conds = [table.bucket_start >= f.start, table.bucket_start < f.end]
    for field, column in FILTER_DIMENSIONS:
        values = getattr(f, field)
        if values:
            conds.append(getattr(table, column).in_(values))
    return conds


def _int_sum(column: sa.ColumnElement) -> sa.ColumnElement[int]:
    return sa.cast(sa.func.coalesce(sa.func.sum(column), 0), sa.BigInteger)


def _float_sum(
    column: sa.ColumnElement, where: sa.ColumnElement[bool] | None = None
) -> sa.ColumnElement[float]:
    total = sa.func.sum(column) if where is None else sa.func.sum(column).filter(where)
    return sa.cast(sa.func.coalesce(total, 0.0), sa.Double)


def _money_sum(column: sa.ColumnElement) -> sa.ColumnElement:
    return sa.cast(sa.func.coalesce(sa.func.sum(column), 0), Money)


def _measures(t: _Rollup) -> list[sa.ColumnElement]:
    """Sums over rollup rows plus the ratios finance quotes, each labelled with its unit."""
    tokens = sa.func.sum(t.input_tokens + t.output_tokens)
    energy = sa.func.sum(t.energy_measured_j + t.energy_modeled_j + t.idle_energy_j)
    total = sa.func.sum(t.cost_total_usd)
    return [
        _int_sum(t.requests).label("requests"),
        _int_sum(t.error_requests).label("error_requests"),
        _int_sum(t.unpriced_requests).label("unpriced_requests"),
        _int_sum(t.input_tokens).label("input_tokens"),
        _int_sum(t.cached_input_tokens).label("cached_input_tokens"),
        _int_sum(t.output_tokens).label("output_tokens"),
        _float_sum(t.energy_measured_j).label("energy_measured_j"),
        _float_sum(t.energy_modeled_j).label("energy_modeled_j"),
        _float_sum(t.idle_energy_j).label("idle_energy_j"),
        sa.cast(sa.func.sum(t.energy_j_low), sa.Double).label("energy_j_low"),
        sa.cast(sa.func.sum(t.energy_j_high), sa.Double).label("energy_j_high"),
        _money_sum(t.cost_api_usd).label("cost_api_usd"),
        _money_sum(t.cost_hardware_usd).label("cost_hardware_usd"),
        _money_sum(t.cost_energy_usd).label("cost_energy_usd"),
        _money_sum(t.cost_idle_usd).label("cost_idle_usd"),
        _money_sum(t.cost_total_usd).label("cost_total_usd"),
        # n/a, not $0.00, when no request of the group could be priced (#22).
        sa.case(
            (
                sa.func.sum(t.unpriced_requests) >= sa.func.sum(t.requests),
                sa.null(),
            ),
            else_=sa.cast(total * _MTOK / sa.func.nullif(tokens, 0), Money),
        ).label("cost_per_mtok_blended_usd"),
        (
            sa.cast(sa.func.sum(t.output_tokens), sa.Double)
            / sa.func.nullif(sa.cast(energy, sa.Double), 0.0)
        ).label("tokens_per_j"),
        _float_sum(t.co2e_g).label("co2e_g"),
    ]


def period_totals(f: RollupFilter) -> sa.Select[tuple]:
    """One row: requests, tokens, energy by provenance, cost parts and ratios in ``f``."""
    t = RollupDaily
    return sa.select(*_measures(t)).where(*_where(t, f))


def daily_totals(f: RollupFilter) -> sa.Select[tuple]:
    """Per UTC day: the same measures as :func:`period_totals`, for trend charts."""
    t = RollupDaily
    return (
        sa.select(t.bucket_start.label("day"), *_measures(t))
        .where(*_where(t, f))
        .group_by(t.bucket_start)
        .order_by(t.bucket_start)
    )


def spend_by_service(f: RollupFilter) -> sa.Select[tuple]:
    """Per service × tenant × workload × model: spend, tokens and energy, largest spend first."""
    t = RollupDaily
    keys = (t.service, t.tenant, t.workload, t.llm_model)
    return (
        sa.select(*keys, *_measures(t))
        .where(*_where(t, f))
        .group_by(*keys)
        .order_by(sa.func.sum(t.cost_total_usd).desc(), *keys)
    )


def _weighted(column: sa.ColumnElement, weight: sa.ColumnElement) -> sa.ColumnElement:
    """Request-weighted mean of an hourly quantile, over the hours that have one."""
    known = column.is_not(None)
    num = sa.func.sum(sa.case((known, column * weight), else_=None))
    den = sa.func.sum(sa.case((known, weight), else_=None))
    return sa.cast(num, sa.Double) / sa.func.nullif(sa.cast(den, sa.Double), 0.0)


def _latency(t: _Rollup) -> list[sa.ColumnElement]:
    w = t.requests
    return [
        _weighted(t.ttft_p50_s, w).label("ttft_p50_s"),
        _weighted(t.ttft_p95_s, w).label("ttft_p95_s"),
        _weighted(t.ttft_p99_s, w).label("ttft_p99_s"),
        _weighted(t.itl_p50_s, w).label("itl_p50_s"),
        _weighted(t.itl_p95_s, w).label("itl_p95_s"),
        _weighted(t.itl_p99_s, w).label("itl_p99_s"),
        sa.cast(sa.func.max(t.ttft_p95_s), sa.Double).label("ttft_p95_worst_hour_s"),
        sa.cast(sa.func.max(t.itl_p95_s), sa.Double).label("itl_p95_worst_hour_s"),
    ]


def route_summary(f: RollupFilter) -> sa.Select[tuple]:
    """Per route (provider × hardware × model × quantization): cost, efficiency, latency.

    Latency quantiles are request-weighted means of the hourly quantiles in the rollups.
    """
    t = RollupHourly
    keys = [getattr(t, c) for c in ROUTE_COLUMNS]
    batch = _weighted(t.mean_batch_size, t.requests).label("mean_batch_size")
    return (
        sa.select(*keys, *_measures(t), *_latency(t), batch)
        .where(*_where(t, f))
        .group_by(*keys)
        .order_by(*keys)
    )


def hardware_efficiency(f: RollupFilter) -> sa.Select[tuple]:
    """Per provider × hardware model: output tokens per joule with its energy by provenance."""
    t = RollupDaily
    keys = (t.provider, t.hardware_model)
    return sa.select(*keys, *_measures(t)).where(*_where(t, f)).group_by(*keys).order_by(*keys)


def workload_slo(f: RollupFilter) -> sa.Select[tuple]:
    """Per workload: SLO compliance (requests judged, requests met) and latency quantiles."""
    t = RollupHourly
    judged = sa.case((t.slo_met_requests.is_not(None), t.requests), else_=0)
    return (
        sa.select(
            t.workload,
            _int_sum(t.requests).label("requests"),
            _int_sum(judged).label("slo_judged_requests"),
            _int_sum(t.slo_met_requests).label("slo_met_requests"),
            *_latency(t),
        )
        .where(*_where(t, f))
        .group_by(t.workload)
        .order_by(t.workload)
    )


def latency_hours(f: RollupFilter) -> sa.Select[tuple]:
    """Per hour × workload × route: requests and request-weighted hourly latency quantiles."""
    t = RollupHourly
    keys = [t.bucket_start, t.workload, *(getattr(t, c) for c in ROUTE_COLUMNS)]
    judged = sa.case((t.slo_met_requests.is_not(None), t.requests), else_=0)
    return (
        sa.select(
            *keys,
            _int_sum(t.requests).label("requests"),
            _int_sum(judged).label("slo_judged_requests"),
            _int_sum(t.slo_met_requests).label("slo_met_requests"),
            *_latency(t)[:6],
        )
        .where(*_where(t, f))
        .group_by(*keys)
        .order_by(*keys)
    )


def filter_options() -> sa.Select[tuple]:
    """Every combination of filterable dimensions present in the daily rollups."""
    t = RollupDaily
    cols = [getattr(t, column) for _, column in FILTER_DIMENSIONS]
    return sa.select(*cols).group_by(*cols).order_by(*cols)


def data_extent() -> sa.Select[tuple]:
    """First and last rollup day, the newest rollup computation and the analytics watermark."""
    t = RollupDaily
    watermark = (
        sa.select(sa.func.max(Watermark.value_ts)).where(Watermark.name == "analytics")
    ).scalar_subquery()
    return sa.select(
        sa.func.min(t.bucket_start).label("first_day"),
        sa.func.max(t.bucket_start).label("last_day"),
        sa.func.max(t.computed_at).label("computed_at"),
        sa.cast(sa.func.count(), sa.BigInteger).label("rollup_rows"),
        watermark.label("watermark_ts"),
    )


def recommendations(
    statuses: tuple[str, ...] = (), tenants: tuple[str, ...] = (), workloads: tuple[str, ...] = ()
) -> sa.Select[tuple]:
    """Recommendations, largest monthly saving first; empty tuples mean "all"."""
    r = Recommendation
    q = sa.select(*r.__table__.columns)
    for column, values in ((r.status, statuses), (r.tenant, tenants), (r.workload, workloads)):
        if values:
            q = q.where(column.in_(values))
    return q.order_by(r.savings_usd_month.desc().nulls_last(), r.recommendation_id)


def device_hours(
    start: dt.datetime,
    end: dt.datetime,
    tenants: tuple[str, ...] = (),
    hardware: tuple[str, ...] = (),
) -> sa.Select[tuple]:
    """Per device × hour in ``[start, end)``: energy ledger, power and utilization."""
    e, d = DeviceEnergyHourly, Device
    q = (
        sa.select(
            e.bucket_start,
            e.device_id,
            d.hardware_model,
            d.vendor,
            d.node,
            e.method,
            e.measured_j.label("device_energy_j"),
            e.attributed_j.label("attributed_j"),
            e.idle_j.label("idle_j"),
            e.unallocated_idle_j.label("unallocated_idle_j"),
            e.active_s.label("active_s"),
            e.idle_s.label("idle_s"),
            e.mean_power_w.label("mean_power_w"),
            e.mean_utilization_ratio.label("mean_utilization_ratio"),
            e.requests.label("requests"),
            e.idle_power_w.label("idle_power_w"),
            e.idle_source.label("idle_source"),
        )
        .select_from(e.__table__.join(d, d.device_id == e.device_id))
        .where(e.bucket_start >= start, e.bucket_start < end)
    )
    if tenants:
        q = q.where(d.tenant.in_(tenants))
    if hardware:
        q = q.where(d.hardware_model.in_(hardware))
    return q.order_by(e.device_id, e.bucket_start)


def device_summary(
    start: dt.datetime,
    end: dt.datetime,
    tenants: tuple[str, ...] = (),
    hardware: tuple[str, ...] = (),
) -> sa.Select[tuple]:
    """Per device over ``[start, end)``: energy by method, idle waste and mean power."""
    h = device_hours(start, end, tenants, hardware).subquery()
    measured = h.c.method.in_(("counter", "power"))
    keys = (h.c.device_id, h.c.hardware_model, h.c.vendor, h.c.node)
    return (
        sa.select(
            *keys,
            _float_sum(h.c.device_energy_j, measured).label("device_energy_measured_j"),
            _float_sum(h.c.device_energy_j, h.c.method == "modeled").label(
                "device_energy_modeled_j"
            ),
            _float_sum(h.c.attributed_j).label("attributed_j"),
            _float_sum(h.c.idle_j).label("idle_j"),
            _float_sum(h.c.unallocated_idle_j).label("unallocated_idle_j"),
            _float_sum(h.c.active_s).label("active_s"),
            _float_sum(h.c.idle_s).label("idle_s"),
            sa.cast(sa.func.avg(h.c.mean_power_w), sa.Double).label("mean_power_w"),
            sa.cast(sa.func.avg(h.c.mean_utilization_ratio), sa.Double).label(
                "mean_utilization_ratio"
            ),
            _int_sum(h.c.requests).label("requests"),
            sa.cast(sa.func.count(), sa.BigInteger).label("hours"),
            sa.cast(sa.func.count().filter(h.c.method == "counter"), sa.BigInteger).label(
                "counter_hours"
            ),
            sa.cast(sa.func.count().filter(h.c.method == "power"), sa.BigInteger).label(
                "power_hours"
            ),
            sa.cast(sa.func.count().filter(h.c.method == "modeled"), sa.BigInteger).label(
                "modeled_hours"
            ),
            sa.cast(sa.func.avg(h.c.idle_power_w), sa.Double).label("idle_power_w"),
            sa.cast(sa.func.min(h.c.idle_source), sa.String).label("idle_source_min"),
            sa.cast(sa.func.max(h.c.idle_source), sa.String).label("idle_source_max"),
            sa.cast(sa.func.count().filter(h.c.idle_source == "none"), sa.BigInteger).label(
                "no_idle_hours"
            ),
        )
        .group_by(*keys)
        .order_by(sa.func.sum(h.c.idle_j).desc(), h.c.device_id)
    )


def report_runs() -> sa.Select[tuple]:
    """Weekly report runs, newest week first."""
    r = ReportRun
    return sa.select(*r.__table__.columns).order_by(r.iso_week.desc(), r.created_at.desc())


def quarantined_requests(
    start: dt.datetime, end: dt.datetime, tenants: tuple[str, ...] = ()
) -> sa.Select[tuple]:
    """Requests in the period that analytics quarantined (token counts outside the ingest
    bounds, stored before ingest checked them): they are in no cost or energy figure."""
    q = QuarantineHourly
    select = sa.select(
        sa.cast(sa.func.coalesce(sa.func.sum(q.requests), 0), sa.BigInteger).label("requests")
    ).where(q.bucket_start >= start, q.bucket_start < end)
    return select.where(q.tenant.in_(tenants)) if tenants else select
