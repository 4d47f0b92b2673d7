"""Live mode (OTLP through a running ingest server) lands the same requests as backfill."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from wattledger.migrations import runner
from wattledger.models import make_engine

START = dt.datetime(2026, 11, 16, 15, tzinfo=dt.UTC)
SPEED, DURATION_S = 240.0, 5.0  # 20 simulated minutes


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rows(url: str) -> dict[tuple[str, str], tuple]:
    engine = make_engine(url)
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT trace_id, span_id, provider, llm_model, device_id, input_tokens, "
                "output_tokens, workload, quantization FROM inference_requests"
            )
        ).all()
    engine.dispose()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def test_live_lands_the_same_requests_as_backfill(tmp_path: Path) -> None:
    live_url = f"duckdb:///{tmp_path}/live.duckdb"
    back_url = f"duckdb:///{tmp_path}/backfill.duckdb"
    for url in (live_url, back_url):
        runner.upgrade(url)
    port = _free_port()
    env = {
        **os.environ,
        "WATTLEDGER_DATA_DIR": str(tmp_path / "data"),
        "WATTLEDGER_INGEST__STATS_LOG_INTERVAL_S": "0",
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wattledger",
            "--database-url",
            live_url,
            "ingest",
            "serve",
            "--port",
            str(port),
            "--insecure-no-auth",
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        common = ["--seed", "5", "--start", START.isoformat(), "--rate", "0.3"]
        live = subprocess.run(
            [
                sys.executable,
                "-m",
                "wattledger",
                "simulate",
                "--endpoint",
                f"http://127.0.0.1:{port}",
                "--speed",
                str(SPEED),
                "--duration-s",
                str(DURATION_S),
                "--ground-truth",
                str(tmp_path / "live.parquet"),
                *common,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert live.returncode == 0, live.stderr[-2000:]
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: queued rows are written first
        server.wait(timeout=60)
        log.close()
    days = SPEED * DURATION_S / 86400
    back = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattledger",
            "--database-url",
            back_url,
            "simulate",
            "--backfill-days",
            str(days),
            "--ground-truth",
            str(tmp_path / "back.parquet"),
            *common,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert back.returncode == 0, back.stderr[-2000:]
    live_rows, back_rows = _rows(live_url), _rows(back_url)
    assert len(back_rows) > 200
    # Every request is in both, with the same route and tokens.
    assert live_rows.keys() == back_rows.keys()
    assert live_rows == back_rows
