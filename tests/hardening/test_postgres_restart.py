"""PostgreSQL stopped (immediate mode, like a crash) and restarted while ingest is under load:
ingest answers 503 with Retry-After while it cannot write, clients retry, and everything that
was acknowledged lands exactly once. The cluster is the test's own (see conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.hardening.conftest import Cluster
from tests.hardening.support import Sender, span_bodies, stored
from tests.pipeline.support import free_port, subprocess_env, wait_until_written, wattledger_server
from wattledger.ingest.auth import create_key
from wattledger.migrations import runner
from wattledger.models import make_engine

pytestmark = pytest.mark.postgres


def test_postgres_restart_under_load_loses_nothing_acknowledged(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    with psycopg.connect(pg_cluster.admin_conninfo, autocommit=True) as conn:
        conn.execute("CREATE DATABASE wl")
    url = pg_cluster.url("wl")
    runner.upgrade(url)
    engine = make_engine(url)
    key = create_key(engine, "acme").key
    engine.dispose()
    bodies = span_bodies(150, per_body=25)
    port = free_port()
    env = subprocess_env(
        tmp_path,
        WATTLEDGER_INGEST__FLUSH_INTERVAL_S="0.05",
        WATTLEDGER_INGEST__RETRY_AFTER_S="1",
    )
    log = tmp_path / "ingest.log"
    with wattledger_server(url, ["ingest", "serve"], port, env, log):
        sender = Sender([f"http://127.0.0.1:{port}"], key, attempts=1000)
        threads = sender.run(bodies, threads=3)
        deadline = time.monotonic() + 60
        while len(sender.acked) < 40 * 25 and time.monotonic() < deadline:
            time.sleep(0.02)
        pg_cluster.stop("immediate")  # mid-load
        down_at_acked = len(sender.acked)
        # Keep it down until clients have seen the refusal (not a fixed sleep).
        deadline = time.monotonic() + 60
        while not sender.codes.get(503) and time.monotonic() < deadline:
            time.sleep(0.05)
        pg_cluster.start()
        for t in threads:
            t.join(timeout=180)
        wait_until_written(port)
    spans, _ = stored(url)
    sent = set().union(*(b.keys for b in bodies))
    text = log.read_text()
    assert down_at_acked < len(sent), "the outage came after everything was sent"
    assert sender.codes.get(503), f"no 503 while PostgreSQL was down: {sender.codes}"
    assert sender.retry_after == {"1"}  # every 503/429 said when to come back
    assert sender.acked == sent, "a body was never accepted after the restart"
    assert len(spans) == len(set(spans)), "a span was stored twice"
    assert set(spans) == sent, f"{len(sent - set(spans))} acknowledged spans were lost"
    assert "warehouse unreachable" in text and "warehouse reachable; writing" in text
