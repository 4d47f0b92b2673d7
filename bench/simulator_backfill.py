"""Benchmark: a 14-day backfill of the demo fleet at the traces' rate.

Measures, in one run on this machine:

* ``simulate``: the simulator producing every chunk (workload, routing, the event loop of all
  14 devices, request/metric/truth columns) and writing the ground truth to Parquet (also
  reported on its own);
* ``arrow`` (the peer): turning the same request and metric columns into Arrow tables, the
  least any ingest mapping must do with them;
* ``end_to_end``: ``wattledger simulate --backfill-days`` into a DuckDB file through
  ``wattledger.ingest`` (only where the ingest column mapping is installed).

Wall times depend on what else runs on the machine; ``total_cpu_s`` (this process's CPU time,
one thread doing the work) is what the same run takes on an idle machine. Results go to
docs/benchmarks/simulator.md. Run::

    .venv/bin/python bench/simulator_backfill.py --days 14 --sample-interval-s 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from wattledger.collectors.simulate import GroundTruthWriter, Simulation
from wattledger.collectors.simulate._kernel import HAVE_NUMBA

MONDAY = 1_699_833_600.0  # 2023-11-13 00:00 UTC


def _arrow(columns: dict) -> pa.Table:
    return pa.table({k: pa.array(v, from_pandas=True) for k, v in columns.items()})


def bench(days: float, sample_interval_s: float, rate: float, out: Path) -> dict[str, object]:
    """Time the simulator and the Arrow peer over the same chunks."""
    sim = Simulation(
        start_unix_s=MONDAY,
        horizon_s=days * 86400,
        seed=1,
        rate=rate,
        sample_interval_s=sample_interval_s,
    )
    simulate_s = truth_s = arrow_s = 0.0
    requests = points = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    with GroundTruthWriter(out / "truth.parquet", sim.metadata()) as truth:
        chunks = sim.chunks()
        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            if chunk is None:
                break
            tt = time.perf_counter()
            truth.write(chunk)
            t1 = time.perf_counter()
            truth_s += t1 - tt
            _arrow(chunk.request_columns)
            if chunk.n_metric_points:
                _arrow(chunk.metric_columns)
            t2 = time.perf_counter()
            simulate_s += t1 - t0
            arrow_s += t2 - t1
            requests += chunk.n_requests
            points += chunk.n_metric_points
    return {
        "days": days,
        "rate": rate,
        "sample_interval_s": sample_interval_s,
        "numba": HAVE_NUMBA,
        "requests": requests,
        "metric_points": points,
        "simulate_s": round(simulate_s, 2),
        "of_which_ground_truth_s": round(truth_s, 2),
        "arrow_peer_s": round(arrow_s, 2),
        "simulate_over_arrow": round(simulate_s / arrow_s, 2),
        "requests_per_s": round(requests / simulate_s),
        "total_s": round(time.perf_counter() - started, 2),
        "total_cpu_s": round(time.process_time() - cpu_started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def end_to_end(days: float, sample_interval_s: float, out: Path) -> dict[str, object] | None:
    """Time the full CLI backfill into DuckDB, or None without the ingest column mapping."""
    try:
        import wattledger.ingest as ingest
    except ImportError:
        return None
    if not hasattr(ingest, "request_table_from_columns"):
        return None
    url = f"duckdb:///{out}/bench.duckdb"
    cli = [sys.executable, "-m", "wattledger", "--database-url", url]
    subprocess.run([*cli, "db", "upgrade"], check=True, capture_output=True)
    t0 = time.perf_counter()
    r = subprocess.run(
        [*cli, "simulate", "--backfill-days", str(days), "--seed", "1", "--json",
         "--sample-interval-s", str(sample_interval_s), "--start", "2023-11-13T00:00:00"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return {"wall_s": round(time.perf_counter() - t0, 2), **json.loads(r.stdout)}


def main() -> None:
    """Run the benchmark and print the results as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--sample-interval-s", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        list(Simulation(start_unix_s=MONDAY, horizon_s=60).chunks())  # warm the compile cache
        result = bench(args.days, args.sample_interval_s, args.rate, Path(tmp))
        result["end_to_end"] = end_to_end(args.days, args.sample_interval_s, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
