"""Mart snapshots: readers see derived tables without the writer's lock."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.analytics.fleet import T0, Req, add_requests
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.marts import publish_snapshot, snapshot_engine
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.migrations import runner
from wattledger.models import RollupHourly, make_engine


def test_snapshot_is_readable_from_another_process_while_the_writer_holds_the_file(
    duckdb_url: str, tmp_path: Path
) -> None:
    runner.upgrade(duckdb_url)
    writer = make_engine(duckdb_url)
    add_requests(writer, [Req(1, 10, 1, 20, 10, 10, device_id=None, provider="p")])
    run_analytics(writer, AnalyticsSettings(), now=T0 + dt.timedelta(hours=1))
    snap = publish_snapshot(writer, tmp_path / "marts.duckdb")
    with writer.connect() as held:  # the writer keeps the warehouse open
        held.execute(sa.text("SELECT 1"))
        code = (
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.execute('select sum(requests) from rollup_hourly').fetchone()[0])"
        )
        r = subprocess.run(
            [sys.executable, "-c", code, str(snap)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "1"
        locked = subprocess.run(
            [sys.executable, "-c", code, duckdb_url.split(":///")[1]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert locked.returncode != 0 and "lock" in locked.stderr.lower()
    # A second publish replaces the file atomically; a read-only engine reads it.
    add_requests(writer, [Req(2, 30, 1, 40, 10, 10, device_id=None, provider="p")])
    run_analytics(writer, AnalyticsSettings(), now=T0 + dt.timedelta(hours=1), full=True)
    publish_snapshot(writer, snap)
    reader = snapshot_engine(snap)
    with reader.connect() as c:
        assert c.execute(sa.select(sa.func.sum(RollupHourly.requests))).scalar() == 2
    reader.dispose()
    writer.dispose()
    assert not list(tmp_path.glob(".*.tmp"))
