"""Benchmark: FOCUS export and weekly report over a large ``rollup_daily``.

Fills ``rollup_daily`` with DuckDB's own SQL (days × tenants × routes × services), then times,
in one run:
  1. the FOCUS export of 30 days (query + one Python dict per charge + Arrow table + Parquet),
     against its peer: the same query fetched as Arrow with no per-row work;
  2. gathering and rendering one tenant's weekly report (all seven queries, two charts).

Usage:
  python bench/reports.py                # 90 days × 50 tenants × 40 routes × 3 services
  python bench/reports.py --scale 0.2
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import duckdb

from wattledger.analytics.focus import focus_table, write_focus
from wattledger.analytics.queries.focus import daily_route_charges
from wattledger.analytics.reports.job import build_report
from wattledger.analytics.reports.weekly import Week
from wattledger.migrations import runner
from wattledger.models import make_engine
from wattledger.models.bulk import fetch_arrow

START = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def build(path: Path, days: int, tenants: int, routes: int, services: int) -> int:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""INSERT INTO rollup_daily
        SELECT TIMESTAMPTZ '2026-09-01 00:00:00+00' + to_days(d::INTEGER),
               'svc-' || s, 't' || t, 'chat', CASE WHEN r % 2 = 0 THEN 'vllm' ELSE 'prov' || r END,
               CASE WHEN r % 2 = 0 THEN 'H100-SXM' ELSE '' END, 'model-' || r, '',
               100, 1, 0, 50000, 0, 20000,
               CASE WHEN r % 2 = 0 THEN 3.6e6 ELSE 0 END, CASE WHEN r % 2 = 0 THEN 0 ELSE 1e4 END,
               1e6, 0.7, 1.2, 0.1, 0.3, 2.3, 32.857, 115, 32.857, 0.0043, 0, 0.5, 0.9, 1.2,
               0.02, 0.03, 0.05, 4, 0.23, 95, now()
        FROM range({days}) a(d), range({tenants}) b(t), range({routes}) c(r),
             range({services}) e(s)"""
    )
    n = con.execute("SELECT count(*) FROM rollup_daily").fetchone()[0]
    con.close()
    return int(n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        url = f"duckdb:///{path}"
        runner.upgrade(url)
        rows = build(path, 90, max(1, int(50 * args.scale)), 40, 3)
        engine = make_engine(url)
        start, end = START + dt.timedelta(days=30), START + dt.timedelta(days=60)
        with engine.connect() as conn:
            t = time.perf_counter()
            peer = fetch_arrow(conn, daily_route_charges(start, end))
            peer_s = time.perf_counter() - t
            t = time.perf_counter()
            table = focus_table(conn, start, end)
            write_focus(table, Path(tmp) / "focus.parquet", "parquet")
            focus_s = time.perf_counter() - t
        assert table.num_rows == peer.num_rows
        t = time.perf_counter()
        report = build_report(engine, Week.containing(START + dt.timedelta(days=45)), "t0")
        report_s = time.perf_counter() - t
        engine.dispose()
    print(f"rollup_daily rows: {rows:,}; FOCUS charges (30 days): {table.num_rows:,}")
    print(
        f"FOCUS export + Parquet: {focus_s:.2f} s ({table.num_rows / focus_s:,.0f} charges/s); "
        f"peer (query as Arrow): {peer_s:.2f} s; ratio {focus_s / peer_s:.1f}x"
    )
    print(f"weekly report, one tenant (gather + 2 charts + HTML/text/CSV): {report_s:.2f} s")
    print(f"report CSV rows: {len(report.report.rollup_rows):,}")


if __name__ == "__main__":
    main()
