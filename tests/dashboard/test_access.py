"""Where the dashboard reads from, read-only access, the password gate, and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from streamlit.testing.v1 import AppTest

from tests.analytics.fleet import T0, Req, add_price, add_requests
from tests.dashboard.conftest import APP, kpis
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.config import load_settings
from wattledger.dashboard import filters, fmt
from wattledger.dashboard.passwords import hash_password
from wattledger.dashboard.source import refresh_snapshot, resolve_source
from wattledger.migrations import runner
from wattledger.models import RollupDaily, make_engine


def test_source_is_the_snapshot_never_the_warehouse(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(tmp_path))
    src = resolve_source(load_settings())
    assert src.kind == "none" and src.url is None
    assert str(tmp_path / "marts.duckdb") in src.problem
    (tmp_path / "marts.duckdb").write_bytes(b"")
    src = resolve_source(load_settings())
    assert src.kind == "snapshot" and src.url == f"duckdb:///{tmp_path / 'marts.duckdb'}"
    assert src.version


def test_postgresql_is_read_directly() -> None:
    url = "postgresql+psycopg://u:secret@db.example:5432/wl"
    src = resolve_source(load_settings(database_url=url))
    assert src.kind == "postgresql" and src.url == url
    assert "secret" not in src.label and "read-only" in src.label


def test_refresh_publishes_a_snapshot_of_an_idle_warehouse(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert refresh_snapshot(settings) is None  # no warehouse file yet
    engine = make_engine(settings.url)
    with engine.connect() as c:  # a file without the schema
        c.execute(sa.text("SELECT 1"))
    engine.dispose()
    assert refresh_snapshot(settings) is None
    runner.upgrade(settings.url)
    engine = make_engine(settings.url)
    add_requests(engine, [Req(1, 10, 1, 20, 10, 10, device_id=None, provider="p")])
    run_analytics(engine, AnalyticsSettings(), now=T0 + dt.timedelta(hours=1))
    engine.dispose()
    snap = refresh_snapshot(settings)
    assert snap == tmp_path / "marts.duckdb"
    reader = make_engine(f"duckdb:///{snap}", read_only=True)
    with reader.connect() as c:
        assert c.execute(sa.select(sa.func.sum(RollupDaily.requests))).scalar() == 1
    reader.dispose()


def test_refresh_leaves_a_warehouse_held_by_a_server_alone(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(tmp_path))
    settings = load_settings()
    runner.upgrade(settings.url)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(60)",
            str(tmp_path / "wattledger.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert refresh_snapshot(settings) is None
        assert not (tmp_path / "marts.duckdb").exists()
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def test_password_gate(app, demo, monkeypatch) -> None:
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__PASSWORD_HASH", hash_password("s3cret"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert not kpis(at) and filters.OPEN not in at.session_state  # nothing before sign-in
    at.text_input(key="auth.password").input("wrong")
    at.button(key="auth.submit").click().run()
    assert "Wrong password" in at.error[0].value and not kpis(at)
    at.text_input(key="auth.password").input("s3cret")
    at.button(key="auth.submit").click().run()
    assert not at.exception and not at.error
    assert kpis(at) and at.title[0].value == "Overview"
    app("fleet", at)  # still signed in on another page
    assert at.title[0].value == "Fleet" and kpis(at)
    at.sidebar.button(key="auth.sign_out").click().run()
    assert not kpis(at) and at.text_input(key="auth.password")


@pytest.mark.postgres
def test_postgresql_warehouse_is_read_directly_and_read_only(app, pg_url: str, monkeypatch) -> None:
    runner.upgrade(pg_url)
    engine = make_engine(pg_url)
    add_price(engine, "p", "hand-llm", "1.00", "2.00")
    add_requests(
        engine,
        [
            Req(i, 60 * i, 1, 60 * i + 5, 100, 50, device_id=None, provider="p")
            for i in range(1, 40)
        ],
    )
    run_analytics(engine, AnalyticsSettings(), now=T0 + dt.timedelta(hours=1))
    with engine.connect() as c:
        spend = c.execute(sa.select(sa.func.sum(RollupDaily.cost_total_usd))).scalar()
    engine.dispose()
    assert spend == Decimal("0.0078")  # 39 × (100 × $1 + 50 × $2) / 1M
    monkeypatch.setenv("WATTLEDGER_DATABASE_URL", pg_url)
    at = app("overview")
    assert not at.exception and not at.error
    assert kpis(at)["Spend, fully loaded (USD)"].value == fmt.usd(spend)
    assert "PostgreSQL" in at.main.caption[-1].value and "read-only" in at.main.caption[-1].value
    from wattledger.dashboard import data

    with (
        pytest.raises(DBAPIError, match="read-only transaction"),
        data._engine(pg_url).connect() as c,
    ):
        c.execute(sa.delete(RollupDaily))
