"""DuckDB: Arrow tables are registered as views and moved in with ``INSERT … SELECT``.

No row passes through Python: DuckDB scans the Arrow buffers directly, with the GIL released,
so the writer thread runs beside the decoders.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection

from wattledger.ingest.store.statements import Statements

logger = logging.getLogger(__name__)

_REQUESTS, _SAMPLES, _DEVICES = "wl_in_requests", "wl_in_samples", "wl_in_devices"
_statements: Statements | None = None


def _driver(conn: Connection) -> Any:
    """The DBAPI connection under ``conn`` (duckdb's or psycopg's), inside its transaction."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


def _sql(conn: Connection) -> Statements:
    global _statements
    if _statements is None:
        _statements = Statements.compile(conn.dialect, _REQUESTS, _SAMPLES, _DEVICES)
    return _statements


def _count(result: Any) -> int:
    row = result.fetchone()
    return int(row[0]) if row else 0


def insert_requests(conn: Connection, table: pa.Table) -> int:
    """Insert ``table`` into ``inference_requests`` skipping known keys; rows written."""
    raw = _driver(conn)
    sql = _sql(conn)
    raw.register(_REQUESTS, table)
    try:
        raw.execute(sql.placeholder_devices)
        return _count(raw.execute(sql.insert_requests))
    finally:
        raw.unregister(_REQUESTS)


def insert_samples(conn: Connection, samples: pa.Table, devices: pa.Table) -> tuple[int, int]:
    """Upsert ``devices`` then insert ``samples`` skipping known keys; (samples, devices)."""
    raw = _driver(conn)
    sql = _sql(conn)
    raw.register(_DEVICES, devices)
    raw.register(_SAMPLES, samples)
    try:
        n_devices = _count(raw.execute(sql.upsert_devices)) if devices.num_rows else 0
        n_samples = _count(raw.execute(sql.insert_samples)) if samples.num_rows else 0
        return n_samples, n_devices
    finally:
        raw.unregister(_SAMPLES)
        raw.unregister(_DEVICES)


def checkpoint(conn: Connection) -> None:
    """Move the write-ahead log into the database file (``CHECKPOINT``)."""
    _driver(conn).execute("CHECKPOINT")
