"""The SDK's metrics: its own health (drops, exports, queue) and, opt-in, GenAI client histograms.

Health metrics are observable instruments read from the counters at export time, so they
cost the request path nothing. The GenAI client histograms (``gen_ai.client.*``) are recorded
per request only when ``request_metrics`` is on; the warehouse derives the same figures from
the spans, so they are for an application's own dashboards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

from wattledger.collectors import semconv
from wattledger.collectors.sdk._processor import quiet_export
from wattledger.collectors.sdk._stats import Counters

#: Bucket boundaries advised by the GenAI semantic conventions (seconds, tokens).
DURATION_BUCKETS_S = [
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
]
TOKEN_BUCKETS = [
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
]
_METRIC_KEYS = (
    semconv.GEN_AI_OPERATION_NAME,
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.SERVER_ADDRESS,
    semconv.SERVER_PORT,
)


class QuietOTLPMetricExporter(OTLPMetricExporter):
    """The official OTLP/HTTP metric exporter, its per-attempt log lines captured, not printed.

    Failures are counted in ``Counters.export_failures`` instead (rate-limited warnings come
    from the span processor, which sees the same endpoint).
    """

    def __init__(self, *args: Any, counters: Counters, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wl_counters = counters

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10000, **kwargs: Any
    ) -> MetricExportResult:
        with quiet_export():
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result is not MetricExportResult.SUCCESS:
            self._wl_counters.add("metric_export_failures")
        return result

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        with quiet_export():
            super().shutdown(timeout_millis=timeout_millis, **kwargs)


def register_health(
    meter: Meter,
    counters: Counters,
    queue_size: Callable[[], int],
    queue_capacity: int,
) -> None:
    """Observable ``wattledger.sdk.*`` instruments over the SDK's counters."""

    def dropped(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(n, {semconv.ERROR_TYPE: reason})
            for reason, n in counters.dropped_by_reason().items()
        ]

    meter.create_observable_counter(
        semconv.WL_SDK_SPANS_DROPPED,
        [dropped],
        unit="{span}",
        description="Spans the SDK could not deliver, by reason (error.type).",
    )
    meter.create_observable_counter(
        semconv.WL_SDK_SPANS_EXPORTED,
        [lambda _: [Observation(counters.exported)]],
        unit="{span}",
        description="Spans acknowledged by the endpoint.",
    )
    meter.create_observable_gauge(
        semconv.WL_SDK_QUEUE_SIZE,
        [lambda _: [Observation(queue_size())]],
        unit="{span}",
        description="Spans waiting to be exported.",
    )
    meter.create_observable_gauge(
        semconv.WL_SDK_QUEUE_CAPACITY,
        [lambda _: [Observation(queue_capacity)]],
        unit="{span}",
        description="Spans the export queue holds before it drops.",
    )


#: Advised boundaries for per-token latency (semantic conventions, time per output token).
CHUNK_BUCKETS_S = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]
#: Span attribute -> usage counter (each counts one kind of token, text modality).
_USAGE = (
    (semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_CLIENT_USAGE_INPUT_TOKENS),
    (semconv.GEN_AI_USAGE_OUTPUT_TOKENS, semconv.GEN_AI_CLIENT_USAGE_OUTPUT_TOKENS),
    (
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        semconv.GEN_AI_CLIENT_USAGE_CACHE_READ_INPUT_TOKENS,
    ),
    (
        semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        semconv.GEN_AI_CLIENT_USAGE_CACHE_WRITE_INPUT_TOKENS,
    ),
    (
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        semconv.GEN_AI_CLIENT_USAGE_REASONING_OUTPUT_TOKENS,
    ),
)


class RequestInstruments:
    """The GenAI client inference metrics (semantic-conventions-genai v0.1.0).

    Per request: ``gen_ai.client.inference.duration``, ``.time_to_first_chunk`` (streams),
    ``.time_per_output_chunk`` (the request's mean gap between chunks), the per-operation token
    histograms ``.operation.input_tokens``/``.output_tokens``, and the usage counters
    ``.usage.input_tokens``, ``.output_tokens``, ``.cache_read.input_tokens``,
    ``.cache_write.input_tokens`` and ``.reasoning.output_tokens`` with
    ``gen_ai.token.modality = text``.
    """

    def __init__(self, meter: Meter) -> None:
        def histogram(name: str, unit: str, text: str, buckets: list[float]) -> Any:
            return meter.create_histogram(
                name, unit=unit, description=text, explicit_bucket_boundaries_advisory=buckets
            )

        self._duration = histogram(
            semconv.GEN_AI_CLIENT_INFERENCE_DURATION,
            "s",
            "GenAI inference duration.",
            DURATION_BUCKETS_S,
        )
        self._ttfc = histogram(
            semconv.GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK,
            "s",
            "Time to the first chunk of a streamed response.",
            DURATION_BUCKETS_S,
        )
        self._tpoc = histogram(
            semconv.GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK,
            "s",
            "Mean time between output chunks of a streamed response.",
            CHUNK_BUCKETS_S,
        )
        self._op_in = histogram(
            semconv.GEN_AI_CLIENT_OPERATION_INPUT_TOKENS,
            "{token}",
            "Input tokens of one operation.",
            TOKEN_BUCKETS,
        )
        self._op_out = histogram(
            semconv.GEN_AI_CLIENT_OPERATION_OUTPUT_TOKENS,
            "{token}",
            "Output tokens of one operation.",
            TOKEN_BUCKETS,
        )
        self._usage = {
            attr: meter.create_counter(name, unit="{token}", description="Token usage.")
            for attr, name in _USAGE
        }

    def record(self, start: Mapping[str, Any], end: Mapping[str, Any], duration_s: float) -> None:
        """Record one finished request from its start and end span attributes."""
        attrs = {k: start[k] for k in _METRIC_KEYS if k in start}
        if (model := end.get(semconv.GEN_AI_RESPONSE_MODEL)) is not None:
            attrs[semconv.GEN_AI_RESPONSE_MODEL] = model
        if (err := end.get(semconv.ERROR_TYPE)) is not None:
            attrs[semconv.ERROR_TYPE] = err
        self._duration.record(duration_s, attrs)
        if (ttfc := end.get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)) is not None:
            self._ttfc.record(ttfc, attrs)
        if (gap := end.get(semconv.WL_ITL_MEAN_S)) is not None:
            self._tpoc.record(gap, attrs)
        if (n := end.get(semconv.GEN_AI_USAGE_INPUT_TOKENS)) is not None:
            self._op_in.record(n, attrs)
        if (n := end.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)) is not None:
            self._op_out.record(n, attrs)
        usage_attrs = {k: v for k, v in attrs.items() if k != semconv.ERROR_TYPE}
        usage_attrs[semconv.GEN_AI_TOKEN_MODALITY] = "text"
        for attr, counter in self._usage.items():
            if (n := end.get(attr)) is not None and n > 0:
                counter.add(n, usage_attrs)
