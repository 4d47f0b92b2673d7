"""Send spans and power metrics with the official OpenTelemetry SDK and OTLP/HTTP exporters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator


class SequentialIds(IdGenerator):
    """Trace and span ids 1, 2, 3 … offset by ``base``: two providers can send the same ids."""

    def __init__(self, base: int) -> None:
        self._next = base

    def generate_span_id(self) -> int:
        self._next += 1
        return self._next

    def generate_trace_id(self) -> int:
        return self._next + 1 + (7 << 64)


def send_spans(
    endpoint: str,
    key: str,
    attrs: Iterable[Mapping[str, Any]],
    *,
    resource: Mapping[str, Any],
    id_base: int,
) -> bool:
    """Export one span per attribute dict with ``Authorization: Bearer key``; True if accepted."""
    exporter = OTLPSpanExporter(
        endpoint=f"{endpoint}/v1/traces", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    results: list[bool] = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span: Any) -> None:
            results.append(exporter.export([span]).name == "SUCCESS")

    provider = TracerProvider(
        resource=Resource.create(dict(resource)), id_generator=SequentialIds(id_base)
    )
    provider.add_span_processor(Recording(exporter))
    tracer = provider.get_tracer("security-test")
    for a in attrs:
        with tracer.start_as_current_span("chat gpt-4o", attributes=dict(a)):
            pass
    provider.shutdown()
    return bool(results) and all(results)


def send_power(
    endpoint: str, key: str, watts: float, *, point: Mapping[str, Any], resource: Mapping[str, Any]
) -> None:
    """Export one ``hw.power`` gauge point (W) with ``Authorization: Bearer key``."""

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(watts, dict(point))

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(
            endpoint=f"{endpoint}/v1/metrics",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ),
        export_interval_millis=3_600_000,
    )
    provider = MeterProvider(resource=Resource.create(dict(resource)), metric_readers=[reader])
    provider.get_meter("security-test").create_observable_gauge(
        "hw.power", callbacks=[observe], unit="W"
    )
    assert provider.force_flush(30_000)
    provider.shutdown()
