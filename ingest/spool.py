"""The write-ahead spool: what makes a 2xx safe before the warehouse has the rows.

Each accepted request body is appended to a segment file and fsynced before the client hears
"200"; the writer then batches the decoded rows into the warehouse. A segment is deleted only
when every record in it is *released*: committed to PostgreSQL, or on DuckDB committed and then
checkpointed into the database file, because a DuckDB write-ahead log can fail to replay after a
``kill -9`` (REFERENCE.md §9). At start every remaining record is replayed; the writes are
idempotent, so records already stored count as duplicates.

Concurrent appends share fsyncs (group commit): while one thread syncs, the others queue, and
the next sync covers all of them.

Record format (little-endian)::

    b"WLS1" | header length u32 | body length u32 | crc32(header + body) u32 | header | body

The header is JSON (signal, tenant, format, content encoding); the body is the request body as
received. A torn record at the end of a segment (a crash mid-append, never acknowledged) is
ignored on replay.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wattledger.errors import WattledgerError

logger = logging.getLogger(__name__)

_MAGIC = b"WLS1"
_HEAD = struct.Struct("<4sIII")
_SUFFIX = ".seg"


@dataclass(frozen=True)
class SpoolRecord:
    """One accepted request, as needed to decode it again.

    Attributes:
        signal: ``traces`` or ``metrics``.
        tenant: Tenant of the API key that sent it.
        fmt: ``protobuf`` or ``json``.
        encoding: Content encoding of ``body`` (``identity``, ``gzip`` or ``deflate``).
        body: The request body exactly as received.
    """

    signal: str
    tenant: str
    fmt: str
    encoding: str
    body: bytes

    def encode(self) -> bytes:
        """The record's bytes in the segment format."""
        header = json.dumps(
            {
                "signal": self.signal,
                "tenant": self.tenant,
                "fmt": self.fmt,
                "encoding": self.encoding,
            },
            separators=(",", ":"),
        ).encode()
        crc = zlib.crc32(self.body, zlib.crc32(header))
        return _HEAD.pack(_MAGIC, len(header), len(self.body), crc) + header + self.body


@dataclass(frozen=True)
class Ticket:
    """Identifies a spooled record for :meth:`Spool.release`."""

    segment: int


@dataclass
class _Segment:
    number: int
    path: Path
    records: int = 0
    released: int = 0
    size: int = 0
    fd: int | None = None
    done_at: float | None = None
    """When every record in it was released (monotonic seconds)."""


class SpoolLocked(WattledgerError):
    """Another process uses the spool directory."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_segment(path: Path) -> list[SpoolRecord]:
    """The intact records of one segment file, stopping at a torn or corrupt record."""
    data = path.read_bytes()
    out: list[SpoolRecord] = []
    pos = 0
    while pos + _HEAD.size <= len(data):
        magic, hlen, blen, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        end = start + hlen + blen
        if magic != _MAGIC or end > len(data):
            break
        header, body = data[start : start + hlen], data[start + hlen : end]
        if zlib.crc32(body, zlib.crc32(header)) != crc:
            break
        try:
            h = json.loads(header)
            out.append(SpoolRecord(h["signal"], h["tenant"], h["fmt"], h["encoding"], body))
        except (ValueError, KeyError, TypeError):
            break
        pos = end
    if pos != len(data):
        logger.warning(
            "spool segment %s: ignoring %d bytes after the last intact record (a write cut "
            "short by a crash is never acknowledged)",
            path,
            len(data) - pos,
        )
    return out


class Spool:
    """Append-only, fsynced segment files in one directory, owned by one process."""

    def __init__(
        self, directory: Path, segment_bytes: int = 8 * 1024 * 1024, retention_s: float = 0.0
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        #: Seconds a segment whose records are all in the warehouse stays on disk (bodies can
        #: hold message content): 0 deletes it at once, rotating the active segment.
        self.retention_s = retention_s
        self._lock = threading.Lock()  # segment state and writes
        self._sync_lock = threading.Lock()  # one fsync at a time
        self._segments: dict[int, _Segment] = {}
        self._active: _Segment | None = None
        self._written = 0  # records appended, ever
        self._synced = 0  # records known to be on disk
        self._lock_fd: int | None = None

    def open(self) -> list[tuple[Ticket, SpoolRecord]]:
        """Lock the directory, and return every record left from before, oldest first.

        Raises:
            SpoolLocked: another process holds the directory.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise SpoolLocked(
                f"The ingest spool {self.directory} is in use by another process.",
                hint="Run one ingest process per spool directory, or set "
                "ingest.spool_dir (WATTLEDGER_INGEST__SPOOL_DIR) to another directory.",
            ) from e
        replay: list[tuple[Ticket, SpoolRecord]] = []
        numbers = sorted(
            int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit()
        )
        for number in numbers:
            path = self._path(number)
            records = read_segment(path)
            seg = _Segment(number, path, records=len(records), size=path.stat().st_size)
            self._segments[number] = seg
            replay.extend((Ticket(number), r) for r in records)
            if not records:
                self._delete(seg)
        with self._lock:
            self._start_segment((numbers[-1] + 1) if numbers else 1)
        return replay

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}{_SUFFIX}"

    def _start_segment(self, number: int) -> None:
        path = self._path(number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self.directory)
        seg = _Segment(number, path, fd=fd)
        self._segments[number] = seg
        self._active = seg

    def _close_active(self) -> None:
        seg = self._active
        assert seg is not None and seg.fd is not None
        os.fsync(seg.fd)
        self._synced = self._written
        os.close(seg.fd)
        seg.fd = None
        self._active = None

    def append(self, record: SpoolRecord) -> Ticket:
        """Append ``record`` and return once it is on disk (fsynced).

        Raises:
            OSError: the disk refused (full, read-only…): the request must not be acknowledged.
        """
        data = record.encode()
        with self._lock:
            seg = self._active
            if seg is None or seg.fd is None:
                raise OSError("the spool is closed")
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(seg.fd, view) :]
            except OSError:
                # Cut the partial record off, or replay would stop at it and miss later ones.
                os.ftruncate(seg.fd, seg.size)
                raise
            seg.size += len(data)
            seg.records += 1
            seg.done_at = None
            self._written += 1
            mine = self._written
            if seg.size >= self.segment_bytes:
                self._close_active()
                self._start_segment(seg.number + 1)
        self._sync(mine)
        return Ticket(seg.number)

    def _sync(self, mine: int) -> None:
        with self._sync_lock:
            if self._synced >= mine:
                return  # another thread's fsync covered this record
            with self._lock:
                target = self._written
                active = self._active
                # A duplicate descriptor stays valid even if a rotation closes the original.
                fd = os.dup(active.fd) if active and active.fd is not None else None
            if fd is not None:
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
            self._synced = max(self._synced, target)

    def release(self, tickets: Iterable[Ticket]) -> None:
        """Mark records as safely in the warehouse; delete segments that are all released."""
        with self._lock:
            for t in tickets:
                seg = self._segments.get(t.segment)
                if seg is not None:
                    seg.released += 1
            now = time.monotonic()
            for seg in list(self._segments.values()):
                if seg.released < seg.records or seg.records == 0:
                    continue
                if seg.done_at is None:
                    seg.done_at = now
                if now - seg.done_at < self.retention_s:
                    continue  # kept for the configured retention
                if seg is self._active:
                    # Start afresh: the bodies already stored leave the disk now, and a
                    # restart does not replay them.
                    self._close_active()
                    self._start_segment(seg.number + 1)
                self._delete(seg)

    def _delete(self, seg: _Segment) -> None:
        seg.path.unlink(missing_ok=True)
        self._segments.pop(seg.number, None)

    @property
    def pending_records(self) -> int:
        """Records spooled but not yet released."""
        with self._lock:
            return sum(s.records - s.released for s in self._segments.values())

    @property
    def size_bytes(self) -> int:
        """Bytes in segment files."""
        with self._lock:
            return sum(s.size for s in self._segments.values())

    def close(self) -> None:
        """Sync and close the active segment and release the directory lock."""
        with self._lock:
            if self._active is not None and self._active.fd is not None:
                self._close_active()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
