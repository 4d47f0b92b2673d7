"""Benchmark: full attribution + rollups over a large DuckDB warehouse, then one new minute.

Builds a synthetic warehouse with DuckDB's own SQL (fast), then times, in one run:
  1. the full analytics run (attribution, costs, hourly and daily rollups), and
  2. an incremental run after one more minute of data arrives.
Targets (issue #7): full < 120 s for 10M requests + 50M samples; incremental < 2 s.

Usage:
  python bench/analytics.py                 # 10M requests, 50M samples (takes a few minutes)
  python bench/analytics.py --scale 0.1     # a tenth of that
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import duckdb

from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.settings import AnalyticsSettings, SiteSettings
from wattledger.migrations import runner
from wattledger.models import make_engine

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def build(path: Path, devices: int, days: float, requests: int) -> dt.datetime:
    """Fill the warehouse: 1 Hz samples per device, requests spread uniformly."""
    seconds = int(days * 86400)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    t0 = START.strftime("%Y-%m-%d %H:%M:%S+00")
    con.execute(
        f"""INSERT INTO devices (device_id, tenant, vendor, hardware_model, power_source,
            idle_power_w, first_seen_at, last_seen_at)
        SELECT 'gpu-' || i, 'acme', 'nvidia', 'H100-SXM', 'nvml', 100.0, now(), now()
        FROM range({devices}) t(i)"""
    )
    # Power: idle 100 W plus a deterministic load pattern; counter integrates it exactly.
    con.execute(
        f"""INSERT INTO power_samples (device_id, ts, source, tenant, method, power_w,
            energy_counter_j, utilization_ratio)
        SELECT 'gpu-' || d, TIMESTAMPTZ '{t0}' + to_seconds(s), 'nvml', 'acme', 'counter',
               100 + 300 * ((s * 7 + d) % 10) / 10.0,
               100.0 * s + 150.0 * s, ((s * 7 + d) % 10) / 10.0
        FROM range({devices}) a(d), range({seconds}) b(s)"""
    )
    con.execute(
        f"""INSERT INTO inference_requests (trace_id, span_id, tenant, service, workload,
            operation, provider, llm_model, device_id, start_ts, end_ts, duration_s, ttft_s,
            input_tokens, cached_input_tokens, output_tokens, status, ingested_at)
        SELECT lpad(format('{{:x}}', r), 32, '0'), lpad(format('{{:x}}', r), 16, '0'), 'acme',
               'chat-api', 'chat', 'chat', 'vllm', 'llama-3.1-8b', 'gpu-' || (r % {devices}),
               TIMESTAMPTZ '{t0}' + to_seconds(r * {seconds - 60} / {requests}),
               TIMESTAMPTZ '{t0}' + to_seconds(r * {seconds - 60} / {requests} + 8 + r % 7),
               8 + r % 7, 0.2 + (r % 5) / 10.0, 500 + r % 1000, 0, 100 + r % 300, 'ok', now()
        FROM range({requests}) t(r)"""
    )
    con.close()
    return START + dt.timedelta(seconds=seconds)


def add_minute(path: Path, at: dt.datetime, devices: int, per_minute: int) -> None:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    t = at.strftime("%Y-%m-%d %H:%M:%S+00")
    con.execute(
        f"""INSERT INTO power_samples (device_id, ts, source, tenant, method, power_w,
            energy_counter_j)
        SELECT 'gpu-' || d, TIMESTAMPTZ '{t}' + to_seconds(s), 'nvml', 'acme', 'counter',
               250.0, 1e9 + 250.0 * s
        FROM range({devices}) a(d), range(60) b(s)"""
    )
    con.execute(
        f"""INSERT INTO inference_requests (trace_id, span_id, tenant, service, workload,
            operation, provider, llm_model, device_id, start_ts, end_ts, duration_s, ttft_s,
            input_tokens, cached_input_tokens, output_tokens, status, ingested_at)
        SELECT lpad(format('{{:x}}', r + 1000000000000), 32, '0'),
               lpad(format('{{:x}}', r + 1000000000000), 16, '0'), 'acme',
               'chat-api', 'chat', 'chat', 'vllm', 'llama-3.1-8b', 'gpu-' || (r % {devices}),
               TIMESTAMPTZ '{t}' + to_seconds(r * 50.0 / {per_minute}),
               TIMESTAMPTZ '{t}' + to_seconds(r * 50.0 / {per_minute} + 5), 5, 0.3,
               500, 0, 100, 'ok', now()
        FROM range({per_minute}) t(r)"""
    )
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    devices = 48
    requests = int(10_000_000 * args.scale)
    days = 50_000_000 * args.scale / devices / 86400
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        url = f"duckdb:///{path}"
        runner.upgrade(url)
        t = time.perf_counter()
        end = build(path, devices, days, requests)
        build_s = time.perf_counter() - t
        settings = AnalyticsSettings(
            sites={"*": SiteSettings(usd_per_kwh=Decimal("0.12"), pue=1.3)},
            hardware_usd_per_hour={"H100-SXM": Decimal("2.49")},
        )
        engine = make_engine(url)
        t = time.perf_counter()
        full = run_analytics(engine, settings, now=end)
        full_s = time.perf_counter() - t
        engine.dispose()
        add_minute(path, end, devices, requests // int(days * 1440))
        engine = make_engine(url)
        t = time.perf_counter()
        inc = run_analytics(engine, settings, now=end + dt.timedelta(minutes=1))
        inc_s = time.perf_counter() - t
        engine.dispose()
    samples = int(days * 86400) * devices
    print(
        f"warehouse: {requests:,} requests, {samples:,} samples, {devices} devices, "
        f"{days:.1f} days (built in {build_s:.1f} s)"
    )
    print(
        f"full run:        {full_s:7.1f} s  ({full.requests:,} requests, "
        f"{full.requests / full_s:,.0f} requests/s)  target < 120 s at scale 1"
    )
    print(
        f"incremental run: {inc_s:7.2f} s  ({inc.requests:,} requests re-derived in the "
        f"lateness window)  target < 2 s"
    )


if __name__ == "__main__":
    main()
