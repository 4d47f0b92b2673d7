"""Engines and sessions for the warehouse, DuckDB or PostgreSQL, with UTC everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from wattledger.errors import DatabaseError
from wattledger.redact import redact_url, scrub


def backend_name(url: str) -> str:
    """``duckdb`` or ``postgresql`` for a database URL.

    Raises:
        DatabaseError: the URL is malformed or names a backend wattledger does not support.
    """
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError) as e:  # ValueError: e.g. a port that is not a number
        raise DatabaseError(
            f"Database URL {redact(url)!r} is not a valid URL.",
            hint="Use duckdb:///path/to/file.duckdb or postgresql+psycopg://user@host:5432/db.",
        ) from e
    if backend not in ("duckdb", "postgresql"):
        raise DatabaseError(
            f"Database backend {backend!r} is not supported.",
            hint="Use duckdb:///path/to/file.duckdb or postgresql+psycopg://user@host:5432/db.",
        )
    return backend


def redact(url: str) -> str:
    """The URL with its password, secret query parameters and secret keywords hidden, for
    logs and messages (see :func:`wattledger.redact.redact_url`)."""
    return redact_url(url)


def make_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` whose sessions run in UTC.

    Args:
        url: ``duckdb:///path`` or ``postgresql+psycopg://…``. A DuckDB file's directory is
            created when missing (unless ``read_only``).
        read_only: Open DuckDB read-only; on PostgreSQL, sessions default to read-only
            transactions.
        **kwargs: Passed to :func:`sqlalchemy.create_engine`.
    """
    backend = backend_name(url)
    connect_args: dict[str, Any] = dict(kwargs.pop("connect_args", {}))
    if backend == "duckdb":
        parsed = make_url(url)
        database = parsed.database
        if database and database != ":memory:" and not read_only:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        config = dict(connect_args.pop("config", {}))
        # Extensions can never be downloaded here; use only what the wheel bundles.
        config.setdefault("autoinstall_known_extensions", False)
        connect_args["config"] = config
        if read_only:
            connect_args["read_only"] = True
    else:
        options = "-c timezone=UTC"
        if read_only:
            options += " -c default_transaction_read_only=on"
        connect_args.setdefault("options", options)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    if backend == "duckdb":
        # TimeZone needs the bundled ICU extension, which loads after connect-time config.
        event.listen(engine, "connect", _duckdb_utc)
    return engine


def _duckdb_utc(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.execute("SET TimeZone = 'UTC'")


def check_connection(engine: Engine) -> None:
    """Open a connection and run ``SELECT 1``.

    Raises:
        DatabaseError: with a hint naming the likely fix (server down, file locked…).
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError, OSError) as e:
        raise explain_connection_error(engine.url.render_as_string(), e) from e


def explain_connection_error(url: str, error: BaseException) -> DatabaseError:
    """Turn a driver error into a :class:`DatabaseError` saying what to do."""
    raw = str(getattr(error, "orig", None) or error).strip().splitlines() or [""]
    # A driver may echo the connection string (libpq: "invalid connection option …"):
    # never let the password through.
    detail = scrub(raw[0], url)
    lowered = detail.lower()
    backend = backend_name(url) if url else "duckdb"
    if "lock" in lowered and backend == "duckdb":
        return DatabaseError(
            f"The DuckDB warehouse {redact(url)} is locked by another process: {detail}",
            hint="Only one process (usually `wattledger serve`) may write the DuckDB file; "
            "stop it or point --database-url at another file.",
        )
    if ("does not exist" in lowered and ("relation" in lowered or "table" in lowered)) or (
        "table with name" in lowered
    ):
        return DatabaseError(
            f"The warehouse {redact(url)} is missing a table: {detail}",
            hint="Create or migrate the schema with `wattledger db upgrade`.",
        )
    if backend == "postgresql" and isinstance(error, OperationalError):
        return DatabaseError(
            f"Cannot connect to PostgreSQL at {redact(url)}: {detail}",
            hint="Is the server running and the URL right? "
            "Try `pg_isready -h HOST -p PORT` and check user, password and database name.",
        )
    if isinstance(error, OperationalError):
        return DatabaseError(f"Cannot open the warehouse {redact(url)}: {detail}")
    return DatabaseError(
        f"The warehouse {redact(url)} reported an error: {detail}",
        hint="Run again with --verbose for the traceback; `wattledger db check` shows whether "
        "the schema matches this version.",
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A ``sessionmaker`` bound to ``engine`` that keeps objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
