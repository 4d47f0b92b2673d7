"""A two-week fleet whose report figures can be worked out on paper.

Week 2026-W47 (Mon 16 – Sun 22 Nov 2026 UTC) and the week before, built with the real
analytics and recommendation jobs:

- tenant ``acme``: 400 ``chat`` requests on OpenAI (500 in + 200 out tokens at $1/$2 per 1M =
  $0.0009 each, $0.36) this week and 200 the week before ($0.18); 100 ``search`` requests on
  ``slowco`` ($0.05/$0.10 → $0.000045 each, $0.0045) whose 0.5 s TTFT misses a 0.25 s SLO;
  4 ``batch`` requests on a measured H100 (energy counter) at $3/device-hour and $0.10/kWh ×
  PUE 1.2.
- tenant ``beta``: 300 ``chat`` requests on Groq ($0.20/$0.40 → $0.00018 each, $0.054) with
  modeled energy 0.5 J per output token (30,000 J).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from sqlalchemy import Engine

from tests.analytics.fleet import T0, Req, add_device, add_price, add_requests, add_samples
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.jobs.recommend import run_recommendations
from wattledger.analytics.reports.weekly import Week
from wattledger.analytics.settings import (
    AnalyticsSettings,
    RecommendSettings,
    SiteSettings,
    SloSettings,
)

WEEK = Week.parse("2026-W47")
assert WEEK.start == T0.replace(hour=0)
NOW = WEEK.end + dt.timedelta(hours=7)  # Monday 07:00 UTC after the week
SETTINGS = AnalyticsSettings(
    slos={
        "chat": SloSettings(ttft_p95_s=2.0, itl_p95_s=0.1),
        "search": SloSettings(ttft_p95_s=0.25),
    },
    recommend=RecommendSettings(lookback_days=7, min_requests=100, bootstrap_samples=200),
    sites={"*": SiteSettings(usd_per_kwh=Decimal("0.10"), pue=1.2)},
    hardware_usd_per_hour={"H100-SXM": Decimal("3.00")},
    modeled_j_per_output_token={"groq": 0.5},
)
GPU_BUSY = [(600.0, 900.0), (1200.0, 1500.0), (4000.0, 4300.0), (5000.0, 5600.0)]
GPU_SECONDS = 7200

# Exact costs in US dollars.
OPENAI_EACH = Decimal("0.0009")
GROQ_EACH = Decimal("0.00018")
SLOWCO_EACH = Decimal("0.000045")


def hosted(
    provider: str,
    n: int,
    ttft: float,
    first_span: int,
    *,
    seed: int,
    tenant: str,
    workload: str = "chat",
    offset_s: float = 0.0,
) -> list[Req]:
    """``n`` requests spread over 48 h from T0 + ``offset_s``, 500 in + 200 out tokens."""
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.uniform(0, 48 * 3600 - 60, n)) + offset_s
    reqs = []
    for i, s in enumerate(starts):
        t = ttft * rng.uniform(0.8, 1.2)
        reqs.append(
            Req(
                first_span + i,
                float(s),
                t,
                float(s) + t + 199 * 0.02,
                500,
                200,
                device_id=None,
                provider=provider,
                llm_model="m",
                tenant=tenant,
                workload=workload,
            )
        )
    return reqs


def build(engine: Engine) -> float:
    """Load the fleet, run analytics and recommendations; return the GPU's true energy (J)."""
    add_price(engine, "openai", "m", "1.00", "2.00")
    add_price(engine, "groq", "m", "0.20", "0.40")
    add_price(engine, "slowco", "m", "0.05", "0.10")
    add_device(engine, "gpu-a")
    gpu_j = add_samples(engine, "gpu-a", GPU_BUSY, seconds=GPU_SECONDS)
    week_s = 7 * 86400.0
    add_requests(
        engine,
        hosted("openai", 400, 0.5, 1, seed=1, tenant="acme")
        + hosted("openai", 200, 0.5, 1_000, seed=2, tenant="acme", offset_s=-week_s)
        + hosted("slowco", 100, 0.5, 2_000, seed=3, tenant="acme", workload="search")
        + hosted("groq", 300, 0.3, 3_000, seed=4, tenant="beta")
        + [
            Req(9_000 + i, a, 1.0, b, 1000, 2000, workload="batch", llm_model="llama-3.1-8b")
            for i, (a, b) in enumerate(GPU_BUSY)
        ],
    )
    run_analytics(engine, SETTINGS, now=WEEK.end)
    run_recommendations(engine, SETTINGS, now=WEEK.end)
    return gpu_j
