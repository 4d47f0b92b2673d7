"""Read-only mart snapshots: what readers use while ``wattledger serve`` owns the DuckDB file.

DuckDB lets one process write a file, and that process also holds it against readers in other
processes. So after each analytics run the server copies the derived tables (rollups, the
device energy ledger, recommendations, report runs, prices) into a separate DuckDB file and
swaps it in atomically (write to a temporary file, then ``os.replace``). The dashboard, reports
and CLI readers open the snapshot read-only and never touch the writer's lock. On PostgreSQL
there is no such lock and readers query the database directly.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine

from wattledger.models import (
    Device,
    DeviceEnergyHourly,
    Price,
    QuarantineHourly,
    Recommendation,
    ReportRun,
    RollupDaily,
    RollupHourly,
    Watermark,
)

#: Tables copied into a snapshot: derived data plus the small reference tables readers need.
MART_TABLES = (
    RollupHourly.__table__,
    RollupDaily.__table__,
    DeviceEnergyHourly.__table__,
    Recommendation.__table__,
    QuarantineHourly.__table__,
    ReportRun.__table__,
    Device.__table__,
    Price.__table__,
    Watermark.__table__,
)


def publish_snapshot(engine: Engine, path: Path) -> Path:
    """Copy the mart tables of a DuckDB warehouse into ``path``, atomically.

    Readers that already opened the previous snapshot keep reading it; new readers see the new
    one. Returns ``path``.

    Raises:
        ValueError: the warehouse is not DuckDB (PostgreSQL readers need no snapshot).
    """
    if engine.dialect.name != "duckdb":
        raise ValueError("snapshots are for DuckDB warehouses; read PostgreSQL directly")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    alias = f"snap_{uuid.uuid4().hex[:8]}"
    try:
        pooled = engine.raw_connection()
        try:
            raw = pooled.driver_connection  # autocommit: ATTACH/DETACH outside a transaction
            # ATTACH takes no bound parameters: quote the path as an SQL literal; the alias
            # is our own uuid and the table names below come from MART_TABLES.
            literal = str(tmp).replace("'", "''")
            raw.execute(f"ATTACH '{literal}' AS {alias}")
            try:
                raw.execute("BEGIN TRANSACTION")  # one consistent view of the source tables
                try:
                    for table in MART_TABLES:
                        raw.execute(
                            f"CREATE TABLE {alias}.{table.name} AS SELECT * FROM main.{table.name}"  # noqa: S608
                        )
                    raw.execute("COMMIT")
                except Exception:
                    raw.execute("ROLLBACK")
                    raise
            finally:
                raw.execute(f"DETACH {alias}")
        finally:
            pooled.close()
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        with contextlib.suppress(FileNotFoundError):
            Path(f"{tmp}.wal").unlink()
    return path


def snapshot_engine(path: Path) -> Engine:
    """A read-only engine on a published snapshot."""
    from wattledger.models import make_engine

    return make_engine(f"duckdb:///{path}", read_only=True, poolclass=sa.pool.NullPool)
