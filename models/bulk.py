"""Bulk moves between the warehouse and Arrow, fast on both backends.

SQLAlchemy's row-at-a-time paths are far too slow for millions of rows (DuckDB ``executemany``
manages about a thousand rows a second), so bulk reads and writes go through each driver's
columnar path: DuckDB's Arrow scans and ``fetch_arrow_table``, PostgreSQL's ``COPY``.
Statements are still built with SQLAlchemy Core and bound parameters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Executable, Table


def _raw(conn: Connection) -> Any:
    return conn.connection.driver_connection


def fetch_arrow(conn: Connection, stmt: Executable) -> pa.Table:
    """Run a Core ``SELECT`` and return the result as an Arrow table."""
    compiled = stmt.compile(dialect=conn.dialect)  # type: ignore[attr-defined]
    if conn.dialect.name == "duckdb":
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        relation = _raw(conn).sql(str(compiled), params=params)
        # DuckDB 2 renamed fetch_arrow_table() to to_arrow_table(); support both.
        to_table = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        return to_table()
    result = conn.execute(stmt)
    names = list(result.keys())
    rows = result.fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    return pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)})


def insert_arrow(conn: Connection, table: Table, data: pa.Table) -> int:
    """Insert every row of ``data`` into ``table`` (columns matched by name). Returns the count.

    Runs inside the caller's transaction. Constraint violations raise as usual.
    """
    if data.num_rows == 0:
        return 0
    data = _with_defaults(table, data)
    # Only names of the model's own columns reach the SQL text below; values never do.
    columns = [c for c in data.column_names if c in table.c]
    data = data.select(columns)
    if conn.dialect.name == "duckdb":
        name = f"_wl_arrow_{uuid.uuid4().hex}"
        raw = _raw(conn)
        raw.register(name, data)
        try:
            cols = ", ".join(columns)
            raw.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {name}")  # noqa: S608
        finally:
            with contextlib.suppress(Exception):  # an aborted transaction refuses; keep its error
                raw.unregister(name)
        return data.num_rows
    cursor = _raw(conn).cursor()
    cols = ", ".join(columns)
    with cursor.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:  # noqa: S608
        for row in zip(*(data.column(c).to_pylist() for c in columns), strict=True):
            copy.write_row(row)
    return data.num_rows


def _with_defaults(table: Table, data: pa.Table) -> pa.Table:
    """Add columns the data lacks but whose model has a Python-side default (e.g. timestamps)."""
    for column in table.columns:
        default = column.default
        if column.name in data.column_names or default is None:
            continue
        if getattr(default, "is_scalar", False):
            value = default.arg  # type: ignore[attr-defined]
        elif getattr(default, "is_callable", False):
            value = default.arg(None)  # type: ignore[attr-defined]
        else:
            continue
        data = data.append_column(column.name, pa.array([value] * data.num_rows))
    return data


def to_decimal(value: float | None, places: int = 10) -> Decimal | None:
    """A float amount as a Decimal rounded to ``places`` decimal places."""
    if value is None:
        return None
    return round(Decimal(repr(value)), places)


def epoch_s(ts: dt.datetime) -> float:
    """Seconds since the Unix epoch of an aware datetime."""
    return ts.timestamp()
