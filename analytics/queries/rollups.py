"""Rollups: requests, tokens, energy, cost and latency per time bucket and route.

Dimensions: service × tenant × workload × provider × hardware × model × quantization (``''``
where not reported). ITL per request is its mean inter-token gap when the SDK recorded one, else
the OpenTelemetry ``time_per_output_token`` definition ``(duration − TTFT) / (output − 1)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

import sqlalchemy as sa

from wattledger.analytics.settings import SloSettings
from wattledger.analytics.sqlfuncs import percentile, trunc
from wattledger.models import Device, InferenceRequest, Money, RequestCost

BUCKET_S = {"hour": 3600.0, "day": 86400.0}


def itl_s() -> sa.ColumnElement[float]:
    """Per-request inter-token latency, seconds (see module docstring)."""
    r = InferenceRequest
    tpot = (r.duration_s - r.ttft_s) / sa.func.nullif(r.output_tokens - 1, 0)
    return sa.func.coalesce(r.itl_mean_s, tpot)


def slo_met(slos: Mapping[str, SloSettings]) -> sa.ColumnElement[int | None]:
    """Requests meeting their workload's SLO; NULL for workloads without one.

    A request without a recorded TTFT is judged by its duration (its first token arrived no
    later than its end); one without ITL passes the ITL objective.
    """
    r = InferenceRequest
    if not slos:
        return sa.null()
    conds = []
    for workload, slo in sorted(slos.items()):
        parts = [r.workload == workload]
        if slo.ttft_p95_s is not None:
            parts.append(sa.func.coalesce(r.ttft_s, r.duration_s) <= slo.ttft_p95_s)
        if slo.itl_p95_s is not None:
            parts.append(sa.func.coalesce(itl_s(), 0.0) <= slo.itl_p95_s)
        conds.append(sa.and_(*parts))
    met = sa.func.sum(sa.case((sa.or_(*conds), 1), else_=0))
    has_slo = r.workload.in_(sorted(slos))
    return sa.case((sa.func.max(sa.case((has_slo, 1), else_=0)) == 1, met), else_=sa.null())


def rollup_rows(
    grain: str, start: dt.datetime, end: dt.datetime, slos: Mapping[str, SloSettings]
) -> sa.Select[tuple]:
    """Rollup rows for requests that started in ``[start, end)`` at ``grain`` (hour or day)."""
    r, c, d = InferenceRequest, RequestCost, Device
    bucket = trunc(grain, r.start_ts).label("bucket_start")
    dims = [
        bucket,
        r.service.label("service"),
        r.tenant.label("tenant"),
        sa.func.coalesce(r.workload, "").label("workload"),
        r.provider.label("provider"),
        sa.func.coalesce(d.hardware_model, "").label("hardware_model"),
        r.llm_model.label("llm_model"),
        sa.func.coalesce(r.quantization, "").label("quantization"),
    ]
    measured = c.energy_source.in_(("counter", "power"))
    energy_all = sa.func.coalesce(c.energy_j, 0.0) + c.idle_share_j
    tokens_in, tokens_out = sa.func.sum(r.input_tokens), sa.func.sum(r.output_tokens)
    total = sa.func.sum(c.cost_total_usd)
    mtok = sa.literal(Decimal(1_000_000), sa.Numeric(8, 0))

    def per_mtok(tokens: sa.ColumnElement) -> sa.ColumnElement:
        return sa.cast(total * mtok / sa.func.nullif(tokens, 0), Money)

    any_energy = sa.func.count(c.energy_j) > 0
    return (
        sa.select(
            *dims,
            sa.func.count().label("requests"),
            sa.func.count().filter(r.status == "error").label("error_requests"),
            sa.func.count().filter(c.price_status == "unpriced").label("unpriced_requests"),
            tokens_in.label("input_tokens"),
            sa.func.sum(r.cached_input_tokens).label("cached_input_tokens"),
            tokens_out.label("output_tokens"),
            sa.func.coalesce(sa.func.sum(c.energy_j).filter(measured), 0.0).label(
                "energy_measured_j"
            ),
            sa.func.coalesce(
                sa.func.sum(c.energy_j).filter(c.energy_source == "modeled"), 0.0
            ).label("energy_modeled_j"),
            sa.func.sum(c.idle_share_j).label("idle_energy_j"),
            sa.func.sum(c.energy_j_low).label("energy_j_low"),
            sa.func.sum(c.energy_j_high).label("energy_j_high"),
            sa.func.sum(c.cost_api_usd).label("cost_api_usd"),
            sa.func.sum(c.cost_hardware_usd).label("cost_hardware_usd"),
            sa.func.sum(c.cost_energy_usd).label("cost_energy_usd"),
            sa.func.sum(c.cost_idle_usd).label("cost_idle_usd"),
            total.label("cost_total_usd"),
            per_mtok(tokens_in).label("cost_per_mtok_input_usd"),
            per_mtok(tokens_out).label("cost_per_mtok_output_usd"),
            per_mtok(tokens_in + tokens_out).label("cost_per_mtok_blended_usd"),
            sa.case(
                (
                    any_energy,
                    sa.cast(tokens_out, sa.Double) / sa.func.nullif(sa.func.sum(energy_all), 0.0),
                ),
                else_=sa.null(),
            ).label("tokens_per_j"),
            sa.func.coalesce(sa.func.sum(c.co2e_g), 0.0).label("co2e_g"),
            percentile(0.5, r.ttft_s).label("ttft_p50_s"),
            percentile(0.95, r.ttft_s).label("ttft_p95_s"),
            percentile(0.99, r.ttft_s).label("ttft_p99_s"),
            percentile(0.5, itl_s()).label("itl_p50_s"),
            percentile(0.95, itl_s()).label("itl_p95_s"),
            percentile(0.99, itl_s()).label("itl_p99_s"),
            sa.func.avg(sa.cast(r.batch_size, sa.Double)).label("mean_batch_size"),
            (sa.cast(tokens_out, sa.Double) / BUCKET_S[grain]).label("output_tokens_per_s"),
            slo_met(slos).label("slo_met_requests"),
        )
        .select_from(
            r.__table__.join(
                c, sa.and_(c.trace_id == r.trace_id, c.span_id == r.span_id)
            ).outerjoin(d, d.device_id == r.device_id)
        )
        .where(r.start_ts >= start, r.start_ts < end)
        .group_by(*(dim.element if hasattr(dim, "element") else dim for dim in dims))
    )
