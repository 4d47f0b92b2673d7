"""CLI arguments that reach SQL are bound parameters, never SQL text.

Hostile tenant, provider, model, key and date values give no rows or a one-line error naming
the option, and every table is still there with the same rows afterwards. LIKE wildcards in a
"contains" filter are escaped, so ``%`` matches only a literal percent sign.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.reports import dataset
from tests.reports.conftest import Fleet
from tests.security.cli_support import run_cli
from wattledger.models import Base, make_engine

HOSTILE = [
    "x' OR '1'='1",
    "'; DROP TABLE inference_requests; --",
    "acme' --",
    'acme" OR "1"="1',
    "acme%",
    "%",
    "_",
    "acme\\",
    "acme'; DELETE FROM rollup_daily WHERE '1'='1",
]
BAD_DATES = ["2026-11-16' OR '1'='1", "2026-11-16'; DROP TABLE inference_requests; --"]
TABLES = ["inference_requests", "rollup_daily", "recommendations", "api_keys", "prices"]


def snapshot(url: str) -> dict[str, int]:
    """Every table of the schema (it must exist) and the row counts of the ones that matter."""
    engine = make_engine(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= names, set(Base.metadata.tables) - names
        with engine.connect() as conn:
            return {
                t: conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar_one()
                for t in TABLES
            }
    finally:
        engine.dispose()


@pytest.fixture
def unchanged(fleet: Fleet):  # type: ignore[no-untyped-def]
    """Asserts after the test that every table still exists with the same row counts."""
    before = snapshot(fleet.url)
    assert before["inference_requests"] > 0 and before["rollup_daily"] > 0
    yield
    assert snapshot(fleet.url) == before


@pytest.mark.usefixtures("unchanged")
def test_hostile_filter_values_match_nothing(
    capsys: pytest.CaptureFixture[str], fleet: Fleet
) -> None:
    url = fleet.url
    for value in HOSTILE:
        r = run_cli(
            capsys, url, "export", "focus", "--from", "2026-11-09", "--to", "2026-11-23",
            "--tenant", value,
        )  # fmt: skip
        assert r.returncode == 0, (value, r.stderr)
        assert list(csv.DictReader(io.StringIO(r.stdout))) == [], value

        r = run_cli(
            capsys, url, "report", "preview", "--week", dataset.WEEK.iso, "--tenant", value,
            "--format", "csv",
        )  # fmt: skip
        assert r.returncode == 0, (value, r.stderr)
        assert list(csv.DictReader(io.StringIO(r.stdout))) == [], value

        r = run_cli(capsys, url, "keys", "list", "--tenant", value, "--json")
        assert r.returncode == 0 and json.loads(r.stdout) == [], (value, r.stderr)

        r = run_cli(capsys, url, "prices", "list", "--provider", value, "--json")
        assert r.returncode == 0 and json.loads(r.stdout) == [], (value, r.stderr)
        r = run_cli(capsys, url, "prices", "list", "--model", value, "--json")
        assert r.returncode == 0 and json.loads(r.stdout) == [], (value, r.stderr)

        r = run_cli(capsys, url, "keys", "revoke", value)
        assert r.returncode == 1 and "Traceback" not in r.stderr, (value, r.stderr)

        r = run_cli(capsys, url, "keys", "create", "--tenant", value)
        assert r.returncode == 1 and "is not valid" in r.stderr, (value, r.stderr)
    # The filters do work for real values, so "no rows" above is not an accident.
    r = run_cli(capsys, url, "prices", "list", "--provider", "groq", "--json")
    assert [p["provider"] for p in json.loads(r.stdout)] == ["groq"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("value", BAD_DATES)
def test_hostile_dates_are_refused_naming_the_option(
    capsys: pytest.CaptureFixture[str], fleet: Fleet, value: str
) -> None:
    url = fleet.url
    for args, option in (
        (["export", "focus", "--from", value, "--to", "2026-11-23"], "--from"),
        (["export", "focus", "--from", "2026-11-09", "--to", value], "--to"),
        (["report", "preview", "--week", value], "Week"),
        (["analytics", "run", "--since", value], "--since"),
        (["analytics", "run", "--until", value], "--until"),
        (["recommend", "--at", value], "--at"),
        (["prices", "set", "--provider", "p", "--model", "m", "--input", "1", "--output", "2",
          "--from", value], "--from"),
    ):  # fmt: skip
        r = run_cli(capsys, url, *args)
        assert r.returncode in (1, 2), (args, r.stdout, r.stderr)
        assert option in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_a_quote_in_the_snapshot_path_is_not_sql(tmp_path: Path) -> None:
    """The mart snapshot's path is spliced into DuckDB's ATTACH (which takes no parameters):
    a quote in a directory name must neither break it nor run as SQL."""
    from wattledger.analytics.marts import publish_snapshot
    from wattledger.migrations import runner

    url = f"duckdb:///{tmp_path}/w.duckdb"
    runner.upgrade(url)
    engine = make_engine(url)
    try:
        target = tmp_path / "o'brien'; DROP TABLE prices; --" / "marts.duckdb"
        assert publish_snapshot(engine, target) == target and target.is_file()
        assert "prices" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
