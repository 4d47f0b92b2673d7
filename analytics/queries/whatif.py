"""What the what-if planner reads: workload token mixes and measured self-hosted routes."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from wattledger.analytics.queries.rollups import itl_s
from wattledger.analytics.sqlfuncs import percentile
from wattledger.models import Device, InferenceRequest, RequestCost


def workload_token_mix(workload: str, start: dt.datetime, end: dt.datetime) -> sa.Select[tuple]:
    """Median input and output tokens, and request count, of a workload."""
    r = InferenceRequest
    return sa.select(
        percentile(0.5, r.input_tokens).label("input_tokens"),
        percentile(0.5, r.output_tokens).label("output_tokens"),
        sa.func.count().label("requests"),
    ).where(r.workload == workload, r.start_ts >= start, r.start_ts < end, r.status == "ok")


def measured_routes(start: dt.datetime, end: dt.datetime) -> sa.Select[tuple]:
    """Per self-hosted route: token mix, median TTFT/ITL, direct energy per output token, the
    measured cost per 1M tokens, and the busy seconds and time span its requests cover (the
    planner divides one by the other for the batch it ran at, not by the lookback window)."""
    r, c, d = InferenceRequest, RequestCost, Device
    quant = sa.func.coalesce(r.quantization, "")
    cost = c.cost_api_usd + c.cost_hardware_usd + c.cost_energy_usd + c.cost_idle_usd
    tokens = sa.func.sum(r.input_tokens + r.output_tokens)
    return (
        sa.select(
            d.hardware_model,
            r.llm_model,
            quant.label("quantization"),
            sa.func.count().label("requests"),
            sa.func.count(sa.distinct(r.device_id)).label("devices"),
            percentile(0.5, r.input_tokens).label("input_tokens"),
            percentile(0.5, r.output_tokens).label("output_tokens"),
            percentile(0.5, r.ttft_s).label("ttft_p50_s"),
            percentile(0.5, itl_s()).label("itl_p50_s"),
            (sa.func.sum(c.energy_j) / sa.func.nullif(sa.func.sum(r.output_tokens), 0)).label(
                "direct_j_per_output_token"
            ),
            sa.func.sum(r.duration_s).label("busy_s"),
            sa.func.max(r.duration_s).label("max_duration_s"),
            sa.func.min(r.start_ts).label("first_start_ts"),
            sa.func.max(r.end_ts).label("last_end_ts"),
            (sa.func.sum(cost) * 1_000_000 / sa.func.nullif(tokens, 0)).label("cost_per_mtok_usd"),
        )
        .select_from(
            r.__table__.join(d, d.device_id == r.device_id).join(
                c, sa.and_(c.trace_id == r.trace_id, c.span_id == r.span_id)
            )
        )
        .where(
            r.start_ts >= start,
            r.start_ts < end,
            r.status == "ok",
            c.energy_source.in_(("counter", "power")),
        )
        .group_by(d.hardware_model, r.llm_model, quant)
    )
