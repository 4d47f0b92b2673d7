"""What recommendations read: per-route hourly totals and per-request latency samples."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from wattledger.analytics.queries.rollups import itl_s
from wattledger.models import Device, InferenceRequest, RollupHourly


def route_hours(start: dt.datetime, end: dt.datetime) -> sa.Select[tuple]:
    """Per workload × route × hour: requests, tokens, fully-loaded cost, energy, CO2e."""
    h = RollupHourly
    return (
        sa.select(
            h.workload,
            h.provider,
            h.hardware_model,
            h.llm_model,
            h.quantization,
            h.bucket_start,
            sa.func.sum(h.requests).label("requests"),
            sa.func.sum(h.input_tokens + h.output_tokens).label("tokens"),
            sa.func.sum(h.output_tokens).label("output_tokens"),
            sa.cast(sa.func.sum(h.cost_total_usd), sa.Double).label("cost_usd"),
            sa.func.sum(h.energy_measured_j + h.energy_modeled_j + h.idle_energy_j).label(
                "energy_j"
            ),
            sa.func.sum(h.energy_modeled_j).label("modeled_j"),
            sa.func.sum(h.co2e_g).label("co2e_g"),
            sa.func.sum(h.unpriced_requests).label("unpriced_requests"),
        )
        .where(h.bucket_start >= start, h.bucket_start < end)
        .group_by(
            h.workload, h.provider, h.hardware_model, h.llm_model, h.quantization, h.bucket_start
        )
        .order_by(
            h.workload, h.provider, h.hardware_model, h.llm_model, h.quantization, h.bucket_start
        )
    )


def latency_samples(start: dt.datetime, end: dt.datetime, per_route: int) -> sa.Select[tuple]:
    """Up to ``per_route`` requests per workload × route: TTFT, ITL (s) and quality score.

    The sample is deterministic (lowest span ids; span ids are random, so it is unbiased).
    """
    r, d = InferenceRequest, Device
    hardware = sa.func.coalesce(d.hardware_model, "")
    quant = sa.func.coalesce(r.quantization, "")
    workload = sa.func.coalesce(r.workload, "")
    ranked = (
        sa.select(
            workload.label("workload"),
            r.provider.label("provider"),
            hardware.label("hardware_model"),
            r.llm_model.label("llm_model"),
            quant.label("quantization"),
            sa.func.coalesce(r.ttft_s, r.duration_s).label("ttft_s"),
            itl_s().label("itl_s"),
            r.quality_score.label("quality_score"),
            sa.func.row_number()
            .over(
                partition_by=(workload, r.provider, hardware, r.llm_model, quant),
                order_by=(r.span_id, r.trace_id),
            )
            .label("rn"),
        )
        .select_from(r.__table__.outerjoin(d, d.device_id == r.device_id))
        .where(r.start_ts >= start, r.start_ts < end, r.status == "ok")
        .subquery()
    )
    return sa.select(*(c for c in ranked.c if c.name != "rn")).where(ranked.c.rn <= per_route)
