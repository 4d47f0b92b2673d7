"""What the weekly report reads: sums over daily rollups and the open recommendations.

Every query covers whole UTC days ``[start, end)`` of ``rollup_daily`` and, for a tenant other
than ``"*"``, only that tenant's rows. Queries return sums; ratios ($/1M tokens, tokens per
joule, week-over-week change) are computed from them in Python, exactly, with Decimal money.
Token sums are cast to BIGINT because PostgreSQL's ``sum(bigint)`` returns NUMERIC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from wattledger.models import ALL_TENANTS, Recommendation, RollupDaily

#: Dimensions a cost driver can be ranked by; ``route`` is provider × hardware × model × quant.
DRIVER_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "service": ("service",),
    "workload": ("workload",),
    "route": ("provider", "hardware_model", "llm_model", "quantization"),
}


def _int_sum(column: Any) -> sa.ColumnElement[int]:
    return sa.cast(sa.func.coalesce(sa.func.sum(column), 0), sa.BigInteger)


def _in_range(start: dt.datetime, end: dt.datetime, tenant: str) -> list[sa.ColumnElement[bool]]:
    r = RollupDaily
    conds = [r.bucket_start >= start, r.bucket_start < end]
    if tenant != ALL_TENANTS:
        conds.append(r.tenant == tenant)
    return conds


def _energy_j() -> sa.ColumnElement[float]:
    r = RollupDaily
    return r.energy_measured_j + r.energy_modeled_j + r.idle_energy_j


def _measures() -> list[sa.ColumnElement[Any]]:
    """Sums every report figure is derived from: counts, tokens, energy (J), USD, CO2e (g).

    ``output_tokens_with_energy`` counts only rows whose energy is known, so tokens per joule
    never divides hosted tokens without an energy figure by someone else's joules.
    """
    r = RollupDaily

    def real_sum(column: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(column), 0.0)

    def money_sum(column: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(column), 0)

    return [
        _int_sum(r.requests).label("requests"),
        _int_sum(r.error_requests).label("error_requests"),
        _int_sum(r.unpriced_requests).label("unpriced_requests"),
        _int_sum(r.input_tokens).label("input_tokens"),
        _int_sum(r.output_tokens).label("output_tokens"),
        sa.cast(
            sa.func.coalesce(sa.func.sum(r.output_tokens).filter(_energy_j() > 0), 0),
            sa.BigInteger,
        ).label("output_tokens_with_energy"),
        real_sum(r.energy_measured_j).label("energy_measured_j"),
        real_sum(r.energy_modeled_j).label("energy_modeled_j"),
        real_sum(r.idle_energy_j).label("idle_energy_j"),
        money_sum(r.cost_api_usd).label("cost_api_usd"),
        money_sum(r.cost_hardware_usd).label("cost_hardware_usd"),
        money_sum(r.cost_energy_usd).label("cost_energy_usd"),
        money_sum(r.cost_idle_usd).label("cost_idle_usd"),
        money_sum(r.cost_total_usd).label("cost_total_usd"),
        real_sum(r.co2e_g).label("co2e_g"),
    ]


def period_totals(start: dt.datetime, end: dt.datetime, tenant: str) -> sa.Select[tuple]:
    """One row of sums (requests, tokens, energy J, cost USD, CO2e g) over ``[start, end)``."""
    return sa.select(*_measures()).where(*_in_range(start, end, tenant))


def cost_drivers(
    dimension: str,
    start: dt.datetime,
    end: dt.datetime,
    previous_start: dt.datetime,
    tenant: str,
    limit: int,
) -> sa.Select[tuple]:
    """The ``limit`` costliest values of ``dimension`` in ``[start, end)``, with last week's cost.

    Args:
        dimension: ``service``, ``workload`` or ``route`` (see :data:`DRIVER_DIMENSIONS`).
        start: Start of the week, UTC.
        end: End of the week (exclusive), UTC.
        previous_start: Start of the week before; its cost comes out as ``cost_prev_usd``.
        tenant: A tenant, or ``"*"`` for all.
        limit: Rows to return.
    """
    r = RollupDaily
    dims = [getattr(r, name).label(name) for name in DRIVER_DIMENSIONS[dimension]]
    this_week = r.bucket_start >= start
    cost = sa.func.coalesce(sa.func.sum(r.cost_total_usd).filter(this_week), 0)
    return (
        sa.select(
            *dims,
            cost.label("cost_usd"),
            sa.func.coalesce(sa.func.sum(r.cost_total_usd).filter(sa.not_(this_week)), 0).label(
                "cost_prev_usd"
            ),
            sa.cast(
                sa.func.coalesce(sa.func.sum(r.requests).filter(this_week), 0), sa.BigInteger
            ).label("requests"),
            sa.cast(
                sa.func.coalesce(
                    sa.func.sum(r.input_tokens + r.output_tokens).filter(this_week), 0
                ),
                sa.BigInteger,
            ).label("tokens"),
        )
        .where(*_in_range(previous_start, end, tenant))
        .group_by(*(getattr(r, name) for name in DRIVER_DIMENSIONS[dimension]))
        .having(cost > 0)
        .order_by(cost.desc(), *(getattr(r, name) for name in DRIVER_DIMENSIONS[dimension]))
        .limit(limit)
    )


def efficiency_by_provider_hardware(
    start: dt.datetime, end: dt.datetime, tenant: str
) -> sa.Select[tuple]:
    """Per provider × hardware model (``''`` for hosted APIs): the sums behind efficiency."""
    r = RollupDaily
    return (
        sa.select(r.provider.label("provider"), r.hardware_model.label("hardware_model"))
        .add_columns(*_measures())
        .where(*_in_range(start, end, tenant))
        .group_by(r.provider, r.hardware_model)
        .order_by(r.provider, r.hardware_model)
    )


def slo_by_workload(start: dt.datetime, end: dt.datetime, tenant: str) -> sa.Select[tuple]:
    """Per workload with an SLO: requests judged, requests meeting it, worst daily p95s (s).

    ``slo_met_requests`` is null in rollup rows of workloads without an SLO; those rows are left
    out. The worst p95s are the largest p95 of any one route on any one day of the week.
    """
    r = RollupDaily
    return (
        sa.select(
            r.workload.label("workload"),
            _int_sum(r.requests).label("requests"),
            _int_sum(r.slo_met_requests).label("slo_met_requests"),
            sa.func.max(r.ttft_p95_s).label("worst_ttft_p95_s"),
            sa.func.max(r.itl_p95_s).label("worst_itl_p95_s"),
        )
        .where(*_in_range(start, end, tenant), r.slo_met_requests.is_not(None))
        .group_by(r.workload)
        .order_by(r.workload)
    )


def daily_series(start: dt.datetime, end: dt.datetime, tenant: str) -> sa.Select[tuple]:
    """Per UTC day: cost parts (USD), tokens and energy (J), for the charts."""
    r = RollupDaily
    return (
        sa.select(r.bucket_start.label("day"))
        .add_columns(*_measures())
        .where(*_in_range(start, end, tenant))
        .group_by(r.bucket_start)
        .order_by(r.bucket_start)
    )


def top_open_recommendations(limit: int) -> sa.Select[tuple]:
    """The ``limit`` open recommendations with the largest monthly saving (USD) first."""
    rec = Recommendation
    columns: Sequence[Any] = [c for c in rec.__table__.columns]
    return (
        sa.select(*columns)
        .where(rec.status == "open")
        .order_by(
            sa.nulls_last(rec.savings_usd_month.desc()),
            rec.recommendation_id,
        )
        .limit(limit)
    )


def week_rollup_rows(start: dt.datetime, end: dt.datetime, tenant: str) -> sa.Select[tuple]:
    """Every ``rollup_daily`` row of the week (the CSV attachment), in a stable order."""
    r = RollupDaily
    columns = [c for c in r.__table__.columns if c.name != "computed_at"]
    return (
        sa.select(*columns)
        .where(*_in_range(start, end, tenant))
        .order_by(
            r.bucket_start,
            r.tenant,
            r.service,
            r.workload,
            r.provider,
            r.hardware_model,
            r.llm_model,
            r.quantization,
        )
    )
