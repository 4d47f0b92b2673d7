"""``wattledger serve``: ingest, the scheduler and (DuckDB) mart snapshots in one process, on
DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import sqlalchemy as sa

from tests.pipeline.support import free_port, subprocess_env, wattledger, wattledger_server
from wattledger.models import make_engine


def _rollup_requests(url: str, snapshot: Path) -> int:
    """Requests in the rollups as readers see them: the snapshot on DuckDB (the server holds the
    warehouse), the database itself on PostgreSQL (no snapshot there)."""
    if url.startswith("duckdb"):
        if not snapshot.exists():
            return 0
        try:
            con = duckdb.connect(str(snapshot), read_only=True)
            n = con.execute("SELECT sum(requests) FROM rollup_hourly").fetchone()[0] or 0
            con.close()
            return int(n)
        except duckdb.Error:
            return 0  # replaced while we opened it: try again
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as c:
            return int(c.execute(sa.text("SELECT sum(requests) FROM rollup_hourly")).scalar() or 0)
    finally:
        engine.dispose()


def test_serve_ingests_derives_and_publishes(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    url = db_url
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
            requests = _rollup_requests(url, snapshot)
        assert requests > 0, (tmp_path / "serve.log").read_text()[-3000:]
