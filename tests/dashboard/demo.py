"""A small but complete demo warehouse for dashboard tests, built by the real analytics.

Fifteen days of traffic: two hosted routes with list prices (OpenAI, Groq), one hosted route
whose energy is modeled (Cerebras), and a self-hosted vLLM pool of two H100s with energy
counters (measured). Analytics and recommendations run for real; the mart snapshot the
dashboard reads is then published. Report runs are inserted as the weekly-report job would
leave them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine

from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.jobs.recommend import run_recommendations
from wattledger.analytics.marts import publish_snapshot
from wattledger.analytics.settings import (
    AnalyticsSettings,
    RecommendSettings,
    SiteSettings,
    SloSettings,
)
from wattledger.migrations import runner
from wattledger.models import (
    Device,
    InferenceRequest,
    PowerSample,
    Price,
    ReportRun,
    make_engine,
    session_factory,
)
from wattledger.models.bulk import insert_arrow

START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
DAYS = 15
NOW = START + dt.timedelta(days=DAYS)
SAMPLE_STEP_S = 20
SETTINGS = AnalyticsSettings(
    slos={"chat": SloSettings(ttft_p95_s=2.0, itl_p95_s=0.1)},
    recommend=RecommendSettings(lookback_days=7, min_requests=100, bootstrap_samples=100),
    sites={"*": SiteSettings(usd_per_kwh=Decimal("0.12"), pue=1.3, grid_gco2e_per_kwh=400)},
    hardware_usd_per_hour={"H100-SXM": Decimal("2.50")},
    modeled_j_per_output_token={"cerebras": 0.4},
)
#: (service, workload, provider, model, device ids, requests, ttft_s, itl_s, input, output)
ROUTES = (
    ("chat-api", "chat", "openai", "gpt-4o-mini", None, 1400, 0.5, 0.02, 800, 250),
    ("chat-api", "chat", "groq", "llama-3.1-8b-instant", None, 700, 0.25, 0.008, 800, 250),
    ("search", "rag", "cerebras", "llama-3.3-70b", None, 400, 0.3, 0.004, 3000, 150),
    ("summarizer", "batch", "vllm", "llama-3.1-8b", ("gpu-0", "gpu-1"), 900, 0.9, 0.03, 2000, 400),
)


def _requests(rng: np.random.Generator) -> pa.Table:
    cols: dict[str, list] = {k: [] for k in ("trace_id", "span_id", "tenant", "service")}
    for k in ("workload", "provider", "llm_model", "device_id", "start_ts", "end_ts"):
        cols[k] = []
    for k in ("duration_s", "ttft_s", "itl_mean_s", "input_tokens", "output_tokens", "status"):
        cols[k] = []
    span = 0
    for service, workload, provider, model, devices, n, ttft, itl, inp, out in ROUTES:
        starts = np.sort(rng.uniform(0, DAYS * 86400 - 600, n))
        for i, s in enumerate(starts):
            span += 1
            t = ttft * rng.uniform(0.7, 1.4)
            gap = itl * rng.uniform(0.8, 1.2)
            o = int(out * rng.uniform(0.5, 1.5))
            dur = t + (o - 1) * gap
            cols["trace_id"].append(f"{span:032x}")
            cols["span_id"].append(f"{span:016x}")
            cols["tenant"].append("acme" if i % 4 else "globex")
            cols["service"].append(service)
            cols["workload"].append(workload)
            cols["provider"].append(provider)
            cols["llm_model"].append(model)
            cols["device_id"].append(devices[i % len(devices)] if devices else None)
            cols["start_ts"].append(START + dt.timedelta(seconds=float(s)))
            cols["end_ts"].append(START + dt.timedelta(seconds=float(s) + dur))
            cols["duration_s"].append(dur)
            cols["ttft_s"].append(t)
            cols["itl_mean_s"].append(gap)
            cols["input_tokens"].append(int(inp * rng.uniform(0.5, 1.5)))
            cols["output_tokens"].append(o)
            cols["status"].append("error" if span % 97 == 0 else "ok")
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(cols)
    for name in ("start_ts", "end_ts"):
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(cols[name], ts))
    n = table.num_rows
    return table.append_column("cached_input_tokens", pa.array([0] * n, pa.int64())).append_column(
        "ingested_at", pa.array([NOW] * n, ts)
    )


def _samples(device_id: str, busy: list[tuple[float, float]], rng: np.random.Generator) -> pa.Table:
    """Counter samples: 80 W idle, ~450 W while a request runs on the device (offsets in s)."""
    t = np.arange(0, DAYS * 86400 + 1, SAMPLE_STEP_S, dtype=float)
    active = np.zeros_like(t, dtype=bool)
    for a, b in busy:
        active[int(a // SAMPLE_STEP_S) : int(b // SAMPLE_STEP_S) + 1] = True
    power = np.where(active, 450.0, 80.0) + rng.normal(0, 3, t.size)
    energy = np.concatenate([[0.0], np.cumsum(0.5 * (power[1:] + power[:-1]) * SAMPLE_STEP_S)])
    n = t.size
    ts = [START + dt.timedelta(seconds=float(x)) for x in t]
    return pa.table(
        {
            "device_id": [device_id] * n,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "source": ["nvml"] * n,
            "tenant": ["acme"] * n,
            "method": ["counter"] * n,
            "power_w": power,
            "energy_counter_j": energy,
            "utilization_ratio": np.where(active, 0.85, 0.0),
        }
    )


def build_demo_warehouse(directory: Path) -> tuple[str, Path]:
    """Build the demo warehouse in ``directory``; return its URL and the published snapshot.

    The snapshot is ``directory / "marts.duckdb"`` (the dashboard's default location when
    ``directory`` is the data directory).
    """
    url = f"duckdb:///{directory / 'wattledger.duckdb'}"
    runner.upgrade(url)
    engine = make_engine(url)
    rng = np.random.default_rng(7)
    try:
        _fill(engine, rng)
        run_analytics(engine, SETTINGS, now=NOW)
        run_recommendations(engine, SETTINGS, now=NOW)
        snapshot = publish_snapshot(engine, directory / "marts.duckdb")
    finally:
        engine.dispose()
    return url, snapshot


def _fill(engine: Engine, rng: np.random.Generator) -> None:
    requests = _requests(rng)
    with session_factory(engine).begin() as s:
        for i in range(2):
            s.add(
                Device(
                    device_id=f"gpu-{i}",
                    vendor="nvidia",
                    hardware_model="H100-SXM",
                    node="node-a",
                    device_index=i,
                    power_source="nvml",
                    tdp_w=700.0,
                    idle_power_w=80.0,
                )
            )
        for provider, model, inp, out in (
            ("openai", "gpt-4o-mini", "0.15", "0.60"),
            ("groq", "llama-3.1-8b-instant", "0.05", "0.08"),
            ("cerebras", "llama-3.3-70b", "0.85", "1.20"),
        ):
            s.add(
                Price(
                    provider=provider,
                    llm_model=model,
                    origin="list",
                    tenant="*",
                    valid_from=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                    input_per_mtok_usd=Decimal(inp),
                    output_per_mtok_usd=Decimal(out),
                )
            )
        s.add_all(
            [
                ReportRun(
                    iso_week="2026-W46",
                    recipients_key="a" * 64,
                    recipients="finops@example.com",
                    status="sent",
                    attempts=1,
                    message_id="<w46@wattledger>",
                    sent_at=dt.datetime(2026, 11, 16, 8, tzinfo=dt.UTC),
                ),
                ReportRun(
                    iso_week="2026-W45",
                    recipients_key="a" * 64,
                    recipients="finops@example.com",
                    status="failed",
                    attempts=3,
                    last_error="SMTP 451: try again later",
                ),
            ]
        )
    with engine.begin() as conn:
        insert_arrow(conn, InferenceRequest.__table__, requests)
        rows = requests.select(["device_id", "start_ts", "end_ts"]).to_pylist()
        for device in ("gpu-0", "gpu-1"):
            busy = [
                ((r["start_ts"] - START).total_seconds(), (r["end_ts"] - START).total_seconds())
                for r in rows
                if r["device_id"] == device
            ]
            insert_arrow(conn, PowerSample.__table__, _samples(device, busy, rng))
