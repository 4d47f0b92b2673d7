"""PostgreSQL: Arrow → CSV (in C, by pyarrow) → ``COPY``.

``COPY`` is the fastest way into PostgreSQL, but it cannot skip a row whose key is already
stored. So rows are first copied straight into the table inside a savepoint; in the rare batch
where that hits a known key (an exporter retry, a spool replay) the savepoint is rolled back and
the batch goes the idempotent way: ``COPY`` into a temporary table, then
``INSERT … ON CONFLICT DO NOTHING``. Devices always take that way (they are upserted).

CSV keeps NULL (unquoted empty) apart from the empty string (quoted; pyarrow quotes every
string). Timestamps are written without a zone, which pyarrow formats ten times faster, and read
back as UTC because the transaction sets ``TimeZone`` to UTC first.
"""

from __future__ import annotations

import io
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from wattledger.ingest.schema import DEVICES_TABLE, REQUESTS_TABLE, SAMPLES_TABLE
from wattledger.ingest.store.statements import UNKNOWN, Statements

_REQUESTS, _SAMPLES, _DEVICES = "wl_stage_requests", "wl_stage_samples", "wl_stage_devices"
_statements: Statements | None = None
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def _driver(conn: Connection) -> Any:
    """The psycopg connection under ``conn``, inside its transaction."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


def _sql(conn: Connection) -> Statements:
    global _statements
    if _statements is None:
        _statements = Statements.compile(conn.dialect, _REQUESTS, _SAMPLES, _DEVICES)
    return _statements


def _csv(table: pa.Table, like: Table) -> bytes:
    names = [c.name for c in like.columns]
    table = table.select(names)
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(i, field.name, table[i].cast(pa.timestamp(field.type.unit)))
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, _CSV)
    return buf.getvalue()


def _copy_into(cur: Any, target: str, like: Table, data: bytes) -> int:
    # Identifiers come from our own models, never from input.
    names = ", ".join(c.name for c in like.columns)
    with cur.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(data)
    return max(cur.rowcount, 0)


def _stage(cur: Any, stage: str, like: Table, data: bytes) -> None:
    cur.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {like.name}) ON COMMIT DELETE ROWS"
    )
    cur.execute(f"TRUNCATE {stage}")
    _copy_into(cur, stage, like, data)


def _insert_new(conn: Connection, like: Table, stage: str, table: pa.Table, insert: str) -> int:
    """Copy ``table`` into ``like``: straight, or skipping known keys when some exist."""
    raw = _driver(conn)
    data = _csv(table, like)
    with raw.cursor() as cur:
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        try:
            with raw.transaction():  # a savepoint
                return _copy_into(cur, like.name, like, data)
        except psycopg.errors.UniqueViolation:
            pass  # some keys are stored already: take the idempotent way
        _stage(cur, stage, like, data)
        cur.execute(insert)
        return max(cur.rowcount, 0)


def _placeholder_devices(conn: Connection, table: pa.Table) -> None:
    """Create ``devices`` rows (``unknown``) for device ids the requests name, if missing."""
    named = table.select(["device_id", "tenant", "start_ts"]).filter(
        pc.is_valid(table["device_id"])
    )
    if not named.num_rows:
        return
    # Per device, the tenant of the rows that name it (a writer batch holds many tenants'
    # bodies: the first row's tenant is not every device's), as the DuckDB statement does.
    per_device = named.group_by("device_id").aggregate([("tenant", "max"), ("start_ts", "min")])
    rows = [
        {
            "device_id": r["device_id"],
            "tenant": r["tenant_max"],
            "vendor": UNKNOWN,
            "hardware_model": UNKNOWN,
            "power_source": UNKNOWN,
            "first_seen_at": r["start_ts_min"],
            "last_seen_at": r["start_ts_min"],
        }
        for r in per_device.to_pylist()
    ]
    conn.execute(pg_insert(DEVICES_TABLE).values(rows).on_conflict_do_nothing())


def insert_requests(conn: Connection, table: pa.Table) -> int:
    """Insert ``table`` into ``inference_requests``, skipping known keys; rows written."""
    _placeholder_devices(conn, table)
    return _insert_new(conn, REQUESTS_TABLE, _REQUESTS, table, _sql(conn).insert_requests)


def insert_samples(conn: Connection, samples: pa.Table, devices: pa.Table) -> tuple[int, int]:
    """Upsert ``devices`` then insert new ``samples``; (samples written, devices upserted)."""
    n_devices = n_samples = 0
    if devices.num_rows:
        raw = _driver(conn)
        with raw.cursor() as cur:
            cur.execute("SET LOCAL TimeZone = 'UTC'")
            _stage(cur, _DEVICES, DEVICES_TABLE, _csv(devices, DEVICES_TABLE))
            cur.execute(_sql(conn).upsert_devices)
            n_devices = max(cur.rowcount, 0)
    if samples.num_rows:
        n_samples = _insert_new(conn, SAMPLES_TABLE, _SAMPLES, samples, _sql(conn).insert_samples)
    return n_samples, n_devices
