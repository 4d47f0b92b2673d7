"""No prompt text on disk: the spool keeps bodies without content and deletes them once stored.

Seen (issue 16): the docs said message content is never stored, but a ``gen_ai.input.messages``
prompt was readable in ``spool/…/*.seg`` after the write, after a checkpoint and after a
graceful stop, until the segment rotated.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ingest_helpers import make_spans, post, protobuf_body, rows
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from wattledger.ingest.mapping.requests import map_requests
from wattledger.ingest.otlp import traces
from wattledger.ingest.privacy import strip_json, strip_protobuf

PROMPT = "Tell me the launch codes 7c1e-secret-prompt"
ANSWER = "The launch codes are 42-completion-text"


def _body() -> bytes:
    """A span as OpenLLMetry and the GenAI semconv write it: content in span attributes
    (current and legacy names) and in a span event's attributes."""
    spans = make_spans(
        [
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.input.messages": f'[{{"role":"user","parts":[{{"content":"{PROMPT}"}}]}}]',
                "gen_ai.prompt.0.content": PROMPT,
                "gen_ai.completion.0.content": ANSWER,
            }
        ]
    )
    req = ExportTraceServiceRequest.FromString(protobuf_body(spans))
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.events.append(
        Span.Event(
            name="gen_ai.content.completion",
            time_unix_nano=span.start_time_unix_nano + 1,
            attributes=[KeyValue(key="gen_ai.completion", value=AnyValue(string_value=ANSWER))],
        )
    )
    return req.SerializeToString()


def _on_disk(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def _spool_dir(server) -> Path:
    return server.service.spool.directory


def test_no_prompt_reaches_the_spool_and_stored_bodies_leave_it(serve, engine, key, tmp_path):
    server = serve(flush_interval_s=2.0, checkpoint_interval_s=0.05)
    r = post(server.url, "/v1/traces", _body(), key)
    assert r.status_code == 200
    spool = _spool_dir(server)
    # Right after the 200, before the write: the body is on disk (durable), its content not.
    assert server.service.spool.pending_records == 1
    disk = _on_disk(spool)
    assert b"gpt-4o" in disk
    assert PROMPT.encode() not in disk and ANSWER.encode() not in disk
    server.flush()
    deadline = time.monotonic() + 20
    while server.service.spool.pending_records and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.service.spool.pending_records == 0
    # Once written (and on DuckDB checkpointed), the body leaves the disk at once (retention 0).
    assert b"gpt-4o" not in _on_disk(spool)
    stored = rows(engine, "SELECT llm_model, input_tokens FROM inference_requests")
    assert stored == [{"llm_model": "gpt-4o", "input_tokens": 12}]
    server.__exit__(None, None, None)  # graceful stop
    everything = _on_disk(tmp_path)  # spool, warehouse file (DuckDB), logs
    assert PROMPT.encode() not in everything and ANSWER.encode() not in everything


def test_a_retention_keeps_stored_bodies_and_opting_in_keeps_content(serve, key):
    server = serve(spool_retention_s=3600, spool_content=True, checkpoint_interval_s=0.05)
    assert post(server.url, "/v1/traces", _body(), key).status_code == 200
    server.flush()
    deadline = time.monotonic() + 20
    while server.service.spool.pending_records and time.monotonic() < deadline:
        time.sleep(0.05)
    disk = _on_disk(_spool_dir(server))
    assert b"gpt-4o" in disk and PROMPT.encode() in disk


@pytest.mark.parametrize("fmt", ["protobuf", "json"])
def test_a_stripped_body_maps_to_the_same_row(fmt: str) -> None:
    """Replay after a crash decodes the stripped body: it must give the row the original gave."""
    raw = _body()
    if fmt == "json":
        from tests.fuzz.test_fuzz_roundtrip import to_otlp_json  # OTLP/JSON, hex ids

        raw = to_otlp_json(ExportTraceServiceRequest.FromString(raw))
        stripped = strip_json(raw)
    else:
        stripped = strip_protobuf(raw)
    assert PROMPT.encode() not in stripped and ANSWER.encode() not in stripped
    before = map_requests(traces.decode(raw, fmt).columns, tenant="t").table
    after = map_requests(traces.decode(stripped, fmt).columns, tenant="t").table
    assert before.drop_columns(["ingested_at"]) == after.drop_columns(["ingested_at"])
    assert before.num_rows == 1
