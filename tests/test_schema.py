"""The warehouse schema: migrations round-trip, drift is caught, and constraints keep data honest.

Every test runs on DuckDB and on the real PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, StatementError

from wattledger.migrations import runner
from wattledger.models import (
    Base,
    Device,
    InferenceRequest,
    PowerSample,
    Price,
    make_engine,
    session_factory,
)

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "duckdb":
                rows = conn.execute(sa.text("SELECT table_name FROM duckdb_tables()"))
            else:
                rows = conn.execute(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            return {r[0] for r in rows}
    finally:
        engine.dispose()


def test_upgrade_creates_every_model_table_and_round_trips(db_url: str) -> None:
    assert runner.status(db_url).current is None
    rev = runner.upgrade(db_url)
    assert rev.is_current
    assert set(Base.metadata.tables) <= _tables(db_url)
    assert runner.check(db_url) == []
    assert runner.downgrade(db_url, "base").current is None
    assert _tables(db_url) - {"alembic_version"} == set()
    assert runner.upgrade(db_url).is_current
    assert runner.check(db_url) == []


def test_upgrade_is_idempotent(migrated_url: str) -> None:
    assert runner.upgrade(migrated_url).current == runner.status(migrated_url).head


def test_drift_is_detected(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE devices ADD COLUMN rogue_w DOUBLE PRECISION"))
    engine.dispose()
    problems = runner.check(migrated_url)
    assert problems, "an extra column must be reported"
    assert any("rogue_w" in p for p in problems)


def test_check_refuses_an_unmigrated_database(db_url: str) -> None:
    from wattledger.errors import DatabaseError

    with pytest.raises(DatabaseError, match="db upgrade"):
        runner.check(db_url)


def _device(session: sa.orm.Session, device_id: str = "GPU-1") -> Device:
    d = Device(device_id=device_id, vendor="nvidia", hardware_model="H100-SXM", power_source="nvml")
    session.add(d)
    session.flush()
    return d


def _request(**kw: object) -> InferenceRequest:
    base: dict[str, object] = dict(
        trace_id="a" * 32,
        span_id="b" * 16,
        service="svc",
        provider="vllm",
        llm_model="llama-3.1-8b",
        start_ts=T0,
        end_ts=T0 + dt.timedelta(seconds=2),
        duration_s=2.0,
        input_tokens=100,
        output_tokens=50,
    )
    base.update(kw)
    return InferenceRequest(**base)


def test_request_span_ids_are_unique(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    Session = session_factory(engine)
    with Session.begin() as s:
        s.add(_request())
    with pytest.raises(IntegrityError), Session.begin() as s:
        s.add(_request(service="other"))
    with Session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(InferenceRequest)) == 1
    engine.dispose()


def test_power_samples_unique_per_device_time_source_and_need_a_device(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    Session = session_factory(engine)
    with Session.begin() as s:
        _device(s)
        s.add(PowerSample(device_id="GPU-1", ts=T0, source="nvml", power_w=300.0))
        s.add(PowerSample(device_id="GPU-1", ts=T0, source="dcgm", power_w=301.0))
    with pytest.raises(IntegrityError), Session.begin() as s:
        s.add(PowerSample(device_id="GPU-1", ts=T0, source="nvml", power_w=1.0))
    with pytest.raises(IntegrityError), Session.begin() as s:
        s.add(PowerSample(device_id="GPU-missing", ts=T0, source="nvml", power_w=1.0))
    with pytest.raises(IntegrityError), Session.begin() as s:
        s.add(
            PowerSample(
                device_id="GPU-1", ts=T0 + dt.timedelta(seconds=1), source="nvml", power_w=-5.0
            )
        )
    with Session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(PowerSample)) == 2
    engine.dispose()


def test_checks_reject_impossible_requests(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    Session = session_factory(engine)
    bad = [
        {"output_tokens": -1},
        {"end_ts": T0 - dt.timedelta(seconds=1)},
        {"status": "maybe"},
        {"ttft_s": -0.1},
    ]
    for i, kw in enumerate(bad):
        with pytest.raises(IntegrityError), Session.begin() as s:
            s.add(_request(span_id=f"{i:016x}", **kw))
    engine.dispose()


def test_times_are_utc_and_money_is_exact(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    Session = session_factory(engine)
    berlin = dt.timezone(dt.timedelta(hours=1))
    with Session.begin() as s:
        s.add(_request(start_ts=T0.astimezone(berlin), end_ts=T0 + dt.timedelta(seconds=2)))
        s.add(
            Price(
                provider="groq",
                llm_model="llama-3.1-8b",
                origin="contract",
                valid_from=T0,
                input_per_mtok_usd=Decimal("0.05"),
                output_per_mtok_usd=Decimal("0.08000001"),
            )
        )
    with Session() as s:
        r = s.scalars(sa.select(InferenceRequest)).one()
        assert r.start_ts == T0
        assert r.start_ts.utcoffset() == dt.timedelta(0)
        p = s.scalars(sa.select(Price)).one()
        assert p.output_per_mtok_usd == Decimal("0.08000001")
        assert isinstance(p.output_per_mtok_usd, Decimal)
        assert p.tenant == "*"
    engine.dispose()


def test_naive_datetimes_are_rejected(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    Session = session_factory(engine)
    with pytest.raises(StatementError, match="naive datetime"), Session.begin() as s:
        s.add(_request(start_ts=dt.datetime(2026, 1, 1), end_ts=dt.datetime(2026, 1, 1, 0, 1)))
    engine.dispose()


@pytest.mark.postgres
def test_time_range_indexes_exist_on_postgres(pg_url: str) -> None:
    runner.upgrade(pg_url)
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        names = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes")).scalars())
    engine.dispose()
    assert {
        "ix_inference_requests_start_ts",
        "ix_power_samples_ts",
        "ix_request_costs_start_ts",
    } <= names


@pytest.mark.postgres
def test_db_upgrade_waits_for_the_migration_lock(pg_url: str) -> None:
    """`wattledger db upgrade` beside a starting server (which holds the lock) waits its turn
    instead of running the same migrations concurrently, then does its work."""
    holder = psycopg.connect(
        make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    holder.execute("SELECT pg_advisory_lock(%s)", (runner.MIGRATE_LOCK_KEY,))
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattledger", "--database-url", pg_url, "db", "upgrade", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=8)  # blocked on the lock: no table created meanwhile
        assert runner.status(pg_url).current is None
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", (runner.MIGRATE_LOCK_KEY,))
        holder.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out)["is_current"] is True
