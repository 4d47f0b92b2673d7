"""``[ingest]`` settings: the OTLP/HTTP receiver (``WATTLEDGER_INGEST__*``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from wattledger.ingest.connections import ConnectionLimits


class IngestSettings(BaseModel):
    """How ``wattledger ingest serve`` listens, authenticates, buffers and writes.

    Attributes:
        host: Interface to bind. Keep 127.0.0.1 unless a proxy or collector fronts it.
        port: TCP port; 4318 is the OTLP/HTTP default.
        max_body_bytes: Largest accepted request body, bytes, checked both as received and
            after decompression; larger gets 413.
        insecure_no_auth: Accept data without an API key, stamped with tenant ``default``.
            For local demos only.
        spool_dir: Directory of the write-ahead spool (default ``<data_dir>/spool/ingest``).
            A 2xx answer means the batch is fsynced here or committed to the warehouse.
        spool_segment_bytes: Size at which a spool segment file is closed and a new one begun.
        spool_retention_s: Seconds a spool segment stays on disk once every body in it is in
            the warehouse (bodies may hold message content): 0, the default, deletes it at
            once.
        spool_content: Spool trace bodies as received, message content included. Off by
            default: span attributes the mapping does not read and all event attributes are
            dropped before a body reaches disk (the warehouse never stores content either).
        batch_max_rows: Most rows the writer puts in one warehouse transaction (default: one
            DuckDB row group, which DuckDB writes straight into the file).
        flush_interval_s: Longest an accepted row waits for its batch to fill before it is
            written, when the writer was idle (rows that queued during a write are taken at once).
            Bigger batches write faster; the rows are already safe in the spool.
        max_queue_rows: Rows accepted but not yet in the warehouse above which new requests get
            429 with ``Retry-After``.
        retry_after_s: Seconds sent in ``Retry-After`` with 429 and 503 answers.
        checkpoint_interval_s: DuckDB only: seconds between checkpoints; spool segments are
            deleted once a checkpoint has moved their rows into the database file.
        auth_cache_ttl_s: Seconds a verified (or refused) key is trusted before the key table
            is read again; a revocation takes effect within this time.
        decode_threads: Decode workers, off the event loop. Bodies that arrive while the
            workers are busy wait, and a free worker decodes all that wait as one (up to 16),
            which is cheaper per span. Decoding holds the GIL, so one worker (the default)
            gives the most throughput; two keep one huge body from stalling the rest at some
            cost in batching. (Spool fsyncs wait in other threads.)
        provider_hosts: Extra ``host suffix = provider`` pairs, checked before the built-in
            table, for OpenAI-compatible endpoints (e.g. ``"llm.internal.example" = "vllm"``).
        stats_log_interval_s: Seconds between the counter summaries written to the log; 0 off.
        header_timeout_s: Seconds a connection has to send a request's headers (from opening,
            or from a later request's first byte); past it, 408 and the connection is closed.
        body_idle_timeout_s: Longest pause, seconds, in a request body; past it, 408 and close.
        body_timeout_s: Longest a whole request body may take to arrive, seconds.
        keep_alive_timeout_s: Seconds an idle kept-alive connection stays open.
        max_connections: Connections open at once; past it a new connection gets 503 with
            ``Retry-After`` and is closed. Lowered at start to the process's open-file limit
            less 64, with a warning.
        max_inflight_body_bytes: Bytes of request bodies received or decoded at once (each
            counts its ``Content-Length``; a chunked body counts ``max_body_bytes``); a request
            that would exceed it gets 503 with ``Retry-After`` before its body is read.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=4318, ge=1, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    insecure_no_auth: bool = False
    spool_dir: Path | None = None
    spool_segment_bytes: int = Field(default=8 * 1024 * 1024, ge=4096)
    spool_retention_s: float = Field(default=0.0, ge=0, le=30 * 86_400)
    spool_content: bool = False
    batch_max_rows: int = Field(default=122_880, gt=0)
    flush_interval_s: float = Field(default=1.0, ge=0)
    max_queue_rows: int = Field(default=250_000, gt=0)
    retry_after_s: int = Field(default=2, ge=1, le=3600)
    checkpoint_interval_s: float = Field(default=10.0, gt=0)
    auth_cache_ttl_s: float = Field(default=10.0, ge=0)
    decode_threads: int = Field(default=1, ge=1, le=64)
    provider_hosts: dict[str, str] = Field(default_factory=dict)
    stats_log_interval_s: float = Field(default=60.0, ge=0)
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    body_idle_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    body_timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    keep_alive_timeout_s: float = Field(default=5.0, gt=0, le=3600)
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    max_inflight_body_bytes: int = Field(default=256 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _budget_fits_a_body(self) -> IngestSettings:
        if self.max_inflight_body_bytes < self.max_body_bytes:
            raise ValueError(
                f"max_inflight_body_bytes ({self.max_inflight_body_bytes}) is below "
                f"max_body_bytes ({self.max_body_bytes}): no body of the largest accepted size "
                "could ever be received; raise max_inflight_body_bytes"
            )
        return self

    def connection_limits(self) -> ConnectionLimits:
        """The limits :mod:`wattledger.ingest.connections` holds each connection to."""
        from wattledger.ingest.connections import ConnectionLimits

        return ConnectionLimits(
            header_timeout_s=self.header_timeout_s,
            body_idle_timeout_s=self.body_idle_timeout_s,
            body_timeout_s=self.body_timeout_s,
            keep_alive_timeout_s=self.keep_alive_timeout_s,
            max_connections=self.max_connections,
            max_inflight_body_bytes=self.max_inflight_body_bytes,
            max_body_bytes=self.max_body_bytes,
            retry_after_s=self.retry_after_s,
        )
