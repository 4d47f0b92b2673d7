"""Fixtures: a demo warehouse built once per session, and AppTest pointed at it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.dashboard.demo import build_demo_warehouse
from wattledger.analytics.marts import publish_snapshot, snapshot_engine
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


def table_of(at: AppTest, key: str) -> pd.DataFrame:
    """The data of the table in container ``key``, static (``st.table``) or interactive."""
    block = at.container(key)
    tables = list(block.table) or list(block.dataframe)
    assert len(tables) == 1, key
    return tables[0].value
