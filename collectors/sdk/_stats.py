"""Counters behind ``wattledger.stats()``, and the rate-limited warning.

Every span the SDK hands to its queue ends in exactly one of four places: exported, dropped
because the queue was full, dropped because the export failed, or dropped at shutdown. The
counters below hold those totals for the life of the process (reset in a forked child), so
every span given to the SDK is in ``exported + dropped + queue_size + in_flight``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

#: Drop reasons, used as ``error.type`` on the ``wattledger.sdk.spans.dropped`` metric.
DROP_QUEUE_FULL = "queue_full"
DROP_EXPORT_FAILED = "export_failed"
DROP_SHUTDOWN = "shutdown"


@dataclass(frozen=True, slots=True)
class SdkStats:
    """A snapshot of what the SDK did with the spans it was given.

    Attributes:
        enabled: True while ``wattledger.init`` is in effect.
        endpoint: Where spans are sent (``<endpoint>/v1/traces``), or None when not exporting
            over OTLP (an exporter was passed in, or the SDK is not initialised).
        spans_exported: Spans the exporter acknowledged.
        spans_dropped: Spans lost, all reasons; the sum of the three ``dropped_*`` fields.
        dropped_queue_full: Spans refused because the queue was at capacity (a burst, or a slow
            or dead endpoint).
        dropped_export_failed: Spans in batches the exporter gave up on.
        dropped_shutdown: Spans still queued when ``shutdown`` ran out of time.
        export_failures: Span export calls that failed (each loses one batch).
        metric_export_failures: Metric exports that failed.
        queue_size: Spans waiting in the queue now.
        in_flight: Spans in the batch being exported now.
        queue_capacity: Maximum spans the queue holds.
        last_export_error: The exporter's last failure message, if any.
    """

    enabled: bool
    endpoint: str | None
    spans_exported: int
    spans_dropped: int
    dropped_queue_full: int
    dropped_export_failed: int
    dropped_shutdown: int
    export_failures: int
    metric_export_failures: int
    queue_size: int
    in_flight: int
    queue_capacity: int
    last_export_error: str | None

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a plain dict (JSON-serialisable)."""
        return asdict(self)


class Counters:
    """Mutable totals shared by the processor (writer) and ``stats()`` (reader).

    Increments happen under one lock: the hot path (a span accepted into the queue) does not
    touch it; only exports and drops do, which are per batch or rare.
    """

    __slots__ = (
        "_lock",
        "exported",
        "dropped_queue_full",
        "dropped_export_failed",
        "dropped_shutdown",
        "export_failures",
        "metric_export_failures",
        "last_export_error",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every total (a new process after fork, or a new ``init``)."""
        self._lock = threading.Lock()
        self.exported = 0
        self.dropped_queue_full = 0
        self.dropped_export_failed = 0
        self.dropped_shutdown = 0
        self.export_failures = 0
        self.metric_export_failures = 0
        self.last_export_error: str | None = None

    def add(self, field: str, n: int = 1) -> None:
        """Add ``n`` to the counter named ``field``, thread-safely."""
        with self._lock:
            setattr(self, field, getattr(self, field) + n)

    def record_export_failure(self, n: int, error: str) -> None:
        """Count one failed export call that lost ``n`` spans, and remember why."""
        with self._lock:
            self.dropped_export_failed += n
            self.export_failures += 1
            self.last_export_error = error

    def dropped_by_reason(self) -> dict[str, int]:
        """Drops so far keyed by reason (``queue_full``, ``export_failed``, ``shutdown``)."""
        return {
            DROP_QUEUE_FULL: self.dropped_queue_full,
            DROP_EXPORT_FAILED: self.dropped_export_failed,
            DROP_SHUTDOWN: self.dropped_shutdown,
        }


class RateLimitedWarning:
    """Logs one WARNING per ``interval_s`` at most; calls in between are only counted.

    A dead endpoint must cost the host a warning now and then, not a log line per batch.
    """

    __slots__ = ("_logger", "_interval_ns", "_next_ns", "_suppressed", "_lock")

    def __init__(self, logger: logging.Logger, interval_s: float) -> None:
        self._logger = logger
        self._interval_ns = int(max(interval_s, 0.0) * 1e9)
        self._next_ns = 0
        self._suppressed = 0
        self._lock = threading.Lock()

    def warn(self, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless one was logged within the interval. Returns True if logged."""
        now = time.monotonic_ns()
        with self._lock:
            if now < self._next_ns:
                self._suppressed += 1
                return False
            self._next_ns = now + self._interval_ns
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            msg += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        self._logger.warning(msg, *args)
        return True
