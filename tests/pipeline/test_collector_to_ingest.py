"""The sidecar collector's metrics, sent to a running ingest server, land as power samples."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from tests.pipeline.support import (
    free_port,
    subprocess_env,
    wait_until_written,
    wattledger_server,
)
from wattledger.models import make_engine


def test_collected_samples_reach_the_warehouse(migrated_url: str, tmp_path: Path) -> None:
    url = migrated_url
    port = free_port()
    env = subprocess_env(tmp_path)
    with wattledger_server(
        url, ["ingest", "serve", "--insecure-no-auth"], port, env, tmp_path / "ingest.log"
    ):
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
                "1",
                "--endpoint",
                f"http://127.0.0.1:{port}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(6)
        collector.send_signal(signal.SIGTERM)  # graceful: a last sample, then a flush
        _, err = collector.communicate(timeout=60)
        assert collector.returncode == 0, err.decode()[-2000:]
        wait_until_written(port)
    engine = make_engine(url)
    with engine.connect() as c:
        devices = c.execute(
            sa.text("SELECT device_id, power_source FROM devices ORDER BY device_id")
        ).all()
        rows = c.execute(
            sa.text(
                "SELECT device_id, count(*), min(energy_counter_j), max(energy_counter_j), "
                "min(power_w), max(method) FROM power_samples GROUP BY device_id ORDER BY 1"
            )
        ).all()
    engine.dispose()
    assert len(devices) == 2 and {d.power_source for d in devices} == {"fake"}
    assert len(rows) == 2
    for _device, n, lo, hi, power, method in rows:
        assert n >= 2  # several cycles (how many depends on the collector's start-up time)
        assert hi > lo >= 0 and power > 0 and method == "counter"
