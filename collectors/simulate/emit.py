"""Live mode: the simulation sent over OTLP/HTTP as it happens, with the official exporters.

Requests become SDK ``ReadableSpan`` objects and device readings become SDK metric data
(``hw.energy`` as a cumulative monotonic Sum, ``hw.power`` and ``hw.gpu.utilization`` as
Gauges), exported by ``OTLPSpanExporter`` / ``OTLPMetricExporter`` to ``<endpoint>/v1/traces``
and ``<endpoint>/v1/metrics``. Building the SDK objects directly (instead of starting spans
through a tracer) keeps the simulated timestamps and the trace/span ids, so a live run lands
exactly the rows a backfill of the same seed writes.

Pacing: a span is sent when the simulated clock passes its end, a reading at its time. The
simulated clock starts at the simulation's start and runs ``speed`` times faster than the
wall clock, so at ``speed > 1`` timestamps run ahead of real time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from wattledger._version import __version__
from wattledger.collectors import semconv as sc
from wattledger.collectors.simulate.backfill import Chunk
from wattledger.errors import WattledgerError

logger = logging.getLogger(__name__)

SCOPE = InstrumentationScope(sc.SCOPE_NAME, __version__, sc.SCHEMA_URL)
#: Column keys that are not span attributes.
SPAN_FIELDS = (
    "trace_id", "span_id", "start_time_unix_nano", "end_time_unix_nano", "status_code",
    "resource.service.name", "resource.host.name",
)  # fmt: skip
_UNITS = {sc.HW_ENERGY: "J", sc.HW_POWER: "W", sc.HW_GPU_UTILIZATION: "1"}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}


class EmitError(WattledgerError):
    """The OTLP endpoint refused or did not answer an export."""


def _value(v: object) -> Any:
    """A column element as an OTel attribute value; None when the span lacks it."""
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    return str(v)


def spans_from_columns(
    columns: Mapping[str, np.ndarray], rows: Iterable[int]
) -> list[ReadableSpan]:
    """SDK spans for the ``rows`` of a request column dict."""
    attr_keys = [k for k in columns if k not in SPAN_FIELDS]
    resources: dict[tuple[str, str], Resource] = {}
    spans = []
    for i in rows:
        service = str(columns["resource.service.name"][i])
        host = str(columns["resource.host.name"][i])
        res = resources.get((service, host))
        if res is None:
            res = resources[(service, host)] = Resource(
                {sc.SERVICE_NAME: service, sc.HOST_NAME: host}, sc.SCHEMA_URL
            )
        attrs = {k: v for k in attr_keys if (v := _value(columns[k][i])) is not None}
        ctx = SpanContext(
            trace_id=int(columns["trace_id"][i], 16),
            span_id=int(columns["span_id"][i], 16),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        code = _STATUS[int(columns["status_code"][i])]
        spans.append(
            ReadableSpan(
                name=f"{attrs.get(sc.GEN_AI_OPERATION_NAME, 'chat')} "
                f"{attrs.get(sc.GEN_AI_REQUEST_MODEL, '')}".strip(),
                context=ctx,
                resource=res,
                attributes=attrs,
                kind=SpanKind.CLIENT,
                status=Status(code, str(attrs.get(sc.ERROR_TYPE, "")) or None)
                if code is StatusCode.ERROR
                else Status(code),
                start_time=int(columns["start_time_unix_nano"][i]),
                end_time=int(columns["end_time_unix_nano"][i]),
                instrumentation_scope=SCOPE,
            )
        )
    return spans


def metrics_from_columns(
    parts: Iterable[tuple[Mapping[str, np.ndarray], np.ndarray]],
) -> MetricsData:
    """SDK metric data for (metric column dict, rows) parts, one resource per ``host.name``.

    The OTLP encoder assumes one entry per resource, so every host's points are merged.
    """
    by_host: dict[str, dict[str, list[NumberDataPoint]]] = {}
    for columns, rows in parts:
        skip = ("metric", "time_unix_nano", "value", sc.HOST_NAME)
        attr_keys = [k for k in columns if k not in skip]
        for i in rows:
            attrs = {k: v for k in attr_keys if (v := _value(columns[k][i])) is not None}
            point = NumberDataPoint(
                attributes=attrs,
                start_time_unix_nano=0,
                time_unix_nano=int(columns["time_unix_nano"][i]),
                value=float(columns["value"][i]),
            )
            host = str(columns[sc.HOST_NAME][i])
            by_host.setdefault(host, {}).setdefault(str(columns["metric"][i]), []).append(point)
    resource_metrics = []
    for host, metrics in by_host.items():
        out = []
        for name, points in metrics.items():
            data: Sum | Gauge
            if name == sc.HW_ENERGY:
                data = Sum(points, AggregationTemporality.CUMULATIVE, is_monotonic=True)
            else:
                data = Gauge(points)
            out.append(Metric(name=name, description=None, unit=_UNITS.get(name), data=data))
        resource_metrics.append(
            ResourceMetrics(
                resource=Resource({sc.HOST_NAME: host}, sc.SCHEMA_URL),
                scope_metrics=[ScopeMetrics(scope=SCOPE, metrics=out, schema_url=sc.SCHEMA_URL)],
                schema_url=sc.SCHEMA_URL,
            )
        )
    return MetricsData(resource_metrics=resource_metrics)


class OtlpSender:
    """The official OTLP/HTTP span and metric exporters pointed at one endpoint."""

    def __init__(self, endpoint: str, *, api_key: str | None = None, timeout_s: float = 10.0):
        base = endpoint.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self.endpoint = base
        self._spans = OTLPSpanExporter(
            endpoint=f"{base}/v1/traces", headers=headers, timeout=timeout_s
        )
        self._metrics = OTLPMetricExporter(
            endpoint=f"{base}/v1/metrics", headers=headers, timeout=timeout_s
        )

    def send_spans(self, spans: list[ReadableSpan]) -> None:
        """Export spans; raise :class:`EmitError` when the endpoint does not accept them."""
        if spans and self._spans.export(spans) is not SpanExportResult.SUCCESS:
            raise EmitError(
                f"{self.endpoint}/v1/traces did not accept {len(spans)} spans "
                "(refused, unreachable or timed out).",
                hint="Check that `wattledger ingest serve` runs there and the --api-key is valid.",
            )

    def send_metrics(self, data: MetricsData) -> None:
        """Export metric data; raise :class:`EmitError` when it is not accepted."""
        if data.resource_metrics and self._metrics.export(data) is not MetricExportResult.SUCCESS:
            raise EmitError(
                f"{self.endpoint}/v1/metrics did not accept the device readings "
                "(refused, unreachable or timed out).",
                hint="Check that `wattledger ingest serve` runs there and the --api-key is valid.",
            )

    def shutdown(self) -> None:
        """Release the exporters' HTTP sessions."""
        self._spans.shutdown()
        self._metrics.shutdown()


@dataclass(frozen=True)
class LiveSummary:
    """What a live run sent."""

    spans: int
    metric_points: int
    wall_s: float


@dataclass
class _Queue:
    chunk: Chunk
    span_order: np.ndarray  # request rows by end time
    span_due: np.ndarray  # their end times, Unix ns, sorted
    metric_due: np.ndarray  # metric rows' times, Unix ns (already sorted)
    next_span: int = 0
    next_metric: int = 0


def run_live(
    chunks: Iterable[Chunk],
    sender: OtlpSender,
    *,
    start_unix_nano: int,
    end_unix_nano: int | None = None,
    speed: float = 1.0,
    batch_size: int = 512,
    flush_interval_s: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[int, int], None] | None = None,
) -> LiveSummary:
    """Send every chunk's spans and readings when the simulated clock reaches them.

    Spans that end after ``end_unix_nano`` (requests still running when the period ends) are
    sent at ``end_unix_nano``, so the run takes (end - start) / speed seconds of wall time.
    """
    queues = []
    cap = np.iinfo(np.int64).max if end_unix_nano is None else end_unix_nano
    for ch in chunks:
        ends = np.asarray(ch.request_columns.get("end_time_unix_nano", np.zeros(0, np.int64)))
        order = np.argsort(ends, kind="stable")
        due = np.asarray(ch.metric_columns.get("time_unix_nano", np.zeros(0, np.int64)))
        queues.append(_Queue(ch, order, np.minimum(ends[order], cap), np.minimum(due, cap)))
    total = sum(len(q.span_due) + len(q.metric_due) for q in queues)
    wall0 = clock()
    sent_spans = sent_points = 0
    while True:
        now = start_unix_nano + int((clock() - wall0) * speed * 1e9)
        spans: list[ReadableSpan] = []
        metric_parts: list[tuple[Mapping[str, np.ndarray], np.ndarray]] = []
        for q in queues:
            hi = int(np.searchsorted(q.span_due, now, side="right"))
            if q.next_span < hi:
                spans += spans_from_columns(q.chunk.request_columns, q.span_order[q.next_span : hi])
                q.next_span = hi
            hi = int(np.searchsorted(q.metric_due, now, side="right"))
            if q.next_metric < hi:
                metric_parts.append((q.chunk.metric_columns, np.arange(q.next_metric, hi)))
                q.next_metric = hi
        for i in range(0, len(spans), batch_size):
            sender.send_spans(spans[i : i + batch_size])
        if metric_parts:
            sender.send_metrics(metrics_from_columns(metric_parts))
        sent_spans += len(spans)
        sent_points += sum(len(rows) for _, rows in metric_parts)
        if on_progress is not None:
            on_progress(sent_spans + sent_points, total)
        waiting = [int(q.span_due[q.next_span]) for q in queues if q.next_span < len(q.span_due)]
        waiting += [
            int(q.metric_due[q.next_metric]) for q in queues if q.next_metric < len(q.metric_due)
        ]
        if not waiting:
            break
        # Like a batch processor: export at most every flush_interval_s of wall time.
        wait_s = (min(waiting) - now) / 1e9 / speed
        sleep(min(max(wait_s, flush_interval_s), 1.0))
    logger.info("live simulation sent %d spans and %d readings", sent_spans, sent_points)
    return LiveSummary(sent_spans, sent_points, clock() - wall0)
