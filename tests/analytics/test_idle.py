"""The idle baseline from any evidence a device gives, in order of preference."""

from __future__ import annotations

import numpy as np
import pytest

from wattledger.analytics.idle import idle_baseline
from wattledger.analytics.timeline import Series

NAN = float("nan")


def _trace(idle_w: float, busy_w: float, requests: list[tuple[float, float]], rate_hz: float = 1.0):
    t = np.arange(0.0, 300.0, 1.0 / rate_hz)
    power = np.full(t.size, idle_w)
    for a, b in requests:
        power[(t >= a) & (t < b)] += busy_w
    counter = np.concatenate(([0.0], np.cumsum(power[:-1] * np.diff(t))))
    starts = np.array([a for a, _ in requests])
    ends = np.array([b for _, b in requests])
    return t, power, counter, starts, ends


def test_a_counter_only_device_gets_its_idle_from_the_counter() -> None:
    t, _, counter, starts, ends = _trace(61.0, 400.0, [(50, 80), (120, 200)])
    got = idle_baseline(Series(t, np.full(t.size, NAN), counter), starts, ends)
    assert got.source == "counter"
    assert got.power_w == pytest.approx(61.0)
    assert got.range_w[0] <= 61.0 <= got.range_w[1]


def test_the_counter_beats_the_gauge_and_the_gauge_beats_configuration() -> None:
    t, power, counter, starts, ends = _trace(70.0, 300.0, [(10, 100)])
    both = idle_baseline(Series(t, power + 5.0, counter), starts, ends, configured_w=40.0)
    assert (both.source, both.power_w) == ("counter", pytest.approx(70.0))
    gauge = idle_baseline(Series(t, power, np.full(t.size, NAN)), starts, ends, configured_w=40.0)
    assert (gauge.source, gauge.power_w) == ("gauge", pytest.approx(70.0))


def test_a_device_never_idle_falls_back_to_configured_then_catalog_then_none() -> None:
    t, _, counter, starts, ends = _trace(70.0, 300.0, [(-1, 400)])
    series = Series(t, np.full(t.size, NAN), counter)
    configured = idle_baseline(series, starts, ends, configured_w=55.0, catalog_w=70.0)
    assert (configured.source, configured.power_w) == ("configured", 55.0)
    assert configured.range_w == pytest.approx((49.5, 60.5))
    catalog = idle_baseline(series, starts, ends, catalog_w=70.0)
    assert (catalog.source, catalog.power_w) == ("catalog", 70.0)
    none = idle_baseline(series, starts, ends)
    assert (none.source, none.power_w) == ("none", 0.0)


def test_a_negative_or_infinite_configured_idle_is_not_evidence() -> None:
    t, _, counter, starts, ends = _trace(70.0, 300.0, [(-1, 400)])
    series = Series(t, np.full(t.size, NAN), counter)
    for bad in (-5.0, float("inf"), NAN):
        assert idle_baseline(series, starts, ends, configured_w=bad).source == "none"


# -- the warning, end to end: analytics run, doctor -------------------------------------------


@pytest.fixture
def engine(migrated_url: str):
    from wattledger.models import make_engine

    e = make_engine(migrated_url)
    yield e
    e.dispose()


def _never_idle_counter_device(engine) -> None:
    """A part the catalog does not know, counter only, busy in every sample interval."""
    import datetime as dt

    import pyarrow as pa

    from tests.analytics.fleet import T0, Req, add_requests
    from wattledger.models import Device, PowerSample, session_factory
    from wattledger.models.bulk import insert_arrow

    with session_factory(engine).begin() as s:
        s.add(
            Device(
                device_id="npu-0",
                vendor="acme",
                hardware_model="Acme Tensor X9",
                power_source="acme-smi",
            )
        )
    n = 601
    table = pa.table(
        {
            "device_id": ["npu-0"] * n,
            "ts": pa.array(
                [T0 + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "source": ["acme-smi"] * n,
            "tenant": ["acme"] * n,
            "method": ["counter"] * n,
            "power_w": pa.array([None] * n, pa.float64()),
            "energy_counter_j": [300.0 * i for i in range(n)],
        }
    )
    with engine.begin() as conn:
        insert_arrow(conn, PowerSample.__table__, table)
    add_requests(engine, [Req(1, 0.0, 0.5, 600.0, 1000, 500, device_id="npu-0")])


def test_analytics_run_and_doctor_warn_about_a_device_without_idle_baseline(
    migrated_url: str, engine
) -> None:
    import json

    from typer.testing import CliRunner

    from wattledger.cli import app

    _never_idle_counter_device(engine)
    env = {
        "WATTLEDGER_DATABASE_URL": migrated_url,
        "WATTLEDGER_COLLECTOR__ENDPOINT": "http://127.0.0.1:9",
    }
    engine.dispose()
    out = CliRunner().invoke(app, ["analytics", "run", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["devices_without_idle_baseline"] == ["npu-0"]
    text = CliRunner().invoke(app, ["analytics", "run", "--full"], env=env)
    assert "1 devices have no idle baseline (npu-0)" in text.output
    assert "wattledger.device.idle_power_w" in text.output
    doctor = CliRunner().invoke(app, ["doctor", "--json"], env=env)
    assert json.loads(doctor.stdout)["warehouse"]["devices_without_idle_baseline"] == ["npu-0"]
    plain = CliRunner().invoke(app, ["doctor"], env=env)
    assert "1 devices without an idle baseline (npu-0)" in plain.output


def test_a_configured_idle_silences_the_warning_and_is_recorded(engine) -> None:
    import sqlalchemy as sa

    from tests.analytics.fleet import T0
    from tests.analytics.test_costs import SETTINGS
    from wattledger.analytics.jobs import run_analytics
    from wattledger.models import Device, DeviceEnergyHourly

    _never_idle_counter_device(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(Device).values(idle_power_w=40.0))
    import datetime as dt

    result = run_analytics(engine, SETTINGS, now=T0 + dt.timedelta(hours=1))
    assert result.devices_without_idle_baseline == []
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(DeviceEnergyHourly.idle_power_w, DeviceEnergyHourly.idle_source)
        ).one()
    assert tuple(row) == (40.0, "configured")
