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
    """Per self-hosted route: token mix, median TTFT/ITL, direct energy per output token and
    the mean number of requests in flight per device (the batch it ran at)."""
    r, c, d = InferenceRequest, RequestCost, Device
    quant = sa.func.coalesce(r.quantization, "")
    window_s = (end - start).total_seconds()
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
            (sa.func.sum(r.duration_s) / window_s).label("requests_in_flight"),
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
