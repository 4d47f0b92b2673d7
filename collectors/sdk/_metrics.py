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


class RequestInstruments:
    """``gen_ai.client.operation.duration``, ``.token.usage`` and ``.time_to_first_chunk``."""

    def __init__(self, meter: Meter) -> None:
        self._duration = meter.create_histogram(
            semconv.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self._tokens = meter.create_histogram(
            semconv.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._ttfc = meter.create_histogram(
            semconv.GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )

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
        for token_type, key in (
            ("input", semconv.GEN_AI_USAGE_INPUT_TOKENS),
            ("output", semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
        ):
            if (n := end.get(key)) is not None:
                self._tokens.record(n, {**attrs, semconv.GEN_AI_TOKEN_TYPE: token_type})
