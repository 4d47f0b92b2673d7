"""Live mode (OTLP through a running ingest server) lands the same requests as backfill."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from tests.pipeline.support import (
    free_port,
    subprocess_env,
    wait_until_written,
    wattledger,
    wattledger_server,
)
from wattledger.migrations import runner
from wattledger.models import make_engine

START = dt.datetime(2026, 11, 16, 15, tzinfo=dt.UTC)
SPEED, DURATION_S = 240.0, 5.0  # 20 simulated minutes


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


def test_live_lands_the_same_requests_as_backfill(db_url: str, tmp_path: Path) -> None:
    live_url = db_url  # live ingest on each backend; the backfill reference on DuckDB
    back_url = f"duckdb:///{tmp_path}/backfill.duckdb"
    for url in (live_url, back_url):
        runner.upgrade(url)
    port = free_port()
    env = subprocess_env(tmp_path)
    common = ["--seed", "5", "--start", START.isoformat(), "--rate", "0.3"]
    with wattledger_server(
        live_url, ["ingest", "serve", "--insecure-no-auth"], port, env, tmp_path / "server.log"
    ):
        wattledger(
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
            env=env,
        )
        wait_until_written(port)
    days = SPEED * DURATION_S / 86400
    wattledger(
        "--database-url",
        back_url,
        "simulate",
        "--backfill-days",
        str(days),
        "--ground-truth",
        str(tmp_path / "back.parquet"),
        *common,
        env=env,
    )
    live_rows, back_rows = _rows(live_url), _rows(back_url)
    assert len(back_rows) > 200
    # Every request is in both, with the same route and tokens.
    assert live_rows.keys() == back_rows.keys()
    assert live_rows == back_rows
