"""The DuckDB ingest spool on a file system that fills up: no 2xx for a body that was not
durably spooled, a 503 with Retry-After and a log line naming the problem and the fix; once
space is back ingest resumes, and after a kill -9 every acknowledged span is still there."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.hardening.support import Sender, span_bodies, stored
from tests.pipeline.support import free_port, subprocess_env, wattledger_server
from wattledger.migrations import runner


def test_full_spool_disk_answers_503_and_resumes_without_loss(
    tiny_fs: Path, tmp_path: Path
) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    runner.upgrade(url)
    spool = tiny_fs / "spool"
    env = subprocess_env(
        tmp_path,
        WATTLEDGER_INGEST__SPOOL_DIR=str(spool),
        WATTLEDGER_INGEST__RETRY_AFTER_S="1",
        # Spool records stay until a checkpoint moves their rows into the file: keep them.
        WATTLEDGER_INGEST__CHECKPOINT_INTERVAL_S="3600",
    )
    port = free_port()
    log = tmp_path / "ingest.log"
    bodies = span_bodies(60, per_body=100)
    filler = tiny_fs / "filler"
    with wattledger_server(url, ["ingest", "serve", "--insecure-no-auth"], port, env, log) as proc:
        # Leave room for a few bodies only.
        st = os.statvfs(tiny_fs)
        with filler.open("wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 96 * 1024))
        sender = Sender([f"http://127.0.0.1:{port}"], attempts=100_000)
        threads = sender.run(bodies, threads=2)
        deadline = time.monotonic() + 60
        while sender.codes.get(503, 0) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        acked_while_full = len(sender.acked)
        filler.unlink()  # space is back
        for t in threads:
            t.join(timeout=120)
        text = log.read_text()
        os.kill(proc.pid, signal.SIGKILL)  # what was acknowledged must be durable by now
        proc.wait()
    with wattledger_server(url, ["ingest", "serve", "--insecure-no-auth"], port, env, log):
        pass  # replay the spool, write it, stop gracefully
    spans, _ = stored(url)
    sent = set().union(*(b.keys for b in bodies))
    assert 0 < acked_while_full < len(sent)
    assert sender.codes.get(503, 0) >= 5 and sender.retry_after == {"1"}, sender.codes
    assert "No space left on device" in text and "Free space on that file system" in text
    assert sender.acked == sent  # ingest resumed once there was space
    assert len(spans) == len(set(spans)) and set(spans) == sent
