"""Counter arithmetic: wraparound, resets and power integration never produce bad joules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattledger.collectors.sources.counters import CounterTracker, PowerIntegrator, counter_delta

MODULUS = 262_143_328_850  # a real Intel max_energy_range_uj


@given(
    start=st.integers(0, MODULUS - 1),
    increments=st.lists(st.integers(0, MODULUS - 1), min_size=1, max_size=30),
)
def test_wrapped_counter_deltas_add_up_to_true_energy(start: int, increments: list[int]) -> None:
    """Reading a wrapping counter at least once per wrap recovers every increment exactly."""
    raw, total = start, 0
    for inc in increments:
        new = (raw + inc) % MODULUS
        delta = counter_delta(raw, new, MODULUS)
        assert delta is not None and 0 <= delta < MODULUS
        total += delta
        raw = new
    assert total == sum(increments)


@given(st.integers(0, 2**63), st.integers(0, 2**63))
def test_non_wrapping_counter_reports_resets_as_none(previous: int, current: int) -> None:
    delta = counter_delta(previous, current, None)
    if current >= previous:
        assert delta == current - previous
    else:
        assert delta is None


@given(
    raws=st.lists(st.integers(0, MODULUS - 1), min_size=1, max_size=40),
    dts=st.lists(st.floats(0.001, 30.0), min_size=40, max_size=40),
)
def test_tracker_is_monotonic_and_bounded_whatever_the_counter_does(
    raws: list[int], dts: list[float]
) -> None:
    """Arbitrary garbage (resets, wraps, jumps) never yields a decrease or > max power."""
    tracker = CounterTracker(1e-6, MODULUS, max_power_w=2000.0)
    t_ns, previous = 0, None
    for raw, dt in zip(raws, dts, strict=False):
        t_ns += int(dt * 1e9)
        energy = tracker.update(raw, t_ns)
        if previous is not None:
            assert energy >= previous
            assert energy - previous <= 2000.0 * max(int(dt * 1e9) / 1e9, 1e-3) + 1e-6
        previous = energy


def test_tracker_converts_units_and_starts_at_the_counter_value() -> None:
    tracker = CounterTracker(1e-3)  # NVML millijoules
    assert tracker.update(5_000_000, 0) == pytest.approx(5000.0)
    assert tracker.update(5_300_000, 1_000_000_000) == pytest.approx(5300.0)


def test_tracker_treats_a_driver_reload_as_a_reset_not_a_negative_energy() -> None:
    tracker = CounterTracker(1e-3, None, max_power_w=1000.0)
    tracker.update(900_000_000, 0)  # 900 kJ since the driver loaded
    after = tracker.update(200_000, 1_000_000_000)  # reloaded: 200 J since
    assert after == pytest.approx(900_000 + 200)
    assert tracker.stats.resets == 1


def test_tracker_rejects_an_implausible_jump() -> None:
    """A glitch that would mean 1 MW for a second adds nothing and is counted."""
    tracker = CounterTracker(1e-6, MODULUS, max_power_w=1000.0)
    tracker.update(1_000_000, 0)
    after = tracker.update(1_000_000 + 10**12, 1_000_000_000)
    assert after == pytest.approx(1.0)
    assert tracker.stats.rejected == 1


def test_wrapping_counter_reset_to_zero_is_not_read_as_a_full_wrap() -> None:
    """Writing 0 to RAPL energy_uj looks like a near-full wrap; it must not add ~262 kJ."""
    tracker = CounterTracker(1e-6, MODULUS, max_power_w=500.0)
    tracker.update(200_000_000_000, 0)
    after = tracker.update(50_000_000, 1_000_000_000)  # 50 J since the reset
    assert after - 200_000.0 == pytest.approx(50.0)


def test_power_integration_is_the_trapezoid_rule() -> None:
    integrator = PowerIntegrator(max_gap_s=10.0)
    integrator.update(100.0, 0)
    integrator.update(300.0, 2_000_000_000)  # 2 s ramp 100 -> 300 W: 400 J
    assert integrator.energy_j == pytest.approx(400.0)


def test_power_integration_bounds_and_counts_gaps() -> None:
    integrator = PowerIntegrator(max_gap_s=5.0)
    integrator.update(200.0, 0)
    integrator.update(200.0, 60_000_000_000)  # a minute without samples
    assert integrator.energy_j == pytest.approx(200.0 * 5.0)
    assert integrator.gaps == 1


def test_negative_power_is_clamped() -> None:
    integrator = PowerIntegrator()
    integrator.update(-50.0, 0)
    integrator.update(-50.0, 1_000_000_000)
    assert integrator.energy_j == 0.0
