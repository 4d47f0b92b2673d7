"""What attribution reads: requests, samples and devices in a time window."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from wattledger.analytics.sqlfuncs import epoch_s
from wattledger.models import Device, InferenceRequest, PowerSample


def requests_in_window(start: dt.datetime, end: dt.datetime) -> sa.Select[tuple]:
    """Requests that started in ``[start, end)``, with times as epoch seconds."""
    r = InferenceRequest
    first_token = sa.func.coalesce(
        epoch_s(r.first_token_ts), epoch_s(r.start_ts) + r.ttft_s, epoch_s(r.start_ts)
    )
    return (
        sa.select(
            r.trace_id,
            r.span_id,
            r.tenant,
            r.device_id,
            r.provider,
            r.llm_model,
            r.quantization,
            epoch_s(r.start_ts).label("start_s"),
            first_token.label("first_token_s"),
            epoch_s(r.end_ts).label("end_s"),
            r.input_tokens,
            r.output_tokens,
        )
        .where(r.start_ts >= start, r.start_ts < end)
        .order_by(r.device_id, r.start_ts)
    )


def samples_in_window(start: dt.datetime, end: dt.datetime) -> sa.Select[tuple]:
    """Power samples in ``[start, end]``, one source per device, as epoch seconds."""
    s = PowerSample
    return (
        sa.select(
            s.device_id,
            s.source,
            s.method,
            epoch_s(s.ts).label("t_s"),
            s.power_w,
            s.energy_counter_j,
            s.utilization_ratio,
        )
        .where(s.ts >= start, s.ts <= end)
        .order_by(s.device_id, s.source, s.ts)
    )


def devices() -> sa.Select[tuple]:
    """Every device with what attribution and costing need."""
    d = Device
    return sa.select(d.device_id, d.hardware_model, d.power_source, d.idle_power_w, d.tdp_w, d.site)
