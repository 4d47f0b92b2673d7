"""The roofline physics: prefill is compute-bound, decode is bandwidth-bound, batching pays."""

from __future__ import annotations

import numpy as np
import pytest

from wattledger.catalog.roofline import PerfModel, steady_state
from wattledger.catalog.specs import Catalog
from wattledger.collectors.simulate import _kernel
from wattledger.collectors.simulate.fleet import kernel_params
from wattledger.errors import ConfigError


def perf(catalog: Catalog, hw: str, model: str, quant: str = "bf16", **kw: object) -> PerfModel:
    return PerfModel.from_catalog(catalog, hw, model, quant, **kw)  # type: ignore[arg-type]


def test_prefill_time_scales_with_input_tokens(catalog: Catalog) -> None:
    p = perf(catalog, "H100-SXM", "llama-3.1-8b")
    t = p.prefill([1024, 2048]).time_s
    kernel = t - p.engine.step_overhead_s.value * p.prefill_chunks([1024, 2048])
    # Linear term dominates; attention adds a little (quadratic) on top.
    assert 2.0 < kernel[1] / kernel[0] < 2.15
    flops = 2 * p.model.active_params * 2048
    assert kernel[1] >= flops / (p.flops_per_s * p.engine.mfu.value)


def test_prefill_time_scales_inversely_with_flops(catalog: Catalog) -> None:
    n = 4000
    a100 = perf(catalog, "A100-80GB-SXM", "llama-3.1-8b").prefill(n)
    h100 = perf(catalog, "H100-SXM", "llama-3.1-8b").prefill(n)
    h100_fp8 = perf(catalog, "H100-SXM", "llama-3.1-8b", "fp8").prefill(n)
    assert float(a100.time_s / h100.time_s) == pytest.approx(989.4 / 312, rel=0.05)
    assert float(h100.time_s / h100_fp8.time_s) == pytest.approx(2.0, rel=0.05)
    # Compute-bound: the achieved FLOP/s fraction is the engine's MFU.
    assert float(h100.compute_s / (h100.time_s - 0.002 * 2)) == pytest.approx(0.6, rel=0.05)


def test_decode_step_time_scales_with_bytes_per_step(catalog: Catalog) -> None:
    bf16 = perf(catalog, "H100-SXM", "llama-3.1-70b", "int4")
    h200 = perf(catalog, "H200", "llama-3.1-70b", "int4")
    overhead = bf16.engine.step_overhead_s.value + bf16.engine.per_seq_overhead_s.value
    t_h100 = float(bf16.decode_step(1, 1000).time_s) - overhead
    t_h200 = float(h200.decode_step(1, 1000).time_s) - overhead
    assert t_h100 / t_h200 == pytest.approx(4.8 / 3.35, rel=0.01)
    # Bytes per step: weights + KV cache. Adding context costs exactly its KV bytes.
    more = float(bf16.decode_step(1, 101_000).time_s) - overhead
    extra_bytes = 100_000 * bf16.kv_bytes_per_token
    assert more - t_h100 == pytest.approx(
        extra_bytes / (bf16.bandwidth_bps * bf16.engine.mbu.value), rel=1e-6
    )
    # Halving the bytes per weight halves the weight-read time.
    fp8 = perf(catalog, "H200", "llama-3.1-70b", "fp8")
    bf = perf(catalog, "H200", "llama-3.1-70b", "bf16")
    t_fp8 = float(fp8.decode_step(1, 0).time_s) - overhead
    t_bf = float(bf.decode_step(1, 0).time_s) - overhead
    assert t_bf / t_fp8 == pytest.approx(2.0, rel=0.01)


def test_moe_reads_only_the_experts_a_batch_touches(catalog: Catalog) -> None:
    p = perf(catalog, "H200", "mixtral-8x7b")
    read = p.weight_bytes_read([1, 8, 256])
    assert read[0] < 0.35 * p.weight_bytes  # 2 of 8 experts + shared weights
    assert read[0] < read[1] < read[2]
    assert read[2] == pytest.approx(p.weight_bytes, rel=1e-6)


def test_batching_raises_throughput_and_tokens_per_joule(catalog: Catalog) -> None:
    p = perf(catalog, "H100-SXM", "llama-3.1-8b")
    states = [steady_state(p, b, 1000, 200) for b in (1, 8, 64)]
    tput = [s.output_tokens_per_s for s in states]
    tpj = [1 / s.energy_per_output_token_j for s in states]
    assert tput[0] < tput[1] < tput[2]
    assert tpj[0] < tpj[1] < tpj[2]
    assert tpj[2] > 5 * tpj[0]
    # Latency is the price: each request waits longer per token at a larger batch.
    assert states[0].tpot_s < states[2].tpot_s


def test_power_stays_between_idle_and_tdp(catalog: Catalog) -> None:
    p = perf(catalog, "H100-SXM", "llama-3.1-70b", "int4")
    pre = p.prefill([200, 2000, 8000])
    dec = p.decode_step([1, 16, 256], [1000, 16000, 256000])
    dyn_range = p.tdp_w - p.idle_power_w
    for cost in (pre, dec):
        assert np.all(cost.power_above_idle_w > 0)
        assert np.all(cost.power_above_idle_w <= dyn_range)
        assert np.all(cost.busy_s <= cost.time_s)
    # Compute-bound prefill runs hotter than bandwidth-bound single-sequence decode.
    assert float(pre.power_above_idle_w[2]) > float(dec.power_above_idle_w[0])
    assert float(pre.power_above_idle_w[2]) > 0.85 * dyn_range


@pytest.mark.parametrize(
    ("hw", "model", "quant"),
    [
        ("H100-SXM", "llama-3.1-70b", "int4"),
        ("H200", "mixtral-8x7b", "bf16"),
        ("L4", "llama-3.1-8b", "fp8"),
    ],
)
def test_event_loop_step_cost_equals_the_perf_model(
    catalog: Catalog, hw: str, model: str, quant: str
) -> None:
    p = perf(catalog, hw, model, quant)
    prm = kernel_params(p)
    rng = np.random.default_rng(0)
    for b, c in zip(rng.integers(1, 300, 20), rng.uniform(0, 2e5, 20), strict=True):
        t, e, busy = _kernel.decode_cost(float(b), float(c), prm)
        ref = p.decode_step(float(b), float(c))
        assert t == pytest.approx(float(ref.time_s), rel=1e-12)
        assert e == pytest.approx(float(ref.dynamic_energy_j), rel=1e-12)
        assert busy == pytest.approx(float(ref.busy_s), rel=1e-12)


def test_decode_weight_is_relative_roofline_cost(catalog: Catalog) -> None:
    p = perf(catalog, "H100-SXM", "llama-3.1-8b")
    r = p.decode_weight()
    flop_s = 2 * p.model.active_params / (p.flops_per_s * 0.6)
    kv_s = 1024 * p.kv_bytes_per_token / (p.bandwidth_bps * 0.75)
    assert r == pytest.approx((flop_s + kv_s) / flop_s)
    assert r > 1


def test_a_model_that_does_not_fit_is_a_clear_error(catalog: Catalog) -> None:
    with pytest.raises(ConfigError) as e:
        perf(catalog, "L4", "llama-3.1-70b").check_fits()
    assert "needs 141 GB" in e.value.message and "fp8" in (e.value.hint or "")
    with pytest.raises(ConfigError, match="Unknown hardware 'B300'"):
        perf(catalog, "B300", "llama-3.1-8b")
