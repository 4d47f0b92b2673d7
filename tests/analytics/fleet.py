"""A tiny hand-built fleet whose every joule and dollar can be worked out on paper."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
from sqlalchemy import Engine

from wattledger.models import Device, InferenceRequest, PowerSample, Price, session_factory
from wattledger.models.bulk import insert_arrow

T0 = dt.datetime(2026, 11, 16, 10, 0, tzinfo=dt.UTC)
IDLE_W = 100.0
BUSY_W = 400.0


@dataclass
class Req:
    """A request on the hand-built fleet: offsets in seconds from T0."""

    span: int
    start_s: float
    ttft_s: float | None
    end_s: float
    input_tokens: int
    output_tokens: int
    device_id: str | None = "gpu-a"
    provider: str = "vllm"
    # Not in the simulator catalog: attribution uses the configured defaults, so every joule
    # here can be worked out on paper (catalog routes get roofline weights; see test_weights).
    llm_model: str = "hand-llm"
    tenant: str = "acme"
    workload: str = "chat"
    cached_input_tokens: int = 0

    def row(self) -> InferenceRequest:
        start = T0 + dt.timedelta(seconds=self.start_s)
        return InferenceRequest(
            trace_id=f"{self.span:032x}",
            span_id=f"{self.span:016x}",
            tenant=self.tenant,
            service="chat-api",
            workload=self.workload,
            provider=self.provider,
            llm_model=self.llm_model,
            device_id=self.device_id,
            start_ts=start,
            end_ts=T0 + dt.timedelta(seconds=self.end_s),
            duration_s=self.end_s - self.start_s,
            ttft_s=self.ttft_s,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_input_tokens=self.cached_input_tokens,
        )


def add_device(
    engine: Engine,
    device_id: str = "gpu-a",
    *,
    idle_w: float | None = IDLE_W,
    site: str | None = None,
    hourly: Decimal | None = None,
) -> None:
    with session_factory(engine).begin() as s:
        s.add(
            Device(
                device_id=device_id,
                vendor="nvidia",
                hardware_model="H100-SXM",
                power_source="nvml",
                idle_power_w=idle_w,
                site=site,
                hourly_cost_usd=hourly,
            )
        )


def add_samples(
    engine: Engine,
    device_id: str,
    busy: list[tuple[float, float]],
    *,
    seconds: int = 7200,
    counter: bool = True,
    step_s: float = 1.0,
) -> float:
    """1 Hz samples over ``seconds``: BUSY_W inside busy intervals, IDLE_W outside.

    Power is piecewise constant between samples (the counter integrates it exactly).
    Returns the device's true energy over the whole range, joules.
    """
    n = int(seconds / step_s) + 1
    ts, power, energy = [], [], []
    total = 0.0
    for i in range(n):
        t = i * step_s
        p = BUSY_W if any(a <= t < b for a, b in busy) else IDLE_W
        if i:
            total += 0.5 * (power[-1] + p) * step_s
        ts.append(T0 + dt.timedelta(seconds=t))
        power.append(p)
        energy.append(total)
    table = pa.table(
        {
            "device_id": [device_id] * n,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "source": ["nvml"] * n,
            "tenant": ["acme"] * n,
            "method": ["counter" if counter else "power"] * n,
            "power_w": power,
            "energy_counter_j": energy if counter else [None] * n,
        }
    )
    with engine.begin() as conn:
        insert_arrow(conn, PowerSample.__table__, table)
    return total


def add_requests(engine: Engine, reqs: list[Req]) -> None:
    with session_factory(engine).begin() as s:
        s.add_all([r.row() for r in reqs])


def add_price(
    engine: Engine,
    provider: str,
    model: str,
    inp: str,
    out: str,
    *,
    origin: str = "list",
    tenant: str = "*",
    cached: str | None = None,
    valid_from: dt.datetime = dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    valid_to: dt.datetime | None = None,
) -> None:
    with session_factory(engine).begin() as s:
        s.add(
            Price(
                provider=provider,
                llm_model=model,
                origin=origin,
                tenant=tenant,
                valid_from=valid_from,
                valid_to=valid_to,
                input_per_mtok_usd=Decimal(inp),
                output_per_mtok_usd=Decimal(out),
                cached_input_per_mtok_usd=Decimal(cached) if cached else None,
            )
        )
