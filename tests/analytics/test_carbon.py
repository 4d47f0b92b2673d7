"""Carbon that follows the grid: hourly intensity from Electricity Maps and WattTime exports.

The export shapes are the ones their users download: Electricity Maps' hourly "past data" CSV
(``Datetime (UTC)``, ``Carbon intensity gCO₂eq/kWh (direct)`` / ``(Life cycle)``, …; older files
``Carbon Intensity`` and ``(LCA)``) and WattTime's historical CSV (``point_time``, ``value`` in
lbs CO2/MWh, 5-minute points). Expected CO2e is worked out here from the energy the hand-built
fleet draws (tests/analytics/fleet.py), not read back from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from tests.analytics.fleet import T0, Req, add_device, add_requests, add_samples
from wattledger.analytics.carbon import G_PER_KWH_PER_LBS_PER_MWH, parse
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.settings import AnalyticsSettings, SiteSettings
from wattledger.errors import WattledgerError
from wattledger.models import GridIntensityHourly, RequestCost, make_engine

EM_HEADER = (
    "Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO₂eq/kWh (direct),"
    "Carbon intensity gCO₂eq/kWh (Life cycle),Carbon-free energy percentage (CFE%),"
    "Renewable energy percentage (RE%),Data source,Data estimated,Data estimation method"
)
SETTINGS = AnalyticsSettings(
    sites={"eu-west": SiteSettings(usd_per_kwh=Decimal("0.10"), pue=1.2, grid_gco2e_per_kwh=400.0)},
    hardware_usd_per_hour={"H100-SXM": Decimal("3.60")},
)


def em_csv(hours: dict[dt.datetime, tuple[float, float]]) -> str:
    lines = [EM_HEADER]
    for h, (direct, life) in hours.items():
        lines.append(
            f"{h:%Y-%m-%d %H:%M:%S},Germany,Germany,DE,{direct},{life},52.1,48.3,entsoe.eu,false,"
        )
    return "\n".join(lines) + "\n"


def test_electricity_maps_export_lifecycle_by_default_direct_on_request() -> None:
    h = dt.datetime(2026, 11, 2, 13, tzinfo=dt.UTC)
    text = em_csv({h: (310.0, 365.5), h + dt.timedelta(hours=1): (290.0, 341.0)})
    hours, source = parse(text)
    assert source == "electricitymaps lifecycle" and hours[h] == 365.5
    direct, source = parse(text, signal="direct")
    assert source == "electricitymaps direct" and direct[h] == 310.0
    # Older exports: "Carbon Intensity" and "(LCA)".
    old = text.replace("Carbon intensity", "Carbon Intensity").replace("(Life cycle)", "(LCA)")
    assert parse(old)[0][h] == 365.5


def test_watttime_five_minute_lbs_per_mwh_become_hourly_grams_per_kwh() -> None:
    rows = ["point_time,value,frequency,market,ba"]
    base = dt.datetime(2026, 11, 2, 13, tzinfo=dt.UTC)
    values = [900.0 + i for i in range(12)]  # one hour of 5-minute points
    for i, v in enumerate(values):
        t = base + dt.timedelta(minutes=5 * i)
        rows.append(f"{t.isoformat()},{v},300,RTM,PJM_DOM")
    hours, source = parse("\n".join(rows))
    assert source == "watttime co2_moer"
    assert hours == {base: pytest.approx(sum(values) / 12 * G_PER_KWH_PER_LBS_PER_MWH)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,co2\n2026-11-02 13:00,100\n", "neither an Electricity Maps nor a WattTime"),
        (EM_HEADER + "\nyesterday,DE,DE,DE,1,2,3,4,x,false,\n", "not a date and time"),
        (EM_HEADER + "\n2026-11-02 13:00:00,DE,DE,DE,-5,-5,3,4,x,false,\n", "non-negative"),
        ("point_time,value\n2026-11-02T13:00:00Z,9000000\n", "above any real grid"),
    ],
)
def test_bad_exports_are_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(WattledgerError, match=message):
        parse(text)


@pytest.fixture
def engine(migrated_url: str):
    e = make_engine(migrated_url)
    yield e
    e.dispose()


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattledger", "--database-url", url, "prices", "carbon", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_co2e_follows_the_hour_and_says_where_it_came_from(
    engine: Engine, migrated_url: str, tmp_path: Path
) -> None:
    """Two identical requests, one in an hour the export covers (100 g/kWh), one in an hour it
    does not (the tariff's 400): their CO2e differ by exactly 4x and say which they used."""
    add_device(engine, site="eu-west")
    add_samples(engine, "gpu-a", [(100, 200), (3700, 3800)], seconds=7200)
    add_requests(
        engine, [Req(1, 100.0, 2.0, 200.0, 1000, 500), Req(2, 3700.0, 2.0, 3800.0, 1000, 500)]
    )
    export = tmp_path / "DE_hourly.csv"
    export.write_text(em_csv({T0: (90.0, 100.0)}), encoding="utf-8")
    engine.dispose()  # a DuckDB file has one writer: let the CLI have it
    r = _cli(migrated_url, "--site", "eu-west", "--file", str(export), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hours"] == 1
    run_analytics(engine, SETTINGS, now=T0 + dt.timedelta(hours=2))
    with engine.connect() as conn:
        c = {
            row.span_id: row
            for row in conn.execute(
                sa.select(
                    RequestCost.span_id,
                    RequestCost.co2e_g,
                    RequestCost.co2e_source,
                    RequestCost.energy_j,
                    RequestCost.idle_share_j,
                )
            )
        }
    one, two = c[f"{1:016x}"], c[f"{2:016x}"]
    assert one.co2e_source == "hourly" and two.co2e_source == "constant"
    assert one.co2e_g == pytest.approx((one.energy_j + one.idle_share_j) * 1.2 * 100 / 3.6e6)
    assert two.co2e_g == pytest.approx((two.energy_j + two.idle_share_j) * 1.2 * 400 / 3.6e6)


def test_cli_refuses_a_bad_file_and_writes_nothing(
    engine: Engine, migrated_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,co2\n2026-11-02 13:00,100\n", encoding="utf-8")
    r = _cli(migrated_url, "--site", "eu-west", "--file", str(bad))
    assert r.returncode == 1 and "neither an Electricity Maps nor a WattTime" in r.stderr
    missing = _cli(migrated_url, "--site", "eu-west", "--file", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(GridIntensityHourly)).scalar() == 0
        )
