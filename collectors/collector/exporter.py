"""Send buffered sample cycles to ingest with the official OTLP/HTTP metric exporter.

A background thread wakes every ``export_interval_s`` (or when a flush is requested), takes up
to ``max_batch_samples`` cycles from the ``SampleBuffer``, encodes them as one OTLP request
(:class:`~wattledger.collectors.collector.otlp.OtlpEncoder`) and hands it to the official
``OTLPMetricExporter`` (which POSTs protobuf to ``<endpoint>/v1/metrics`` and itself retries
429/502/503/504 and connection errors within its timeout). A failed batch goes back to the
front of the buffer and the thread backs off exponentially (with jitter) up to
``max_backoff_s``; meanwhile sampling continues and the buffer drops its oldest cycles when
full. A batch the server rejects as malformed (HTTP 400 or 413) is dropped, never retried
(OTLP spec). Going down and coming back are logged once each.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.resources import Resource

from wattledger.collectors.collector.buffer import SampleBuffer
from wattledger.collectors.collector.otlp import OtlpEncoder, count_points

logger = logging.getLogger(__name__)
#: Status codes the OTLP spec says must not be retried: the data itself is bad.
PERMANENT_STATUS = frozenset({400, 413})


@dataclass
class ExportStats:
    """Counters of the export path (also shown by ``collect --once`` and the benchmark)."""

    exported_cycles: int = 0
    exported_points: int = 0
    failed_attempts: int = 0
    rejected_cycles: int = 0
    requests: int = 0


class SampleExporter:
    """Drains a :class:`SampleBuffer` to an OTLP/HTTP endpoint from a background thread.

    Args:
        buffer: Where the sampler puts cycles.
        endpoint: Base URL of ingest (``/v1/metrics`` is appended).
        resource: Resource attached to every request.
        start_times: Device id -> series start time (Unix ns), shared with the sampler.
        api_key: Sent as ``Authorization: Bearer <key>`` when set.
        export_interval_s: Seconds between exports.
        export_timeout_s: Timeout of one export call (the OTel exporter retries within it).
        max_batch_samples: Cycles per request.
        max_backoff_s: Longest wait between failed attempts.
        exporter: A ready ``OTLPMetricExporter``-like object (tests); default builds one.
    """

    def __init__(
        self,
        buffer: SampleBuffer,
        endpoint: str,
        resource: Resource,
        start_times: Mapping[str, int],
        *,
        api_key: str | None = None,
        export_interval_s: float = 5.0,
        export_timeout_s: float = 10.0,
        max_batch_samples: int = 120,
        max_backoff_s: float = 60.0,
        exporter: Any = None,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.buffer = buffer
        self.url = endpoint.rstrip("/") + "/v1/metrics"
        self.resource = resource
        self.start_times = start_times
        self.export_interval_s = export_interval_s
        self.max_batch_samples = max_batch_samples
        self.max_backoff_s = max_backoff_s
        self.stats = ExportStats()
        self._wall_ns = wall_ns
        self._started_ns = wall_ns()
        self._last_status: int | None = None
        self._session = requests.Session()
        self._session.hooks["response"].append(self._remember_status)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._exporter = exporter or OTLPMetricExporter(
            endpoint=self.url,
            headers=headers,
            timeout=export_timeout_s,
            session=self._session,
        )
        self._encoder = OtlpEncoder(resource)
        # The official exporter's transport (headers, retries, compression, size limit) takes
        # a ready request here; encoding it ourselves caches each device's attributes, which
        # the per-point official encoder cannot (see OtlpEncoder). Others get MetricsData.
        self._send_request = getattr(self._exporter, "_export_batch", None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_since: float | None = None
        self._failures = 0
        self._lock = threading.Lock()

    def _remember_status(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_status = response.status_code

    # --- thread ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the export thread."""
        self._thread = threading.Thread(target=self._run, name="wattledger-export", daemon=True)
        self._thread.start()

    def request_flush(self) -> None:
        """Export now instead of at the next interval."""
        self._wake.set()

    def _run(self) -> None:
        wait_s = self.export_interval_s
        while not self._stop.is_set():
            self._wake.wait(wait_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self.send_pending():
                self._failures = 0
                wait_s = self.export_interval_s
            else:
                self._failures += 1
                backoff = min(self.max_backoff_s, 2.0 ** min(self._failures - 1, 16))
                wait_s = max(backoff * random.uniform(0.8, 1.2), self.export_interval_s)

    def shutdown(self, timeout_s: float) -> bool:
        """Stop the thread, send what is buffered within ``timeout_s``; True if all was sent."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(timeout_s, 0.1))
        deadline = time.monotonic() + timeout_s
        sent_all = True
        while len(self.buffer) and time.monotonic() < deadline:
            if not self.send_pending(deadline=deadline):
                sent_all = False
                break
        left = len(self.buffer)
        if left:
            logger.warning(
                "Shutting down with %d sample cycle(s) not delivered to %s.", left, self.url
            )
        self._exporter.shutdown()
        self._session.close()
        return sent_all and not left

    # --- sending -----------------------------------------------------------------------------
    def send_pending(self, deadline: float | None = None) -> bool:
        """Send everything buffered, batch by batch; False at the first failed batch."""
        with self._lock:
            while len(self.buffer):
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                batch = self.buffer.take(self.max_batch_samples)
                dropped = self.buffer.dropped
                counter = (self._started_ns, self._wall_ns(), dropped) if dropped else None
                self._last_status = None
                self.stats.requests += 1
                if self._send_request is not None:
                    request = self._encoder.request(batch, self.start_times, counter)
                    points = count_points(request)
                    result = self._send_request(request)
                else:
                    data = self._encoder.metrics_data(batch, self.start_times, counter)
                    points = sum(
                        len(m.data.data_points)
                        for rm in data.resource_metrics
                        for sm in rm.scope_metrics
                        for m in sm.metrics
                    )
                    result = self._exporter.export(data)
                if result == MetricExportResult.SUCCESS:
                    self.stats.exported_cycles += len(batch)
                    self.stats.exported_points += points
                    self._recovered()
                    continue
                self.stats.failed_attempts += 1
                if self._last_status in PERMANENT_STATUS:
                    self.stats.rejected_cycles += len(batch)
                    logger.error(
                        "Ingest at %s rejected %d sample cycle(s) as malformed (HTTP %s); "
                        "they are dropped. This is a bug: please report it.",
                        self.url,
                        len(batch),
                        self._last_status,
                    )
                    continue
                self.buffer.put_back(batch)
                self._went_down()
                return False
        return True

    def _went_down(self) -> None:
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        status = self._last_status
        why = f"HTTP {status}" if status else "no connection"
        hint = (
            " Check the API key (WATTLEDGER_API_KEY / --api-key)."
            if status in (401, 403)
            else " Samples are kept (oldest dropped when the buffer is full) and retried."
        )
        logger.warning("Cannot export to %s (%s).%s", self.url, why, hint)

    def _recovered(self) -> None:
        if self._down_since is None:
            return
        down_s = time.monotonic() - self._down_since
        self._down_since = None
        logger.warning(
            "Exporting to %s works again after %.0f s; %d cycle(s) were dropped meanwhile.",
            self.url,
            down_s,
            self.buffer.dropped,
        )


__all__ = ["PERMANENT_STATUS", "ExportStats", "SampleExporter"]
