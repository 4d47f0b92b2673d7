"""``bench/soak.py`` for a few seconds, so the soak script cannot rot between real runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_soak_smoke(tmp_path: Path) -> None:
    """DuckDB only, to keep the suite short: `make soak SOAK_ARGS='--backend postgres'` and the
    recorded PostgreSQL run (docs/benchmarks/soak.md) exercise the other path."""
    out = tmp_path / "soak.json"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--backend",
            "duckdb",
            "--seconds",
            "12",
            "--rate",
            "2048",
            "--sample-s",
            "2",
            "--analytics-interval-s",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["failures"] == []
    # Every acknowledged span is in the warehouse, and the server's counters agree.
    assert result["spans_sent"] > 0
    assert result["rows_in_warehouse"] == result["spans_sent"]
    assert result["spans_committed_metric"] == result["spans_sent"]
    assert result["queue_rows"]["after_drain"] == 0
    assert len(result["samples"]) >= 2 and all(s["rss_mib"] > 0 for s in result["samples"])
    # The first scheduled run starts with the server and finishes before it stops.
    assert result["analytics_runs"] >= 1 and result["analytics_runs_failed"] == 0
