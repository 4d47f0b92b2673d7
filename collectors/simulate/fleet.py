"""Continuous batching on one replica: a fluid discrete-event model.

The replica runs one step at a time. A step either prefills (a chunk of) one prompt, with the
running sequences riding along and each getting a token, or, when no prompt waits, decodes
one token for every running sequence. The model is *fluid*: between events the running batch
B and its context C are constant and steps advance at 1/step_time per second, so the
simulation only visits events, three per request:

1. Prompts are prefilled first-come first-served: prompt i starts at
   ``s_i = max(a_i, f_{i-1})`` and gives its first token at ``f_i = s_i + prefill_i``
   (a Lindley recursion, solved in closed form with a running maximum).
2. From its first token a request needs ``output_tokens - 1`` more steps. A step counter
   Phi advances at ``chunks_j / prefill_j`` while prompt j prefills, at
   ``1 / decode_step(B, C)`` while the batch decodes, and not at all while the replica is
   idle; request i ends when Phi has advanced ``output_tokens_i - 1`` since ``f_i``. The
   event loop (:mod:`._kernel`) keeps the running requests in a heap ordered by the Phi at
   which they finish.

Energy: each segment between events draws idle + dynamic power (perf.py). Its dynamic energy
is split among the requests in it by work: while prompt j prefills, ``input_tokens_j`` for j
and ``decode_weight`` per token for every decoding sequence (one token per chunk); while the
batch decodes, equally. These shares summed per request are the ground truth
(docs/simulator.md#ground-truth).

Inter-token latency: a request's gaps are decode steps at the batch of the moment plus one
stall of ``prefill_j / chunks_j`` for every prefill chunk of another prompt during its decode;
the p50, p95 and maximum are computed from those (module :func:`_itl`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wattledger.catalog.roofline import PerfModel
from wattledger.collectors.simulate import _kernel
from wattledger.collectors.simulate.workload import Arrivals
from wattledger.errors import WattledgerError

logger = logging.getLogger(__name__)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


class SimulationOverload(WattledgerError):
    """A replica gets more work than it can serve; its queue grows without bound."""


@dataclass(frozen=True)
class ReplicaRun:
    """Result of simulating one replica. Per-request arrays are in arrival order.

    Times are seconds since the simulation start. ITL statistics are NaN for requests with a
    single output token. Energies are above the idle baseline, joules.
    """

    arrival_s: F64
    prefill_start_s: F64
    first_token_s: F64
    end_s: F64
    itl_mean_s: F64
    itl_p50_s: F64
    itl_p95_s: F64
    itl_max_s: F64
    itl_count: I64
    batch_size: I64
    prefill_energy_j: F64
    decode_energy_j: F64
    boundary_s: F64
    cum_dynamic_j: F64
    cum_busy_s: F64
    peak_batch: int
    peak_kv_tokens: float

    @property
    def energy_j(self) -> F64:
        """True energy above idle of each request, joules."""
        return self.prefill_energy_j + self.decode_energy_j

    def dynamic_energy_at(self, t_s: F64) -> F64:
        """Cumulative energy above idle at times ``t_s``, joules."""
        return np.interp(t_s, self.boundary_s, self.cum_dynamic_j)

    def busy_time_at(self, t_s: F64) -> F64:
        """Cumulative time the GPU was busy at times ``t_s``, seconds."""
        return np.interp(t_s, self.boundary_s, self.cum_busy_s)


def _range_max(values: F64, lo: I64, hi: I64) -> F64:
    """``max(values[lo:hi])`` for every pair, 0 where the range is empty."""
    out = np.zeros(len(lo))
    ok = hi > lo
    if ok.any():
        idx = np.empty(2 * int(ok.sum()), dtype=np.int64)
        idx[0::2], idx[1::2] = lo[ok], hi[ok]
        out[ok] = np.maximum.reduceat(np.append(values, 0.0), idx)[0::2]
    return out


def kernel_params(perf: PerfModel) -> NDArray[np.float64]:
    """The decode-step parameters of ``perf`` as the vector the event loop reads."""
    m, e, pw = perf.model, perf.engine, perf.power
    prm = np.zeros(_kernel.N_PARAMS)
    prm[_kernel.FLOPS] = perf.flops_per_s
    prm[_kernel.BW] = perf.bandwidth_bps
    prm[_kernel.MFU] = e.mfu.value
    prm[_kernel.MBU] = e.mbu.value
    prm[_kernel.OVERHEAD] = e.step_overhead_s.value + e.tp_overhead_s_per_doubling.value * float(
        np.log2(perf.tp)
    )
    prm[_kernel.PER_SEQ] = e.per_seq_overhead_s.value
    prm[_kernel.ACTIVE] = m.active_params
    prm[_kernel.LAYER_WIDTH] = m.num_layers.value * m.attention_dim
    prm[_kernel.KV_BYTES] = perf.kv_bytes_per_token
    bpp = perf.quant.weight_bytes_per_param.value
    if m.expert_params is not None and m.num_experts is not None and m.experts_per_token:
        prm[_kernel.SHARED_BYTES] = (m.total_params.value - m.expert_params.value) * bpp
        prm[_kernel.EXPERT_BYTES] = m.expert_params.value * bpp
        prm[_kernel.EXPERT_SHARE] = m.experts_per_token.value / m.num_experts.value
    else:
        prm[_kernel.SHARED_BYTES] = perf.weight_bytes
    prm[_kernel.DYN_W] = perf.tdp_w - perf.idle_power_w
    prm[_kernel.CW] = pw.compute_weight.value
    prm[_kernel.MW] = pw.memory_weight.value
    prm[_kernel.OF] = pw.overhead_fraction.value
    prm[_kernel.WF] = pw.wait_fraction.value
    return prm


def simulate_replica(
    perf: PerfModel,
    arrivals: Arrivals,
    *,
    name: str = "replica",
    max_queue_s: float = 600.0,
) -> ReplicaRun:
    """Simulate continuous batching of ``arrivals`` on one replica (see module docstring).

    Raises:
        SimulationOverload: prompts wait longer than ``max_queue_s`` to be prefilled, or the
            running batch needs more than twice the engine's sequences or KV cache: the
            replica cannot keep up with its traffic. (Up to twice is simulated without
            admission queueing, and the backfill logs a warning.)
    """
    a = arrivals.arrival_s
    n_in = arrivals.input_tokens.astype(np.float64)
    m = arrivals.output_tokens.astype(np.float64)
    pre = perf.prefill(n_in)
    p = pre.time_s
    chunks = perf.prefill_chunks(n_in)
    cum_p = np.concatenate([[0.0], np.cumsum(p)])
    f = cum_p[1:] + np.maximum.accumulate(a - cum_p[:-1]) if len(a) else a.copy()
    s = f - p
    wait = float(np.max(s - a)) if len(a) else 0.0
    if wait > max_queue_s:
        raise SimulationOverload(
            f"{name}: prompts wait up to {wait:.0f} s to be prefilled; the replica cannot "
            "keep up with its traffic.",
            hint="Add devices to the pool, shift traffic away from it, or lower --rate.",
        )
    _kernel.warn_if_slow(len(a))
    ctx = n_in + m / 2.0
    end, e_pre, e_dec, k_f, k_e, ev_t, ev_e, ev_busy, ev_ib, ev_tau = _kernel.run_replica(
        s, f, pre.dynamic_energy_j, pre.busy_s, chunks, n_in, m - 1.0, ctx,
        kernel_params(perf), perf.decode_weight(),
    )  # fmt: skip
    itl = _itl(s, f, end, m, p, chunks, k_f, k_e, ev_tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        avg_b = np.where(end > f, (ev_ib[k_e] - ev_ib[k_f]) / (end - f), 1.0)
    peak = _peaks(ev_ib, ev_t)
    peak_kv = _peak_kv(f, end, ctx)
    max_seqs = perf.engine.max_num_seqs.value
    if peak > 2 * max_seqs or peak_kv > 2 * perf.kv_capacity_tokens:
        raise SimulationOverload(
            f"{name}: {peak} sequences holding {peak_kv:,.0f} tokens of KV cache would run at "
            f"once (the engine holds {max_seqs:.0f} and {perf.kv_capacity_tokens:,.0f}): the "
            "replica cannot keep up with its traffic.",
            hint="Add devices to the pool, shift traffic away from it, or lower --rate.",
        )
    return ReplicaRun(
        arrival_s=a,
        prefill_start_s=s,
        first_token_s=f,
        end_s=end,
        **itl,
        batch_size=np.maximum(np.rint(avg_b), 1).astype(np.int64),
        prefill_energy_j=e_pre,
        decode_energy_j=e_dec,
        boundary_s=ev_t,
        cum_dynamic_j=ev_e,
        cum_busy_s=ev_busy,
        peak_batch=peak,
        peak_kv_tokens=peak_kv,
    )


def _itl(
    s: F64, f: F64, e: F64, m: F64, p: F64, chunks: F64, k_f: I64, k_e: I64, ev_tau: F64
) -> dict[str, np.ndarray]:
    """Per-request ITL statistics from decode steps and other prompts' prefill stalls."""
    gaps = m - 1.0
    lo = np.searchsorted(s, f, side="left")
    hi = np.searchsorted(s, e, side="left")
    cum_chunks = np.concatenate([[0.0], np.cumsum(chunks)])
    cum_p = np.concatenate([[0.0], np.cumsum(p)])
    stalls = cum_chunks[hi] - cum_chunks[lo]
    stall_s = cum_p[hi] - cum_p[lo]
    # Prefills run one after another, so only the last one can outlast the request.
    last = np.maximum(hi - 1, 0)
    over = np.where(hi > lo, np.maximum(f[last] - e, 0.0), 0.0)
    stall_s = stall_s - over
    stalls = stalls - chunks[last] * over / p[last]
    max_stall = _range_max(p / chunks, lo, hi)
    max_tau = _range_max(ev_tau, k_f, k_e)
    has_gap = gaps > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(has_gap, (e - f) / gaps, np.nan)
        plain = np.where(gaps > stalls, (e - f - stall_s) / (gaps - stalls), mean)
        mean_stall = np.where(stalls > 0, stall_s / stalls, plain)
        share = np.where(has_gap, stalls / gaps, 0.0)
    p50 = np.where(share < 0.5, plain, mean_stall)
    p95 = np.maximum(np.where(share >= 0.05, mean_stall, np.maximum(max_tau, plain)), p50)
    itl_max = np.maximum(np.maximum(max_stall, max_tau), p95)
    nan = np.where(has_gap, 1.0, np.nan)
    return {
        "itl_mean_s": mean,
        "itl_p50_s": p50 * nan,
        "itl_p95_s": p95 * nan,
        "itl_max_s": itl_max * nan,
        "itl_count": np.maximum(gaps, 0).astype(np.int64),
    }


def _peaks(ev_ib: F64, ev_t: F64) -> int:
    """Largest running batch between two events (from the batch x time integral)."""
    dt = np.diff(ev_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(dt > 0, np.diff(ev_ib) / dt, 0.0)
    return int(np.rint(b.max())) if len(b) else 0


def _peak_kv(f: F64, e: F64, ctx: F64) -> float:
    """Largest KV-cache demand (context tokens of the running sequences) at any time."""
    if not len(f):
        return 0.0
    t = np.concatenate([f, e])
    d = np.concatenate([ctx, -ctx])
    order = np.argsort(t, kind="stable")
    return float(np.max(np.cumsum(d[order])))
