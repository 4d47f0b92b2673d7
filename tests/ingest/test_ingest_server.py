"""The receiver over real HTTP: the official OTLP exporter in, correct rows out, both backends."""

from __future__ import annotations

import gzip
import json

import pytest
from google.rpc import status_pb2
from ingest_helpers import T0_NS, make_spans, post, protobuf_body, rows
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_official_exporter_spans_arrive_with_correct_values(serve, engine, key, compression):
    server = serve()
    spans = make_spans(
        [
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "server.address": "api.groq.com",
                "gen_ai.request.model": "llama-3.1-8b",
                "gen_ai.response.model": "llama-3.1-8b-instant",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 40,
                "gen_ai.usage.cache_read.input_tokens": 100,
                "wattledger.ttft_s": 0.25,
                "wattledger.workload": "chat",
                "wattledger.team": "search",
                "gen_ai.input.messages": "SECRET PROMPT",
            },
            {
                "gen_ai.system": "vllm",
                "gen_ai.request.model": "qwen",
                "gen_ai.usage.prompt_tokens": 7,
                "gen_ai.usage.completion_tokens": 3,
                "wattledger.device.id": "GPU-1",
                "error.type": "timeout",
            },
            {"http.method": "GET"},  # not GenAI: counted and dropped
        ],
        resource={"service.name": "chat-api", "host.name": "node-7"},
        events={1: [("gen_ai.content.completion.chunk", 400_000_000)]},
    )
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces",
        headers={"Authorization": f"Bearer {key}"},
        compression=compression,
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    server.flush()
    got = {r["span_id"]: r for r in rows(engine, "SELECT * FROM inference_requests")}
    assert len(got) == 2
    a = got[format(spans[0].context.span_id, "016x")]
    assert a["trace_id"] == format(spans[0].context.trace_id, "032x")
    assert (a["tenant"], a["service"], a["node"]) == ("acme", "chat-api", "node-7")
    assert (a["provider"], a["llm_model"], a["request_model"]) == (
        "groq",
        "llama-3.1-8b-instant",
        "llama-3.1-8b",
    )
    assert (a["input_tokens"], a["output_tokens"], a["cached_input_tokens"]) == (120, 40, 100)
    assert a["ttft_s"] == pytest.approx(0.25) and a["duration_s"] == pytest.approx(2.0)
    assert (a["workload"], a["team"], a["status"], a["producer"]) == (
        "chat",
        "search",
        "ok",
        "wattledger",
    )
    assert a["start_ts"].timestamp() == pytest.approx(T0_NS / 1e9)
    assert (a["first_token_ts"] - a["start_ts"]).total_seconds() == pytest.approx(0.25)
    b = got[format(spans[1].context.span_id, "016x")]
    assert (b["provider"], b["llm_model"], b["input_tokens"], b["output_tokens"]) == (
        "vllm",
        "qwen",
        7,
        3,
    )
    assert b["ttft_s"] == pytest.approx(0.4)  # from the first completion-chunk event
    assert (b["status"], b["error_type"], b["device_id"]) == ("error", "timeout", "GPU-1")
    # the device named by the span exists as a placeholder until the collector reports it
    assert rows(engine, "SELECT vendor FROM devices WHERE device_id = 'GPU-1'") == [
        {"vendor": "unknown"}
    ]
    stats = server.service.stats
    assert stats.value("wattledger_ingest_received_total", signal="traces") == 3
    assert stats.value("wattledger_ingest_dropped_total", signal="traces", reason="not_genai") == 1
    assert stats.value("wattledger_ingest_written_total", signal="traces") == 2


def test_message_content_is_never_stored(serve, engine, key):
    server = serve()
    spans = make_spans(
        [
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.prompt.0.content": "TOP SECRET",
                "gen_ai.output.messages": "ALSO SECRET",
            }
        ]
    )
    assert post(server.url, "/v1/traces", protobuf_body(spans), key).status_code == 200
    server.flush()
    dump = json.dumps(rows(engine, "SELECT * FROM inference_requests"), default=str)
    assert "SECRET" not in dump and '"openai"' in dump


def test_json_and_gzip_bodies(serve, engine, key):
    server = serve()
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "openlit"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "startTimeUnixNano": str(T0_NS),
                                "endTimeUnixNano": T0_NS + 1_500_000_000,
                                "kind": 3,
                                "status": {"code": 2},
                                "attributes": [
                                    {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                                    {
                                        "key": "gen_ai.openai.api_base",
                                        "value": {"stringValue": "https://api.cerebras.ai/v1"},
                                    },
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": "12"},
                                    },
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 5}},
                                    {
                                        "key": "gen_ai.response.time_to_first_chunk",
                                        "value": {"doubleValue": 0.5},
                                    },
                                    {
                                        "key": "gen_ai.response.finish_reasons",
                                        "value": {
                                            "arrayValue": {"values": [{"stringValue": "stop"}]}
                                        },
                                    },
                                ],
                                "unknownField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    body = json.dumps(doc).encode()
    r = post(
        server.url,
        "/v1/traces",
        gzip.compress(body),
        key,
        "application/json",
        **{"content-encoding": "gzip"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {}
    server.flush()
    (row,) = rows(engine, "SELECT * FROM inference_requests")
    assert (row["trace_id"], row["span_id"]) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
    )
    assert (row["service"], row["provider"], row["status"], row["producer"]) == (
        "json-svc",
        "cerebras",
        "error",
        "openlit",
    )
    assert (row["input_tokens"], row["output_tokens"], row["ttft_s"]) == (12, 5, 0.5)


def test_a_batch_sent_twice_is_stored_once(serve, engine, key):
    server = serve()
    body = protobuf_body(
        make_spans([{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "x"}] * 5)
    )
    for _ in range(3):
        assert post(server.url, "/v1/traces", body, key).status_code == 200
    server.flush()
    assert rows(engine, "SELECT count(*) AS n FROM inference_requests") == [{"n": 5}]
    assert server.service.stats.value("wattledger_ingest_duplicates_total", signal="traces") == 10


def test_partial_success_names_the_first_problem(serve, engine, key):
    server = serve()
    spans = make_spans(
        [
            {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "x"},
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "x",
                "gen_ai.usage.input_tokens": "many",
            },
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "x",
                "gen_ai.usage.output_tokens": -3,
            },
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "x",
                "gen_ai.request.model": "m" * 201,
            },
        ]
    )
    r = post(server.url, "/v1/traces", protobuf_body(spans), key)
    assert r.status_code == 200
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 3
    assert "gen_ai.usage.input_tokens has value 'many', expected an integer" in (
        resp.partial_success.error_message
    )
    server.flush()
    assert rows(engine, "SELECT span_id FROM inference_requests") == [
        {"span_id": format(spans[0].context.span_id, "016x")}
    ]
    stats = server.service.stats
    for reason in ("bad_type", "bad_value", "too_long"):
        assert stats.value("wattledger_ingest_rejected_total", signal="traces", reason=reason) == 1


@pytest.mark.parametrize(
    ("body", "ctype", "headers", "status"),
    [
        (b"\x0a\xff\xff garbage", "application/x-protobuf", {}, 400),
        (b"{not json", "application/json", {}, 400),
        (b'["a list"]', "application/json", {}, 400),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [42]}]}]}', "application/json", {}, 400),
        (b"plain", "text/plain", {}, 415),
        (b"x", "application/x-protobuf", {"content-encoding": "br"}, 415),
        (b"not gzip at all", "application/x-protobuf", {"content-encoding": "gzip"}, 400),
    ],
)
def test_bad_bodies_get_the_documented_answer(serve, engine, key, body, ctype, headers, status):
    server = serve()
    r = post(server.url, "/v1/traces", body, key, ctype, **headers)
    assert r.status_code == status
    if r.headers["content-type"] == "application/x-protobuf":  # google.rpc.Status
        assert status_pb2.Status.FromString(r.content).message
    else:
        assert r.json()["message"]
    server.flush()
    assert rows(engine, "SELECT count(*) AS n FROM inference_requests") == [{"n": 0}]
    assert post(server.url, "/v1/traces", b"", key).status_code == 200  # still serving


def test_oversized_bodies_get_413(serve, engine, key):
    server = serve(max_body_bytes=4096)
    big = protobuf_body(
        make_spans(
            [{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "x", "pad": "y" * 8000}]
        )
    )
    assert post(server.url, "/v1/traces", big, key).status_code == 413
    bomb = gzip.compress(b"\x00" * 1_000_000)  # small on the wire, large once decompressed
    assert len(bomb) < 4096
    r = post(server.url, "/v1/traces", bomb, key, **{"content-encoding": "gzip"})
    assert r.status_code == 413


def test_missing_wrong_and_revoked_keys_get_401(serve, engine, key):
    from wattledger.ingest.auth import revoke_key

    server = serve()
    body = protobuf_body(
        make_spans([{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "x"}])
    )
    r = post(server.url, "/v1/traces", body, None)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert post(server.url, "/v1/traces", body, key[:-4] + "AAAA").status_code == 401
    assert post(server.url, "/v1/traces", body, "not-a-key").status_code == 401
    assert post(server.url, "/v1/traces", body, key).status_code == 200
    revoke_key(engine, key)
    import time

    time.sleep(0.3)  # > auth_cache_ttl_s of the test settings
    # The first request after the TTL may still pass on the stale verdict while the row is read
    # again in the background; from then on the key is refused.
    accepted = int(post(server.url, "/v1/traces", body, key).status_code == 200)
    deadline = time.monotonic() + 10
    while (status := post(server.url, "/v1/traces", body, key).status_code) == 200:
        accepted += 1
        assert time.monotonic() < deadline, "the revoked key was never refused"
        time.sleep(0.05)
    assert status == 401
    server.flush()
    # the same body each time: what was accepted is stored once
    assert rows(engine, "SELECT count(*) AS n FROM inference_requests") == [{"n": 1}]


def test_insecure_mode_stamps_the_default_tenant(serve, engine):
    server = serve(insecure_no_auth=True)
    body = protobuf_body(
        make_spans([{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "x"}])
    )
    assert post(server.url, "/v1/traces", body, None).status_code == 200
    server.flush()
    assert rows(engine, "SELECT tenant FROM inference_requests") == [{"tenant": "default"}]


def test_health_readiness_and_prometheus_metrics(serve, key):
    import httpx

    server = serve()
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "up"
    post(server.url, "/v1/traces", b"junk", key)
    text = httpx.get(server.url + "/metrics").text
    assert 'wattledger_ingest_requests_total{code="400",path="/v1/traces"} 1.0' in text
    assert "wattledger_ingest_queue_rows 0.0" in text


def test_a_writer_behind_gets_429_with_retry_after(serve, engine, key):
    server = serve(max_queue_rows=3, flush_interval_s=30, batch_max_rows=1_000_000, retry_after_s=7)
    body = protobuf_body(
        make_spans([{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "x"}] * 5)
    )
    assert post(server.url, "/v1/traces", body, key).status_code == 200  # queued, 5 rows
    r = post(server.url, "/v1/traces", body, key)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    server.flush()  # the writer catches up ...
    assert post(server.url, "/v1/traces", body, key).status_code == 200  # ... and it is open
    server.flush()
    assert rows(engine, "SELECT count(*) AS n FROM inference_requests") == [{"n": 5}]


def test_duckdb_readers_in_the_process_are_not_locked_out(duckdb_url, tmp_path):
    from ingest_helpers import RunningServer, add_key, settings_for

    from wattledger.ingest import IngestService
    from wattledger.migrations import runner
    from wattledger.models import make_engine

    runner.upgrade(duckdb_url)
    engine = make_engine(duckdb_url)
    key = add_key(engine)
    body = protobuf_body(
        make_spans([{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "x"}] * 3)
    )
    settings = settings_for(duckdb_url, tmp_path, checkpoint_interval_s=0.05)
    try:
        with RunningServer(IngestService(settings, engine)) as server:
            count = "SELECT count(*) FROM inference_requests"
            with engine.connect() as reader:
                with reader.begin():  # a reader holding a snapshot, as a dashboard query does
                    assert reader.exec_driver_sql(count).scalar() == 0
                    assert post(server.url, "/v1/traces", body, key).status_code == 200
                    server.flush()  # the writer commits meanwhile
                    assert reader.exec_driver_sql(count).scalar() == 0
                assert reader.exec_driver_sql(count).scalar() == 3
            import time

            deadline = time.monotonic() + 10  # a deferred checkpoint then frees the spool
            while server.service.spool.pending_records and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.service.spool.pending_records == 0
    finally:
        engine.dispose()
