"""Where the dashboard reads from, decided once per settings: never the writer's DuckDB file.

- DuckDB warehouse: the read-only mart snapshot the analytics job publishes
  (``[dashboard] marts_path``, default ``<data_dir>/marts.duckdb``).
- PostgreSQL warehouse: the database itself, through read-only transactions.
- Neither reachable: no source, with the reason and what to do (the empty state).

:func:`refresh_snapshot` lets ``wattledger dashboard`` publish a fresh snapshot itself when no
server holds the warehouse (e.g. right after ``wattledger simulate``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from wattledger.config import Settings
from wattledger.models import RollupDaily, backend_name, explain_connection_error, redact

log = logging.getLogger(__name__)

GET_DATA_HINT = (
    "For a demo, run `wattledger simulate --backfill-days 14`. For real traffic, instrument a "
    "service with the SDK (`wattledger.init()`), run `wattledger serve`, and the dashboard "
    "fills in after the first analytics run (about a minute)."
)


@dataclass(frozen=True)
class Source:
    """What the dashboard reads.

    Attributes:
        kind: ``snapshot`` (DuckDB mart snapshot), ``postgresql``, or ``none``.
        url: Database URL to open read-only; ``None`` when ``kind`` is ``none``.
        label: Where the data comes from, for the page footer (passwords hidden).
        version: Changes when the data may have changed (the snapshot's mtime).
        problem: Why there is no source, when ``kind`` is ``none``.
    """

    kind: Literal["snapshot", "postgresql", "none"]
    url: str | None
    label: str
    version: str = ""
    problem: str = ""


def _duckdb_path(url: str) -> Path | None:
    database = make_url(url).database
    return Path(database).expanduser() if database and database != ":memory:" else None


def resolve_source(settings: Settings) -> Source:
    """Decide where to read from (see the module docstring); never raises for a missing source."""
    url = settings.url
    if backend_name(url) == "postgresql":
        return Source("postgresql", url, f"PostgreSQL {redact(url)} (read-only)")
    snap = settings.dashboard.snapshot_path(settings.data_dir)
    if not snap.is_file():
        warehouse = _duckdb_path(url)
        where = f"the warehouse {warehouse}" if warehouse else "an in-memory warehouse"
        return Source(
            "none",
            None,
            "no data",
            problem=f"No mart snapshot at {snap} yet (the dashboard never opens {where} "
            "itself, so it does not block the server that writes it).",
        )
    mtime = dt.datetime.fromtimestamp(snap.stat().st_mtime, dt.UTC)
    return Source(
        "snapshot",
        f"duckdb:///{snap}",
        f"snapshot {snap}, published {mtime:%Y-%m-%d %H:%M} UTC",
        version=str(snap.stat().st_mtime_ns),
    )


def refresh_snapshot(settings: Settings) -> Path | None:
    """Publish a fresh mart snapshot from a DuckDB warehouse that no server holds.

    Returns the snapshot path, or ``None`` when there is nothing to do: the warehouse is
    PostgreSQL, has no file or schema yet, or another process (``wattledger serve``) holds it
    and publishes snapshots itself.
    """
    from wattledger.analytics.marts import publish_snapshot
    from wattledger.models import make_engine

    url = settings.url
    path = _duckdb_path(url) if backend_name(url) == "duckdb" else None
    if path is None or not path.is_file():
        return None
    snap = settings.dashboard.snapshot_path(settings.data_dir)
    # Publishing ATTACHes the snapshot for writing, which a read-only connection cannot do.
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(RollupDaily.__tablename__):
                log.info("warehouse %s has no schema yet; not publishing a snapshot", path)
                return None
        return publish_snapshot(engine, snap)
    except DBAPIError as e:
        reason = explain_connection_error(url, e)
        log.info("not refreshing the snapshot: %s", reason.message)
        return None
    finally:
        engine.dispose()
