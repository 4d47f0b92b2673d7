"""Garbage through HTTP never gets a 5xx: the ingest ASGI app in-process, on a DuckDB file.

Random, mutated and valid bodies, right and wrong keys, any content type and encoding (and
bodies that lie about their encoding) are answered 200, 400, 401, 413 or 415, never 5xx, and
never by the "unexpected error" path, which would mean an exception other than DecodeError.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.fuzz.profiles import fuzz
from tests.fuzz.strategies import metric_requests, mutated, trace_requests
from tests.fuzz.test_fuzz_roundtrip import to_otlp_json
from wattledger.config import load_settings
from wattledger.ingest import IngestService
from wattledger.ingest.auth import create_key
from wattledger.migrations import runner
from wattledger.models import make_engine

CTYPES = [
    "application/x-protobuf",
    "application/json",
    "application/protobuf",
    "application/json; charset=utf-8",
    "text/plain",
    "",
]
ENCODINGS = ["", "gzip", "deflate", "identity", "br", "x-gzip"]
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@st.composite
def requests(draw: Any, key: str) -> tuple[str, dict[str, str], bytes]:
    signal = draw(st.sampled_from(["traces", "metrics"]))
    message = draw(trace_requests() if signal == "traces" else metric_requests())
    ctype = draw(st.one_of(st.sampled_from(CTYPES), header_text))
    body = to_otlp_json(message) if "json" in ctype else message.SerializeToString()
    body = draw(st.one_of(st.just(body), mutated(body), st.binary(max_size=200), st.just(b"")))
    encoding = draw(st.one_of(st.sampled_from(ENCODINGS), header_text))
    if draw(st.booleans()):  # encode honestly; otherwise the header may lie
        if encoding in ("gzip", "x-gzip"):
            body = gzip.compress(body)
        elif encoding == "deflate":
            body = zlib.compress(body)
    auth = draw(
        st.one_of(
            st.just(f"Bearer {key}"),
            st.just(f"Bearer {key[:-1]}x"),
            st.just(""),
            header_text,
            header_text.map(lambda t: f"Bearer {t}"),
        )
    )
    headers = {"content-type": ctype, "content-encoding": encoding, "authorization": auth}
    return f"/v1/{signal}", {k: v for k, v in headers.items() if v}, body


def test_garbage_never_gets_a_5xx(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    runner.upgrade(url)
    settings = load_settings(
        database_url=url,
        data_dir=tmp_path,
        ingest={
            "flush_interval_s": 0.05,
            "stats_log_interval_s": 0,
            "auth_cache_ttl_s": 60,
            "max_body_bytes": 4096,
        },
    )
    engine = make_engine(url)
    key = create_key(engine, "acme").key
    service = IngestService(settings, engine)
    statuses: dict[int, int] = {}
    caplog.set_level(logging.ERROR, logger="wattledger")
    try:
        with TestClient(service.app) as client:

            @fuzz(40)
            @given(requests(key))
            def send(case: tuple[str, dict[str, str], bytes]) -> None:
                path, headers, body = case
                r = client.post(path, content=body, headers=headers)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code in (200, 400, 401, 413, 415), (r.status_code, r.text)
                errors = [rec.getMessage() for rec in caplog.records]
                assert not errors, errors

            send()
            assert service.writer.wait_idle(30) and service.writer.healthy
    finally:
        engine.dispose()
    assert sum(statuses.values()) >= 1
