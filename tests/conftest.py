"""Shared fixtures: fresh warehouses on DuckDB and on the real PostgreSQL server.

PostgreSQL tests are marked ``postgres``. They use the server at ``WATTLEDGER_TEST_PG_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and create a throwaway database
per test. A missing server is a failure, never a skip: ``make test`` starts it when installed.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

PG_URL = os.environ.get(
    "WATTLEDGER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's WATTLEDGER_* settings or ./wattledger.toml."""
    for name in list(os.environ):
        if name.startswith("WATTLEDGER_") and name != "WATTLEDGER_TEST_PG_URL":
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(home / "data"))
    monkeypatch.chdir(home)


@pytest.fixture
def duckdb_url(tmp_path: pytest.TempPathFactory) -> str:
    """URL of a new, empty DuckDB file."""
    return f"duckdb:///{tmp_path}/warehouse.duckdb"  # type: ignore[operator]


def _admin_conninfo() -> str:
    url = make_url(PG_URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "wl_test") -> Iterator[str]:
    """A new, empty database on the test PostgreSQL server, dropped at exit; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A new, empty warehouse URL, once per backend."""
    if request.param == "duckdb":
        return str(request.getfixturevalue("duckdb_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """A warehouse upgraded to the newest schema, once per backend."""
    from wattledger.migrations import runner

    runner.upgrade(db_url)
    return db_url
