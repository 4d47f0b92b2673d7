"""kill -9 of one of two ingest replicas on PostgreSQL under load. Clients fail over to the
other replica and resend what was not acknowledged (some of it was already spooled by the dead
one); the restarted replica replays its spool. Every acknowledged span is stored, none twice.

(tests/ingest/test_ingest_crash.py covers a single server on both backends.)"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.hardening.support import Sender, fresh_pg_database, span_bodies, stored
from tests.pipeline.support import free_port, subprocess_env, wait_until_written, wattledger_server
from wattledger.ingest.auth import create_key
from wattledger.migrations import runner
from wattledger.models import make_engine

pytestmark = pytest.mark.postgres


def test_kill_9_of_a_replica_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with fresh_pg_database() as url:
        runner.upgrade(url)
        engine = make_engine(url)
        key = create_key(engine, "acme").key
        engine.dispose()
        ports = [free_port(), free_port()]
        envs = []
        for i in range(2):
            (tmp_path / f"r{i}").mkdir()
            envs.append(
                subprocess_env(
                    tmp_path / f"r{i}",
                    # Rows wait in the spool, not yet in the warehouse, when the kill comes.
                    WATTLEDGER_INGEST__FLUSH_INTERVAL_S="3" if i == 0 else "0.05",
                    WATTLEDGER_INGEST__BATCH_MAX_ROWS="1000000",
                )
            )
        logs = [tmp_path / "victim.log", tmp_path / "survivor.log", tmp_path / "restart.log"]
        bodies = span_bodies(140, per_body=25)
        victim = wattledger_server(url, ["ingest", "serve"], ports[0], envs[0], logs[0])
        survivor = wattledger_server(url, ["ingest", "serve"], ports[1], envs[1], logs[1])
        with survivor:
            with victim as proc:
                sender = Sender([f"http://127.0.0.1:{p}" for p in ports], key)
                threads = sender.run(bodies, threads=4)
                deadline = time.monotonic() + 60
                while len(sender.acked) < 40 * 25 and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.kill(proc.pid, signal.SIGKILL)  # mid-load
                proc.wait()
                killed_at_acked = len(sender.acked)
                for t in threads:
                    t.join(timeout=120)  # the rest goes to the survivor
            wait_until_written(ports[1])
            before_replay, _ = stored(url)
            with wattledger_server(url, ["ingest", "serve"], ports[0], envs[0], logs[2]):
                wait_until_written(ports[0])
        spans, _ = stored(url)
    sent = set().union(*(b.keys for b in bodies))
    assert killed_at_acked < len(sent), "the kill came after everything was sent"
    assert sender.acked == sent  # clients got every body accepted by one replica or the other
    assert "replaying" in logs[2].read_text()
    assert len(set(before_replay)) < len(sent), "the dead replica had nothing left to replay"
    assert len(spans) == len(set(spans)), "a span was stored twice"
    assert set(spans) == sent, f"{len(sent - set(spans))} acknowledged spans were lost"
