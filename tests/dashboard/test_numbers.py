"""The numbers each page shows equal what the test computes itself from the rollups."""

from __future__ import annotations

import datetime as dt
import html
import os
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb

from tests.dashboard.conftest import (
    default_range,
    htmls,
    kpis,
    open_downloads,
    open_filters,
    point_at,
    scalar,
    shown_table,
    table_of,
)
from wattledger.dashboard import fmt

PERIOD = "bucket_start >= :s AND bucket_start < :e"


def _sum(snapshot: Path, expr: str, start, end, table: str = "rollup_daily", where: str = ""):
    sql = f"SELECT sum({expr}) FROM {table} WHERE {PERIOD} {where}"
    return scalar(snapshot, sql, s=start, e=end)


def _metrics(at) -> dict:
    return kpis(at)


def _notes(at) -> list[str]:
    return [k.note for k in kpis(at).values() if k.note]


def test_overview_kpis_match_the_rollups(app, demo: Path) -> None:
    start, end = default_range(demo)
    week = dt.timedelta(days=7)
    spend = _sum(demo, "cost_total_usd", start, end)
    prev_spend = _sum(demo, "cost_total_usd", start - week, start)
    tokens = int(_sum(demo, "input_tokens + output_tokens", start, end))
    prev_tokens = int(_sum(demo, "input_tokens + output_tokens", start - week, start))
    measured = _sum(demo, "energy_measured_j", start, end)
    modeled = _sum(demo, "energy_modeled_j", start, end)
    energy = _sum(demo, "energy_measured_j + energy_modeled_j + idle_energy_j", start, end)
    out = int(_sum(demo, "output_tokens", start, end))
    assert spend > 0 and prev_spend > 0 and measured > 0 and modeled > 0

    at = app("overview")
    m = _metrics(at)
    assert m["Spend, fully loaded (USD)"].value == fmt.usd(spend)
    assert m["Spend, fully loaded (USD)"].delta == fmt.delta_pct(spend, prev_spend)
    assert m["Tokens (input + output)"].value == f"{tokens:,}"
    assert m["Tokens (input + output)"].delta == fmt.delta_pct(tokens, prev_tokens)
    assert m["Energy (kWh)"].value == f"{energy / 3.6e6:,.2f}"
    assert m["Blended USD per 1M tokens"].value == fmt.usd_mtok(Decimal(spend) * 1_000_000 / tokens)
    assert m["Output tokens per J"].value == fmt.sig(out / energy)
    provenance = fmt.provenance(measured, modeled)
    assert provenance.startswith("mixed (")
    assert _notes(at).count(f"energy: {provenance}") == 2
    shown = shown_table(at, "overview.daily")  # what the static table shows, formatted
    assert len(shown) == 7 and shown["Spend (USD)"].str.startswith("$").all()
    daily = table_of(at, "overview.daily")
    assert [fmt.usd(v) for v in daily["Spend (USD)"]] == shown["Spend (USD)"].tolist()
    assert len(daily) == 7
    assert (
        float(daily["Spend (USD)"].sum()) == float(spend)
        or abs(float(daily["Spend (USD)"].sum()) - float(spend)) < 1e-6
    )
    assert int(daily["Tokens"].sum()) == tokens


def test_filters_apply_to_every_number(app, demo: Path) -> None:
    first = scalar(demo, "SELECT min(bucket_start) FROM rollup_daily").astimezone(dt.UTC)
    at = open_filters(app("overview"))
    at.sidebar.multiselect(key="filters.providers").set_value(["openai"]).run()
    at.sidebar.date_input(key="filters.dates").set_value((first.date(), first.date())).run()
    assert not at.exception
    spend = _sum(
        demo, "cost_total_usd", first, first + dt.timedelta(days=1), where="AND provider = 'openai'"
    )
    assert spend > 0
    m = _metrics(at)
    assert m["Spend, fully loaded (USD)"].value == fmt.usd(spend)
    assert "energy: no energy data" in _notes(at)  # hosted, list price only
    # The filter survives a page switch (widgets live in the router).
    app("vendors", at)
    routes = table_of(at, "vendors.routes")
    assert routes["Route"].tolist() == ["openai/hosted/gpt-4o-mini"]
    assert abs(float(routes["Spend (USD)"].iloc[0]) - float(spend)) < 1e-9


def test_vendor_routes_and_tokens_per_joule_match_the_rollups(app, demo: Path) -> None:
    start, end = default_range(demo)
    at = app("vendors")
    routes = table_of(at, "vendors.routes").set_index("Route")
    vllm = "vllm/H100-SXM/llama-3.1-8b"
    spend = _sum(demo, "cost_total_usd", start, end, "rollup_hourly", "AND provider = 'vllm'")
    assert abs(float(routes.loc[vllm, "Spend (USD)"]) - float(spend)) < 1e-9
    assert routes.loc[vllm, "Energy source"] == "measured"
    assert routes.loc["cerebras/hosted/llama-3.3-70b", "Energy source"] == "modeled"
    # The front: nothing beats a front route on both cost and TTFT; every other route is beaten.
    cost, ttft = routes["Cost per 1M tokens (USD)"], routes["p95 TTFT (ms)"]
    for name, row in routes.iterrows():
        beaten = (
            (cost <= cost[name])
            & (ttft <= ttft[name])
            & ((cost < cost[name]) | (ttft < ttft[name]))
        ).any()
        assert row["On cost/TTFT front"] == (not beaten), name
    assert routes.loc[cost.idxmin(), "On cost/TTFT front"]
    hardware = table_of(at, "vendors.hardware").set_index("Hardware")
    out = _sum(demo, "output_tokens", start, end, where="AND provider = 'vllm'")
    energy = _sum(
        demo,
        "energy_measured_j + energy_modeled_j + idle_energy_j",
        start,
        end,
        where="AND provider = 'vllm'",
    )
    assert abs(hardware.loc["H100-SXM", "Tokens per joule (tokens/J)"] - out / energy) < 1e-12
    assert hardware.loc["hosted · cerebras", "Energy source"] == "modeled"


def test_workload_slo_compliance_matches_the_rollups(app, demo: Path) -> None:
    start, end = default_range(demo)
    met = _sum(demo, "slo_met_requests", start, end, "rollup_hourly")
    judged = _sum(demo, "requests", start, end, "rollup_hourly", "AND slo_met_requests IS NOT NULL")
    assert judged > 0
    at = app("workloads")
    assert _metrics(at)["SLO compliance, all workloads with an SLO (%)"].value == fmt.pct(
        met / judged
    )
    table = table_of(at, "workloads.slo").set_index("Workload")
    assert table.loc["chat", "SLO p95 TTFT (ms)"] == 2000
    assert table.loc["chat", "Requests within SLO"] == met
    assert table["Requests judged"].sum() == judged
    at.session_state["workloads.workload.open"] = True
    at.run().selectbox(key="workloads.workload").set_value("chat").run()
    assert not at.exception
    button = open_downloads(at, "workloads").download_button(key="workloads.hours.csv")
    assert f"({judged_rows(demo, start, end):,} rows)" in button.label


def judged_rows(snapshot: Path, start, end) -> int:
    """Hour × route rows of the chat workload (what the hourly latency CSV holds)."""
    sql = (
        "SELECT count(*) FROM (SELECT DISTINCT bucket_start, provider, hardware_model, "
        f"llm_model, quantization FROM rollup_hourly WHERE {PERIOD} AND workload = 'chat')"
    )
    return int(scalar(snapshot, sql, s=start, e=end))


def test_recommendations_match_the_table(app, demo: Path) -> None:
    n = scalar(demo, "SELECT count(*) FROM recommendations WHERE status = 'open'")
    savings = scalar(
        demo, "SELECT sum(savings_usd_month) FROM recommendations WHERE status = 'open'"
    )
    reroute = scalar(demo, "SELECT to_route FROM recommendations WHERE kind = 'reroute'")
    assert n >= 2
    at = app("recommendations")
    m = _metrics(at)
    assert m["Recommendations"].value == str(n)
    assert m["Savings (USD/month)"].value == fmt.usd(savings)
    plain = html.unescape(" ".join(b for b in htmls(at.main) if "wlCard" in b))
    assert plain.count('data-testid="wlCard"') == n
    assert reroute in plain
    assert "basis: <b>measured</b>" in plain and "90% interval" in plain
    assert "run a quality check first" in plain  # a risk of the model change
    table = table_of(at, "recs.table")
    assert len(table) == n and set(table["Basis"]) == {"measured"}
    at.session_state["recs.status.open"] = True
    at.run().multiselect(key="recs.status").set_value(["dismissed"]).run()
    assert not at.dataframe and not kpis(at)
    assert "No recommendations with these statuses" in at.info[0].value


def test_fleet_energy_matches_the_device_ledger(app, demo: Path) -> None:
    start, end = default_range(demo)
    energy = _sum(demo, "measured_j", start, end, "device_energy_hourly")
    waste = _sum(demo, "unallocated_idle_j", start, end, "device_energy_hourly")
    at = app("fleet")
    m = _metrics(at)
    assert m["Devices"].value == "2"
    assert m["Device energy (kWh)"].value == f"{energy / 3.6e6:,.2f}"
    assert m["Idle waste (kWh)"].value == f"{waste / 3.6e6:,.2f}"
    assert "energy: measured" in _notes(at)
    table = table_of(at, "fleet.devices_table")
    assert set(table["Energy source"]) == {"measured (counter)"}
    assert set(table["Identified as"]) == {"H100-SXM"}
    # The simulator's devices idle between requests: their baseline is measured by the counter.
    assert all(v.endswith(" W (counter)") for v in table["Idle baseline"]), set(
        table["Idle baseline"]
    )
    assert not any("no idle baseline" in w.value for w in at.warning)
    assert abs(table["Device energy (kWh)"].sum() - energy / 3.6e6) < 1e-9


def test_reports_lists_past_runs(app, demo: Path) -> None:
    at = app("reports")
    runs = table_of(at, "reports.runs")
    assert runs["ISO week"].tolist() == ["2026-W46", "2026-W45"]
    assert runs["Status"].tolist() == ["sent", "failed"]


def test_a_newly_published_snapshot_is_read_at_once(
    app, demo_dir: Path, monkeypatch, tmp_path: Path
) -> None:
    shutil.copy(demo_dir / "marts.duckdb", tmp_path / "marts.duckdb")
    shutil.copy(demo_dir / "wattledger.toml", tmp_path / "wattledger.toml")
    point_at(monkeypatch, tmp_path)
    snap = tmp_path / "marts.duckdb"
    at = app("overview")
    before = _metrics(at)["Spend, fully loaded (USD)"].value
    # Publish a new snapshot the way the server does: a new file swapped in atomically.
    new = tmp_path / ".marts.new"
    shutil.copy(snap, new)
    con = duckdb.connect(str(new))
    con.execute("UPDATE rollup_daily SET cost_total_usd = cost_total_usd * 2")
    con.close()
    os.replace(new, snap)
    start, end = default_range(snap)
    at.run()
    after = _metrics(at)["Spend, fully loaded (USD)"].value
    assert after != before
    assert after == fmt.usd(_sum(snap, "cost_total_usd", start, end))
