"""The Fleet page warns about devices without an idle baseline and shows each device's.

Seen (issue 17): a device that sent only its energy counter got an idle baseline of 0 W, so its
requests were charged its whole idle draw (totals 1.48-1.64x the truth) and nothing warned.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.analytics.fleet import T0
from tests.analytics.test_costs import HOUR, SETTINGS
from tests.analytics.test_idle import _never_idle_counter_device
from tests.dashboard.conftest import APP, point_at
from tests.dashboard.test_numbers import table_of
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.marts import publish_snapshot
from wattledger.migrations import runner
from wattledger.models import make_engine


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    url = f"duckdb:///{tmp_path / 'wattledger.duckdb'}"
    runner.upgrade(url)
    engine = make_engine(url)
    _never_idle_counter_device(engine)
    run_analytics(engine, SETTINGS, now=T0 + HOUR)
    publish_snapshot(engine, tmp_path / "marts.duckdb")
    engine.dispose()
    point_at(monkeypatch, tmp_path)
    return tmp_path


def test_the_fleet_page_names_devices_without_idle_baseline(warehouse: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at = at.switch_page("app_pages/fleet.py").run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [str(w.value).replace("\\", "") for w in at.warning]  # markdown escapes
    assert any(w.startswith("1 devices have no idle baseline (npu-0)") for w in warnings), warnings
    table = table_of(at, "fleet.devices_table")
    assert list(table["Idle baseline"]) == ["none: 0 W assumed"]
    assert list(table["Identified as"]) == ["unknown"]
