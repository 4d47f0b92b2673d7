"""A batch span processor that never blocks the host and never drops a span without counting it.

Modelled on OpenTelemetry's ``BatchSpanProcessor`` (``opentelemetry.sdk._shared_internal``):
one bounded deque, one daemon worker thread that exports in batches, re-created in a forked
child. It differs where the SDK's promises need it to:

- every span that does not reach the endpoint is counted by reason (queue full, export
  failed, shutdown) in :class:`~wattledger.collectors.sdk._stats.Counters`;
- a dead endpoint costs a rate-limited warning, not a log line per batch: the OTLP exporter's
  own per-attempt messages are captured (as the last error) while *this* worker exports;
- ``force_flush`` and ``shutdown`` honour their timeouts even when the endpoint hangs;
- only GenAI spans are exported by default, so reusing an application's ``TracerProvider``
  does not ship its HTTP and database spans to the ingest service;
- after ``fork`` the child gets a new worker, an empty queue, zeroed counters and, when a
  factory was given, a new exporter (the parent's HTTP connections are not shared).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from wattledger.collectors import semconv
from wattledger.collectors.sdk._stats import Counters, RateLimitedWarning

logger = logging.getLogger(__name__)

#: Loggers of the official OTLP/HTTP exporters; their records from our export calls are captured.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)

#: Longest wait between export attempts while the endpoint keeps failing, in seconds.
MAX_BACKOFF_S = 30.0

_quiet = threading.local()


class ExporterLogFilter(logging.Filter):
    """Swallows exporter log records emitted while wattledger itself is exporting.

    The messages are kept per thread (:func:`captured_messages`) so the SDK's own rate-limited
    warning can say why the export failed. Records from an application's own exporters pass
    untouched.
    """

    def __init__(self) -> None:
        super().__init__("wattledger")

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_quiet, "active", False):
            if record.levelno >= logging.WARNING:
                _quiet.messages.append(record.getMessage())
            return False
        return True


def note_refusal(response: Any, *args: Any, **kwargs: Any) -> None:
    """``requests`` response hook on wattledger's own exporter: an HTTP error's body (ingest's
    one-line reason, e.g. "API key is not valid for this endpoint") becomes the first captured
    message, so the SDK's warning says why, not just "Unauthorized". Never raises."""
    try:
        if getattr(_quiet, "active", False) and response.status_code >= 400:
            text = _refusal_text(response)
            reason = f"HTTP {response.status_code} {response.reason or ''}".strip()
            _quiet.messages.insert(0, f"{reason}: {text}" if text else reason)
    except Exception:  # noqa: BLE001, S110 - a diagnostics hook must never break an export
        pass


def _refusal_text(response: Any) -> str:
    """The reason in an OTLP error body: a protobuf ``google.rpc.Status`` (what OTLP/HTTP
    servers answer a protobuf request with), JSON ``{"message": ...}``, or plain text."""
    kind = response.headers.get("Content-Type", "")
    if "protobuf" in kind:
        from google.rpc import status_pb2

        return " ".join(status_pb2.Status.FromString(response.content).message.split())[:300]
    text = response.text or ""
    if "json" in kind:
        import json

        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            text = str(body.get("message") or body.get("error") or text)
    return " ".join(text.split())[:300]


def captured_messages() -> list[str]:
    """Exporter messages captured in this thread during the last ``quiet_export`` block."""
    return list(getattr(_quiet, "messages", []))


LOG_FILTER = ExporterLogFilter()


def install_log_filter() -> None:
    """Attach :data:`LOG_FILTER` to the exporter loggers (idempotent)."""
    for name in EXPORTER_LOGGERS:
        log = logging.getLogger(name)
        if LOG_FILTER not in log.filters:
            log.addFilter(LOG_FILTER)


def remove_log_filter() -> None:
    """Detach :data:`LOG_FILTER` from the exporter loggers."""
    for name in EXPORTER_LOGGERS:
        logging.getLogger(name).removeFilter(LOG_FILTER)


class quiet_export:  # noqa: N801 - used like a function: ``with quiet_export():``
    """Context manager marking the current thread as exporting for wattledger."""

    def __enter__(self) -> None:
        _quiet.active = True
        _quiet.messages = []

    def __exit__(self, *exc: object) -> None:
        _quiet.active = False


def genai_span_filter(span: ReadableSpan) -> bool:
    """True for spans wattledger should export: its own, or any with ``gen_ai.operation.name``."""
    scope = span.instrumentation_scope
    if scope is not None and scope.name == semconv.SCOPE_NAME:
        return True
    attrs = span.attributes
    return attrs is not None and semconv.GEN_AI_OPERATION_NAME in attrs


class QueuedSpanProcessor(SpanProcessor):
    """Bounded, counted, fork-safe batch export of finished spans.

    Args:
        exporter: Where batches go (the official ``OTLPSpanExporter`` in production).
        counters: Totals to update; read by ``wattledger.stats()``.
        max_queue_size: Spans held before new ones are dropped (and counted).
        max_export_batch_size: Spans per ``export`` call.
        schedule_delay_s: Longest wait between exports, in seconds.
        warn_interval_s: At most one drop warning and one export warning per this many seconds.
        span_filter: Spans for which it returns False are ignored (neither queued nor counted);
            None exports every span.
        exporter_factory: Builds a fresh exporter in a forked child; None keeps the same one.
        target: Human-readable destination for messages (the traces URL).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        counters: Counters,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay_s: float,
        warn_interval_s: float,
        span_filter: Callable[[ReadableSpan], bool] | None = genai_span_filter,
        exporter_factory: Callable[[], SpanExporter] | None = None,
        target: str = "the exporter",
    ) -> None:
        self._exporter = exporter
        self._exporter_factory = exporter_factory
        self._counters = counters
        self._max_queue_size = max_queue_size
        self._batch_size = max(1, min(max_export_batch_size, max_queue_size))
        self._delay_s = schedule_delay_s
        self._filter = span_filter
        self._target = target
        self._warn_drop = RateLimitedWarning(logger, warn_interval_s)
        self._warn_export = RateLimitedWarning(logger, warn_interval_s)
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._shutdown = False
        self._deadline_ns: int | None = None
        self.in_flight = 0
        self._failures_in_row = 0
        self._retry_at_ns = 0
        self._start_worker()
        weak_reinit = weakref.WeakMethod(self._at_fork_reinit)

        def _after_in_child() -> None:
            if (reinit := weak_reinit()) is not None:
                reinit()

        os.register_at_fork(after_in_child=_after_in_child)

    @property
    def queue_size(self) -> int:
        """Spans waiting in the queue now."""
        return len(self._queue)

    @property
    def queue_capacity(self) -> int:
        """Spans the queue holds at most."""
        return self._max_queue_size

    def _start_worker(self) -> None:
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        self._worker = threading.Thread(
            target=self._run, name="wattledger-span-export", daemon=True
        )
        self._worker.start()

    def _at_fork_reinit(self) -> None:
        # The parent's queue is the parent's business; the child starts clean.
        self._queue.clear()
        self._counters.reset()
        self.in_flight = 0
        self._failures_in_row = 0
        self._retry_at_ns = 0
        if self._exporter_factory is not None and not self._shutdown:
            try:
                self._exporter = self._exporter_factory()
            except Exception:  # never raise into the host
                logger.exception("wattledger: could not re-create the exporter after fork")
        if not self._shutdown:
            self._start_worker()

    def on_start(self, span: object, parent_context: object = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a finished span; count it as dropped when the queue is full. Never blocks."""
        if self._filter is not None and not self._filter(span):
            return
        if self._shutdown:
            self._counters.add("dropped_shutdown")
            return
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self._counters.add("dropped_queue_full")
            self._warn_drop.warn(
                "wattledger: span queue full (%d spans); dropping spans (%d so far). The "
                "endpoint %s is down or slower than the request rate: check it, or raise "
                "max_queue_size / WATTLEDGER_SDK_MAX_QUEUE_SIZE. See wattledger.stats().",
                self._max_queue_size,
                self._counters.dropped_queue_full,
                self._target,
            )
            return
        queue.append(span)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        while not self._shutdown:
            timeout_s = self._delay_s
            if self._retry_at_ns:
                timeout_s = max((self._retry_at_ns - time.monotonic_ns()) / 1e9, 0.0)
            self._wake.wait(timeout_s)
            self._wake.clear()
            if self._retry_at_ns and time.monotonic_ns() < self._retry_at_ns:
                continue  # backing off from a failing endpoint; the queue absorbs the wait
            self._drain()
        self._drain()

    def _drain(self, lock_timeout_s: float = -1) -> bool:
        """Export queued batches until the queue is empty, an export fails, or the deadline.

        Returns True when the queue was emptied.
        """
        if not self._export_lock.acquire(timeout=lock_timeout_s):
            return False
        try:
            while self._queue:
                if self._deadline_ns is not None and time.monotonic_ns() >= self._deadline_ns:
                    return False
                n = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
                if not self._export(batch):
                    return False
            return True
        finally:
            self._export_lock.release()

    def _export(self, batch: Sequence[ReadableSpan]) -> bool:
        """Export one batch and count the outcome; on failure schedule a back-off."""
        n = len(batch)
        self.in_flight = n
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        error: str | None = None
        try:
            with quiet_export():
                result = self._exporter.export(batch)
        except Exception as exc:  # an exporter bug must not kill the worker
            result = SpanExportResult.FAILURE
            error = f"{type(exc).__name__}: {exc}"
        finally:
            detach(token)
        self.in_flight = 0
        if result is SpanExportResult.SUCCESS:
            self._counters.add("exported", n)
            self._failures_in_row = 0
            self._retry_at_ns = 0
            return True
        # A dead endpoint must not cost CPU: wait 1, 2, 4 … 30 s before the next attempt.
        self._failures_in_row += 1
        backoff_s = min(2.0 ** (self._failures_in_row - 1), MAX_BACKOFF_S)
        self._retry_at_ns = time.monotonic_ns() + int(backoff_s * 1e9)
        # The first message names the cause (e.g. connection refused, HTTP 401).
        error = error or next(iter(captured_messages()), "the exporter reported failure")
        self._counters.record_export_failure(n, error)
        self._warn_export.warn(
            "wattledger: could not export %d spans to %s (%s); they are dropped (%d so far) "
            "and the next attempt waits %.0f s. Tracked code is not affected. Is the ingest "
            "service running and is the API key right? See wattledger.stats().",
            n,
            self._target,
            error,
            self._counters.dropped_export_failed,
            backoff_s,
        )
        return False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now; True if the queue emptied within the timeout."""
        if self._shutdown:
            return not self._queue
        timeout_s = max(timeout_millis / 1000.0, 0.0)
        self._deadline_ns = time.monotonic_ns() + int(timeout_s * 1e9)
        try:
            return self._drain(lock_timeout_s=timeout_s)
        finally:
            self._deadline_ns = None

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Flush within ``timeout_s`` seconds, stop the worker, count what is left as dropped."""
        if self._shutdown:
            return
        self._deadline_ns = time.monotonic_ns() + int(timeout_s * 1e9)
        self._shutdown = True
        self._wake.set()
        self._worker.join(max(timeout_s - 0.5, 0.0))
        # Interrupts the exporter's retry back-off if an export is still running.
        try:
            with quiet_export():
                self._exporter.shutdown()
        except Exception:
            logger.debug("wattledger: exporter shutdown failed", exc_info=True)
        self._worker.join(0.5)
        left = len(self._queue)
        self._queue.clear()
        if left:
            self._counters.add("dropped_shutdown", left)
            logger.warning(
                "wattledger: %d spans could not be exported to %s before shutdown (within "
                "%.1f s); they are counted in wattledger.stats().dropped_shutdown.",
                left,
                self._target,
                timeout_s,
            )
