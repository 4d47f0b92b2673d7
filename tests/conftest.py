"""Shared fixtures: fresh warehouses on DuckDB and on the real PostgreSQL server.

PostgreSQL tests are marked ``postgres``. They use the server at ``WATTLEDGER_TEST_PG_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and create a throwaway database
per test. A missing server is a failure, never a skip: ``make test`` starts it when installed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

PG_URL = os.environ.get(
    "WATTLEDGER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

#: Secrets the suite's runs use (every API key it creates, the passwords its tests set): no
#: captured log line, output or error of any test may carry one (issue 16: a password in a URL
#: query was printed in banners and errors). ``remember_secret`` adds to it.
SECRETS: set[str] = set()
# pytest imports this file as ``conftest``; tests import it as ``tests.conftest``. One module
# for both, so every test's secrets land in the set the report hook reads.
sys.modules.setdefault("tests.conftest", sys.modules[__name__])


def remember_secret(value: str) -> str:
    """Add ``value`` to the secrets no test's logs or errors may show; returns it."""
    if len(value) >= 8:
        SECRETS.add(value)
    return value


def _remember_created_keys() -> None:
    from wattledger.ingest import auth

    create_key = auth.create_key

    def remembering(*args, **kwargs):  # type: ignore[no-untyped-def]
        new = create_key(*args, **kwargs)
        remember_secret(new.key)
        return new

    auth.create_key = remembering  # before any test module imports it by name


_remember_created_keys()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Fail a test whose captured logs, output or error report carry a secret it used."""
    outcome = yield
    report = outcome.get_result()
    if not SECRETS:
        return
    texts = [content for _, content in report.sections]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    leaked = sorted({s for s in SECRETS for t in texts if s in t})
    if leaked:
        report.outcome = "failed"
        report.longrepr = (
            f"{len(leaked)} secret(s) this suite used appear in the captured log, output or "
            f"error of {item.nodeid} (starting {', '.join(repr(s[:6]) for s in leaked)}): "
            "logs and errors must redact them (wattledger.redact)"
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
