"""The ingest service: spool, writer, key checks and the ASGI app, with a start/stop lifecycle.

``wattledger ingest serve`` runs one under uvicorn; ``wattledger serve`` builds one with
:func:`create_ingest` from the same settings and engine as the analytics scheduler and calls
:meth:`IngestService.start` / :meth:`IngestService.stop` itself (or lets the app's lifespan do
it). On DuckDB the one engine is shared by everything in the process, which owns the file.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from wattledger.config import Settings
from wattledger.ingest.auth import KeyVerifier
from wattledger.ingest.decoding import DecodeQueue
from wattledger.ingest.mapping.requests import MappedRequests, map_requests
from wattledger.ingest.mapping.samples import map_samples
from wattledger.ingest.otlp import _fast_traces
from wattledger.ingest.otlp import metrics as otlp_metrics
from wattledger.ingest.otlp import traces as otlp_traces
from wattledger.ingest.otlp.values import DecodeError
from wattledger.ingest.privacy import private_record
from wattledger.ingest.spool import Spool, SpoolRecord, Ticket
from wattledger.ingest.telemetry import IngestStats
from wattledger.ingest.writer import Batch, Writer

logger = logging.getLogger(__name__)

DEFAULT_TENANT = "default"


class BodyTooLarge(Exception):
    """The body exceeds ``max_body_bytes`` (HTTP 413)."""


@dataclass
class Outcome:
    """What one request body held and what became of it."""

    received: int = 0
    rejected: int = 0
    dropped: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None
    batch: Batch | None = None


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded from ``encoding`` (``identity``, ``gzip`` or ``deflate``).

    Raises:
        BodyTooLarge: the decompressed body exceeds ``limit`` bytes.
        DecodeError: the body is not valid for its encoding.
    """
    if encoding == "identity":
        return body
    wbits = 31 if encoding == "gzip" else 15
    out = bytearray()
    data = body
    try:
        while data:
            d = zlib.decompressobj(wbits)
            out += d.decompress(data, limit + 1 - len(out))
            if len(out) > limit or d.unconsumed_tail:
                raise BodyTooLarge
            if not d.eof:
                raise DecodeError(f"the {encoding} body is truncated")
            data = d.unused_data  # gzip allows several members back to back
    except zlib.error as e:
        raise DecodeError(f"the body is not valid {encoding}: {e}") from e
    return bytes(out)


def default_spool_dir(settings: Settings) -> Path:
    """``<data_dir>/spool/ingest-<hash of the database URL>``: a spool belongs to a warehouse."""
    url = make_url(settings.url).render_as_string(hide_password=False)
    return settings.data_dir / "spool" / f"ingest-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


class IngestService:
    """The OTLP receiver and its writer, sharing ``engine``.

    Args:
        settings: Full settings; ``settings.ingest`` configures the receiver.
        engine: The warehouse engine (shared with other components in the process).
        spool_dir: Override of the spool directory (default from settings).
    """

    def __init__(self, settings: Settings, engine: Engine, spool_dir: Path | None = None) -> None:
        self.settings = settings
        self.config = settings.ingest
        self.engine = engine
        self.stats = IngestStats()
        directory = spool_dir or self.config.spool_dir or default_spool_dir(settings)
        self.spool = Spool(
            Path(directory), self.config.spool_segment_bytes, self.config.spool_retention_s
        )
        self.verifier = KeyVerifier(engine, self.config.auth_cache_ttl_s)
        self.writer = Writer(engine, self.spool, self.config, self.stats)
        self.decoder = DecodeQueue(self.process_many, self.config.decode_threads)
        self._started = False
        self._lock = threading.Lock()
        self._stop_logging = threading.Event()
        #: Extra fields of the ``/readyz`` document, e.g. ``serve``'s scheduler role.
        self.status: dict[str, Callable[[], object]] = {}
        from wattledger.ingest.app import build_app

        self.app: Starlette = build_app(self)

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._started

    def start(self) -> None:
        """Recover the spool, start the writer and replay what the spool held. Idempotent.

        Raises:
            wattledger.ingest.spool.SpoolLocked: another process uses the spool directory.
        """
        with self._lock:
            if self._started:
                return
            if self.config.insecure_no_auth:
                logger.warning(
                    "INSECURE: --insecure-no-auth is on; anyone who can reach this port can "
                    "write data (tenant %r). Use it for local demos only.",
                    DEFAULT_TENANT,
                )
            from wattledger.ingest.recovery import recover_duckdb

            recover_duckdb(self.engine)
            replay = self.spool.open()
            _warm_up()
            self.writer.start()
            self.decoder.start()
            if replay:
                self._replay(replay)
            if self.config.stats_log_interval_s > 0:
                threading.Thread(
                    target=self._log_stats, name="wattledger-ingest-stats", daemon=True
                ).start()
            self._started = True
            logger.info("ingest ready (spool %s)", self.spool.directory)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, checkpoint, close the spool. Idempotent."""
        with self._lock:
            if not self._started:
                return
            self._stop_logging.set()
            self.decoder.stop()
            self.writer.stop(timeout_s)
            self.verifier.close()
            self.spool.close()
            self._started = False
            logger.info("ingest stopped; %s", self.stats.summary())

    def _replay(self, records: list[tuple[Ticket, SpoolRecord]]) -> None:
        logger.info("replaying %d spooled request(s) from %s", len(records), self.spool.directory)
        for ticket, record in records:
            try:
                outcome = self.process(record, spool=False)
            except (DecodeError, BodyTooLarge) as e:  # cannot happen for what we accepted
                logger.error("spooled request cannot be decoded, skipping it: %s", e)
                self.spool.release([ticket])
                continue
            if outcome.batch is not None:
                outcome.batch.ticket = ticket
                self.writer.submit(outcome.batch)
            else:
                self.spool.release([ticket])

    def process(self, record: SpoolRecord, *, spool: bool = True) -> Outcome:
        """Decode, map and (when ``spool``) durably spool one request body. Blocking.

        Raises:
            DecodeError: the body is not a valid export request (400).
            BodyTooLarge: it decompresses to more than ``max_body_bytes`` (413).
            OSError: the spool could not be written (503).
        """
        raw = decompress(record.body, record.encoding, self.config.max_body_bytes)
        out = Outcome()
        if record.signal == "traces":
            spans = otlp_traces.decode(raw, record.fmt)
            mapped = map_requests(
                spans.columns, tenant=record.tenant, provider_hosts=self.config.provider_hosts
            )
            out = _traces_outcome(mapped)
        else:
            points = otlp_metrics.decode(raw, record.fmt)
            ms = map_samples(points.columns, tenant=record.tenant)
            out.received, out.rejected, out.dropped = points.count, ms.rejected, ms.ignored
            out.rejected_by_reason, out.first_error = ms.rejected_by_reason, ms.first_error
            if ms.samples.num_rows or ms.devices.num_rows:
                out.batch = Batch(None, samples=ms.samples, devices=ms.devices)
        if spool and out.batch is not None:
            out.batch.ticket = self.spool_append(record, raw)
        self._count(record.signal, out)
        return out

    def spool_append(self, record: SpoolRecord, raw: bytes | None = None) -> Ticket:
        """Spool ``record`` durably, without message content unless the operator opted in
        (``spool_content``); ``raw`` is its decompressed body when at hand. Blocking.

        Raises:
            OSError: the spool could not be written (503).
        """
        if not self.config.spool_content:
            if raw is None:
                raw = decompress(record.body, record.encoding, self.config.max_body_bytes)
            record = private_record(record, raw)
        return self.spool.append(record)

    def process_many(self, records: list[SpoolRecord]) -> list[Outcome | Exception]:
        """:meth:`process` (without spooling) for several bodies, each protobuf trace body of a
        tenant decoded and mapped together with the others. Blocking.

        Returns:
            For each record, its outcome or the exception :meth:`process` raises for it.
        """
        self.stats.decode_batch_bodies.observe(len(records))
        results: list[Outcome | Exception | None] = [None] * len(records)
        groups: dict[str, list[tuple[int, bytes]]] = {}
        if len(records) > 1:
            for i, r in enumerate(records):
                if r.signal == "traces" and r.fmt == "protobuf":
                    try:
                        raw = decompress(r.body, r.encoding, self.config.max_body_bytes)
                    except (BodyTooLarge, DecodeError) as e:
                        results[i] = e
                        continue
                    groups.setdefault(r.tenant, []).append((i, raw))
        for tenant, items in groups.items():
            if len(items) < 2:
                continue
            try:
                decoded, counts = _fast_traces.decode_many([raw for _, raw in items])
            except _fast_traces.NotCanonical:
                continue  # each body on its own below, so a bad one fails alone
            mapped = map_requests(
                decoded.columns,
                tenant=tenant,
                provider_hosts=self.config.provider_hosts,
                segments=counts,
            )
            for (i, _), part in zip(items, mapped.parts, strict=True):
                out = _traces_outcome(part)
                self._count("traces", out)
                results[i] = out
        for i, r in enumerate(records):
            if results[i] is None:
                try:
                    results[i] = self.process(r, spool=False)
                except Exception as e:  # noqa: BLE001 - handed to the caller for its answer
                    results[i] = e
        return results  # type: ignore[return-value]

    def _count(self, signal: str, out: Outcome) -> None:
        s = self.stats
        s.received.labels(signal=signal).inc(out.received)
        for reason, count in out.rejected_by_reason.items():
            s.rejected.labels(signal=signal, reason=reason).inc(count)
        if out.dropped:
            reason = "not_genai" if signal == "traces" else "not_stored"
            s.dropped.labels(signal=signal, reason=reason).inc(out.dropped)
        s.spool_bytes.set(self.spool.size_bytes)

    def _log_stats(self) -> None:
        while not self._stop_logging.wait(self.config.stats_log_interval_s):
            logger.info("ingest: %s", self.stats.summary())

    def rejected_outside_request(self, signal: str, reason: str, count: int) -> None:
        """Count items refused before decoding (e.g. a 413 or 400 body)."""
        self.stats.rejected.labels(signal=signal, reason=reason).inc(count)


def _traces_outcome(mapped: MappedRequests) -> Outcome:
    out = Outcome(
        received=mapped.received,
        rejected=mapped.rejected,
        dropped=mapped.non_genai,
        rejected_by_reason=mapped.rejected_by_reason,
        first_error=mapped.first_error,
    )
    if mapped.table.num_rows:
        out.batch = Batch(None, requests=mapped.table)
    return out


def _warm_up() -> None:
    """Decode and map one tiny request so lazy imports happen now, not in the first request."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = b"\x01" * 16, b"\x01" * 8
    span.start_time_unix_nano, span.end_time_unix_nano = (
        1_700_000_000 * 10**9,
        1_700_000_001 * 10**9,
    )
    attr = span.attributes.add()
    attr.key, attr.value.string_value = "gen_ai.operation.name", "chat"
    decoded = otlp_traces.decode_protobuf(request.SerializeToString())
    map_requests(decoded.columns, tenant=DEFAULT_TENANT)
    map_samples(
        {
            "metric": ["hw.power"],
            "time_unix_nano": [span.start_time_unix_nano],
            "value": [1.0],
            "hw.id": ["warm-up"],
        },
        tenant=DEFAULT_TENANT,
    )


def create_ingest(settings: Settings, engine: Engine) -> IngestService:
    """Build the ingest service (ASGI app at ``.app``, plus its writer) from settings and engine.

    Call ``start()`` before serving and ``stop()`` at shutdown, or serve ``.app`` with an ASGI
    server that runs lifespan events, which do both.
    """
    return IngestService(settings, engine)
