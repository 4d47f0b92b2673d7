"""Fixtures: a demo warehouse built once per session, AppTest pointed at it, and the real
``wattledger dashboard`` serving it."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.dashboard.demo import build_demo_warehouse
from wattledger.analytics.marts import publish_snapshot, snapshot_engine
from wattledger.dashboard import filters
from wattledger.dashboard.launch import DashboardProcess
from wattledger.errors import WattledgerError
from wattledger.migrations import runner
from wattledger.models import make_engine

APP = str(Path(__file__).parents[2] / "dashboard" / "streamlit_app.py")
PAGES_DIR = Path(APP).parent / "app_pages"
CONFIG = """\
[analytics.slos.chat]
ttft_p95_s = 2.0
itl_p95_s = 0.1
"""


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the demo warehouse and its published snapshot."""
    directory = tmp_path_factory.mktemp("demo")
    build_demo_warehouse(directory)
    (directory / "wattledger.toml").write_text(CONFIG)
    return directory


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def point_at(monkeypatch: pytest.MonkeyPatch, data_dir: Path, url: str | None = None) -> None:
    """Make the dashboard read ``data_dir`` (its snapshot) with the test configuration."""
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(data_dir))
    monkeypatch.setenv(
        "WATTLEDGER_DATABASE_URL", url or f"duckdb:///{data_dir / 'wattledger.duckdb'}"
    )
    config = data_dir / "wattledger.toml"
    if config.is_file():
        monkeypatch.setenv("WATTLEDGER_CONFIG", str(config))


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, demo_dir: Path) -> Path:
    """The dashboard reads the demo snapshot; returns the snapshot path."""
    point_at(monkeypatch, demo_dir)
    return demo_dir / "marts.duckdb"


@pytest.fixture
def empty_warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A migrated warehouse with no data and its (empty) published snapshot."""
    url = f"duckdb:///{tmp_path / 'wattledger.duckdb'}"
    runner.upgrade(url)
    engine = make_engine(url)
    publish_snapshot(engine, tmp_path / "marts.duckdb")
    engine.dispose()
    point_at(monkeypatch, tmp_path)
    return tmp_path / "marts.duckdb"


@pytest.fixture
def app() -> Callable[..., AppTest]:
    """Run the dashboard to ``page`` (a file in app_pages/) and return the AppTest."""

    def run(page: str = "overview", at: AppTest | None = None) -> AppTest:
        at = at or AppTest.from_file(APP, default_timeout=60).run()
        return at.switch_page(f"app_pages/{page}.py").run()

    return run


def scalar(snapshot: Path, sql: str, **params: object) -> object:
    """One value from the snapshot, computed by the test with its own SQL."""
    engine = snapshot_engine(snapshot)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def default_range(snapshot: Path) -> tuple[dt.datetime, dt.datetime]:
    """The dashboard's default period: the last 7 days of data, ``[start, end)``."""
    last = scalar(snapshot, "SELECT max(bucket_start) FROM rollup_daily")
    assert isinstance(last, dt.datetime)
    end = last.astimezone(dt.UTC) + dt.timedelta(days=1)
    return end - dt.timedelta(days=7), end


class _HtmlTable(HTMLParser):
    """Header and cell texts of the ``<table>`` in an ``st.html`` body."""

    def __init__(self) -> None:
        super().__init__()
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell)
            (self.header if self._in_head else self.rows[-1]).append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def htmls(block: Any) -> list[str]:
    """The bodies of the ``st.html`` elements in ``block`` (an AppTest block), in order."""
    return [e.value for e in block.get("html")] if hasattr(block, "get") else []


def shown_table(at: AppTest, key: str) -> pd.DataFrame:
    """The static table in container ``key`` as the page shows it: formatted strings."""
    bodies = [b for b in htmls(at.container(key)) if "<table" in b]
    assert len(bodies) == 1, key
    parser = _HtmlTable()
    parser.feed(bodies[0])
    return pd.DataFrame(parser.rows, columns=parser.header)


def open_filters(at: AppTest) -> AppTest:
    """Open the Filters popover (its widgets are drawn only while it is open)."""
    at.session_state[filters.OPEN] = True
    return at.run()


def open_downloads(at: AppTest, page: str) -> AppTest:
    """Open the page's Download CSV popover (its buttons are drawn only while it is open)."""
    at.session_state[f"{page}.downloads"] = True
    return at.run()


def make_interactive(at: AppTest) -> AppTest:
    """Switch on interactive charts and tables (``st.dataframe`` with the exact values)."""
    open_filters(at)
    return at.sidebar.toggle(key=filters.INTERACTIVE).set_value(True).run()


def table_of(at: AppTest, key: str) -> pd.DataFrame:
    """The exact data of the table in container ``key`` (interactive mode: ``st.dataframe``)."""
    if not list(at.container(key).dataframe):
        make_interactive(at)
    tables = list(at.container(key).dataframe)
    assert len(tables) == 1, key
    return tables[0].value


_KPI = re.compile(
    r'data-label="([^"]*)" data-value="([^"]*)" data-delta="([^"]*)" data-note="([^"]*)"'
)


@dataclass(frozen=True)
class ShownKpi:
    """A headline figure as the page shows it."""

    label: str
    value: str
    delta: str | None
    note: str | None


def kpis(at: AppTest) -> dict[str, ShownKpi]:
    """The headline figures (``ui.kpis``) on the page, by label."""
    out = {}
    for body in htmls(at.main):
        for found in _KPI.findall(body):
            label, value, delta, note = (html.unescape(x) for x in found)
            out[label] = ShownKpi(label, value, delta or None, note or None)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_dashboard(data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """``wattledger dashboard --no-refresh`` on ``data_dir`` (holding a published
    ``marts.duckdb``) on a free port, until it answers; yields its URL. Its output goes to
    ``tmp_path / "dashboard.log"``. At exit, SIGTERM must stop it and its Streamlit server."""
    port = _free_port()
    assert (data_dir / "marts.duckdb").is_file(), f"no published snapshot in {data_dir}"
    env = {
        **os.environ,
        "WATTLEDGER_DATA_DIR": str(data_dir),
        "WATTLEDGER_DATABASE_URL": f"duckdb:///{data_dir / 'wattledger.duckdb'}",
        "WATTLEDGER_CONFIG": str(data_dir / "wattledger.toml"),
    }
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattledger", "dashboard", "--no-refresh", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            DashboardProcess(proc, url).wait_ready(timeout_s=60)
        except WattledgerError as e:
            raise AssertionError(f"{e}\n{(tmp_path / 'dashboard.log').read_text()}") from e
        yield url
    finally:
        proc.terminate()
        assert proc.wait(30) == 0  # SIGTERM stops the command cleanly…
        log.close()
    for _ in range(100):  # … and its Streamlit server with it
        try:
            httpx.get(f"{url}/_stcore/health", timeout=1)
        except httpx.ConnectError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the Streamlit server outlived `wattledger dashboard`")
