"""The writer: one thread that moves accepted batches into the warehouse, in big transactions.

Request handlers decode, map and spool a body, then :meth:`Writer.submit` the mapped tables
and answer. The writer takes everything queued (up to ``batch_max_rows``), writes it in one
transaction, and releases the spool records: on PostgreSQL at once, on DuckDB after the next
``CHECKPOINT``. Under load batches grow by themselves, which is what makes the database fast.

When a write fails because the database is unreachable the batch stays queued and is retried
with backoff while :attr:`Writer.healthy` is false, so handlers answer 503 and exporters retry.
A write refused for its *data* (a constraint the mapping should have caught) is split per
request; a request that still fails is logged and dropped rather than blocking the queue.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import Engine

from wattledger.ingest.mapping.samples import merge_devices
from wattledger.ingest.settings import IngestSettings
from wattledger.ingest.spool import Spool, Ticket
from wattledger.ingest.store import BatchResult, RowsRefused, checkpoint, write_batch
from wattledger.ingest.telemetry import IngestStats

logger = logging.getLogger(__name__)

_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class Batch:
    """The mapped rows of one accepted request, and its spool ticket."""

    ticket: Ticket | None
    requests: pa.Table | None = None
    samples: pa.Table | None = None
    devices: pa.Table | None = None
    rows: int = field(init=False)
    queued_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.rows = sum(
            t.num_rows for t in (self.requests, self.samples, self.devices) if t is not None
        )


def _is_data_error(e: BaseException) -> bool:
    """True when the database refused the rows themselves (retrying cannot help)."""
    if isinstance(e, sa.exc.IntegrityError | sa.exc.DataError | RowsRefused):
        return True
    names = {c.__name__ for c in type(e).__mro__}
    # duckdb and psycopg raise their own classes when called directly
    return bool(
        names
        & {
            "ConstraintException",
            "ConversionException",
            "IntegrityError",
            "DataError",
            "InvalidInputException",
            "OutOfRangeException",
        }
    )


class Writer:
    """Batches queued rows into warehouse transactions on a background thread."""

    def __init__(
        self, engine: Engine, spool: Spool | None, settings: IngestSettings, stats: IngestStats
    ) -> None:
        self._engine = engine
        self._spool = spool
        self._settings = settings
        self._stats = stats
        self._duckdb = engine.dialect.name == "duckdb"
        self._queue: collections.deque[Batch] = collections.deque()
        self._cond = threading.Condition()
        self._queued_rows = 0
        self._in_flight = 0
        self._stopping = False
        self._flush_now = False
        self._thread: threading.Thread | None = None
        self._unreleased: list[Ticket] = []
        self._pending: list[Batch] = []  # taken from the queue, not yet committed
        self._last_checkpoint = time.monotonic()
        self._wrote_last = False  # the last take found rows (so more may be queued behind them)
        self.healthy = False
        self.last_error: str | None = None

    # -- handler side -------------------------------------------------------------------------

    @property
    def queued_rows(self) -> int:
        """Rows accepted but not yet committed."""
        return self._queued_rows + self._in_flight

    def submit(self, batch: Batch) -> None:
        """Queue a batch (already spooled) for writing."""
        with self._cond:
            self._queue.append(batch)
            self._queued_rows += batch.rows
            self._stats.queue_rows.set(self.queued_rows)
            self._cond.notify()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until everything submitted is committed; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flush_now = True
            self._cond.notify_all()
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (probing the database first)."""
        self.probe()
        self._thread = threading.Thread(
            target=self._run, name="wattledger-ingest-writer", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Write what is queued (within ``timeout_s``), checkpoint, and stop the thread.

        Rows not written in time stay in the spool and are replayed at the next start.
        """
        self.wait_idle(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, timeout_s))
        self._checkpoint(force=True)

    def probe(self) -> bool:
        """Check the database with ``SELECT 1``; updates :attr:`healthy`."""
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as e:  # noqa: BLE001 - any failure means "not reachable now"
            self._set_health(False, e)
            return False
        self._set_health(True, None)
        return True

    def _set_health(self, ok: bool, error: BaseException | None) -> None:
        if ok and not self.healthy:
            logger.info("warehouse reachable; writing")
        if not ok and (self.healthy or self.last_error is None):
            logger.warning("warehouse unreachable, answering 503 until it is back: %s", error)
        self.healthy = ok
        self.last_error = None if ok else str(error).splitlines()[0] if error else "unknown"
        self._stats.database_up.set(1 if ok else 0)

    # -- writer thread ------------------------------------------------------------------------

    def _take(self) -> list[Batch]:
        """Wait for work, let a batch grow for up to ``flush_interval_s``, then take it.

        Rows that queued while the previous transaction was being written are taken at once:
        under load the batch has grown during that write, and waiting would only add latency
        (and leave the last rows of a burst waiting after the burst).
        """
        cfg = self._settings
        with self._cond:
            backlog = bool(self._queue) and self._wrote_last
            if not self._queue and not self._stopping:
                self._cond.wait(0.2)
            while (
                self._queue
                and not backlog
                and not self._stopping
                and not self._flush_now
                and self._queued_rows < cfg.batch_max_rows
            ):
                left = self._queue[0].queued_at + cfg.flush_interval_s - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            items: list[Batch] = []
            rows = 0
            while self._queue and (not items or rows + self._queue[0].rows <= cfg.batch_max_rows):
                b = self._queue.popleft()
                items.append(b)
                rows += b.rows
            self._queued_rows -= rows
            self._in_flight = rows
            self._wrote_last = bool(items)
            if not self._queue:
                self._flush_now = False
            return items

    def _run(self) -> None:
        while True:
            try:
                self._loop()
                return
            except Exception:  # noqa: BLE001 - a bug must not stop the writer; rows are spooled
                logger.exception("ingest writer failed; restarting it in 1 s")
                time.sleep(1.0)

    def _loop(self) -> None:
        attempt = 0
        while True:
            if not self._pending:
                self._pending = self._take()
            if not self._pending:
                with self._cond:
                    if self._stopping:
                        return
                self._checkpoint()
                if not self.healthy:
                    self.probe()
                continue
            if not self._attempt(self._pending):
                with self._cond:
                    if self._stopping:
                        return  # left in the spool for the next start
                time.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
                attempt += 1
                continue
            attempt = 0
            self._done(self._pending)
            self._pending = []
            self._checkpoint()

    def _attempt(self, batches: list[Batch]) -> bool:
        """Write ``batches``; False when the database is unreachable (retry them later)."""
        try:
            try:
                self._write(batches)
            except Exception as e:
                if not _is_data_error(e):
                    raise
                self._isolate(batches, e)
        except Exception as e:  # noqa: BLE001 - unreachable: retry (writes are idempotent)
            self._stats.write_failures.inc()
            self._set_health(False, e)
            return False
        return True

    def _done(self, batches: list[Batch]) -> None:
        tickets = [b.ticket for b in batches if b.ticket is not None]
        if self._duckdb:
            self._unreleased.extend(tickets)
        elif self._spool is not None:
            self._spool.release(tickets)
        with self._cond:
            self._in_flight = 0
            self._stats.queue_rows.set(self.queued_rows)
            self._cond.notify_all()

    def _write(self, batches: list[Batch]) -> None:
        requests = _concat([b.requests for b in batches])
        samples = _concat([b.samples for b in batches])
        devices = [b.devices for b in batches if b.devices is not None and b.devices.num_rows]
        merged = merge_devices(devices) if devices else None
        started = time.perf_counter()
        with self._engine.connect() as conn:
            try:
                with conn.begin():
                    result = write_batch(conn, requests, samples, merged)
            except Exception:
                if not conn.invalidated:
                    try:
                        conn.invalidate()  # a broken connection must not go back to the pool
                    except Exception:  # noqa: BLE001
                        logger.debug("could not invalidate connection", exc_info=True)
                raise
        self._stats.write_seconds.observe(time.perf_counter() - started)
        self._set_health(True, None)
        self._count(result)

    def _count(self, result: BatchResult) -> None:
        s = self._stats
        s.written.labels(signal="traces").inc(result.requests.written)
        s.duplicates.labels(signal="traces").inc(result.requests.duplicates)
        s.written.labels(signal="metrics").inc(result.samples.written)
        s.duplicates.labels(signal="metrics").inc(result.samples.duplicates)

    def _isolate(self, batches: list[Batch], error: BaseException) -> None:
        """Write what the warehouse takes of ``batches``, which it refused together.

        The mapping makes every accepted value storable, so this is a last line of defence:
        the batches are written one by one, and a refused batch is split in halves down to
        single rows, so only a row the warehouse refuses by itself is dropped (logged and
        counted as ``write_refused``), never the rows sent beside it.
        """
        if len(batches) > 1:
            for b in batches:
                self._write_or_split(b)
            return
        self._split(batches[0], error)

    def _write_or_split(self, batch: Batch) -> None:
        try:
            self._write([batch])
        except Exception as e:  # noqa: BLE001
            if not _is_data_error(e):
                raise
            self._split(batch, e)

    def _split(self, batch: Batch, error: BaseException) -> None:
        parts = _halves(batch)
        if parts:
            for part in parts:
                self._write_or_split(part)
            return
        logger.error(
            "the warehouse refused a row for its data; dropping it "
            "(this is a bug in the mapping, please report it): %s",
            _first_line(error),
        )
        for signal, table in (("traces", batch.requests), ("metrics", batch.samples)):
            if table is not None and table.num_rows:
                self._stats.rejected.labels(signal=signal, reason="write_refused").inc(
                    table.num_rows
                )

    def _checkpoint(self, force: bool = False) -> None:
        if not self._duckdb or not self._unreleased:
            return
        if not force and time.monotonic() - self._last_checkpoint < (
            self._settings.checkpoint_interval_s
        ):
            return
        self._last_checkpoint = time.monotonic()
        try:
            with self._engine.connect() as conn:
                checkpoint(conn)
        except Exception as e:  # noqa: BLE001 - e.g. other transactions active: try later
            logger.debug("checkpoint deferred: %s", e)
            return
        if self._spool is not None:
            self._spool.release(self._unreleased)
        self._unreleased = []


def _halves(batch: Batch) -> list[Batch]:
    """``batch`` split in two (requests and samples apart first, then each table in halves);
    empty when it is one row. Devices travel with the samples they describe."""
    req, smp = batch.requests, batch.samples
    n_req = req.num_rows if req is not None else 0
    n_smp = smp.num_rows if smp is not None else 0
    if n_req and n_smp:
        return [Batch(None, requests=req), Batch(None, samples=smp, devices=batch.devices)]
    if n_req > 1:
        assert req is not None
        mid = n_req // 2
        return [Batch(None, requests=req.slice(0, mid)), Batch(None, requests=req.slice(mid))]
    if n_smp > 1:
        assert smp is not None
        mid = n_smp // 2
        return [
            Batch(None, samples=smp.slice(0, mid), devices=batch.devices),
            Batch(None, samples=smp.slice(mid), devices=batch.devices),
        ]
    return []


def _first_line(error: BaseException) -> str:
    """The driver's message without the statement and parameters SQLAlchemy appends."""
    return str(error).split("\n", 1)[0][:500]


def _concat(tables: list[pa.Table | None]) -> pa.Table | None:
    present = [t for t in tables if t is not None and t.num_rows]
    if not present:
        return None
    return present[0] if len(present) == 1 else pa.concat_tables(present)
