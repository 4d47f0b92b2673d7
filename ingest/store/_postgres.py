"""PostgreSQL: Arrow → CSV (in C, by pyarrow) → ``COPY`` into a temporary table → ``INSERT``.

``COPY`` is the fastest way into PostgreSQL; the temporary staging table lets the final
``INSERT … ON CONFLICT DO NOTHING`` skip rows a retry already delivered, which ``COPY`` alone
cannot. CSV keeps NULL (unquoted empty) apart from the empty string (quoted), and pyarrow
writes every string quoted.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Table

from wattledger.ingest.schema import DEVICES_TABLE, REQUESTS_TABLE, SAMPLES_TABLE
from wattledger.ingest.store.statements import Statements

_REQUESTS, _SAMPLES, _DEVICES = "wl_stage_requests", "wl_stage_samples", "wl_stage_devices"
_statements: Statements | None = None
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")


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


def _copy(conn: Connection, stage: str, like: Table, table: pa.Table) -> None:
    raw = _driver(conn)
    names = ", ".join(c.name for c in like.columns)
    buf = io.BytesIO()
    pacsv.write_csv(table.select([c.name for c in like.columns]), buf, _CSV)
    with raw.cursor() as cur:
        # Identifiers come from our own models, never from input.
        cur.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {like.name}) ON COMMIT DELETE ROWS"
        )
        cur.execute(f"TRUNCATE {stage}")
        with cur.copy(f"COPY {stage} ({names}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buf.getbuffer())


def _run(conn: Connection, sql: str) -> int:
    raw = _driver(conn)
    with raw.cursor() as cur:
        cur.execute(sql)
        return max(cur.rowcount, 0)


def insert_requests(conn: Connection, table: pa.Table) -> int:
    """COPY ``table`` to staging and insert new keys into ``inference_requests``; rows written."""
    _copy(conn, _REQUESTS, REQUESTS_TABLE, table)
    sql = _sql(conn)
    _run(conn, sql.placeholder_devices)
    return _run(conn, sql.insert_requests)


def insert_samples(conn: Connection, samples: pa.Table, devices: pa.Table) -> tuple[int, int]:
    """Upsert ``devices`` then insert new ``samples``; (samples written, devices upserted)."""
    sql = _sql(conn)
    n_devices = n_samples = 0
    if devices.num_rows:
        _copy(conn, _DEVICES, DEVICES_TABLE, devices)
        n_devices = _run(conn, sql.upsert_devices)
    if samples.num_rows:
        _copy(conn, _SAMPLES, SAMPLES_TABLE, samples)
        n_samples = _run(conn, sql.insert_samples)
    return n_samples, n_devices
