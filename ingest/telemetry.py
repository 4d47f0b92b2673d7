"""Counters about the receiver itself, for ``GET /metrics`` (Prometheus text) and the logs.

Each :class:`IngestStats` has its own registry, so two services in one process (tests, or
``wattledger serve`` beside other components) never share or double-register counters.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

logger = logging.getLogger(__name__)

SIGNALS = ("traces", "metrics")


class IngestStats:
    """Received, rejected (by reason), dropped, written and duplicate counts, and queue depth.

    ``traces`` counts spans; ``metrics`` counts data points on receipt and ``power_samples``
    rows once written (several points of one device and instant make one row).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "wattledger_ingest_received", "Spans or points received.", ["signal"], registry=r
        )
        self.rejected = Counter(
            "wattledger_ingest_rejected",
            "Spans or points refused as invalid, by reason.",
            ["signal", "reason"],
            registry=r,
        )
        self.dropped = Counter(
            "wattledger_ingest_dropped",
            "Spans or points accepted but not stored (non-GenAI spans, other metrics).",
            ["signal", "reason"],
            registry=r,
        )
        self.written = Counter(
            "wattledger_ingest_written", "Rows written to the warehouse.", ["signal"], registry=r
        )
        self.duplicates = Counter(
            "wattledger_ingest_duplicates",
            "Rows not written because their key was already stored.",
            ["signal"],
            registry=r,
        )
        self.requests = Counter(
            "wattledger_ingest_requests", "HTTP requests answered.", ["path", "code"], registry=r
        )
        self.write_failures = Counter(
            "wattledger_ingest_write_failures",
            "Warehouse writes that failed and were retried.",
            registry=r,
        )
        self.queue_rows = Gauge(
            "wattledger_ingest_queue_rows",
            "Rows accepted (spooled) but not yet in the warehouse.",
            registry=r,
        )
        self.spool_bytes = Gauge(
            "wattledger_ingest_spool_bytes", "Bytes in spool segment files.", registry=r
        )
        self.database_up = Gauge(
            "wattledger_ingest_database_up",
            "1 when the last warehouse write or probe succeeded.",
            registry=r,
        )
        self.write_seconds = Histogram(
            "wattledger_ingest_write_seconds",
            "Duration of one warehouse write transaction, seconds.",
            registry=r,
        )
        self.decode_batch_bodies = Histogram(
            "wattledger_ingest_decode_batch_bodies",
            "Request bodies a decode worker took at once (more wait when it is busy).",
            buckets=(1, 2, 4, 8, 16),
            registry=r,
        )
        for s in SIGNALS:
            for c in (self.received, self.written, self.duplicates):
                c.labels(signal=s)
        self.database_up.set(0)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample, e.g. ``value("wattledger_ingest_written_total",
        signal="traces")``; 0 when never set."""
        v = self.registry.get_sample_value(name, labels)
        return float(v) if v is not None else 0.0

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every counter."""
        return generate_latest(self.registry)

    def summary(self) -> str:
        """One log line with the totals."""
        parts = []
        for s in SIGNALS:
            parts.append(
                f"{s}: received {self._total('received', s):.0f}, "
                f"rejected {self._total('rejected', s):.0f}, "
                f"dropped {self._total('dropped', s):.0f}, "
                f"written {self._total('written', s):.0f}, "
                f"duplicates {self._total('duplicates', s):.0f}"
            )
        queue = self.registry.get_sample_value("wattledger_ingest_queue_rows") or 0
        parts.append(f"queue {queue:.0f} rows")
        return "; ".join(parts)

    def _total(self, metric: str, signal: str) -> float:
        total = 0.0
        for family in self.registry.collect():
            if family.name != f"wattledger_ingest_{metric}":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("signal") == signal:
                    total += sample.value
        return total
