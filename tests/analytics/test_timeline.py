"""The attribution core on synthetic timelines: splits, phases, resets and conservation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wattledger.analytics.timeline import (
    Requests,
    Series,
    attribute_device,
    cumulative_energy,
    spread_by_bucket,
)


def flat_series(seconds: int, power_w: float, *, counter: bool = True) -> Series:
    t = np.arange(seconds + 1, dtype=float)
    p = np.full(t.size, power_w)
    c = power_w * t if counter else np.full(t.size, np.nan)
    return Series(t, p, c)


def reqs(*rows: tuple[float, float, float, float, float]) -> Requests:
    a = np.array(rows, dtype=float).reshape(-1, 5)
    return Requests(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4])


def run(series: Series, r: Requests, idle: float = 100.0, t1: float = 100.0, **kw: float):
    return attribute_device(
        series,
        r,
        t0=0.0,
        t1=t1,
        idle_power_w=idle,
        prefill_weight=kw.get("wp", 0.25),
        decode_weight=kw.get("wd", 1.0),
        bucket_s=kw.get("bucket", 3600.0),
    )


def test_alone_on_device_gets_all_energy_above_idle() -> None:
    res = run(flat_series(100, 300.0), reqs((10, 12, 50, 100, 200)))
    assert np.isclose(res.energy_j[0], (300 - 100) * 40)
    assert np.isclose(res.device_time_s[0], 40)
    assert np.isclose(res.measured_j, 300 * 100)
    assert np.isclose(res.energy_j.sum() + res.idle_j_by_bucket.sum(), res.measured_j)


def test_identical_concurrent_requests_split_equally() -> None:
    res = run(flat_series(100, 500.0), reqs((10, 10, 60, 0, 100), (10, 10, 60, 0, 100)))
    assert np.allclose(res.energy_j, [200 * 50, 200 * 50])
    assert np.allclose(res.device_time_s, [25, 25])


def test_decode_split_follows_token_rate() -> None:
    # Same interval, one request decodes twice as many tokens: twice the energy.
    res = run(flat_series(100, 400.0), reqs((0, 0, 90, 0, 200), (0, 0, 90, 0, 100)))
    assert np.isclose(res.energy_j[0] / res.energy_j[1], 2.0)


def test_prefill_weight_changes_the_split() -> None:
    # One request in prefill (1000 input tokens over 10 s) beside one decoding 100 tokens/10 s.
    r = reqs((0, 10, 10, 1000, 0), (0, 0, 10, 0, 100))
    res = run(flat_series(20, 200.0), r, t1=20.0)
    # rates: prefill 0.25*1000/10 = 25, decode 1*100/10 = 10 → shares 25:10
    assert np.isclose(res.energy_j[0] / res.energy_j[1], 2.5)
    res = run(flat_series(20, 200.0), r, t1=20.0, wp=0.1)
    assert np.isclose(res.energy_j[0] / res.energy_j[1], 1.0)


def test_power_below_idle_attributes_nothing_and_never_negative() -> None:
    res = run(flat_series(100, 80.0), reqs((10, 11, 50, 10, 10)))
    assert res.energy_j[0] == 0.0
    assert np.isclose(res.idle_j_by_bucket.sum(), 80 * 100)


def test_counter_reset_uses_power_for_that_interval() -> None:
    t = np.arange(11, dtype=float)
    p = np.full(11, 200.0)
    c = 200.0 * t
    c[6:] -= 5000.0  # driver reload: counter restarts lower
    _, cum, method, _ = cumulative_energy(Series(t, p, c))
    assert method == "counter"
    assert np.all(np.diff(cum) >= 0)
    assert np.isclose(cum[-1], 2000.0)


def test_power_only_series_is_integrated_with_trapezoids() -> None:
    t = np.array([0.0, 1.0, 3.0])
    p = np.array([100.0, 300.0, 300.0])
    _, cum, method, gaps = cumulative_energy(Series(t, p, np.full(3, np.nan)), max_gap_s=1.5)
    assert method == "power"
    assert np.allclose(cum, [0.0, 200.0, 800.0])
    assert gaps == 1


def test_idle_time_and_buckets() -> None:
    res = run(flat_series(100, 200.0), reqs((10, 10, 30, 0, 10)), bucket=50.0)
    assert np.allclose(res.idle_s_by_bucket, [30.0, 50.0])
    assert np.allclose(res.active_s_by_bucket, [20.0, 0.0])
    assert np.allclose(res.measured_j_by_bucket, [10000.0, 10000.0])


def test_spread_by_bucket_weights_and_unallocated() -> None:
    share, unalloc = spread_by_bucket(
        np.array([0, 0, 2]), np.array([1.0, 3.0, 0.0]), np.array([40.0, 7.0, 10.0])
    )
    assert np.allclose(share, [10.0, 30.0, 10.0])
    assert np.allclose(unalloc, [0.0, 7.0, 0.0])


@settings(max_examples=60, deadline=None)
@given(
    power=st.lists(st.floats(0, 1000), min_size=5, max_size=40),
    rows=st.lists(
        st.tuples(
            st.floats(0, 30),
            st.floats(0, 10),
            st.floats(0, 20),
            st.integers(0, 5000),
            st.integers(0, 2000),
        ),
        max_size=12,
    ),
    idle=st.floats(0, 500),
    counter=st.booleans(),
)
def test_conservation_holds_for_any_timeline(power, rows, idle, counter) -> None:
    t = np.arange(len(power), dtype=float) * 1.5
    p = np.array(power)
    c = (
        np.concatenate(([0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * 1.5)))
        if counter
        else (np.full(p.size, np.nan))
    )
    r = reqs(*[(s, s + f, s + f + d, i, o) for s, f, d, i, o in rows]) if rows else reqs()
    res = attribute_device(
        Series(t, p, c),
        r,
        t0=0.0,
        t1=float(t[-1]),
        idle_power_w=idle,
        prefill_weight=0.25,
        decode_weight=1.0,
        bucket_s=10.0,
    )
    assert np.all(res.energy_j >= 0)
    assert np.all(res.idle_j_by_bucket >= -1e-6)
    total = res.energy_j.sum() + res.idle_j_by_bucket.sum()
    assert np.isclose(total, res.measured_j, rtol=1e-6, atol=1e-6)
    assert np.isclose(res.measured_j_by_bucket.sum(), res.measured_j)
    assert np.isclose(res.attributed_j_by_bucket.sum(), res.energy_j.sum(), atol=1e-6)
