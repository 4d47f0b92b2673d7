"""``wattledger serve``: ingest, the scheduler and mart snapshots in one process."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb

from tests.pipeline.support import free_port, subprocess_env, wattledger, wattledger_server


def test_serve_ingests_derives_and_publishes_a_snapshot(tmp_path: Path) -> None:
    port = free_port()
    url = f"duckdb:///{tmp_path}/w.duckdb"
    env = subprocess_env(
        tmp_path, WATTLEDGER_ANALYTICS__INTERVAL_S="1", WATTLEDGER_ANALYTICS__LATENESS_S="86400"
    )
    snapshot = tmp_path / "data" / "marts.duckdb"
    with wattledger_server(url, ["serve", "--insecure-no-auth"], port, env, tmp_path / "serve.log"):
        start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)).replace(microsecond=0)
        wattledger(
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
            env=env,
        )
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
