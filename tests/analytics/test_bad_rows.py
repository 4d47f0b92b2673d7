"""One bad stored row cannot stop analytics for everyone, nor give a negative cost.

Seen (issue 16): token counts up to INT64_MAX were stored, a request cost above 10¹⁰ USD
overflowed the NUMERIC(20,10) cost columns and every ``analytics run`` failed for every tenant;
cached input tokens above the input tokens gave -$1.25 in ``request_costs`` and the rollups.
Ingest now refuses both (tests/ingest/test_ingest_bounds.py); these rows were stored before.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.analytics.fleet import T0, Req, add_price, add_requests
from tests.analytics.test_costs import HOUR, SETTINGS, costs
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.queries.costs import QUARANTINE_TOKENS
from wattledger.models import QuarantineHourly, RollupDaily, make_engine


@pytest.fixture
def engine(migrated_url: str):
    e = make_engine(migrated_url)
    yield e
    e.dispose()


HOSTED = dict(device_id=None, provider="groq", llm_model="m")


def test_an_overflowing_row_is_quarantined_and_the_run_goes_on(engine: Engine) -> None:
    add_price(engine, "groq", "m", "0.05", "0.08", cached="0.01")
    add_requests(
        engine,
        [
            Req(1, 60, 0.2, 62, 1_000_000, 1_000_000, **HOSTED),
            Req(2, 70, 0.2, 72, 2**63 - 1, 2**63 - 1, tenant="other", **HOSTED),
            Req(3, 80, 0.2, 82, 100, 10, cached_input_tokens=25_000_000, **HOSTED),
        ],
    )
    result = run_analytics(engine, SETTINGS, now=T0 + HOUR)
    assert result.quarantined_requests == 1
    c = costs(engine)
    assert f"{2:016x}" not in c
    assert c[f"{1:016x}"]["cost_api_usd"] == Decimal("0.13")
    # 25M "cached" of 100 input: the 100 are priced as cached, never a negative rest.
    assert c[f"{3:016x}"]["cost_api_usd"] >= 0
    with engine.connect() as conn:
        daily = conn.execute(sa.select(sa.func.min(RollupDaily.cost_api_usd))).scalar()
    assert daily >= 0


def test_analytics_run_names_the_quarantined_rows(migrated_url: str, engine: Engine) -> None:
    from wattledger.cli import app

    add_requests(engine, [Req(2, 70, 0.2, 72, 2**63 - 1, 5, **HOSTED)])
    env = {"WATTLEDGER_DATABASE_URL": migrated_url}
    out = CliRunner().invoke(app, ["analytics", "run", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["quarantined_requests"] == 1
    text = CliRunner().invoke(app, ["analytics", "run", "--full"], env=env)
    assert text.exit_code == 0
    assert "1 requests were quarantined" in text.output


def _quarantine_rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                QuarantineHourly.tenant,
                QuarantineHourly.bucket_start,
                QuarantineHourly.reason,
                QuarantineHourly.requests,
            ).order_by(QuarantineHourly.tenant)
        ).all()
    return [(t, b if b.tzinfo else b.replace(tzinfo=dt.UTC), r, n) for t, b, r, n in rows]


def test_quarantined_requests_are_recorded_per_tenant_and_hour_once(engine: Engine) -> None:
    add_requests(
        engine,
        [
            Req(1, 60, 0.2, 62, 100, 10, **HOSTED),
            Req(2, 70, 0.2, 72, 2**63 - 1, 5, tenant="acme", **HOSTED),
            Req(3, 80, 0.2, 82, 5, 2**62, tenant="acme", **HOSTED),
            Req(4, 3700, 0.2, 3702, 5, 2**62, tenant="beta", **HOSTED),
        ],
    )
    first = run_analytics(engine, SETTINGS, now=T0 + 2 * HOUR)
    again = run_analytics(engine, SETTINGS, now=T0 + 2 * HOUR, full=True)
    assert first.quarantined_requests == again.quarantined_requests == 3
    expected = [
        ("acme", T0, QUARANTINE_TOKENS, 2),
        ("beta", T0 + HOUR, QUARANTINE_TOKENS, 1),
    ]
    assert _quarantine_rows(engine) == expected  # replaced on re-derivation, never added up


def test_doctor_counts_the_quarantined_requests(migrated_url: str, engine: Engine) -> None:
    from wattledger.cli import app

    add_requests(engine, [Req(2, 70, 0.2, 72, 2**63 - 1, 5, **HOSTED)])
    run_analytics(engine, SETTINGS, now=T0 + HOUR)
    engine.dispose()  # doctor opens the warehouse read-only, as another process would
    env = {
        "WATTLEDGER_DATABASE_URL": migrated_url,
        "WATTLEDGER_COLLECTOR__ENDPOINT": "http://127.0.0.1:9",
    }
    out = CliRunner().invoke(app, ["doctor", "--json"], env=env)
    assert out.exit_code == 0, out.output
    warehouse = json.loads(out.stdout)["warehouse"]
    assert warehouse.get("quarantined_requests") == 1, warehouse
    text = CliRunner().invoke(app, ["doctor"], env=env)
    assert "1 requests quarantined" in text.output


def test_doctor_reports_a_warehouse_it_cannot_read_and_creates_none(tmp_path) -> None:
    from wattledger.cli import app

    missing = tmp_path / "nowhere" / "w.duckdb"
    env = {
        "WATTLEDGER_DATABASE_URL": f"duckdb:///{missing}",
        "WATTLEDGER_COLLECTOR__ENDPOINT": "http://127.0.0.1:9",
    }
    out = CliRunner().invoke(app, ["doctor", "--json"], env=env)
    assert out.exit_code == 0, out.output
    warehouse = json.loads(out.stdout)["warehouse"]
    assert warehouse["checked"] is False and "does not exist" in warehouse["error"]
    assert not missing.parent.exists()
