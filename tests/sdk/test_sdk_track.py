"""``wattledger.track``: exact span attributes for sync, async, decorator and error paths."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sdk_support import (
    Sdk,
    duration_ns,
    span_attrs,
)

import wattledger
from wattledger.collectors import semconv
from wattledger.collectors.sdk import _config


def test_sync_context_manager_records_exact_attributes(sdk: Sdk) -> None:
    clock = sdk.clock
    start = clock.ns
    with wattledger.track(
        model="llama-3.1-8b",
        provider="vllm",
        workload="chat",
        device="GPU-0a1b",
        quantization="fp8",
        team="search",
        tenant="acme",
        batch_size=12,
    ) as t:
        clock.advance(0.250)
        t.first_token()
        clock.advance(0.010)
        t.tokens(2)
        clock.advance(0.030)
        t.tokens(3)
        clock.advance(0.020)
        t.usage(input_tokens=100, output_tokens=42, cached_input_tokens=60)
        t.response(model="llama-3.1-8b-instruct", id="req-1", finish_reasons=["stop"])
        t.set("wattledger.quality_score", 0.9)

    span = sdk.span()
    assert span.name == "chat llama-3.1-8b"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span_attrs(span) == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "vllm",
        semconv.GEN_AI_REQUEST_MODEL: "llama-3.1-8b",
        semconv.WL_WORKLOAD: "chat",
        semconv.WL_DEVICE_ID: "GPU-0a1b",
        semconv.WL_QUANTIZATION: "fp8",
        semconv.WL_TEAM: "search",
        semconv.WL_TENANT: "acme",
        semconv.WL_BATCH_SIZE: 12,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 100,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 42,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 60,
        semconv.GEN_AI_RESPONSE_MODEL: "llama-3.1-8b-instruct",
        semconv.GEN_AI_RESPONSE_ID: "req-1",
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        semconv.WL_QUALITY_SCORE: 0.9,
        semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
        semconv.WL_TTFT_S: 0.25,
        semconv.WL_ITL_COUNT: 2,
        semconv.WL_ITL_MEAN_S: 0.02,
        semconv.WL_ITL_P50_S: 0.02,
        semconv.WL_ITL_P95_S: pytest.approx(0.029, abs=1e-12),
        semconv.WL_ITL_MAX_S: 0.03,
    }
    # Span length is the monotonic elapsed time, exactly.
    assert span.end_time is not None and span.start_time is not None
    assert duration_ns(span) == clock.ns - start == 310_000_000
    assert span.resource.attributes[semconv.SERVICE_NAME] == "test-service"
    assert span.resource.attributes[semconv.HOST_NAME]
    assert span.resource.attributes[semconv.WL_SITE] == "lab-1"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == semconv.SCOPE_NAME


def test_unobserved_values_stay_unset_never_zero(sdk: Sdk) -> None:
    with wattledger.track(model="m"):
        sdk.clock.advance(1.0)
    attrs = span_attrs(sdk.span())
    assert attrs == {semconv.GEN_AI_OPERATION_NAME: "chat", semconv.GEN_AI_REQUEST_MODEL: "m"}


def test_counted_tokens_give_output_tokens_unless_usage_reports_them(sdk: Sdk) -> None:
    with wattledger.track(model="m") as t:
        t.tokens(4)
        t.tokens(5)
    with wattledger.track(model="m") as t:
        t.tokens(4)
        t.usage(output_tokens=7)
    counted, reported = sdk.spans()
    assert span_attrs(counted)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert span_attrs(counted)[semconv.WL_ITL_COUNT] == 1
    assert span_attrs(reported)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7


def test_async_context_manager(sdk: Sdk) -> None:
    async def request() -> None:
        async with wattledger.track(model="gpt-4o-mini", provider="openai") as t:
            sdk.clock.advance(0.5)
            t.first_token()
            t.usage(input_tokens=3, output_tokens=4)

    asyncio.run(request())
    attrs = span_attrs(sdk.span())
    assert attrs[semconv.WL_TTFT_S] == 0.5
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"


def test_decorator_sync_gives_each_call_its_own_span(sdk: Sdk) -> None:
    @wattledger.track(model="m", provider="vllm", operation="text_completion")
    def generate(n: int) -> int:
        handle = wattledger.current()
        assert handle is not None
        sdk.clock.advance(0.1 * n)
        handle.first_token()
        handle.usage(output_tokens=n)
        return n * 2

    assert generate(1) == 2
    assert generate(3) == 6
    assert wattledger.current() is None
    first, second = sdk.spans()
    assert first.name == second.name == "text_completion m"
    assert span_attrs(first)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert span_attrs(second)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert span_attrs(second)[semconv.WL_TTFT_S] == pytest.approx(0.3, abs=1e-12)
    assert first.context.span_id != second.context.span_id


def test_decorator_async(sdk: Sdk) -> None:
    @wattledger.track(model="m")
    async def generate() -> str:
        handle = wattledger.current()
        assert handle is not None
        handle.usage(input_tokens=1, output_tokens=2)
        return "ok"

    async def main() -> list[str]:
        return list(await asyncio.gather(generate(), generate()))

    assert asyncio.run(main()) == ["ok", "ok"]
    spans = sdk.spans()
    assert len(spans) == 2
    assert all(span_attrs(s)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2 for s in spans)


def test_decorated_generator_is_tracked_as_a_stream(sdk: Sdk) -> None:
    @wattledger.track(model="m", provider="vllm")
    def generate() -> object:
        for word in ("a", "b", "c"):
            sdk.clock.advance(0.2 if word == "a" else 0.05)
            yield word

    assert list(generate()) == ["a", "b", "c"]
    attrs = span_attrs(sdk.span())
    assert attrs[semconv.WL_TTFT_S] == 0.2
    assert attrs[semconv.WL_ITL_COUNT] == 2
    assert attrs[semconv.WL_ITL_MAX_S] == 0.05


def test_exception_sets_error_status_and_type_and_propagates(sdk: Sdk) -> None:
    with pytest.raises(TimeoutError), wattledger.track(model="m") as t:
        sdk.clock.advance(2.0)
        t.usage(input_tokens=10)
        raise TimeoutError("upstream took too long")
    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "TimeoutError"
    assert span_attrs(span)[semconv.ERROR_TYPE] == "TimeoutError"
    assert span_attrs(span)[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 10
    assert duration_ns(span) == 2_000_000_000


def test_explicit_error_without_exception(sdk: Sdk) -> None:
    with wattledger.track(model="m") as t:
        t.error("429")
    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span_attrs(span)[semconv.ERROR_TYPE] == "429"


def test_message_content_is_never_put_on_spans(sdk: Sdk) -> None:
    with wattledger.track(model="m", attributes={"gen_ai.prompt.0.content": "secret"}) as t:
        t.set("gen_ai.input.messages", "[{'role': 'user', 'content': 'secret'}]")
        t.set_attributes({"gen_ai.completion.0.content": "secret", "app.route": "/chat"})
    attrs = span_attrs(sdk.span())
    assert "secret" not in repr(attrs)
    assert attrs["app.route"] == "/chat"


def test_init_defaults_apply_and_calls_override_them() -> None:
    exporter = InMemorySpanExporter()
    assert wattledger.init(
        "svc",
        workload="batch-summaries",
        attributes={semconv.WL_TEAM: "platform", semconv.WL_DEVICE_ID: "GPU-1"},
        span_exporter=exporter,
        set_global=False,
        metrics=False,
    )
    with wattledger.track(model="m", device="GPU-2"):
        pass
    assert wattledger.flush()
    attrs = span_attrs(exporter.get_finished_spans()[0])
    assert attrs[semconv.WL_WORKLOAD] == "batch-summaries"
    assert attrs[semconv.WL_TEAM] == "platform"
    assert attrs[semconv.WL_DEVICE_ID] == "GPU-2"


def test_track_before_init_is_a_silent_no_op() -> None:
    with wattledger.track(model="m") as t:
        t.first_token()
        t.tokens(3)
        t.usage(input_tokens=1)
    assert t.span is not None and not t.span.is_recording()
    assert wattledger.stats().enabled is False
    assert wattledger.flush() is True


def test_existing_tracer_provider_is_reused_and_only_genai_spans_exported() -> None:
    app_exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    ours = InMemorySpanExporter()
    assert wattledger.init("svc", tracer_provider=provider, span_exporter=ours, metrics=False)

    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("GET /chat") as parent, wattledger.track(model="m"):
        pass

    assert wattledger.flush()
    app_names = sorted(s.name for s in app_exporter.get_finished_spans())
    assert app_names == ["GET /chat", "chat m"]
    (exported,) = ours.get_finished_spans()
    assert exported.name == "chat m"
    assert exported.parent is not None
    assert exported.parent.span_id == parent.get_span_context().span_id


def test_global_sdk_provider_is_reused_not_replaced() -> None:
    """OTel's global provider can be set once per process, so this runs in a fresh one."""
    code = """
import wattledger
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
app = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(app))
trace.set_tracer_provider(provider)
ours = InMemorySpanExporter()
assert wattledger.init("svc", span_exporter=ours, metrics=False)
assert trace.get_tracer_provider() is provider
with wattledger.track(model="m"):
    pass
wattledger.shutdown()
print(len(app.get_finished_spans()), len(ours.get_finished_spans()))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["1", "1"]


def test_init_sets_a_new_global_provider_when_none_exists() -> None:
    code = """
import wattledger
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
ours = InMemorySpanExporter()
assert wattledger.init("svc", span_exporter=ours, metrics=False)
with trace.get_tracer("other.genai").start_as_current_span(
    "chat x", attributes={"gen_ai.operation.name": "chat"}
):
    pass
with trace.get_tracer("app").start_as_current_span("GET /"):
    pass
wattledger.shutdown()
print(sorted(s.name for s in ours.get_finished_spans()))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "['chat x']"


def test_environment_configures_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTLEDGER_SERVICE_NAME", "from-env")
    monkeypatch.setenv("WATTLEDGER_WORKLOAD", "rag")
    monkeypatch.setenv("WATTLEDGER_SDK_MAX_QUEUE_SIZE", "4096")
    exporter = InMemorySpanExporter()
    assert wattledger.init(span_exporter=exporter, set_global=False, metrics=False)
    with wattledger.track(model="m"):
        pass
    assert wattledger.flush()
    span = exporter.get_finished_spans()[0]
    assert span.resource.attributes[semconv.SERVICE_NAME] == "from-env"
    assert span_attrs(span)[semconv.WL_WORKLOAD] == "rag"
    assert wattledger.stats().queue_capacity == 4096


def test_config_precedence_and_bad_values_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "WATTLEDGER_ENDPOINT": "http://ingest:4318/",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "WATTLEDGER_API_KEY": "wl_123",
        "OTEL_BSP_MAX_QUEUE_SIZE": "100",
        "WATTLEDGER_SDK_MAX_EXPORT_BATCH_SIZE": "fast",
        "OTEL_SERVICE_NAME": "otel-name",
    }
    with caplog.at_level(logging.WARNING):
        cfg = _config.resolve(env=env)
    assert cfg.traces_url == "http://ingest:4318/v1/traces"
    assert cfg.metrics_url == "http://ingest:4318/v1/metrics"
    assert cfg.headers == {"Authorization": "Bearer wl_123"}
    assert "wl_123" not in repr(cfg)
    assert cfg.max_queue_size == 100
    assert cfg.max_export_batch_size == _config.DEFAULT_MAX_EXPORT_BATCH_SIZE
    assert cfg.service_name == "otel-name"
    assert "WATTLEDGER_SDK_MAX_EXPORT_BATCH_SIZE" in caplog.text and "'fast'" in caplog.text

    cfg = _config.resolve(endpoint="https://wl.example.com", service_name="arg", env=env)
    assert cfg.traces_url == "https://wl.example.com/v1/traces"
    assert cfg.service_name == "arg"

    only_otel = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom/traces"}
    cfg = _config.resolve(env=only_otel)
    assert cfg.traces_url == "http://c:4318/custom/traces"
    assert cfg.metrics_url == "http://localhost:4318/v1/metrics"

    with caplog.at_level(logging.WARNING):
        cfg = _config.resolve(endpoint="localhost:4318", max_queue_size=-5, env={})
    assert cfg.traces_url == "http://localhost:4318/v1/traces"
    assert cfg.max_queue_size == _config.DEFAULT_MAX_QUEUE_SIZE


def test_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert wattledger.init("svc", span_exporter=InMemorySpanExporter(), set_global=False) is False
    assert wattledger.stats().enabled is False


def test_import_wattledger_stays_cheap_and_keeps_version() -> None:
    code = (
        "import sys, wattledger; "
        "print(wattledger.__version__, 'opentelemetry' in sys.modules); "
        "wattledger.track; print('opentelemetry' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTLEDGER_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    version, before, after = out.stdout.split()
    assert version == wattledger.__version__
    assert (before, after) == ("False", "True")
