"""Export through the official OTLP/HTTP exporter: to a live receiver, to a dead port, on fork.

The SDK never raises into the host and never slows it: a dead endpoint costs a bounded queue
and one rate-limited warning, and every span that is not delivered is counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_support import (
    OtlpReceiver,
    free_port,
)

import wattledger
from wattledger.collectors import semconv


def test_spans_reach_a_real_otlp_endpoint_with_bearer_key(otlp_receiver: OtlpReceiver) -> None:
    assert wattledger.init(
        "checkout-svc",
        endpoint=otlp_receiver.url,
        api_key="wl_test_key",
        workload="support-bot",
        resource_attributes={semconv.WL_SITE: "eu-west"},
        metrics=False,
        set_global=False,
    )
    with wattledger.track(model="llama-3.1-8b", provider="vllm", device="GPU-9") as t:
        t.first_token()
        t.usage(input_tokens=11, output_tokens=22, cached_input_tokens=3)
    wattledger.shutdown()  # shutdown flushes

    requests = otlp_receiver.trace_requests()
    assert requests, "nothing was exported"
    headers, _ = requests[0]
    assert headers["authorization"] == "Bearer wl_test_key"
    assert headers["content-type"] == "application/x-protobuf"
    ((resource, attrs, span),) = otlp_receiver.spans()
    assert resource[semconv.SERVICE_NAME] == "checkout-svc"
    assert resource[semconv.HOST_NAME]
    assert resource[semconv.WL_SITE] == "eu-west"
    assert span.name == "chat llama-3.1-8b"
    assert span.kind == span.SPAN_KIND_CLIENT
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "vllm"
    assert attrs[semconv.WL_WORKLOAD] == "support-bot"
    assert attrs[semconv.WL_DEVICE_ID] == "GPU-9"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 22
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3
    assert isinstance(attrs[semconv.WL_TTFT_S], float)
    assert wattledger.stats().spans_exported == 1


def _work() -> None:
    time.sleep(0.001)  # stands in for the request the app really makes


def test_dead_endpoint_neither_raises_nor_slows_tracked_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    n = 300
    assert wattledger.init(
        "svc",
        endpoint=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        metrics=False,
        set_global=False,
        schedule_delay_s=0.02,
        max_export_batch_size=50,
        export_timeout_s=0.5,
    )
    caplog.set_level(logging.WARNING)

    def loop(tracked: bool, count: int) -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            if tracked:
                with wattledger.track(model="m", provider="vllm") as t:
                    _work()
                    t.first_token()
                    t.usage(input_tokens=1, output_tokens=1)
            else:
                _work()
        return time.perf_counter() - t0

    # Interleaved rounds, fastest of each kept: a loaded machine slows both alike.
    rounds = 6
    timings = [(loop(False, n // rounds), loop(True, n // rounds)) for _ in range(rounds)]
    bare = min(b for b, _ in timings)
    tracked = min(t for _, t in timings)
    # A generous ratio, not an absolute time: the export thread only ever sleeps or fails fast.
    assert tracked / bare < 1.5, (tracked, bare)

    wattledger.shutdown(timeout_s=2.0)
    stats = wattledger.stats()
    assert stats.spans_exported == 0
    assert stats.spans_dropped == n  # every one accounted for
    assert stats.dropped_export_failed + stats.dropped_shutdown + stats.dropped_queue_full == n
    assert stats.export_failures >= 1
    assert stats.last_export_error
    ours = [r for r in caplog.records if r.name.startswith("wattledger") and r.levelno >= 30]
    assert len([r for r in ours if "could not export" in r.getMessage()]) == 1
    exporter_noise = [
        r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= 30
    ]
    assert exporter_noise == []


def data_points(reader: InMemoryMetricReader) -> list[tuple[str, dict[str, Any], Any]]:
    """(metric name, attributes, data point) for every point the reader holds."""
    data = reader.get_metrics_data()
    assert data is not None
    return [
        (metric.name, dict(p.attributes or {}), p)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        for p in metric.data.data_points
    ]


class GatedExporter(SpanExporter):
    """Blocks every export until the test opens the gate: a stalled endpoint, made exact."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.gate.wait(10)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()


def test_queue_overflow_is_counted_in_stats_and_metric() -> None:
    exporter = GatedExporter()
    reader = InMemoryMetricReader()
    n = 500
    assert wattledger.init(
        "svc",
        span_exporter=exporter,
        metric_readers=[reader],
        set_global=False,
        max_queue_size=100,
        max_export_batch_size=10,
        schedule_delay_s=0.01,
    )
    for _ in range(n):
        with wattledger.track(model="m"):
            pass
    stats = wattledger.stats()
    assert stats.dropped_queue_full >= n - 100 - 10
    assert stats.queue_size + stats.in_flight + stats.dropped_queue_full == n

    exporter.gate.set()
    assert wattledger.flush(5.0)
    stats = wattledger.stats()
    assert stats.spans_exported == exporter.exported
    assert stats.spans_exported + stats.spans_dropped == n
    assert stats.spans_dropped == stats.dropped_queue_full > 0

    points = {
        (name, attrs.get(semconv.ERROR_TYPE)): p.value for name, attrs, p in data_points(reader)
    }
    assert points[(semconv.WL_SDK_SPANS_DROPPED, "queue_full")] == stats.dropped_queue_full
    assert points[(semconv.WL_SDK_SPANS_DROPPED, "export_failed")] == 0
    assert points[(semconv.WL_SDK_SPANS_EXPORTED, None)] == stats.spans_exported
    assert points[(semconv.WL_SDK_QUEUE_CAPACITY, None)] == 100


def test_default_queue_absorbs_a_20k_burst_while_the_endpoint_stalls() -> None:
    """OpenTelemetry's default queue (2048) would drop ~90% of this burst; ours drops none."""
    exporter = GatedExporter()
    assert wattledger.init("svc", span_exporter=exporter, metrics=False, set_global=False)
    for _ in range(20_000):
        with wattledger.track(model="m"):
            pass
    assert wattledger.stats().dropped_queue_full == 0
    exporter.gate.set()
    assert wattledger.flush(30.0)
    assert wattledger.stats().spans_exported == exporter.exported == 20_000


def test_request_metrics_record_genai_histograms() -> None:
    """The current GenAI client inference metrics (semantic-conventions-genai v0.1.0)."""
    reader = InMemoryMetricReader()
    assert wattledger.init(
        "svc",
        span_exporter=InMemorySpanExporter(),
        metric_readers=[reader],
        request_metrics=True,
        set_global=False,
    )
    with wattledger.track(model="m", provider="groq") as t:
        t.first_token()
        t.usage(input_tokens=7, output_tokens=9, cached_input_tokens=3, cache_write_input_tokens=2)
    points = {
        name: (p, attrs) for name, attrs, p in data_points(reader) if name.startswith("gen_ai.")
    }
    p, attrs = points[semconv.GEN_AI_CLIENT_OPERATION_OUTPUT_TOKENS]
    assert (p.count, p.sum) == (1, 9) and attrs[semconv.GEN_AI_PROVIDER_NAME] == "groq"
    assert (points[semconv.GEN_AI_CLIENT_OPERATION_INPUT_TOKENS][0].sum) == 7
    assert points[semconv.GEN_AI_CLIENT_INFERENCE_DURATION][0].count == 1
    assert points[semconv.GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK][0].count == 1
    for name, n in (
        (semconv.GEN_AI_CLIENT_USAGE_INPUT_TOKENS, 7),
        (semconv.GEN_AI_CLIENT_USAGE_OUTPUT_TOKENS, 9),
        (semconv.GEN_AI_CLIENT_USAGE_CACHE_READ_INPUT_TOKENS, 3),
        (semconv.GEN_AI_CLIENT_USAGE_CACHE_WRITE_INPUT_TOKENS, 2),
    ):
        p, attrs = points[name]
        assert p.value == n, name
        assert attrs[semconv.GEN_AI_TOKEN_MODALITY] == "text"
    # The names the conventions replaced are no longer emitted.
    for old in (
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
    ):
        assert old not in points, old


def test_cache_writes_are_reported_under_the_current_name() -> None:
    exporter = InMemorySpanExporter()
    assert wattledger.init("svc", span_exporter=exporter, set_global=False, metrics=False)
    with wattledger.track(model="claude", provider="anthropic") as t:
        t.usage(input_tokens=100, output_tokens=5, cache_creation_input_tokens=40)
    wattledger.shutdown()
    (span,) = exporter.get_finished_spans()
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 40
    assert semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in span.attributes


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_forked_worker_exports_its_own_spans(otlp_receiver: OtlpReceiver) -> None:
    """gunicorn-style: init in the parent, fork, the child tracks and exports on its own."""
    assert wattledger.init(
        "svc", endpoint=otlp_receiver.url, metrics=False, set_global=False, schedule_delay_s=60
    )
    with wattledger.track(model="parent-before-fork"):
        pass  # still queued at fork time (the worker waits 60 s)
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            with wattledger.track(model="child"):
                pass
            ok = wattledger.flush(10.0)
            stats = wattledger.stats()
            code = 0 if ok and stats.spans_exported == 1 and stats.spans_dropped == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    otlp_receiver.wait_for_spans(1)
    assert [s.name for _, _, s in otlp_receiver.spans()] == ["chat child"]
    wattledger.shutdown()
    names = sorted(s.name for _, _, s in otlp_receiver.spans())
    assert names == ["chat child", "chat parent-before-fork"]  # each exported exactly once


def test_a_refused_export_warns_with_the_servers_reason(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 22: a 401 warned only "Unauthorized"; ingest's one-line reason says which fix."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from google.rpc import status_pb2

    reason = "API key is not valid: create one with wattledger keys create"

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            # What an OTLP/HTTP server (ours included) answers a protobuf export with.
            body = status_pb2.Status(code=16, message=reason).SerializeToString()
            self.send_response(401)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        caplog.set_level("WARNING")
        assert wattledger.init(
            "svc", endpoint=f"http://127.0.0.1:{server.server_address[1]}", api_key="wl_bad",
            set_global=False, metrics=False,
        )  # fmt: skip
        with wattledger.track(model="m", provider="vllm") as t:
            t.usage(input_tokens=1, output_tokens=1)
        wattledger.flush(5.0)
        warned = [r.getMessage() for r in caplog.records if "could not export" in r.getMessage()]
        assert warned, caplog.text
        assert "HTTP 401" in warned[0] and "create one with wattledger keys create" in warned[0]
        assert "wl_bad" not in caplog.text
        assert "create one with" in (wattledger.stats().last_export_error or "")
    finally:
        wattledger.shutdown(timeout_s=1.0)
        server.shutdown()
        server.server_close()
