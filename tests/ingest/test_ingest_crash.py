"""kill -9 of a loaded server loses nothing it acknowledged; a broken DuckDB log is survivable."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import duckdb
import httpx
from ingest_helpers import (
    add_key,
    free_port,
    make_spans,
    protobuf_body,
    rows,
    server_process,
)
from sqlalchemy.engine import make_url

from wattledger.ingest.recovery import recover_duckdb
from wattledger.migrations import runner
from wattledger.models import make_engine

GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "vllm",
    "gen_ai.request.model": "m",
}


def _bodies(n: int) -> list[tuple[bytes, set[str]]]:
    spans = make_spans([{**GENAI, "gen_ai.usage.input_tokens": i} for i in range(n * 32)])
    out = []
    for i in range(n):
        chunk = spans[i * 32 : (i + 1) * 32]
        out.append((protobuf_body(chunk), {format(s.context.span_id, "016x") for s in chunk}))
    return out


def test_kill_9_under_load_loses_no_acknowledged_span(db_url: str, tmp_path: Path) -> None:
    runner.upgrade(db_url)
    engine = make_engine(db_url)
    key = add_key(engine)
    engine.dispose()  # the server process owns a DuckDB file
    bodies = _bodies(300)
    acked: set[str] = set()
    port = free_port()
    # Rows wait in the spool, not yet in the warehouse, when the kill comes.
    env = {
        "WATTLEDGER_INGEST__FLUSH_INTERVAL_S": "3",
        "WATTLEDGER_INGEST__BATCH_MAX_ROWS": "1000000",
        "WATTLEDGER_INGEST__CHECKPOINT_INTERVAL_S": "60",
    }
    with server_process(db_url, tmp_path, port, env=env) as proc:
        stop = threading.Event()

        def send(share: list[tuple[bytes, set[str]]]) -> None:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                timeout=10,
                headers={
                    "authorization": f"Bearer {key}",
                    "content-type": "application/x-protobuf",
                },
            ) as client:
                for body, ids in share:
                    if stop.is_set():
                        return
                    try:
                        r = client.post("/v1/traces", content=body)
                    except httpx.HTTPError:
                        return  # the server died mid-request: not acknowledged
                    if r.status_code == 200:
                        acked.update(ids)

        threads = [threading.Thread(target=send, args=(bodies[i::3],)) for i in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 60 * 32 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-load, while clients are still sending
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
    assert len(acked) >= 60 * 32
    assert len(acked) < len(bodies) * 32, "the kill came after everything was sent"
    with server_process(db_url, tmp_path, port):
        pass  # start (replaying the spool), then stop gracefully (writing everything)
    log = (tmp_path / f"server-{port}.log").read_text()
    assert "replaying" in log  # the acknowledged rows came back from the spool
    engine = make_engine(db_url)
    stored = {r["span_id"] for r in rows(engine, "SELECT span_id FROM inference_requests")}
    engine.dispose()
    sent = set().union(*(ids for _, ids in bodies))
    assert acked <= stored, f"{len(acked - stored)} acknowledged spans were lost"
    assert stored <= sent


def test_unreplayable_duckdb_log_is_moved_aside(tmp_path: Path) -> None:
    """DuckDB refuses to open a file whose write-ahead log does not match it (as after some
    crashes, duckdb/duckdb #19712); recovery moves the log aside so the database opens."""
    other, target = tmp_path / "other.duckdb", tmp_path / "target.duckdb"
    url = f"duckdb:///{target}"
    runner.upgrade(url)
    c = duckdb.connect(str(other))
    c.execute("CREATE TABLE t (a INTEGER)")
    c.execute("CHECKPOINT")
    c.execute("INSERT INTO t VALUES (1)")
    shutil.copy(str(other) + ".wal", str(target) + ".wal")  # a log that cannot replay here
    c.close()
    with duckdb.connect(str(other)):
        pass
    engine = make_engine(url)
    try:
        moved = recover_duckdb(engine)
        assert moved is not None and moved.exists() and ".wal.corrupt-" in moved.name
        assert not Path(str(target) + ".wal").exists()
        assert rows(engine, "SELECT count(*) AS n FROM inference_requests") == [{"n": 0}]
        assert recover_duckdb(engine) is None  # healthy now: nothing to do
    finally:
        engine.dispose()
    assert make_url(url).database == str(target)
