"""The weekly report's figures for the known fleet, on DuckDB and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import postgresql

from tests.reports import dataset
from tests.reports.conftest import Fleet
from wattledger.analytics.queries import reports as q
from wattledger.analytics.reports.render import render
from wattledger.analytics.reports.weekly import Week, gather_weekly
from wattledger.errors import WattledgerError
from wattledger.models import make_engine

WEEK = dataset.WEEK
HOURS = Decimal(dataset.GPU_SECONDS) / 3600


def gpu_cost_usd(gpu_j: float) -> Decimal:
    """$3 per device-hour for the whole sampled range, plus energy at $0.10/kWh × PUE 1.2."""
    return Decimal("3.00") * HOURS + Decimal(repr(gpu_j)) / Decimal(3_600_000) * Decimal("0.12")


def test_iso_weeks() -> None:
    w = Week.parse("2026-W46")
    assert w.start == dt.datetime(2026, 11, 9, tzinfo=dt.UTC)
    assert w.end == dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
    assert w.previous.iso == "2026-W45"
    assert Week.parse("2027-W01").previous.iso == "2026-W53"  # 2026 has 53 ISO weeks
    assert Week.containing(dt.datetime(2027, 1, 1, 12, tzinfo=dt.UTC)).iso == "2026-W53"
    assert Week.last_complete(dt.datetime(2026, 11, 16, 7, tzinfo=dt.UTC)).iso == "2026-W46"
    for bad in ("2026-W54", "2025-W53", "2026W46", "last week"):
        with pytest.raises(WattledgerError, match="not an ISO week") as e:
            Week.parse(bad)
        assert e.value.hint and "2026-W46" in e.value.hint


def test_figures_for_the_known_fleet(fleet: Fleet) -> None:
    engine = make_engine(fleet.url)
    with engine.connect() as conn:
        everyone = gather_weekly(conn, WEEK, slos=dataset.SETTINGS.slos)
        acme = gather_weekly(conn, WEEK, "acme", slos=dataset.SETTINGS.slos)
        beta = gather_weekly(conn, WEEK, "beta")
    engine.dispose()

    # Hosted routes: tokens × list price, exactly.
    routes = {d.label: d for d in everyone.drivers["route"]}
    assert routes["openai/hosted/m"].cost_usd == 400 * dataset.OPENAI_EACH == Decimal("0.36")
    assert routes["openai/hosted/m"].cost_prev_usd == 200 * dataset.OPENAI_EACH
    assert routes["openai/hosted/m"].change == pytest.approx(1.0)
    assert routes["groq/hosted/m"].cost_usd == 300 * dataset.GROQ_EACH
    assert routes["slowco/hosted/m"].cost_usd == 100 * dataset.SLOWCO_EACH
    assert list(routes)[0] == "vllm/H100-SXM/llama-3.1-8b"  # the costliest first

    # Tenant beta: only Groq, with modeled energy 0.5 J per output token.
    b = beta.this
    assert b.cost_total_usd == Decimal("0.054") and b.requests == 300
    assert b.tokens == 300 * 700 and b.cost_per_mtok_usd == Decimal("0.054") * 10**6 / 210_000
    assert b.energy_modeled_j == pytest.approx(300 * 200 * 0.5)
    assert b.energy_measured_j == 0 and b.energy_basis == "modeled"
    assert b.tokens_per_j == pytest.approx(2.0)
    assert beta.previous.cost_total_usd == 0

    # Tenant acme: the GPU's energy is conserved (attributed + idle = what the counter saw).
    a = acme.this
    assert a.energy_measured_j + a.idle_energy_j == pytest.approx(fleet.gpu_j, rel=1e-6)
    assert a.energy_modeled_j == 0 and a.energy_basis == "measured"
    assert a.tokens_per_j == pytest.approx(4 * 2000 / fleet.gpu_j, rel=1e-6)
    hosted = 400 * dataset.OPENAI_EACH + 100 * dataset.SLOWCO_EACH
    assert float(a.cost_total_usd) == pytest.approx(float(hosted + gpu_cost_usd(fleet.gpu_j)))
    assert acme.previous.cost_total_usd == 200 * dataset.OPENAI_EACH
    assert everyone.this.cost_total_usd == a.cost_total_usd + b.cost_total_usd
    assert everyone.this.energy_basis == "mixed"
    assert everyone.this.measured_share == pytest.approx(
        a.energy_measured_j / (a.energy_measured_j + b.energy_modeled_j)
    )

    # Leaderboard: best tokens per joule first; hosted routes without energy last.
    board = [(e.label, e.totals.energy_basis) for e in everyone.efficiency]
    assert board[:2] == [("groq (hosted API)", "modeled"), ("vllm on H100-SXM", "measured")]
    assert {label for label, basis in board[2:] if basis == "none"} == {
        "openai (hosted API)",
        "slowco (hosted API)",
    }

    # SLOs: chat (TTFT ≤ 2 s) is met; search (TTFT ≤ 0.25 s, served at ~0.5 s) is breached.
    slos = {s.workload: s for s in acme.slos}
    assert slos["chat"].met == slos["chat"].requests == 400 and not slos["chat"].breached
    assert slos["search"].met == 0 and slos["search"].breached
    assert [s.workload for s in acme.breaches] == ["search"]
    assert "batch" not in slos  # no SLO configured

    (rec,) = everyone.recommendations
    assert (rec["from_route"], rec["to_route"]) == ("openai/hosted/m", "groq/hosted/m")
    assert rec["savings_usd_month"] > 0

    # The CSV attachment is the week's rollup rows; its costs add up to the week's spend.
    rendered = render(everyone)
    rows = list(csv.DictReader(io.StringIO(rendered.csv_bytes.decode())))
    assert len(rows) == len(everyone.rollup_rows) > 0
    assert sum(Decimal(r["cost_total_usd"]) for r in rows) == everyone.this.cost_total_usd
    assert all(WEEK.start.strftime("%Y-%m-%d") <= r["bucket_start"][:10] for r in rows)
    assert all(r["bucket_start"].endswith("Z") for r in rows)


def test_empty_week_renders(fleet: Fleet) -> None:
    engine = make_engine(fleet.url)
    with engine.connect() as conn:
        report = gather_weekly(conn, Week.parse("2030-W01"))
    engine.dispose()
    assert report.this.requests == 0 and report.this.cost_per_mtok_usd is None
    rendered = render(report)
    assert "No spend this week." in rendered.text
    assert rendered.images["daily_cost"].startswith(b"\x89PNG")
    assert rendered.csv_bytes.decode().splitlines()[0].startswith("bucket_start,")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        (q.period_totals(WEEK.start, WEEK.end, "acme"), "FILTER (WHERE"),
        (q.cost_drivers("route", WEEK.start, WEEK.end, WEEK.previous.start, "*", 5), "HAVING"),
        (q.efficiency_by_provider_hardware(WEEK.start, WEEK.end, "*"), "GROUP BY"),
        (q.slo_by_workload(WEEK.start, WEEK.end, "*"), "IS NOT NULL"),
        (q.daily_series(WEEK.start, WEEK.end, "*"), "GROUP BY rollup_daily.bucket_start"),
        (q.top_open_recommendations(5), "NULLS LAST"),
        (q.week_rollup_rows(WEEK.start, WEEK.end, "acme"), "ORDER BY"),
    ],
    ids=["totals", "drivers", "efficiency", "slo", "daily", "recommendations", "rollup"],
)
def test_queries_compile_for_both_dialects(query, fragment: str) -> None:
    for dialect in (postgresql.dialect(), DuckDBDialect()):
        sql = str(query.compile(dialect=dialect))
        assert fragment in sql, (dialect.name, sql)
