"""Continuous batching on one replica: timing, conservation of energy, ITL, overload."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from wattledger.catalog.roofline import PerfModel
from wattledger.catalog.specs import Catalog
from wattledger.collectors.simulate import _kernel
from wattledger.collectors.simulate.fleet import (
    SimulationOverload,
    kernel_params,
    simulate_replica,
)
from wattledger.collectors.simulate.workload import Arrivals, load_trace

MakeArrivals = Callable[[list[float], list[int], list[int]], Arrivals]


@pytest.fixture(scope="module")
def h100(catalog: Catalog) -> PerfModel:
    return PerfModel.from_catalog(catalog, "H100-SXM", "llama-3.1-8b", "bf16")


def _trace_arrivals(n: int, spacing_s: float) -> Arrivals:
    trace = load_trace("conv")
    k = np.arange(n)
    return Arrivals(
        k * spacing_s,
        trace.input_tokens[:n],
        trace.output_tokens[:n],
        k,
        np.zeros(n, dtype=np.int64),
    )


def test_a_request_alone_follows_the_roofline(h100: PerfModel, make_arrivals: MakeArrivals) -> None:
    run = simulate_replica(h100, make_arrivals([5.0], [1000], [101]))
    pre = h100.prefill(1000)
    step = h100.decode_step(1, 1000 + 101 / 2)
    assert run.prefill_start_s[0] == 5.0
    assert run.first_token_s[0] == pytest.approx(5.0 + float(pre.time_s))
    assert run.end_s[0] - run.first_token_s[0] == pytest.approx(100 * float(step.time_s))
    assert run.itl_mean_s[0] == pytest.approx(float(step.time_s))
    assert run.itl_p50_s[0] == pytest.approx(float(step.time_s))
    assert run.itl_count[0] == 100 and run.batch_size[0] == 1
    assert run.prefill_energy_j[0] == pytest.approx(float(pre.dynamic_energy_j))
    assert run.decode_energy_j[0] == pytest.approx(100 * float(step.dynamic_energy_j))


def test_prefill_is_first_come_first_served(h100: PerfModel, make_arrivals: MakeArrivals) -> None:
    run = simulate_replica(h100, make_arrivals([0.0, 0.0, 0.0, 9.0], [4000] * 4, [10] * 4))
    p = float(h100.prefill(4000).time_s)
    assert run.prefill_start_s.tolist() == pytest.approx([0.0, p, 2 * p, 9.0])
    assert run.first_token_s - run.prefill_start_s == pytest.approx(np.full(4, p))
    ttft = run.first_token_s - run.arrival_s
    assert ttft[0] < ttft[1] < ttft[2] and ttft[3] == pytest.approx(p)


def test_energy_is_conserved_and_split_by_work(h100: PerfModel) -> None:
    arr = _trace_arrivals(3000, 0.05)
    run = simulate_replica(h100, arr)
    device_dynamic = float(run.cum_dynamic_j[-1])
    assert run.energy_j.sum() == pytest.approx(device_dynamic, rel=1e-9)
    assert np.all(run.prefill_energy_j > 0) and np.all(run.decode_energy_j >= 0)
    assert np.all(np.diff(run.boundary_s) >= 0) and np.all(np.diff(run.cum_dynamic_j) >= 0)
    # Longer answers consume more decode energy: rank correlation with output tokens.
    rank = np.argsort(np.argsort(arr.output_tokens))
    rank_e = np.argsort(np.argsort(run.decode_energy_j))
    assert np.corrcoef(rank, rank_e)[0, 1] > 0.8


def test_batching_raises_tokens_per_joule_on_a_replica(h100: PerfModel) -> None:
    sparse = _trace_arrivals(400, 30.0)  # one request at a time
    dense = _trace_arrivals(400, 0.05)  # dozens running together
    runs = [simulate_replica(h100, a) for a in (sparse, dense)]
    tokens = sparse.output_tokens.sum()
    joules = [
        r.energy_j.sum() + h100.idle_power_w * (r.end_s.max() - r.arrival_s.min()) for r in runs
    ]
    assert runs[0].batch_size.mean() < 1.5 < 10 < runs[1].batch_size.mean()
    assert tokens / joules[1] > 3 * tokens / joules[0]
    assert np.nanmean(runs[1].itl_mean_s) > np.nanmean(runs[0].itl_mean_s)


def test_prefill_stalls_show_in_itl_tail(h100: PerfModel, make_arrivals: MakeArrivals) -> None:
    # A long answer decoding while ten long prompts arrive.
    a = [0.0] + [1.0 + 0.3 * i for i in range(10)]
    run = simulate_replica(h100, make_arrivals(a, [500] + [6000] * 10, [2000] + [5] * 10))
    assert run.itl_p50_s[0] < run.itl_p95_s[0] <= run.itl_max_s[0]
    chunk_s = float(h100.prefill(6000).time_s / h100.prefill_chunks(6000))
    assert run.itl_max_s[0] == pytest.approx(chunk_s, rel=1e-6)
    assert run.itl_mean_s[0] > run.itl_p50_s[0]
    ok = ~np.isnan(run.itl_p50_s)
    assert np.all(run.itl_p50_s[ok] <= run.itl_p95_s[ok])
    assert np.all(run.itl_p95_s[ok] <= run.itl_max_s[ok])


def test_single_token_answers_have_no_itl(h100: PerfModel, make_arrivals: MakeArrivals) -> None:
    run = simulate_replica(h100, make_arrivals([0.0, 0.1], [100, 100], [1, 50]))
    assert run.end_s[0] == run.first_token_s[0]
    assert np.isnan(run.itl_mean_s[0]) and run.itl_count[0] == 0
    assert run.decode_energy_j[0] == 0 and run.prefill_energy_j[0] > 0
    assert run.itl_count[1] == 49


def test_overload_is_reported(catalog: Catalog) -> None:
    l4 = PerfModel.from_catalog(catalog, "L4", "llama-3.1-8b", "fp8")
    arr = _trace_arrivals(8000, 0.01)  # 100 prompts a second on one L4
    with pytest.raises(SimulationOverload) as e:
        simulate_replica(l4, arr, name="pool 'code-l4' device 0")
    assert "pool 'code-l4' device 0" in e.value.message and "wait up to" in e.value.message
    assert "Add devices" in (e.value.hint or "")
    # Prompts keep up, but answers pile up: far more sequences than the engine can hold.
    long_answers = Arrivals(
        np.arange(3000) * 0.02, np.full(3000, 50), np.full(3000, 4000), np.zeros(3000, int),
        np.zeros(3000, int),
    )  # fmt: skip
    with pytest.raises(SimulationOverload, match="sequences holding"):
        simulate_replica(l4, long_answers)


def test_compiled_and_python_event_loops_agree(catalog: Catalog) -> None:
    """The numba-compiled loop and its pure-Python source give the same results."""
    if not _kernel.HAVE_NUMBA:
        pytest.fail("numba is part of the dev extras; install 'wattledger[dev]'")
    perf = PerfModel.from_catalog(catalog, "H200", "mixtral-8x7b", "bf16")
    arr = _trace_arrivals(300, 0.2)
    n_in = arr.input_tokens.astype(float)
    m = arr.output_tokens.astype(float)
    pre = perf.prefill(n_in)
    f = np.cumsum(pre.time_s) + np.maximum.accumulate(
        arr.arrival_s - (np.cumsum(pre.time_s) - pre.time_s)
    )
    args = (
        f - pre.time_s, f, pre.dynamic_energy_j, pre.busy_s, perf.prefill_chunks(n_in), n_in,
        m - 1, n_in + m / 2, kernel_params(perf), perf.decode_weight(),
    )  # fmt: skip
    compiled = _kernel.run_replica(*args)
    python = _kernel.run_replica.py_func(*args)
    for x, y in zip(compiled, python, strict=True):
        assert np.allclose(x, y, rtol=1e-12, atol=1e-12)
