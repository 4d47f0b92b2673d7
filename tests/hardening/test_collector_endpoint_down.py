"""The collector exporting to an ingest endpoint that is down, then comes up: it keeps sampling
and never crashes, keeps up to ``max_buffered_samples`` cycles (dropping the oldest, counted),
and what it delivers lands exactly once."""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from tests.pipeline.support import free_port, subprocess_env, wait_until_written, wattledger_server
from wattledger.migrations import runner
from wattledger.models import make_engine

STOPPED = re.compile(
    r"Collector stopped: (\d+) cycle\(s\) sampled, (\d+) exported in \d+ request\(s\), "
    r"(\d+) dropped"
)


def _wait_for(path: Path, text: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} not in {path.read_text()[-2000:]}"
        time.sleep(0.1)


def test_collector_survives_a_down_endpoint_and_delivers_once(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    runner.upgrade(url)
    port = free_port()  # nothing listens here yet
    env = subprocess_env(
        tmp_path,
        WATTLEDGER_COLLECTOR__MAX_BUFFERED_SAMPLES="10",
        WATTLEDGER_COLLECTOR__MAX_BACKOFF_S="1",
        WATTLEDGER_COLLECTOR__EXPORT_TIMEOUT_S="2",
    )
    collector_log = tmp_path / "collector.log"
    with collector_log.open("wb") as out:
        collector = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wattledger",
                "collect",
                "--source",
                "fake=2",
                "--interval",
                "0.2",
                "--export-interval",
                "0.5",
                "--endpoint",
                f"http://127.0.0.1:{port}",
            ],
            env=env,
            stdout=out,
            stderr=out,
        )
        try:
            _wait_for(collector_log, "Cannot export to")
            # ~20 cycles sampled while down: more than the buffer keeps. The buffer holds 2 s of
            # cycles and the collector retries within 1 s (max backoff) of ingest being ready,
            # so what it delivers still reaches back to before ingest came up.
            time.sleep(4)
            assert collector.poll() is None, collector_log.read_text()[-2000:]
            with wattledger_server(
                url, ["ingest", "serve", "--insecure-no-auth"], port, env, tmp_path / "in.log"
            ):
                up = dt.datetime.now(dt.UTC)  # ingest is ready from here on
                _wait_for(collector_log, "works again")
                collector.send_signal(signal.SIGTERM)  # a last sample, then a flush
                assert collector.wait(timeout=60) == 0, collector_log.read_text()[-2000:]
                wait_until_written(port)
        finally:
            if collector.poll() is None:
                collector.kill()
                collector.wait()
    text = collector_log.read_text()
    sampled, exported, dropped = map(int, STOPPED.search(text).groups())  # type: ignore[union-attr]
    engine = make_engine(url)
    with engine.connect() as c:
        per_device = c.execute(
            sa.text(
                "SELECT device_id, count(*) AS n, count(DISTINCT ts) AS distinct_ts, "
                "min(ts) AS first FROM power_samples GROUP BY device_id"
            )
        ).all()
    engine.dispose()
    assert dropped > 0, text[-2000:]  # the buffer's bound held, and the drops were counted
    assert sampled == exported + dropped  # every cycle either delivered or counted as dropped
    assert len(per_device) == 2
    for row in per_device:
        assert row.n == row.distinct_ts == exported  # each delivered cycle exactly once
        first = row.first if row.first.tzinfo else row.first.replace(tzinfo=dt.UTC)
        assert first < up  # samples taken while ingest was down were delivered later
    assert f"{dropped} cycle(s) were dropped" in text or "cycle(s) were dropped meanwhile" in text
