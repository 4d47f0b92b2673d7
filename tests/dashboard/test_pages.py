"""Every page renders with demo data, with an empty warehouse and with no snapshot at all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.dashboard.conftest import (
    APP,
    PAGES_DIR,
    htmls,
    kpis,
    make_interactive,
    open_downloads,
    point_at,
)
from wattledger.dashboard import filters

PAGES = sorted(p.stem for p in PAGES_DIR.glob("*.py") if not p.name.startswith("_"))


def test_every_page_file_is_registered_in_the_router() -> None:
    registered = set(re.findall(r'"app_pages/(\w+)\.py"', Path(APP).read_text()))
    assert registered == set(PAGES)
    assert len(PAGES) == 6


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_demo_data(app, demo, page: str) -> None:
    at = app(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title and at.title[0].value
    assert "Times in UTC." in at.main.caption[-1].value
    assert "snapshot" in at.main.caption[-1].value
    # Tables are static HTML unless toggled; charts are SVG images inside the page's HTML.
    tables = [b for b in htmls(at.main) if "<table" in b]
    assert len(tables) >= 1 and not at.dataframe and not at.table and not at.get("imgs")
    charts = [b for b in htmls(at.main) if 'data-testid="wlChart"' in b]
    assert len(charts) == (page in ("overview", "vendors", "workloads", "fleet"))
    assert all('src="data:image/svg+xml;base64,' in c for c in charts)
    assert all('alt="chart"' not in c for c in charts)  # each says what it shows
    assert not at.sidebar.multiselect  # filters are drawn only when their popover opens
    # Every table comes as CSV from one Download CSV popover, whose buttons (and CSVs) are
    # made only while it is open.
    assert not at.download_button
    open_downloads(at, page)
    assert not at.exception
    assert len(at.download_button) == len(tables) + (page == "workloads")  # + hourly CSV
    assert all(b.key and b.key.endswith(".csv") for b in at.download_button)
    assert all(b.label.endswith(" rows)") for b in at.download_button)
    assert not any(".csv" in b.label for b in at.download_button)  # named, not a file name


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_interactive_charts_and_tables(app, demo, page: str) -> None:
    at = make_interactive(app(page))
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    assert len(at.sidebar.multiselect) == 6 and at.sidebar.date_input(key="filters.dates")
    tables = [b for b in htmls(at.main) if "<table" in b]
    assert len(at.dataframe) >= 1 and not tables
    open_downloads(at, page)
    assert len(at.download_button) == len(at.dataframe) + (page == "workloads")


@pytest.mark.parametrize("page", PAGES)
def test_page_shows_how_to_get_data_when_the_warehouse_is_empty(
    app, empty_warehouse, page: str
) -> None:
    at = app(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    text = " ".join(i.value for i in at.info)
    if page == "reports":
        assert "No weekly report has been sent yet" in text
    else:
        assert "No data yet" in text and "no rollups yet" in text
        assert "wattledger simulate --backfill-days 14" in text
        assert not htmls(at.main) and not at.dataframe and not kpis(at)


@pytest.mark.parametrize("page", PAGES)
def test_page_explains_a_missing_snapshot(app, monkeypatch, tmp_path: Path, page: str) -> None:
    point_at(monkeypatch, tmp_path)
    at = app(page)
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(i.value for i in at.info)
    assert f"No mart snapshot at {tmp_path / 'marts.duckdb'}" in text
    assert "wattledger serve" in text
    assert not at.sidebar.caption and filters.OPEN not in at.session_state  # no filters
