"""``wattledger.init`` / ``shutdown`` / ``flush`` / ``stats``: wire OpenTelemetry once per process.

``init`` builds (or reuses) a ``TracerProvider``, adds the counting
:class:`~wattledger.collectors.sdk._processor.QueuedSpanProcessor` with the official OTLP/HTTP
exporter, optionally a private ``MeterProvider`` for the SDK's metrics, and installs the tracer
``track`` uses. The heavy OpenTelemetry SDK and exporter modules are imported here, inside
``init``, so ``import wattledger`` stays cheap. None of these functions raise.
"""

from __future__ import annotations

import atexit
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from wattledger._version import __version__
from wattledger.collectors import semconv
from wattledger.collectors.sdk import _config, _state
from wattledger.collectors.sdk._stats import Counters, SdkStats

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter

    from wattledger.collectors.sdk._processor import QueuedSpanProcessor

logger = logging.getLogger(__name__)
_LOCK = threading.RLock()
_atexit_registered = False


class _Runtime:
    """What ``init`` created and ``shutdown`` must stop."""

    def __init__(
        self,
        config: _config.SdkConfig,
        counters: Counters,
        processor: QueuedSpanProcessor | None,
        meter_provider: MeterProvider | None,
        endpoint: str | None,
    ) -> None:
        self.config = config
        self.counters = counters
        self.processor = processor
        self.meter_provider = meter_provider
        self.endpoint = endpoint


_RUNTIME: _Runtime | None = None


def init(
    service_name: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    workload: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    *,
    attributes: Mapping[str, Any] | None = None,
    tracer_provider: Any = None,
    span_exporter: SpanExporter | None = None,
    metric_readers: Sequence[MetricReader] | None = None,
    metrics: bool | None = None,
    request_metrics: bool | None = None,
    set_global: bool = True,
    export_all_spans: bool = False,
    max_queue_size: int | None = None,
    max_export_batch_size: int | None = None,
    schedule_delay_s: float | None = None,
    export_timeout_s: float | None = None,
    shutdown_timeout_s: float | None = None,
    metric_interval_s: float | None = None,
    warn_interval_s: float | None = None,
    clock_ns: Callable[[], int] | None = None,
) -> bool:
    """Send this process's LLM request spans to wattledger (OTLP/HTTP). Call once at startup.

    Arguments win over ``WATTLEDGER_*`` variables, which win over the standard ``OTEL_*``
    ones (see docs/sdk.md for the table). An application that already configured an
    OpenTelemetry SDK ``TracerProvider`` keeps it: wattledger adds its exporter to it and
    exports only GenAI spans.

    Args:
        service_name: ``service.name`` of this service.
        endpoint: OTLP/HTTP base URL of the ingest service (default
            ``http://localhost:4318``); spans go to ``<endpoint>/v1/traces``.
        api_key: Sent as ``Authorization: Bearer <api_key>``.
        workload: Default ``wattledger.workload`` for every request.
        resource_attributes: More resource attributes (``wattledger.site``, ``k8s.*``, …).
        attributes: Default span attributes for every request (``wattledger.team``, …).
        tracer_provider: Use this SDK ``TracerProvider`` (wattledger adds its processor).
        span_exporter: Export to this exporter instead of OTLP/HTTP (tests, custom sinks).
        metric_readers: Read the SDK's metrics with these instead of OTLP/HTTP.
        metrics: Export the SDK's health metrics (default True).
        request_metrics: Also record ``gen_ai.client.*`` histograms (default False).
        set_global: Make a newly created provider OpenTelemetry's global one.
        export_all_spans: Export every span of the provider, not only GenAI spans.
        max_queue_size: Spans buffered before new ones are dropped and counted (32768).
        max_export_batch_size: Spans per export request (1024).
        schedule_delay_s: Longest wait between exports, seconds (1.0).
        export_timeout_s: Longest one export may take including retries, seconds (10).
        shutdown_timeout_s: Longest ``shutdown()`` waits to flush, seconds (5).
        metric_interval_s: Metric export period, seconds (60).
        warn_interval_s: At most one export/drop warning per this many seconds (60).
        clock_ns: Monotonic nanosecond clock for all durations (tests inject one).

    Returns:
        True if the SDK is now exporting; False if disabled or if setup failed (logged).
    """
    try:
        with _LOCK:
            return _init(**locals())
    except Exception:
        logger.exception(
            "wattledger.init() failed; LLM requests are not exported. The application is "
            "not affected. Please report this with the traceback above."
        )
        return False


def _init(**kw: Any) -> bool:
    global _RUNTIME, _atexit_registered
    if _RUNTIME is not None:
        logger.warning(
            "wattledger.init() called again; keeping the first configuration. Call "
            "wattledger.shutdown() first to reconfigure."
        )
        return True
    if _config.is_disabled():
        logger.info("wattledger SDK disabled by WATTLEDGER_SDK_DISABLED/OTEL_SDK_DISABLED")
        return False

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from wattledger.collectors.sdk._processor import (
        QueuedSpanProcessor,
        genai_span_filter,
        install_log_filter,
        note_refusal,
    )

    cfg = _config.resolve(
        service_name=kw["service_name"],
        endpoint=kw["endpoint"],
        api_key=kw["api_key"],
        workload=kw["workload"],
        metrics=kw["metrics"],
        request_metrics=kw["request_metrics"],
        max_queue_size=kw["max_queue_size"],
        max_export_batch_size=kw["max_export_batch_size"],
        schedule_delay_s=kw["schedule_delay_s"],
        export_timeout_s=kw["export_timeout_s"],
        shutdown_timeout_s=kw["shutdown_timeout_s"],
        metric_interval_s=kw["metric_interval_s"],
        warn_interval_s=kw["warn_interval_s"],
    )
    resource = Resource({semconv.HOST_NAME: socket.gethostname()}).merge(
        Resource.create(
            {**dict(kw["resource_attributes"] or {}), semconv.SERVICE_NAME: cfg.service_name}
        )
    )
    provider = _choose_provider(kw["tracer_provider"], resource, kw["set_global"], TracerProvider)

    counters = Counters()
    span_exporter = kw["span_exporter"]
    factory: Callable[[], SpanExporter] | None = None
    endpoint: str | None = None
    if span_exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        def factory() -> SpanExporter:
            import os

            import requests

            session = None
            if not any("CREDENTIAL_PROVIDER" in name for name in os.environ):
                # Our own session, whose hook keeps the server's reason for a refusal (the
                # exporter's log says only "Unauthorized"). A configured credential provider
                # brings its own session, which is left alone.
                session = requests.Session()
                session.hooks["response"].append(note_refusal)
            return OTLPSpanExporter(
                endpoint=cfg.traces_url,
                headers=cfg.headers,
                timeout=cfg.export_timeout_s,
                session=session,
            )

        span_exporter = factory()
        endpoint = cfg.traces_url
    install_log_filter()
    processor = QueuedSpanProcessor(
        span_exporter,
        counters=counters,
        max_queue_size=cfg.max_queue_size,
        max_export_batch_size=cfg.max_export_batch_size,
        schedule_delay_s=cfg.schedule_delay_s,
        warn_interval_s=cfg.warn_interval_s,
        span_filter=None if kw["export_all_spans"] else genai_span_filter,
        exporter_factory=factory,
        target=endpoint or type(span_exporter).__name__,
    )
    provider.add_span_processor(processor)

    meter_provider, instruments = _setup_metrics(
        cfg, resource, counters, processor, kw["metric_readers"]
    )
    defaults: dict[str, Any] = {}
    if cfg.workload:
        defaults[semconv.WL_WORKLOAD] = cfg.workload
    for key, value in (kw["attributes"] or {}).items():
        if value is not None and not key.startswith(semconv.CONTENT_ATTRIBUTE_PREFIXES):
            defaults[key] = value
    tracer = provider.get_tracer(semconv.SCOPE_NAME, __version__, schema_url=semconv.SCHEMA_URL)
    _state.install(_state.State(tracer, kw["clock_ns"] or time.monotonic_ns, defaults, instruments))
    _RUNTIME = _Runtime(cfg, counters, processor, meter_provider, endpoint)
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True
    logger.info("wattledger SDK exporting to %s as %r", processor._target, cfg.service_name)
    return True


def _choose_provider(given: Any, resource: Any, set_global: bool, sdk_provider_cls: type) -> Any:
    """The given provider, else the application's SDK provider, else a new one."""
    if given is not None:
        return given
    current = trace.get_tracer_provider()
    if isinstance(current, sdk_provider_cls):
        logger.info(
            "wattledger: reusing the application's TracerProvider (its resource, incl. "
            "service.name, applies to wattledger spans)"
        )
        return current
    provider = sdk_provider_cls(resource=resource)
    if set_global and isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def _setup_metrics(
    cfg: _config.SdkConfig,
    resource: Any,
    counters: Counters,
    processor: QueuedSpanProcessor,
    readers: Sequence[MetricReader] | None,
) -> tuple[MeterProvider | None, Any]:
    if not cfg.metrics and not readers:
        return None, None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    from wattledger.collectors.sdk._metrics import (
        QuietOTLPMetricExporter,
        RequestInstruments,
        register_health,
    )

    if not readers:
        exporter = QuietOTLPMetricExporter(
            endpoint=cfg.metrics_url,
            headers=cfg.headers,
            timeout=cfg.export_timeout_s,
            counters=counters,
        )
        readers = [
            PeriodicExportingMetricReader(
                exporter, export_interval_millis=cfg.metric_interval_s * 1000.0
            )
        ]
    meter_provider = MeterProvider(
        metric_readers=list(readers), resource=resource, shutdown_on_exit=False
    )
    meter = meter_provider.get_meter(semconv.SCOPE_NAME, __version__, semconv.SCHEMA_URL)
    register_health(meter, counters, lambda: processor.queue_size, processor.queue_capacity)
    return meter_provider, RequestInstruments(meter) if cfg.request_metrics else None


def flush(timeout_s: float = 5.0) -> bool:
    """Export everything buffered now (e.g. at the end of a serverless invocation).

    Returns:
        True if every queued span was exported or counted within ``timeout_s`` seconds.
    """
    rt = _RUNTIME
    if rt is None or rt.processor is None:
        return True
    try:
        done: bool = rt.processor.force_flush(int(timeout_s * 1000))
        if rt.meter_provider is not None:
            rt.meter_provider.force_flush(timeout_millis=timeout_s * 1000)
        return done
    except Exception:
        logger.debug("wattledger: flush failed", exc_info=True)
        return False


def shutdown(timeout_s: float | None = None) -> None:
    """Flush within ``timeout_s`` seconds (default 5), stop exporting, reset the SDK.

    After this ``track`` is a no-op again (unless the application configured OpenTelemetry
    itself) and ``init`` may be called anew. Spans still queued at the deadline are counted in
    ``stats().dropped_shutdown``. Registered with ``atexit`` by ``init``.
    """
    global _RUNTIME
    with _LOCK:
        rt = _RUNTIME
        _state.reset()
        if rt is None:
            return
        _RUNTIME = None
        timeout = rt.config.shutdown_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout  # one budget for spans and metrics together
        try:
            if rt.processor is not None:
                rt.processor.shutdown(timeout)
            if rt.meter_provider is not None:
                remaining_s = max(deadline - time.monotonic(), 0.1)
                rt.meter_provider.shutdown(timeout_millis=remaining_s * 1000)
        except Exception:
            logger.debug("wattledger: shutdown failed", exc_info=True)
        finally:
            from wattledger.collectors.sdk._processor import remove_log_filter

            remove_log_filter()
            _LAST_STATS[0] = _snapshot(rt)


_LAST_STATS: list[SdkStats | None] = [None]


def _at_exit() -> None:
    shutdown()


def _snapshot(rt: _Runtime, enabled: bool = False) -> SdkStats:
    c = rt.counters
    p = rt.processor
    dropped = c.dropped_queue_full + c.dropped_export_failed + c.dropped_shutdown
    return SdkStats(
        enabled=enabled,
        endpoint=rt.endpoint,
        spans_exported=c.exported,
        spans_dropped=dropped,
        dropped_queue_full=c.dropped_queue_full,
        dropped_export_failed=c.dropped_export_failed,
        dropped_shutdown=c.dropped_shutdown,
        export_failures=c.export_failures,
        metric_export_failures=c.metric_export_failures,
        queue_size=p.queue_size if p is not None else 0,
        in_flight=p.in_flight if p is not None else 0,
        queue_capacity=p.queue_capacity if p is not None else 0,
        last_export_error=c.last_export_error,
    )


def stats() -> SdkStats:
    """What the SDK did with its spans: exported, dropped by reason, queued now.

    After ``shutdown`` this is the final snapshot of the last run (``enabled`` False).
    """
    rt = _RUNTIME
    if rt is not None:
        return _snapshot(rt, enabled=True)
    if _LAST_STATS[0] is not None:
        return _LAST_STATS[0]
    return SdkStats(False, None, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None)
