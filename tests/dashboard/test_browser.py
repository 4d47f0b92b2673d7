"""``wattledger dashboard`` on the demo warehouse, every page loaded in headless Chromium.

Fails on any exception or error Streamlit shows. Screenshots go to ``$WATTLEDGER_SCREENSHOT_DIR``
when set (``docs/screenshots`` to refresh the docs), else to the test's temporary directory.
``$WATTLEDGER_SCREENSHOT_DATA_DIR`` points the dashboard at another data directory (one with a
published ``marts.duckdb``, e.g. from ``wattledger demo --no-dashboard``) instead of the small
test warehouse; the docs' screenshots come from the demo warehouse that way.
Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``; ``make test`` does).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
from playwright.sync_api import Locator, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
#: url path → page title; "" is the default page.
PAGES = {
    "": "Overview",
    "vendors": "Vendors & hardware",
    "workloads": "Workloads",
    "recommendations": "Recommendations",
    "fleet": "Fleet",
    "reports": "Reports",
}
SHOT_NAMES = {"": "overview"}
# Read at import: the autouse fixture clears WATTLEDGER_* variables and changes directory.
_SHOTS_ENV = os.environ.get("WATTLEDGER_SCREENSHOT_DIR")
SCREENSHOT_DIR = Path(_SHOTS_ENV).resolve() if _SHOTS_ENV else None
_DATA_ENV = os.environ.get("WATTLEDGER_SCREENSHOT_DATA_DIR")
DATA_DIR = Path(_DATA_ENV).resolve() if _DATA_ENV else None
#: The bench's definition of ready: footer shown, script stopped, no placeholder left, every
#: image loaded.
sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from dashboard_pages import READY_JS  # noqa: E402

from tests.dashboard.conftest import running_dashboard  # noqa: E402


@pytest.fixture
def dashboard_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    data_dir = DATA_DIR or request.getfixturevalue("demo_dir")
    with running_dashboard(data_dir, tmp_path) as url:
        yield url


def _check_routes_csv(page: Page, buttons: Locator) -> None:
    """The Routes CSV as a browser downloads it: every row the label promises, the shown
    table's columns (the page shows at most 25 rows; the CSV has them all)."""
    button = buttons.filter(has_text="Routes (")
    rows = int(re.search(r"\(([\d,]+) rows\)", button.inner_text())[1].replace(",", ""))  # type: ignore[index]
    with page.expect_download() as download:
        button.click()
    assert download.value.suggested_filename == "wattledger-routes.csv"
    csv = pd.read_csv(download.value.path())
    assert len(csv) == rows > 0
    header = page.locator(".wl-title", has_text="Routes").locator("xpath=..").locator("th")
    assert list(csv.columns) == header.all_inner_texts()


def _load(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(READY_JS, timeout=60_000, polling=50)


def test_every_page_loads_in_chromium_without_errors(dashboard_url: str, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    shots = SCREENSHOT_DIR or tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            for path, title in PAGES.items():
                page = context.new_page()
                probes: list[tuple[str, int]] = []
                page.on(
                    "response",
                    lambda r, probes=probes: (
                        probes.append((r.url, r.status)) if "/_stcore/health" in r.url else None
                    ),
                )
                outside: list[str] = []
                page.on(
                    "request",
                    lambda r, outside=outside: (
                        outside.append(r.url)
                        if urlsplit(r.url).scheme in ("http", "https", "ws", "wss")
                        and urlsplit(r.url).netloc != urlsplit(dashboard_url).netloc
                        else None
                    ),
                )
                _load(page, f"{dashboard_url}/{path}")
                assert not outside, outside  # nothing is fetched from anywhere else (offline use)
                # The page shell tells Streamlit where its server is: one health check at the
                # root, not a 404 under /<page>/ first and a retry 100 ms later.
                assert probes == [(f"{dashboard_url}/_stcore/health", 200)], probes
                assert page.locator("h1").first.inner_text().strip() == title
                exceptions = page.locator('[data-testid="stException"]')
                assert exceptions.count() == 0, exceptions.all_inner_texts()
                errors = page.locator('[data-testid="stAlertContentError"]')
                assert errors.count() == 0, errors.all_inner_texts()
                assert page.get_by_text("Page not found").count() == 0
                if path in ("", "vendors", "workloads", "fleet"):  # charts drawn as SVG images
                    chart = page.locator('img[data-testid="wlChart"]')
                    assert chart.count() == 1
                    assert chart.evaluate("i => i.complete && i.naturalWidth > 300")
                if path not in ("vendors", "reports"):  # headline numbers, or an explained state
                    kpis = page.locator('[data-testid="wlKpi"]').count()
                    assert kpis or page.locator('[data-testid="stAlertContentInfo"]').count()
                # Taken before the Download CSV list is opened (it scrolls the page).
                name = SHOT_NAMES.get(path, path)
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                if path != "reports":  # every table as CSV, from one popover
                    page.get_by_role("button", name="Download CSV").click()
                    buttons = page.locator('[data-testid="stDownloadButton"]')
                    buttons.first.wait_for(timeout=30_000)
                    assert "rows)" in buttons.first.inner_text()
                    if path == "vendors":
                        _check_routes_csv(page, buttons)
                page.close()
        finally:
            browser.close()
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(
        f"{SHOT_NAMES.get(p, p)}.png" for p in PAGES
    )
