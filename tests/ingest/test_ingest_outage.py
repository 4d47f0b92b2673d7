"""The warehouse goes away: 503 with Retry-After while it is down, nothing lost after."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from ingest_helpers import (
    RunningServer,
    TcpProxy,
    add_key,
    make_spans,
    post,
    protobuf_body,
    rows,
    settings_for,
)
from sqlalchemy.engine import make_url

from wattledger.ingest import IngestService
from wattledger.migrations import runner
from wattledger.models import make_engine

GENAI = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "vllm"}


def _body(i: int) -> tuple[bytes, set[str]]:
    spans = make_spans([{**GENAI, "gen_ai.usage.input_tokens": i}] * 4)
    return protobuf_body(spans), {format(s.context.span_id, "016x") for s in spans}


def _until(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.mark.postgres
def test_postgres_outage_gives_503_and_recovers_without_loss(pg_url, tmp_path):
    runner.upgrade(pg_url)
    direct = make_engine(pg_url)
    key = add_key(direct, "acme")
    proxy = TcpProxy(make_url(pg_url).port or 5432).start()
    via_proxy = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    engine = make_engine(via_proxy.render_as_string(hide_password=False))
    settings = settings_for(pg_url, tmp_path, retry_after_s=3)
    acked: set[str] = set()
    try:
        with RunningServer(IngestService(settings, engine)) as server:
            body, ids = _body(0)
            assert post(server.url, "/v1/traces", body, key).status_code == 200
            acked |= ids
            server.flush()
            proxy.cut()
            i = 1
            while True:  # the first request after the cut may still be accepted (spooled)
                body, ids = _body(i)
                r = post(server.url, "/v1/traces", body, key)
                if r.status_code == 503:
                    break
                assert r.status_code == 200
                acked |= ids
                i += 1
                assert i < 100, "never answered 503 while the database was down"
            assert r.headers["retry-after"] == "3"
            assert httpx.get(server.url + "/readyz").status_code == 503
            proxy.restore()
            _until(lambda: httpx.get(server.url + "/readyz").status_code == 200)
            body, ids = _body(1000)
            assert post(server.url, "/v1/traces", body, key).status_code == 200
            acked |= ids
            server.flush()
    finally:
        proxy.stop()
        engine.dispose()
    stored = {r["span_id"] for r in rows(direct, "SELECT span_id FROM inference_requests")}
    direct.dispose()
    assert acked <= stored and len(stored) == len(acked)


def test_duckdb_locked_by_another_process_gives_503_then_recovers(duckdb_url, tmp_path):
    runner.upgrade(duckdb_url)
    engine = make_engine(duckdb_url)
    key = add_key(engine, "acme")
    engine.dispose()
    path = make_url(duckdb_url).database
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print('locked', flush=True); sys.stdin.read()",
            path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        settings = settings_for(duckdb_url, tmp_path)
        with RunningServer(IngestService(settings, engine)) as server:
            body, ids = _body(1)
            r = post(server.url, "/v1/traces", body, key)
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
            assert httpx.get(server.url + "/readyz").status_code == 503
            holder.communicate(b"", timeout=30)  # the other process lets go of the file
            _until(lambda: httpx.get(server.url + "/readyz").status_code == 200)
            assert post(server.url, "/v1/traces", body, key).status_code == 200
            server.flush()
            got = {r["span_id"] for r in rows(engine, "SELECT span_id FROM inference_requests")}
            assert got == ids
    finally:
        if holder.poll() is None:
            holder.kill()
        engine.dispose()
