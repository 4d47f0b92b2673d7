"""``wattledger serve``: ingest, the scheduler and mart snapshots in one process."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

from tests.pipeline.test_live_vs_backfill import _free_port


def test_serve_ingests_derives_and_publishes_a_snapshot(tmp_path: Path) -> None:
    port = _free_port()
    url = f"duckdb:///{tmp_path}/w.duckdb"
    env = {
        **os.environ,
        "WATTLEDGER_DATA_DIR": str(tmp_path / "data"),
        "WATTLEDGER_ANALYTICS__INTERVAL_S": "1",
        "WATTLEDGER_ANALYTICS__LATENESS_S": "86400",
        "WATTLEDGER_INGEST__STATS_LOG_INTERVAL_S": "0",
    }
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wattledger",
            "--database-url",
            url,
            "serve",
            "--port",
            str(port),
            "--insecure-no-auth",
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    snapshot = tmp_path / "data" / "marts.duckdb"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)).replace(microsecond=0)
        sim = subprocess.run(
            [
                sys.executable,
                "-m",
                "wattledger",
                "simulate",
                "--endpoint",
                f"http://127.0.0.1:{port}",
                "--speed",
                "300",
                "--duration-s",
                "3",
                "--rate",
                "0.2",
                "--start",
                start.isoformat(),
                "--ground-truth",
                str(tmp_path / "t.parquet"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert sim.returncode == 0, sim.stderr[-2000:]
        requests = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not requests:
            time.sleep(1)
            if snapshot.exists():
                try:
                    con = duckdb.connect(str(snapshot), read_only=True)
                    requests = (
                        con.execute("SELECT sum(requests) FROM rollup_hourly").fetchone()[0] or 0
                    )
                    con.close()
                except duckdb.Error:
                    continue  # replaced while we opened it: try again
        assert requests > 0, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        log.close()
