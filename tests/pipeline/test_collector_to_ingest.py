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


def test_modeled_tpu_and_scraped_node_power_reach_the_warehouse(
    migrated_url: str, tmp_path: Path
) -> None:
    """tpu-info (a stand-in printing its real table layout), dcgm-exporter in Kubernetes mode
    and Kepler land as devices; Kepler's per-pod shares are not devices and add no samples."""
    import http.server
    import threading

    from wattledger.collectors.sources.fakes.tools import FakeTool

    data = Path(__file__).parents[1] / "collectors" / "data"
    tool = FakeTool.printing(
        tmp_path / "bin", "tpu-info", (data / "tpu_info_v6e_busy.txt").read_text()
    )
    page = (
        (data / "dcgm_metrics_1.txt").read_text() + (data / "kepler_metrics_1.txt").read_text()
    ).encode()

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's API
            self.send_response(200)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    exporter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=exporter.serve_forever, args=(0.05,), daemon=True).start()
    url, port = migrated_url, free_port()
    env = subprocess_env(tmp_path, WATTLEDGER_COLLECTOR__SCRAPE_INTERVAL_S="0.5")
    try:
        with wattledger_server(
            url, ["ingest", "serve", "--insecure-no-auth"], port, env, tmp_path / "ingest.log"
        ):
            collector = subprocess.Popen(
                [
                    sys.executable, "-m", "wattledger", "collect",
                    "--source", f"tpu={tool.path}",
                    "--source", f"prometheus=http://127.0.0.1:{exporter.server_address[1]}/metrics",
                    "--interval", "0.2", "--export-interval", "1",
                    "--endpoint", f"http://127.0.0.1:{port}",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(6)
            collector.send_signal(signal.SIGTERM)
            _, err = collector.communicate(timeout=60)
            assert collector.returncode == 0, err.decode()[-2000:]
            wait_until_written(port)
    finally:
        exporter.shutdown()
        exporter.server_close()
    engine = make_engine(url)
    with engine.connect() as c:
        devices = dict(
            c.execute(sa.text("SELECT device_id, power_source FROM devices")).all()  # type: ignore[arg-type]
        )
        methods = dict(
            c.execute(  # type: ignore[arg-type]
                sa.text("SELECT device_id, max(method) FROM power_samples GROUP BY device_id")
            ).all()
        )
    engine.dispose()
    host_tpus = sorted(d for d in devices if ":tpu:" in d)
    assert len(host_tpus) == 4 and {devices[d] for d in host_tpus} == {"tpu"}
    assert {methods[d] for d in host_tpus} == {"modeled"}
    assert methods["GPU-a3e1f5b2-77c0-4e1d-9c2a-6b0f3d8e4a19"] == "counter"
    assert methods["gpu-node-7:kepler:intel-rapl:0"] == "counter"
    assert len(devices) == 4 + 2 + 2  # TPUs, DCGM GPUs, Kepler package + DRAM; no pods
