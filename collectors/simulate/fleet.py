"""Continuous batching on one replica, simulated for millions of requests at once.

The replica runs one step at a time. A step either prefills one prompt (its decoding
sequences ride along and each gets a token) or, when no prompt waits, decodes one token for
every running sequence. The simulation is event-based and vectorised with numpy:

1. Prefills are served first-come first-served: prompt i starts at
   ``s_i = max(a_i, f_{i-1})`` and yields its first token at ``f_i = s_i + prefill_i``
   (a Lindley recursion, solved in closed form with a running maximum).
2. Cutting time at every start, first token and end gives segments in which the running batch
   B and its context C are constant. A segment advances the step counter Phi at 1/prefill_j
   steps per second while prompt j prefills, at 1/decode_step(B, C) otherwise, and not at
   all while the replica is idle.
3. Request i needs ``output_tokens - 1`` steps after its first token, so it ends where
   Phi(e_i) = Phi(f_i) + output_tokens - 1. Its end changes B, which changes Phi: the ends
   are iterated to a fixed point. Starting from every request alone, the iteration only
   lengthens requests and converges from below; it diverges only when the replica is
   overloaded, which is reported as a :class:`SimulationOverload`.

Energy: every segment has power idle + dynamic (perf.py). The dynamic energy of a segment is
split among the requests in it by work: during prefill of prompt j, ``input_tokens_j`` for j
and ``decode_weight`` for each decoding sequence (one token each); during decode, equally.
These shares summed per request are the ground truth (docs/simulator.md#ground-truth).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wattledger.collectors.simulate.perf import PerfModel, StepCost
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
    iterations: int
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


@dataclass(frozen=True)
class _Segments:
    order: I64  # event order (indices into concat(s, f, e sorted))
    t: F64  # event times, sorted
    dur: F64  # duration of the segment after each event
    batch: F64  # running batch after each event
    ctx: F64  # context tokens of the running batch
    prefilling: I64  # request prefilling after each event, -1 if none
    pos_s: I64  # event index of each request's prefill start
    pos_f: I64  # ... first token
    pos_e: I64  # ... end


def _segments(s: F64, f: F64, e: F64, ctx: F64) -> _Segments:
    n = len(s)
    e_order = np.argsort(e, kind="stable")
    times = np.concatenate([s, f, e[e_order]])
    # Three sorted runs: the stable sort merges them, and ties keep s < f < e order.
    order = np.argsort(times, kind="stable")
    t = times[order]
    kind, req = np.divmod(order, n)  # kind 0: prefill start, 1: first token, 2: end
    is_end = kind == 2
    req[is_end] = e_order[req[is_end]]
    d_batch = _D_BATCH[kind]
    batch = np.cumsum(d_batch)
    c = np.cumsum(d_batch * ctx[req])
    c = np.where(batch > 0.5, np.maximum(c, 0.0), 0.0)
    pf_open = np.cumsum(_D_PREFILL[kind])
    last_start = np.maximum.accumulate(np.where(kind == 0, req, -1))
    prefilling = np.where(pf_open > 0, last_start, -1)
    dur = np.empty_like(t)
    np.subtract(t[1:], t[:-1], out=dur[:-1])
    dur[-1] = 0.0
    inv = np.empty(3 * n, dtype=np.int64)
    inv[order] = np.arange(3 * n)
    pos_e = np.empty(n, dtype=np.int64)
    pos_e[e_order] = inv[2 * n :]
    return _Segments(order, t, dur, batch, c, prefilling, inv[:n], inv[n : 2 * n], pos_e)


_D_BATCH = np.array([0.0, 1.0, -1.0])
_D_PREFILL = np.array([1, -1, 0])


def _step_rate(
    perf: PerfModel, seg: _Segments, prefill_rate: F64
) -> tuple[F64, F64]:
    """Steps per second in each segment, and the decode step time (0 outside decode).

    ``prefill_rate`` is each request's prefill steps (chunks) per second.
    """
    pf = seg.prefilling >= 0
    decoding = ~pf & (seg.batch > 0.5)
    step = perf.decode_step(np.maximum(seg.batch, 1.0), seg.ctx).time_s
    tau = np.where(decoding, step, 0.0)
    rate = np.where(decoding, 1.0 / step, 0.0)
    rate = np.where(pf, prefill_rate[np.maximum(seg.prefilling, 0)], rate)
    return rate, tau


def _range_max(values: F64, lo: I64, hi: I64) -> F64:
    """``max(values[lo:hi])`` for every pair, 0 where the range is empty."""
    out = np.zeros(len(lo))
    ok = hi > lo
    if ok.any():
        idx = np.empty(2 * int(ok.sum()), dtype=np.int64)
        idx[0::2], idx[1::2] = lo[ok], hi[ok]
        out[ok] = np.maximum.reduceat(np.append(values, 0.0), idx)[0::2]
    return out


def simulate_replica(
    perf: PerfModel,
    arrivals: Arrivals,
    *,
    name: str = "replica",
    tolerance_s: float = 1e-3,
    max_iterations: int = 80,
    max_queue_s: float = 600.0,
) -> ReplicaRun:
    """Simulate continuous batching of ``arrivals`` on one replica (see module docstring).

    Raises:
        SimulationOverload: prefill queueing exceeds ``max_queue_s`` or the decode fixed
            point does not converge: the replica cannot keep up with its traffic.
    """
    a = arrivals.arrival_s
    n_in = arrivals.input_tokens.astype(np.float64)
    m = arrivals.output_tokens.astype(np.float64)
    n = len(a)
    pre = perf.prefill(n_in)
    p = pre.time_s
    chunks = perf.prefill_chunks(n_in)
    cum_p = np.concatenate([[0.0], np.cumsum(p)])
    f = cum_p[1:] + np.maximum.accumulate(a - cum_p[:-1])
    s = f - p
    if n and float(np.max(s - a)) > max_queue_s:
        raise SimulationOverload(
            f"{name}: prompts wait up to {float(np.max(s - a)):.0f} s to be prefilled; the "
            "replica cannot keep up with its traffic.",
            hint="Add devices to the pool, shift traffic away from it, or lower --rate.",
        )
    ctx = n_in + m / 2.0
    steps = m - 1.0
    single = perf.decode_step(np.ones_like(ctx), ctx).time_s
    e = f + steps * single
    idle_rate = 1.0 / float(np.median(single)) if n else 1.0
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - used after the loop
        seg = _segments(s, f, e, ctx)
        rate, _ = _step_rate(perf, seg, chunks / p)
        # Idle gaps advance at the single-request rate: a request whose end lands in a gap
        # is alone there, and a flat step counter would make its end jump to the next busy
        # period and back (a limit cycle). At the fixed point no end lies inside a gap.
        rate = np.where(rate > 0, rate, idle_rate)
        phi = np.concatenate([[0.0], np.cumsum(rate * seg.dur)])[:-1]
        target = phi[seg.pos_f] + steps
        k = np.searchsorted(phi, target, side="left")
        beyond = k >= len(phi)
        k1 = np.clip(k - 1, 0, len(phi) - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            e_new = seg.t[k1] + (target - phi[k1]) / rate[k1]
        e_new = np.where(beyond, seg.t[-1] + (target - phi[-1]) * single, e_new)
        e_new = np.where(steps > 0, e_new, f)
        change = float(np.max(np.abs(e_new - e))) if n else 0.0
        e = e_new
        if change < tolerance_s:
            break
    else:
        raise SimulationOverload(
            f"{name}: decode did not settle after {max_iterations} rounds (last change "
            f"{change:.3f} s): the replica cannot keep up with its traffic.",
            hint="Add devices to the pool, shift traffic away from it, or lower --rate.",
        )
    return _finish(perf, arrivals, s, f, e, ctx, pre, chunks, iterations)


def _finish(
    perf: PerfModel,
    arrivals: Arrivals,
    s: F64,
    f: F64,
    e: F64,
    ctx: F64,
    pre: StepCost,
    chunks: F64,
    iterations: int,
) -> ReplicaRun:
    n_in = arrivals.input_tokens.astype(np.float64)
    m = arrivals.output_tokens.astype(np.float64)
    p = f - s
    seg = _segments(s, f, e, ctx)
    _, tau = _step_rate(perf, seg, chunks / p)
    decoding = tau > 0
    pf = seg.prefilling >= 0
    j = seg.prefilling[pf]
    energy = np.zeros_like(seg.t)
    busy = np.zeros_like(seg.t)
    step = perf.decode_step(seg.batch[decoding], seg.ctx[decoding])
    energy[decoding] = step.dynamic_energy_j * seg.dur[decoding] / tau[decoding]
    busy[decoding] = step.busy_s * seg.dur[decoding] / tau[decoding]
    energy[pf] = pre.dynamic_energy_j[j] * seg.dur[pf] / p[j]
    busy[pf] = pre.busy_s[j] * seg.dur[pf] / p[j]
    # Split each segment's dynamic energy by work: prefill tokens vs decode tokens (each
    # decoding sequence gets one token per prefill chunk).
    r = perf.decode_weight()
    per_decoder = np.zeros_like(seg.t)
    to_prefiller = np.zeros_like(seg.t)
    work = n_in[j] + r * seg.batch[pf] * chunks[j]
    per_decoder[pf] = energy[pf] * r * chunks[j] / work
    to_prefiller[pf] = energy[pf] * n_in[j] / work
    per_decoder[decoding] = energy[decoding] / seg.batch[decoding]

    def cum(x: F64) -> F64:
        return np.concatenate([[0.0], np.cumsum(x)])

    g, h, integral_b = cum(per_decoder), cum(to_prefiller), cum(seg.batch * seg.dur)
    decode_j = g[seg.pos_e] - g[seg.pos_f]
    prefill_j = h[seg.pos_f] - h[seg.pos_s]

    # Inter-token latency: decode steps at the running batch, stalled by other prompts'
    # prefills that start during this request's decode.
    gaps = m - 1.0
    lo = np.searchsorted(s, f, side="left")
    hi = np.searchsorted(s, e, side="left")
    cum_chunks, cum_p = cum(chunks), cum(p)
    stalls = cum_chunks[hi] - cum_chunks[lo]
    stall_s = cum_p[hi] - cum_p[lo]
    max_stall = _range_max(p / chunks, lo, hi)
    max_tau = _range_max(tau, seg.pos_f, seg.pos_e)
    has_gap = gaps > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(has_gap, (e - f) / gaps, np.nan)
        plain = np.where(gaps > stalls, (e - f - stall_s) / (gaps - stalls), mean)
        mean_stall = np.where(stalls > 0, stall_s / stalls, plain)
        share = np.where(has_gap, stalls / gaps, 0.0)
    p50 = np.where(share < 0.5, plain, mean_stall)
    p95 = np.maximum(np.where(share >= 0.05, mean_stall, np.maximum(max_tau, plain)), p50)
    itl_max = np.maximum(np.maximum(max_stall, max_tau), p95)
    with np.errstate(divide="ignore", invalid="ignore"):
        avg_b = np.where(
            e > f, (integral_b[seg.pos_e] - integral_b[seg.pos_f]) / (e - f), seg.batch[seg.pos_f]
        )
    nan = np.where(has_gap, 1.0, np.nan)
    peak_kv = float(np.max(seg.ctx)) if len(seg.ctx) else 0.0
    return ReplicaRun(
        arrival_s=arrivals.arrival_s,
        prefill_start_s=s,
        first_token_s=f,
        end_s=e,
        itl_mean_s=mean,
        itl_p50_s=p50 * nan,
        itl_p95_s=p95 * nan,
        itl_max_s=itl_max * nan,
        itl_count=np.maximum(gaps, 0).astype(np.int64),
        batch_size=np.maximum(np.rint(avg_b), 1).astype(np.int64),
        prefill_energy_j=prefill_j,
        decode_energy_j=decode_j,
        boundary_s=np.concatenate([[0.0], seg.t]),
        cum_dynamic_j=np.concatenate([[0.0], cum(energy)[:-1]]),
        cum_busy_s=np.concatenate([[0.0], cum(busy)[:-1]]),
        iterations=iterations,
        peak_batch=int(np.max(seg.batch)) if len(seg.batch) else 0,
        peak_kv_tokens=peak_kv,
    )
