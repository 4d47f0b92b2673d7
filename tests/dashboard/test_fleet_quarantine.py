"""The Fleet page says how many requests analytics quarantined in the period, per tenant.

Seen (issue 16): a request whose token counts were out of bounds stopped analytics for
everyone; now it is quarantined, and a quarantined request is in no figure, so the page must
say that some requests are missing from its figures (for the viewer's tenant only).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.analytics.fleet import T0, Req, add_price, add_requests
from tests.analytics.test_costs import HOUR, SETTINGS
from tests.dashboard.conftest import APP, point_at
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.marts import publish_snapshot
from wattledger.migrations import runner
from wattledger.models import make_engine

HOSTED = dict(device_id=None, provider="groq", llm_model="m")


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    url = f"duckdb:///{tmp_path / 'wattledger.duckdb'}"
    runner.upgrade(url)
    engine = make_engine(url)
    add_price(engine, "groq", "m", "0.05", "0.08")
    add_requests(
        engine,
        [
            Req(1, 60, 0.2, 62, 1000, 100, tenant="acme", **HOSTED),
            Req(2, 70, 0.2, 72, 2**63 - 1, 5, tenant="acme", **HOSTED),
            Req(3, 80, 0.2, 82, 5, 2**62, tenant="acme", **HOSTED),
            Req(4, 90, 0.2, 92, 1000, 100, tenant="beta", **HOSTED),
        ],
    )
    run_analytics(engine, SETTINGS, now=T0 + HOUR)
    publish_snapshot(engine, tmp_path / "marts.duckdb")
    engine.dispose()
    point_at(monkeypatch, tmp_path)
    return tmp_path


def _fleet() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at = at.switch_page("app_pages/fleet.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_fleet_page_counts_quarantined_requests(warehouse: Path) -> None:
    warnings = [str(w.value) for w in _fleet().warning]
    assert any(w.startswith("2 requests in this period are quarantined") for w in warnings)


@pytest.mark.parametrize(("tenant", "shown"), [("beta", None), ("acme", "2 requests")])
def test_a_tenant_sees_only_its_own_quarantined_requests(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch, tenant: str, shown: str | None
) -> None:
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__TENANT", tenant)
    found = [str(w.value) for w in _fleet().warning if "quarantined" in str(w.value)]
    assert found == [] if shown is None else found[0].startswith(shown), found
