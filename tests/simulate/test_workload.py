"""Trace replay: arrival order and token counts are the trace rows; the load follows a day."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from wattledger.collectors.simulate.config import SimulationSettings, SyntheticWorkload
from wattledger.collectors.simulate.workload import (
    TRACE_PERIOD_S,
    TRACES,
    load_factor,
    load_trace,
    replay_trace,
    synthetic_arrivals,
)
from wattledger.errors import ConfigError

MONDAY = 1_699_833_600.0  # 2023-11-13 00:00 UTC
FLAT = SimulationSettings(diurnal_amplitude=0.0, weekend_factor=1.0)


def _csv_rows(name: str) -> list[dict[str, str]]:
    with TRACES[name].open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(("name", "rows"), [("conv", 19366), ("code", 8819)])
def test_packaged_traces_load_with_their_rows(name: str, rows: int) -> None:
    trace = load_trace(name)
    raw = _csv_rows(name)
    assert len(trace.offset_s) == len(raw) == rows
    assert trace.offset_s[0] == 0 and np.all(np.diff(trace.offset_s) >= 0)
    assert trace.offset_s[-1] < TRACE_PERIOD_S
    assert trace.input_tokens[:5].tolist() == [int(r["ContextTokens"]) for r in raw[:5]]
    assert trace.output_tokens[-3:].tolist() == [int(r["GeneratedTokens"]) for r in raw[-3:]]


def test_flat_replay_of_one_hour_is_the_trace_itself() -> None:
    trace = load_trace("code")
    got = replay_trace(
        trace, start_unix_s=MONDAY, horizon_s=3600, rate=1.0, sim=FLAT,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    assert len(got) == len(trace.offset_s)
    assert np.array_equal(got.trace_row, np.arange(len(trace.offset_s)))
    assert np.array_equal(got.arrival_s, trace.offset_s)
    assert np.array_equal(got.input_tokens, trace.input_tokens)
    assert np.array_equal(got.output_tokens, trace.output_tokens)


def test_diurnal_replay_keeps_trace_rows_and_their_order() -> None:
    trace = load_trace("conv")
    sim = SimulationSettings()
    got = replay_trace(
        trace, start_unix_s=MONDAY, horizon_s=86400, rate=1.0, sim=sim,
        rng=np.random.default_rng(1),
    )  # fmt: skip
    assert np.all(np.diff(got.arrival_s) >= 0)
    assert np.array_equal(got.input_tokens, trace.input_tokens[got.trace_row])
    assert np.array_equal(got.output_tokens, trace.output_tokens[got.trace_row])
    base = got.copy == 0
    hour = (got.arrival_s[base] // TRACE_PERIOD_S).astype(int)
    offset = got.arrival_s[base] - hour * TRACE_PERIOD_S
    assert np.allclose(offset, trace.offset_s[got.trace_row[base]])
    for h in (0, 15):  # within an hour the unshifted copy keeps the trace order
        rows = got.trace_row[base][hour == h]
        assert np.all(np.diff(rows) > 0)
    counts = np.bincount((got.arrival_s // 3600).astype(int), minlength=24)
    expected = load_factor(MONDAY + (np.arange(24) + 0.5) * 3600, sim) * len(trace.offset_s)
    assert np.allclose(counts, expected, rtol=0.05)
    assert counts[15] > 2.5 * counts[3]  # afternoon peak, night trough
    assert got.copy.max() >= 1  # peak hours superpose a shifted copy


def test_rate_compresses_the_trace() -> None:
    trace = load_trace("code")
    got = replay_trace(
        trace, start_unix_s=MONDAY, horizon_s=1800, rate=2.0, sim=FLAT,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    assert len(got) == len(trace.offset_s)
    assert np.allclose(got.arrival_s, trace.offset_s / 2)


def test_load_factor_averages_one_over_a_week() -> None:
    t = MONDAY + np.arange(0, 7 * 86400, 60.0)
    f = load_factor(t, SimulationSettings(diurnal_amplitude=0.5, weekend_factor=0.6))
    assert f.mean() == pytest.approx(1.0, rel=1e-3)
    saturday_noon = MONDAY + 5 * 86400 + 12 * 3600
    monday_noon = MONDAY + 12 * 3600
    sat, mon = load_factor(np.array([saturday_noon, monday_noon]), SimulationSettings())
    assert sat == pytest.approx(0.7 * mon)


def test_synthetic_workload_respects_window_and_caps() -> None:
    spec = SyntheticWorkload(
        requests_per_hour=3600, active_hours_utc=(1, 3), input_tokens_median=5000,
        input_tokens_max=8000, output_tokens_median=300, output_tokens_max=400,
    )  # fmt: skip
    got = synthetic_arrivals(
        spec, start_unix_s=MONDAY, horizon_s=2 * 86400, rate=1.0, rng=np.random.default_rng(2)
    )
    hours = (got.arrival_s % 86400) / 3600
    assert np.all((hours >= 1) & (hours < 3))
    assert len(got) == pytest.approx(2 * 2 * 3600, rel=0.05)
    assert got.input_tokens.max() <= 8000 and got.output_tokens.max() <= 400
    assert np.median(got.input_tokens) == pytest.approx(5000, rel=0.05)
    assert np.all(got.trace_row == -1)


def test_same_seed_same_arrivals_other_seed_others() -> None:
    trace = load_trace("conv")
    kw = {"start_unix_s": MONDAY, "horizon_s": 7200.0, "rate": 1.0, "sim": SimulationSettings()}
    a = replay_trace(trace, rng=np.random.default_rng(5), **kw)
    b = replay_trace(trace, rng=np.random.default_rng(5), **kw)
    c = replay_trace(trace, rng=np.random.default_rng(6), **kw)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.trace_row, b.trace_row)
    assert not np.array_equal(a.trace_row, c.trace_row)


def test_unknown_trace_or_bad_columns_is_a_clear_error(tmp_path: pytest.TempPathFactory) -> None:
    with pytest.raises(ConfigError, match="neither a packaged trace"):
        load_trace("nope")
    bad = tmp_path / "bad.csv"  # type: ignore[operator]
    bad.write_text("time,tokens\n1,2\n")
    with pytest.raises(ConfigError, match="lacks columns"):
        load_trace(str(bad))
