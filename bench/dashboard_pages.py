"""Benchmark: dashboard page-ready time in headless Chromium vs an empty Streamlit page.

Builds a warehouse holding 30 days × 1M requests/day of derived data — rollups written
directly with DuckDB SQL at the cardinality that traffic gives (16 services × 6 routes each,
every hour), 64 GPUs' device-hour ledger, recommendations and report runs — publishes the mart
snapshot, then in one run starts:

  1. the real dashboard (``start_dashboard``, as ``wattledger dashboard`` does), and
  2. an empty Streamlit page (a title and the same footer text), with the same server flags,

and loads every page in headless Chromium, round-robin, timing navigation → ready. Ready means
the footer is rendered, the script has stopped running, no element is still a loading
placeholder and every chart image has loaded (``READY_JS``). Measuring starts once the
dashboard has logged its first warm-up (``dashboard/warm.py``), as a visitor arriving after
the start would find it. The first load of each dashboard page (for the overview, also this
browser's first visit to the dashboard's origin) is reported apart from the warm loads; after
the rounds a new snapshot is published, and once the dashboard has warmed it each page is
loaded once more ("after a new snapshot").
Target (issue #9): every page ready within 1.5× the empty page.

Usage:
  python bench/dashboard_pages.py                 # 30 days × 1M requests/day, 5 rounds
  python bench/dashboard_pages.py --rounds 10 --scale 0.1
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
from playwright.sync_api import Page, sync_playwright

from wattledger.analytics.marts import publish_snapshot
from wattledger.config import load_settings
from wattledger.dashboard import warm
from wattledger.dashboard.launch import (
    ASGI_PATH,
    DashboardProcess,
    start_dashboard,
    streamlit_command,
)
from wattledger.migrations import runner
from wattledger.models import make_engine

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
CHROMIUM = "/usr/bin/chromium"
#: Every page by URL path ("" is the overview), as the dashboard's warmer opens them.
PAGES = list(warm.PAGES)
#: Issue #9: every page ready within this many times the empty page.
TARGET = 1.5
#: Ready: the footer is there, the script has stopped, no element is still a placeholder
#: (Streamlit shows ``stSkeleton`` while an element's code loads, e.g. the first image), every
#: interactive chart has drawn and every image has loaded and decoded to a non-empty size.
READY_JS = """() => {
  if (!document.body.innerText.includes("Times in UTC.")) return false;
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  if (!charts.every(c => c.querySelector("canvas, svg"))) return false;
  const images = [...document.querySelectorAll('[data-testid="stImage"]')];
  if (!images.every(c => c.querySelector("img"))) return false;
  return [...document.images].every(i => i.complete && i.naturalWidth > 0);
}"""
EMPTY_APP = 'import streamlit as st\nst.title("Empty")\nst.caption("Times in UTC.")\n'
#: provider, hardware, model, quantization, USD per 1M tokens, J per output token (0 = hosted)
ROUTES = [
    ("openai", "", "gpt-4o-mini", "", 0.40, 0.0),
    ("openai", "", "gpt-4o", "", 6.0, 0.0),
    ("groq", "", "llama-3.1-8b-instant", "", 0.06, 0.0),
    ("cerebras", "", "llama-3.3-70b", "", 0.90, 0.0),
    ("together", "", "llama-3.1-70b", "", 0.88, 0.0),
    ("anthropic", "", "claude-haiku", "", 1.2, 0.0),
    ("vllm", "H100-SXM", "llama-3.1-8b", "", 0.09, 0.3),
    ("vllm", "H100-SXM", "llama-3.1-70b", "fp8", 0.55, 1.9),
    ("vllm", "MI300X", "llama-3.1-70b", "", 0.48, 1.6),
    ("vllm", "A100-80GB", "llama-3.1-8b", "", 0.12, 0.45),
    ("tgi", "L40S", "mistral-7b", "awq", 0.10, 0.5),
    ("vllm", "MI300X", "mixtral-8x7b", "", 0.30, 0.9),
]


def build(directory: Path, scale: float) -> Path:
    """Fill a warehouse with 30 days of rollups for ``scale`` × 1M requests/day; publish it."""
    url = f"duckdb:///{directory / 'wattledger.duckdb'}"
    runner.upgrade(url)
    per_row = max(1, round(1_000_000 * scale / 24 / 96))
    con = duckdb.connect(str(directory / "wattledger.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TEMP TABLE routes (i INT, provider TEXT, hw TEXT, model TEXT, quant TEXT, "
        "usd_mtok DOUBLE, j_tok DOUBLE)"
    )
    con.executemany(
        "INSERT INTO routes VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i, *r) for i, r in enumerate(ROUTES)],
    )
    t0 = START.strftime("%Y-%m-%d %H:%M:%S+00")
    # Requests vary by hour of day and by combination; tokens per request by route.
    con.execute(f"""
        INSERT INTO rollup_hourly
        WITH g AS (
          SELECT h, s, k, (s * 5 + k * 7) % 12 AS r,
                 greatest(1, round({per_row} * (0.6 + 0.8 * ((h % 24) / 23.0))
                                   * (0.5 + ((s * 13 + k) % 10) / 9.0)))::BIGINT AS n
          FROM range(720) a(h), range(16) b(s), range(6) c(k)
        ), x AS (
          SELECT g.*, routes.*, n * (600 + 40 * s) AS tin, n * (180 + 20 * k) AS tout
          FROM g JOIN routes ON routes.i = g.r
        )
        SELECT TIMESTAMPTZ '{t0}' + to_hours(h), 'svc-' || s, 'team-' || (s % 4),
               ['chat', 'rag', 'batch', 'code', 'agents'][s % 5 + 1], provider, hw, model, quant,
               n, n // 200, 0, tin, tin // 5, tout,
               CASE WHEN hw = '' THEN 0 ELSE tout * j_tok END,
               CASE WHEN hw = '' AND provider IN ('groq', 'cerebras') THEN tout * 0.2 ELSE 0 END,
               CASE WHEN hw = '' THEN 0 ELSE tout * j_tok * 0.4 END,
               CASE WHEN hw = '' THEN (tin + tout) * usd_mtok / 1e6 ELSE 0 END,
               CASE WHEN hw = '' THEN 0 ELSE (tin + tout) * usd_mtok * 0.6 / 1e6 END,
               CASE WHEN hw = '' THEN 0 ELSE (tin + tout) * usd_mtok * 0.15 / 1e6 END,
               CASE WHEN hw = '' THEN 0 ELSE (tin + tout) * usd_mtok * 0.25 / 1e6 END,
               (tin + tout) * usd_mtok / 1e6,
               usd_mtok * (tin + tout) / tin, usd_mtok * (tin + tout) / tout, usd_mtok,
               CASE WHEN hw = '' AND provider NOT IN ('groq', 'cerebras') THEN NULL
                    ELSE 1.0 / greatest(j_tok * 1.4, 0.2) END,
               CASE WHEN hw = '' THEN 0 ELSE tout * j_tok * 1.4 * 0.4 / 3600 END,
               0.15 + r * 0.04, 0.4 + r * 0.08 + (h % 24) * 0.005, 0.7 + r * 0.1,
               0.01 + r * 0.002, 0.02 + r * 0.003, 0.03 + r * 0.004,
               8.0, tout / 3600.0,
               CASE WHEN s % 5 = 0 THEN n - n // 50 ELSE NULL END, now()
        FROM x""")
    keys = "service, tenant, workload, provider, hardware_model, llm_model, quantization"
    con.execute(f"""
        INSERT INTO rollup_daily
        SELECT date_trunc('day', bucket_start), {keys}, sum(requests), sum(error_requests),
               sum(unpriced_requests), sum(input_tokens), sum(cached_input_tokens),
               sum(output_tokens), sum(energy_measured_j), sum(energy_modeled_j),
               sum(idle_energy_j), sum(cost_api_usd), sum(cost_hardware_usd),
               sum(cost_energy_usd), sum(cost_idle_usd), sum(cost_total_usd),
               sum(cost_total_usd) * 1e6 / sum(input_tokens),
               sum(cost_total_usd) * 1e6 / sum(output_tokens),
               sum(cost_total_usd) * 1e6 / sum(input_tokens + output_tokens),
               sum(output_tokens) / nullif(sum(energy_measured_j + energy_modeled_j
                                               + idle_energy_j), 0),
               sum(co2e_g), avg(ttft_p50_s), avg(ttft_p95_s), avg(ttft_p99_s), avg(itl_p50_s),
               avg(itl_p95_s), avg(itl_p99_s), avg(mean_batch_size),
               sum(output_tokens) / 86400.0, sum(slo_met_requests), now()
        FROM rollup_hourly GROUP BY ALL""")
    con.execute("""
        INSERT INTO devices (device_id, tenant, vendor, hardware_model, node, device_index,
                             power_source, tdp_w, idle_power_w, first_seen_at, last_seen_at)
        SELECT 'gpu-' || d, 'team-' || (d % 4), CASE WHEN d % 4 = 2 THEN 'amd' ELSE 'nvidia' END,
               ['H100-SXM', 'H100-SXM', 'MI300X', 'A100-80GB'][d % 4 + 1], 'node-' || (d // 8),
               d % 8, 'nvml', 700, 90, now(), now()
        FROM range(64) t(d)""")
    con.execute(f"""
        INSERT INTO device_energy_hourly
        WITH x AS (SELECT d, h, 0.15 + 0.7 * (((d * 7 + h) % 24) / 23.0) AS u
                   FROM range(64) a(d), range(720) b(h))
        SELECT 'gpu-' || d, TIMESTAMPTZ '{t0}' + to_hours(h),
               CASE WHEN d % 16 = 15 THEN 'modeled' ELSE 'counter' END,
               (90 + 500 * u) * 3600, 500 * u * 3600 * 0.9, (90 + 50 * u) * 3600,
               CASE WHEN u < 0.2 THEN 90 * 3600 ELSE 0 END, 3600 * u, 3600 * (1 - u), 3600,
               90 + 500 * u, u, (2000 * u)::BIGINT, 0, now()
        FROM x""")
    con.execute("""
        INSERT INTO recommendations (recommendation_id, tenant, kind, workload, from_route,
               to_route, share_to_move, savings_usd_month, savings_usd_month_low,
               savings_usd_month_high, savings_kwh_month, savings_kg_co2e_month, basis, risks,
               explanation, status, created_at, updated_at)
        SELECT 'rec-' || i, 'team-' || (i % 4), 'reroute', 'chat',
               'openai/hosted/gpt-4o', 'vllm/H100-SXM/llama-3.1-70b@fp8', 1.0,
               1000 + 100 * i, 800 + 100 * i, 1200 + 100 * i, 10.0 * i, 4.0 * i,
               CASE WHEN i % 3 = 0 THEN 'predicted' ELSE 'measured' END,
               'model/quantization change: run a quality check first',
               'Move chat traffic to the fp8 pool: fully loaded cost falls by half.',
               'open', now(), now()
        FROM range(12) t(i)""")
    con.execute("""
        INSERT INTO report_runs (iso_week, recipients_key, tenant, recipients, status, attempts,
                                 created_at, sent_at)
        SELECT '2026-W' || (40 + i), repeat('a', 64), 'default', 'finops@example.com', 'sent',
               1, now(), now()
        FROM range(4) t(i)""")
    con.close()
    engine = make_engine(url)
    snap = publish_snapshot(engine, directory / "marts.duckdb")
    engine.dispose()
    return snap


def _time_load(page: Page, url: str) -> float:
    t = time.perf_counter()
    page.goto(url)
    page.wait_for_function(READY_JS, timeout=60_000, polling=25)
    return time.perf_counter() - t


def wait_for_warm_ups(log: Path, count: int, timeout_s: float = 180.0) -> None:
    """Wait until the dashboard has logged ``count`` warm-ups (``dashboard/warm.py``)."""
    deadline = time.monotonic() + timeout_s
    while log.read_text(errors="replace").count("dashboard warm-up: ") < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the dashboard logged no warm-up #{count} in {timeout_s:.0f} s")
        time.sleep(0.2)


def measure(
    dash_url: str, empty_url: str, rounds: int, republish: Callable[[], None]
) -> dict[str, list[float]]:
    """Page-ready seconds per page; key ``empty`` is the empty Streamlit page.

    After the rounds, ``republish()`` publishes a new snapshot (and waits for the dashboard to
    warm it); each page is then loaded once more (key ``published``)."""
    times: dict[str, list[float]] = {"empty": [], **{p or "overview": [] for p in PAGES}}
    for p in PAGES:
        times[f"empty:{p or 'overview'}"] = []
    cold: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        # Warm the browser's static-asset cache on both servers alike.
        for url in (empty_url, f"{empty_url}/"):
            page = context.new_page()
            _time_load(page, url)
            page.close()
        for r in range(rounds + 1):
            for path in PAGES:
                for name, url in (("empty", empty_url), (path or "overview", f"{dash_url}/{path}")):
                    page = context.new_page()
                    seconds = _time_load(page, url)
                    page.close()
                    if r == 0 and name != "empty":
                        cold[name] = seconds
                    elif r > 0:
                        times[name].append(seconds)
                        if name == "empty":
                            times[f"empty:{path or 'overview'}"].append(seconds)
        republish()
        for path in PAGES:
            page = context.new_page()
            times.setdefault("published", []).append(_time_load(page, f"{dash_url}/{path}"))
            page.close()
        browser.close()
    times["cold"] = [cold[p or "overview"] for p in PAGES]
    return times


def main() -> None:
    """Build, serve, measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="× 1M requests per day")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        t = time.perf_counter()
        snap = build(directory, args.scale)
        con = duckdb.connect(str(snap), read_only=True)
        row = con.execute("SELECT count(*), sum(requests) FROM rollup_hourly").fetchone()
        assert row is not None
        hourly, requests = row
        con.close()
        print(
            f"built {requests:,} requests in {hourly:,} hourly rollup rows in "
            f"{time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
        os.environ["WATTLEDGER_DATA_DIR"] = str(directory)
        settings = load_settings()
        log = (directory / "dash.log").open("wb")
        dash = start_dashboard(settings, port=8611, output=log)
        (directory / "empty.py").write_text(EMPTY_APP)
        cmd = streamlit_command("127.0.0.1", 8612)
        cmd[cmd.index(str(ASGI_PATH))] = str(directory / "empty.py")
        empty = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            dash.wait_ready()
            DashboardProcess(empty, "http://127.0.0.1:8612").wait_ready()
            # As a visitor arriving after start would: the dashboard has warmed its caches.
            wait_for_warm_ups(directory / "dash.log", 1)
            load_start = os.getloadavg()

            def republish() -> None:  # what the analytics job does after each run
                engine = make_engine(f"duckdb:///{directory / 'wattledger.duckdb'}")
                publish_snapshot(engine, snap)
                engine.dispose()
                wait_for_warm_ups(directory / "dash.log", 2)

            times = measure(dash.url, "http://127.0.0.1:8612", args.rounds, republish)
        finally:
            dash.stop()
            empty.terminate()
            empty.wait()
            log.close()
    base = statistics.median(times["empty"])
    print(
        f"\n{requests:,} requests over 30 days; {hourly:,} hourly rollup rows; "
        f"{args.rounds} rounds; medians; load average (1, 5, 15 min) at the start "
        f"{' '.join(f'{x:.1f}' for x in load_start)}, at the end "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}.\n"
    )
    print(
        "| page | first view (s) | warm median (s) | warm ÷ empty | first ÷ empty | "
        "median of paired ratios | after a new snapshot ÷ empty |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| empty Streamlit page | | {base:.3f} | 1.00 | | | |")
    over = []
    for i, path in enumerate(PAGES):
        name = path or "overview"
        warm = statistics.median(times[name])
        if warm / base > TARGET:
            over.append(name)
        # Each page load is paired with the empty-page load just before it (same moment's load).
        pairs = [p / e for p, e in zip(times[name], times[f"empty:{name}"], strict=True)]
        print(
            f"| {name} | {times['cold'][i]:.3f} | {warm:.3f} | {warm / base:.2f} | "
            f"{times['cold'][i] / base:.2f} | {statistics.median(pairs):.2f} | "
            f"{times['published'][i] / base:.2f} |"
        )

    print(
        f"\nTarget (every page within {TARGET}× the empty page, warm medians): "
        + (f"missed on {', '.join(over)}." if over else f"met on all {len(PAGES)} pages.")
    )


if __name__ == "__main__":
    main()
