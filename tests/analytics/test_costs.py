"""Analytics on the warehouse, both backends: hand-computed energy and costs, idempotent runs,
late data, unpriced requests, contract rates and rollups."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.analytics.fleet import (
    BUSY_W,
    IDLE_W,
    T0,
    Req,
    add_device,
    add_price,
    add_requests,
    add_samples,
)
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.settings import AnalyticsSettings, SiteSettings, SloSettings
from wattledger.models import (
    DeviceEnergyHourly,
    RequestCost,
    RollupDaily,
    RollupHourly,
    make_engine,
)

HOUR = dt.timedelta(hours=1)
SETTINGS = AnalyticsSettings(
    sites={"*": SiteSettings(usd_per_kwh=Decimal("0.10"), pue=1.2, grid_gco2e_per_kwh=400.0)},
    hardware_usd_per_hour={"H100-SXM": Decimal("3.60")},
    slos={"chat": SloSettings(ttft_p95_s=5.0, itl_p95_s=0.5)},
)


@pytest.fixture
def engine(migrated_url: str):
    e = make_engine(migrated_url)
    yield e
    e.dispose()


def costs(engine: Engine) -> dict[str, dict]:
    with engine.connect() as c:
        return {r["span_id"]: dict(r) for r in c.execute(sa.select(RequestCost)).mappings()}


def test_self_hosted_request_hand_computed(engine: Engine) -> None:
    """One request alone on a GPU: it gets all energy above idle, and the hour's idle."""
    add_device(engine)
    add_samples(engine, "gpu-a", [(100, 200)], seconds=3600)
    add_requests(engine, [Req(1, 100.0, 2.0, 200.0, 1000, 500)])
    run_analytics(engine, SETTINGS, now=T0 + HOUR)
    c = costs(engine)[f"{1:016x}"]
    # Busy 400 W from t=100 to 200; samples at 1 Hz with trapezoids at the two edges.
    measured_in_request = 99 * BUSY_W + 0.5 * (BUSY_W + IDLE_W)
    assert c["energy_source"] == "counter"
    assert c["energy_j"] == pytest.approx(measured_in_request - IDLE_W * 100)
    measured_total = 3600 * IDLE_W + 100 * (BUSY_W - IDLE_W)
    assert c["idle_share_j"] == pytest.approx(measured_total - c["energy_j"])
    assert c["device_time_s"] == pytest.approx(100.0)
    # hardware: 100 s of $3.60/h; energy: J × $0.10/kWh × PUE 1.2; idle: 3500 s + idle joules
    assert float(c["cost_hardware_usd"]) == pytest.approx(0.10, abs=1e-9)
    kwh = 0.10 * 1.2 / 3.6e6
    assert float(c["cost_energy_usd"]) == pytest.approx(c["energy_j"] * kwh, abs=1e-9)
    assert float(c["cost_idle_usd"]) == pytest.approx(3.5 + c["idle_share_j"] * kwh, abs=1e-8)
    total = c["cost_hardware_usd"] + c["cost_energy_usd"] + c["cost_idle_usd"]
    assert c["cost_total_usd"] == total
    assert c["price_status"] == "priced"
    assert c["co2e_g"] == pytest.approx(measured_total * 1.2 * 400 / 3.6e6)
    with Session(engine) as session:
        (h,) = session.scalars(sa.select(DeviceEnergyHourly)).all()
    assert h.measured_j == pytest.approx(measured_total)
    assert h.attributed_j + h.idle_j == pytest.approx(h.measured_j)
    assert h.unallocated_idle_j == 0.0
    assert h.requests == 1 and h.active_s == pytest.approx(100.0)


def test_hosted_prices_contract_tenant_validity_cached_and_unpriced(engine: Engine) -> None:
    later = T0 + dt.timedelta(minutes=30)
    add_price(engine, "groq", "m", "0.05", "0.08", cached="0.01")
    add_price(engine, "groq", "m", "0.04", "0.06", origin="contract", valid_from=later)
    add_price(
        engine, "groq", "m", "0.03", "0.05", origin="contract", tenant="vip", valid_from=later
    )
    hosted = dict(device_id=None, provider="groq", llm_model="m")
    add_requests(
        engine,
        [
            Req(1, 60, 0.2, 62, 1_000_000, 1_000_000, cached_input_tokens=400_000, **hosted),
            Req(2, 2000, 0.2, 2002, 1_000_000, 1_000_000, **hosted),
            Req(3, 2000, 0.2, 2002, 1_000_000, 1_000_000, tenant="vip", **hosted),
            Req(4, 60, 0.2, 61, 10, 10, device_id=None, provider="nobody", llm_model="x"),
        ],
    )
    run_analytics(engine, SETTINGS, now=T0 + HOUR)
    c = costs(engine)
    # list: 600k uncached × 0.05 + 400k cached × 0.01 + 1M out × 0.08, per 1M → exact NUMERIC
    assert c[f"{1:016x}"]["cost_api_usd"] == Decimal("0.03") + Decimal("0.004") + Decimal("0.08")
    assert c[f"{2:016x}"]["cost_api_usd"] == Decimal("0.10")  # contract from 10:30
    assert c[f"{3:016x}"]["cost_api_usd"] == Decimal("0.08")  # tenant's own contract
    assert c[f"{4:016x}"]["price_status"] == "unpriced"
    assert c[f"{4:016x}"]["cost_total_usd"] == 0
    assert all(c[k]["energy_j"] is None and c[k]["energy_source"] is None for k in c)


def test_hosted_modeled_energy_is_labelled_modeled(engine: Engine) -> None:
    add_requests(
        engine, [Req(1, 10, 0.1, 11, 100, 400, device_id=None, provider="groq", llm_model="m")]
    )
    settings = SETTINGS.model_copy(update={"modeled_j_per_output_token": {"groq": 0.5}})
    run_analytics(engine, settings, now=T0 + HOUR)
    c = costs(engine)[f"{1:016x}"]
    assert c["energy_source"] == "modeled"
    assert c["energy_j"] == pytest.approx(200.0)
    with Session(engine) as session:
        row = session.scalars(sa.select(RollupHourly)).one()
    assert row.energy_modeled_j == pytest.approx(200.0)
    assert row.energy_measured_j == 0.0


def test_missing_rates_make_self_hosted_unpriced_not_free(engine: Engine) -> None:
    add_device(engine)
    add_samples(engine, "gpu-a", [(10, 20)], seconds=60)
    add_requests(engine, [Req(1, 10, 1, 20, 10, 10)])
    run_analytics(engine, AnalyticsSettings(), now=T0 + dt.timedelta(minutes=1))
    c = costs(engine)[f"{1:016x}"]
    assert c["price_status"] == "unpriced"
    assert c["energy_j"] == pytest.approx(9 * 300 + 150)


def test_power_only_device_and_uncovered_requests(engine: Engine) -> None:
    add_device(engine, "gpu-p", idle_w=None)
    add_samples(engine, "gpu-p", [(100, 200)], seconds=1000, counter=False)
    add_requests(
        engine,
        [
            Req(1, 100, 1, 200, 10, 100, device_id="gpu-p"),
            Req(2, 2000, 1, 2100, 10, 100, device_id="gpu-p"),  # after the last sample
        ],
    )
    result = run_analytics(engine, SETTINGS, now=T0 + HOUR)
    c = costs(engine)
    assert c[f"{1:016x}"]["energy_source"] == "power"
    # idle = the median of the samples taken while no request ran (= IDLE_W here); the busy
    # cells take the power the gauge saw while busy over the request's 100 s, not the
    # trapezoid's ramp down to the idle sample that follows it
    assert c[f"{1:016x}"]["energy_j"] == pytest.approx(100 * 300)
    assert c[f"{1:016x}"]["energy_j_low"] <= 100 * 300 <= c[f"{1:016x}"]["energy_j_high"]
    assert c[f"{2:016x}"]["energy_j"] is None
    assert result.uncovered_requests == 1


def test_runs_are_idempotent_and_late_data_is_rederived(engine: Engine) -> None:
    add_device(engine)
    add_samples(engine, "gpu-a", [(100, 200), (4000, 4100)], seconds=7200)
    add_requests(engine, [Req(1, 100, 1, 200, 10, 100)])
    first = run_analytics(engine, SETTINGS, now=T0 + 2 * HOUR)
    before = costs(engine)
    again = run_analytics(engine, SETTINGS, now=T0 + 2 * HOUR)
    assert costs(engine).keys() == before.keys()
    assert again.window_start == first.window_start + HOUR  # watermark − 15 min → hour floor
    # A late span inside the lateness window: only its hour is re-derived, nothing doubles.
    add_requests(engine, [Req(2, 4000, 1, 4100, 10, 100)])
    third = run_analytics(engine, SETTINGS, now=T0 + 2 * HOUR + dt.timedelta(minutes=5))
    assert third.requests == 1
    c = costs(engine)
    assert set(c) == {f"{1:016x}", f"{2:016x}"}
    assert c[f"{1:016x}"]["cost_total_usd"] == before[f"{1:016x}"]["cost_total_usd"]
    assert c[f"{2:016x}"]["energy_j"] == pytest.approx(c[f"{1:016x}"]["energy_j"])
    with engine.connect() as conn:
        hours = conn.execute(sa.select(sa.func.count()).select_from(DeviceEnergyHourly)).scalar()
        daily = conn.execute(sa.select(RollupDaily.requests)).scalars().all()
    assert hours == 2
    assert sum(daily) == 2


def test_rollups_sum_request_costs_and_judge_slos(engine: Engine) -> None:
    add_device(engine)
    add_samples(engine, "gpu-a", [(0, 600)], seconds=3600)
    add_requests(
        engine,
        [
            Req(i, 10.0 * i, ttft, 10.0 * i + 40, 500, 100)
            for i, ttft in enumerate([0.5, 1.0, 8.0, 2.0], start=1)
        ],
    )
    run_analytics(engine, SETTINGS, now=T0 + HOUR)
    c = costs(engine)
    with Session(engine) as session:
        (row,) = session.scalars(sa.select(RollupHourly)).all()
    assert row.requests == 4 and row.output_tokens == 400 and row.input_tokens == 2000
    assert row.cost_total_usd == sum(v["cost_total_usd"] for v in c.values())
    assert row.energy_measured_j == pytest.approx(sum(v["energy_j"] for v in c.values()))
    assert row.ttft_p50_s == pytest.approx(1.5)
    assert row.slo_met_requests == 3  # the 8 s TTFT misses the 5 s objective
    assert row.tokens_per_j == pytest.approx(400 / (row.energy_measured_j + row.idle_energy_j))
    blended = row.cost_total_usd * 1_000_000 / 2400
    assert row.cost_per_mtok_blended_usd == pytest.approx(blended, abs=Decimal("1e-9"))
    assert row.hardware_model == "H100-SXM" and row.workload == "chat"
