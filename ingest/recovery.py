"""DuckDB start-up recovery: a write-ahead log that cannot be replayed must not stop ingest.

DuckDB has known bugs where a database killed mid-write cannot be reopened because replaying
its ``.wal`` fails (duckdb/duckdb #19712, #22044, #25510). Ingest keeps every acknowledged
request in its spool until a checkpoint has moved the rows into the database file, so the log
holds nothing of ours that the spool cannot restore. When the log cannot be replayed we move it
aside (``<file>.wal.corrupt-<UTC time>``, kept for inspection), open the database from its last
checkpoint and let the spool replay. Writes by other components since that checkpoint are lost,
and the log line says so.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

_REPLAY_FAILURE = "replaying wal"


def _is_wal_failure(error: BaseException) -> bool:
    text_ = str(getattr(error, "orig", None) or error).lower()
    return _REPLAY_FAILURE in text_ or "while replaying" in text_


def recover_duckdb(engine: Engine) -> Path | None:
    """Open a DuckDB warehouse, moving aside a write-ahead log that cannot be replayed.

    Returns the path the log was moved to, or None when nothing was done (not DuckDB, opened
    fine, or failed for another reason, which the writer then reports as unavailable).
    """
    if engine.dialect.name != "duckdb":
        return None
    database = make_url(engine.url).database
    if not database or database == ":memory:":
        return None
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as e:  # noqa: BLE001 - inspect the message below
        if not _is_wal_failure(e):
            logger.warning("cannot open the DuckDB warehouse %s yet: %s", database, e)
            return None
        error = e
    wal = Path(database + ".wal")
    if not wal.exists():
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = wal.with_name(f"{wal.name}.corrupt-{stamp}")
    engine.dispose()
    wal.rename(moved)
    logger.error(
        "DuckDB could not replay its write-ahead log (%s). Moved it to %s and opened the "
        "database from its last checkpoint. Every request ingest acknowledged since then is "
        "replayed from the spool; other writes since that checkpoint (analytics results, keys "
        "created meanwhile) are lost and are recomputed or must be redone.",
        str(error).splitlines()[0],
        moved,
    )
    return moved
