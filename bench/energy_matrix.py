"""Energy truth matrix: attribution against traces with known true energy, over real OTLP.

Generates every case of ``wattledger.collectors.simulate.truth.matrix`` (10, 1, 0.2 Hz × counter
only, gauge only, both × catalog and unknown routes × sequential and overlapping requests), sends
them with the official OpenTelemetry exporters to a running ingest on a fresh DuckDB file, runs
analytics and prints, per mode and rate, the per-request error, the totals, how often the range
holds the truth and how many requests got a point 0 J. Exits non-zero when a group misses the
bars of issue 17 (docs/benchmarks.md "Energy truth").

Usage:
  python bench/energy_matrix.py               # the matrix, seed 17
  python bench/energy_matrix.py --seed 3      # other traces of the same shapes
  python bench/energy_matrix.py --per-case    # one line per case as well
  python bench/energy_matrix.py --json        # machine-readable
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from _local_ingest import local_ingest

from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.collectors.simulate import truth


def run(seed: int, workdir: Path) -> tuple[list[truth.TruthTrace], dict, dict]:
    """Generate, send, attribute; returns (traces, stored rows, device ledger)."""
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    traces = truth.generate_all(truth.matrix(seed=seed), now - dt.timedelta(hours=2))
    with local_ingest(workdir, "truth") as ingest:
        truth.send(traces, ingest.endpoint, ingest.api_key)
        ingest.flush()
        run_analytics(ingest.engine, AnalyticsSettings(overlap_fit_max_in_flight=4.0), now=now)
        return (
            traces,
            truth.stored(ingest.engine, traces),
            truth.device_ledger(ingest.engine, traces),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=17, help="trace seed (default 17)")
    parser.add_argument("--per-case", action="store_true", help="also print every case")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        traces, rows, ledger = run(args.seed, Path(tmp))
        elapsed = time.perf_counter() - t
    groups, misses = [], []
    for mode in truth.MODES:
        for rate in truth.RATES_HZ:
            picked = [x for x in traces if x.case.mode == mode and x.case.rate_hz == rate]
            s = truth.score(picked, rows, ledger)
            bar = truth.bars(mode, rate)
            missed = []
            if bar:
                if s.median_error > bar["median_error"]:
                    missed.append("median")
                if "p90_error" in bar and s.p90_error > bar["p90_error"]:
                    missed.append("p90")
                if abs(s.total_ratio - 1) > bar["total"]:
                    missed.append("total")
            if s.contained < 0.85:
                missed.append("range")
            if s.point_zero:
                missed.append("point 0")
            if s.conservation_j > 1e-6 * max(v[0] for v in ledger.values()):
                missed.append("conservation")
            groups.append({"mode": mode, "rate_hz": rate, **s.as_dict(), "missed": missed})
            if missed:
                misses.append(f"{mode} {rate:g} Hz: {', '.join(missed)}")
    cases = []
    if args.per_case:
        for x in traces:
            s = truth.score([x], rows, ledger)
            cases.append({"case": x.case.name, **s.as_dict()})
    if args.json:
        print(json.dumps({"groups": groups, "cases": cases, "elapsed_s": elapsed}, indent=2))
    else:
        print(
            f"{len(traces)} device traces, {sum(g['requests'] for g in groups)} requests, "
            f"sent over OTLP and attributed in {elapsed:.1f} s (seed {args.seed})"
        )
        head = (
            "| mode | rate | median err | p90 err | max err | total | in range | point 0 | result |"
        )
        print(head)
        print("|---|---|---|---|---|---|---|---|---|")
        for g in groups:
            print(
                f"| {g['mode']} | {g['rate_hz']:g} Hz | {g['median_error']:.1%} | "
                f"{g['p90_error']:.1%} | {g['max_error']:.1%} | {g['total_ratio']:.4f}× | "
                f"{g['contained']:.0%} | {g['point_zero']} | "
                f"{'MISS ' + ', '.join(g['missed']) if g['missed'] else 'ok'} |"
            )
        for c in cases:
            print(
                f"  {c['case']:<40} median {c['median_error']:6.1%}  p90 {c['p90_error']:6.1%}  "
                f"max {c['max_error']:6.1%}  total {c['total_ratio']:.4f}  in range "
                f"{c['contained']:4.0%}"
            )
    if misses:
        print("MISSED: " + "; ".join(misses), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
