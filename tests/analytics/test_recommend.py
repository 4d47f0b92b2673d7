"""Recommendation scenarios with a known right answer, on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pytest
import sqlalchemy as sa

from tests.analytics.fleet import T0, Req, add_device, add_price, add_requests, add_samples
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.jobs.recommend import run_recommendations
from wattledger.analytics.settings import (
    AnalyticsSettings,
    RecommendSettings,
    SiteSettings,
    SloSettings,
)
from wattledger.models import Recommendation, make_engine

HOURS = 48
NOW = T0 + dt.timedelta(hours=HOURS)
SETTINGS = AnalyticsSettings(
    slos={"chat": SloSettings(ttft_p95_s=2.0, itl_p95_s=0.1)},
    recommend=RecommendSettings(lookback_days=2, min_requests=100, bootstrap_samples=200),
    sites={"*": SiteSettings(usd_per_kwh=Decimal("0.10"), pue=1.2)},
    hardware_usd_per_hour={"H100-SXM": Decimal("3.00")},
)


def hosted_route(
    provider: str,
    model: str,
    n: int,
    ttft: float,
    first_span: int,
    *,
    seed: int,
    out_tokens: int = 200,
) -> list[Req]:
    """``n`` chat requests spread over 48 h on a hosted route, TTFT jittered ±20 %."""
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.uniform(0, HOURS * 3600 - 60, n))
    reqs = []
    for i, s in enumerate(starts):
        t = ttft * rng.uniform(0.8, 1.2)
        dur = t + (out_tokens - 1) * 0.02
        reqs.append(
            Req(
                first_span + i,
                float(s),
                t,
                float(s) + dur,
                500,
                out_tokens,
                device_id=None,
                provider=provider,
                llm_model=model,
            )
        )
    return reqs


@pytest.fixture
def engine(migrated_url: str):
    e = make_engine(migrated_url)
    add_price(e, "openai", "m", "1.00", "2.00")
    add_price(e, "groq", "m", "0.20", "0.40")
    add_price(e, "slowco", "m", "0.05", "0.10")
    add_price(e, "thin", "m", "0.01", "0.01")
    add_requests(
        e,
        hosted_route("openai", "m", 400, 0.5, 1, seed=1)
        + hosted_route("groq", "m", 300, 0.3, 10_000, seed=2)
        + hosted_route("slowco", "m", 300, 3.0, 20_000, seed=3)
        + hosted_route("thin", "m", 20, 0.2, 30_000, seed=4),
    )
    run_analytics(e, SETTINGS, now=NOW)
    yield e
    e.dispose()


def test_cheaper_slo_safe_route_is_recommended_with_savings_near_truth(engine) -> None:
    result = run_recommendations(engine, SETTINGS, now=NOW)
    moves = {(r.from_route, r.to_route): r for r in result.recommendations if r.kind == "reroute"}
    rec = moves[("openai/hosted/m", "groq/hosted/m")]
    # Truth: per request 500 in + 200 out; openai $0.0009, groq $0.00018 → $0.00072 saved.
    true_month = Decimal("0.00072") * 400 / 2 * 30
    assert rec.savings_usd_month_low <= true_month <= rec.savings_usd_month_high
    assert abs(rec.savings_usd_month - true_month) / true_month < Decimal("0.02")
    assert rec.share_to_move == 1.0 and rec.basis == "measured"
    assert rec.ttft_p95_after_s < 2.0 and rec.samples_from == 400 and rec.samples_to == 300
    assert "groq/hosted/m" in rec.explanation and "saving $" in rec.explanation


def test_slo_violating_cheaper_route_is_never_recommended(engine) -> None:
    result = run_recommendations(engine, SETTINGS, now=NOW)
    assert all(r.to_route != "slowco/hosted/m" for r in result.recommendations)
    reasons = [
        r.reason
        for r in result.rejected
        if r.to_route == "slowco/hosted/m" and r.from_route != "thin/hosted/m"
    ]
    assert len(reasons) == 2
    assert all("TTFT SLO at its upper confidence bound" in x for x in reasons)


def test_thin_data_gives_no_recommendation_and_says_why(engine) -> None:
    result = run_recommendations(engine, SETTINGS, now=NOW)
    assert all("thin/hosted/m" not in (r.from_route, r.to_route) for r in result.recommendations)
    reasons = [r.reason for r in result.rejected if r.to_route == "thin/hosted/m"]
    assert reasons and all("too few samples on thin/hosted/m: 20 < 100" in x for x in reasons)


def test_no_slo_means_no_move(engine) -> None:
    settings = SETTINGS.model_copy(update={"slos": {}})
    result = run_recommendations(engine, settings, now=NOW)
    assert not [r for r in result.recommendations if r.kind == "reroute"]
    assert any("has no SLO" in r.reason for r in result.rejected)


def test_recommendations_are_stable_across_runs(engine) -> None:
    first = run_recommendations(engine, SETTINGS, now=NOW)
    second = run_recommendations(engine, SETTINGS, now=NOW)

    def key(rs):
        return [
            (r.recommendation_id, r.savings_usd_month, r.explanation) for r in rs.recommendations
        ]

    assert key(first) == key(second)
    with engine.connect() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(Recommendation)).scalar()
    assert n == len(first.recommendations)


def test_applied_move_is_recognised(engine) -> None:
    first = run_recommendations(engine, SETTINGS, now=NOW)
    assert any(r.from_route == "openai/hosted/m" for r in first.recommendations)
    # Traffic moves: the next two days openai gets nothing, groq gets it all.
    later = NOW + dt.timedelta(hours=HOURS)
    moved = hosted_route("groq", "m", 700, 0.3, 40_000, seed=5)
    for r in moved:
        r.start_s += HOURS * 3600
        r.end_s += HOURS * 3600
    add_requests(engine, moved)
    run_analytics(engine, SETTINGS, now=later)
    run_recommendations(engine, SETTINGS, now=later)
    with engine.connect() as c:
        row = c.execute(
            sa.select(Recommendation.status, Recommendation.realised_savings_usd_month).where(
                Recommendation.from_route == "openai/hosted/m"
            )
        ).one()
    assert row.status == "applied"
    assert row.realised_savings_usd_month > 0


def test_idle_heavy_pool_gets_consolidate(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    for i in range(4):
        add_device(engine, f"gpu-{i}")
        add_samples(engine, f"gpu-{i}", [(600, 900)], seconds=7200)
    add_requests(
        engine, [Req(100 + i, 600, 1, 900, 100, 100, device_id=f"gpu-{i}") for i in range(4)]
    )
    run_analytics(engine, SETTINGS, now=T0 + dt.timedelta(hours=2))
    result = run_recommendations(engine, SETTINGS, now=T0 + dt.timedelta(hours=2))
    (rec,) = [r for r in result.recommendations if r.kind == "consolidate"]
    assert rec.from_route == "pool/H100-SXM" and rec.to_route == "pool/H100-SXM × 1"
    # 3 of 4 devices removable; each idles ~6900 s at 100 W and $3/h over the 2 hours.
    per_device = (6900 * 100 * 0.10 * 1.2 / 3.6e6 + 6900 * 3.0 / 3600) * (30 / 2)
    assert float(rec.savings_usd_month) == pytest.approx(3 * per_device, rel=0.05)
    engine.dispose()


def test_ttft_itl_tradeoff_gets_split_prefill_decode(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    settings = SETTINGS.model_copy(
        update={
            "recommend": RecommendSettings(lookback_days=1, min_requests=30, bootstrap_samples=200)
        }
    )
    reqs = []
    for hw, ttft, itl, base in (("H100-SXM", 0.2, 0.05, 0), ("MI300X", 0.8, 0.015, 1000)):
        add_device(engine, hw.lower())
        from wattledger.models import Device, session_factory

        with session_factory(engine).begin() as s:
            s.get(Device, hw.lower()).hardware_model = hw
        add_samples(engine, hw.lower(), [(0, 3600)], seconds=3600)
        for i in range(40):
            start = 80.0 * i
            reqs.append(
                Req(
                    base + i + 1,
                    start,
                    ttft * (1 + 0.01 * (i % 5)),
                    start + ttft + 100 * itl,
                    300,
                    101,
                    device_id=hw.lower(),
                )
            )
    add_requests(engine, reqs)
    run_analytics(engine, settings, now=T0 + dt.timedelta(hours=1))
    result = run_recommendations(engine, settings, now=T0 + dt.timedelta(hours=1))
    (rec,) = [r for r in result.recommendations if r.kind == "split-prefill-decode"]
    assert rec.to_route == "prefill:vllm/H100-SXM/hand-llm + decode:vllm/MI300X/hand-llm"
    assert rec.ttft_p95_after_s < 0.25 and rec.itl_p95_after_s < 0.02
    engine.dispose()


def test_cli_recommend_json_and_explain(engine, migrated_url: str, tmp_path) -> None:
    engine.dispose()  # DuckDB: one process writes the file; let the CLI open it
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        "[analytics.slos.chat]\nttft_p95_s = 2.0\nitl_p95_s = 0.1\n"
        "[analytics.recommend]\nlookback_days = 2\nmin_requests = 100\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattledger",
            "--config",
            str(cfg),
            "--database-url",
            migrated_url,
            "recommend",
            "--json",
            "--explain",
            "--at",
            NOW.isoformat(),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert any(x["to_route"] == "groq/hosted/m" for x in data["recommendations"])
    assert any("too few samples" in x["reason"] for x in data["rejected"])
