"""The event loop of one replica, compiled with numba when it is installed.

Without numba (``pip install 'wattledger[sim]'``) the same code runs as plain Python: the
results are identical, only about fifty times slower. The loop is a discrete-event simulation
of the fluid continuous-batching model described in :mod:`.fleet`; the decode step cost is a
scalar copy of :meth:`PerfModel.decode_step`, kept equal to it by a test.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

try:
    import numba

    HAVE_NUMBA = True

    def _jit(fn: F) -> F:
        return numba.njit(cache=True, nogil=True)(fn)  # type: ignore[return-value]

except ImportError:  # pragma: no cover - exercised where numba is absent
    HAVE_NUMBA = False

    def _jit(fn: F) -> F:
        return fn


# Indices into the parameter vector built by fleet.kernel_params().
(FLOPS, BW, MFU, MBU, OVERHEAD, PER_SEQ, ACTIVE, LAYER_WIDTH, KV_BYTES, SHARED_BYTES,
 EXPERT_BYTES, EXPERT_SHARE, DYN_W, CW, MW, OF, WF, N_PARAMS) = range(18)  # fmt: skip


@_jit
def decode_cost(batch: float, ctx: float, prm: np.ndarray) -> tuple[float, float, float]:
    """Time, dynamic energy and busy time of one decode step of ``batch`` sequences."""
    flops = 2.0 * prm[ACTIVE] * batch + 4.0 * prm[LAYER_WIDTH] * ctx
    weights = prm[SHARED_BYTES]
    if prm[EXPERT_BYTES] > 0.0:
        weights += prm[EXPERT_BYTES] * (1.0 - (1.0 - prm[EXPERT_SHARE]) ** max(batch, 1.0))
    compute_s = flops / prm[FLOPS]
    memory_s = (weights + ctx * prm[KV_BYTES]) / prm[BW]
    kernel_s = max(compute_s / prm[MFU], memory_s / prm[MBU])
    wait_s = prm[PER_SEQ] * batch
    activity = min(1.0, (prm[CW] * compute_s + prm[MW] * memory_s) / kernel_s)
    energy = prm[DYN_W] * (activity * kernel_s + prm[OF] * prm[OVERHEAD] + prm[WF] * wait_s)
    return kernel_s + prm[OVERHEAD] + wait_s, energy, kernel_s + prm[OVERHEAD]


@_jit
def run_replica(
    s: np.ndarray,
    f: np.ndarray,
    prefill_energy: np.ndarray,
    prefill_busy: np.ndarray,
    chunks: np.ndarray,
    n_in: np.ndarray,
    steps: np.ndarray,
    ctx: np.ndarray,
    prm: np.ndarray,
    decode_weight: float,
) -> tuple[np.ndarray, ...]:
    """Simulate one replica. Prefill start ``s`` and first token ``f`` are given (FIFO).

    Returns per request: end, prefill energy, decode energy, event index of the first token
    and of the end; per event: time, cumulative dynamic energy, cumulative busy time,
    cumulative batch x time, and the decode step time of the segment after it (0 if none).
    """
    n = len(s)
    cap = 3 * n + 2
    ev_t = np.zeros(cap)
    ev_energy = np.zeros(cap)
    ev_busy = np.zeros(cap)
    ev_ib = np.zeros(cap)
    ev_tau = np.zeros(cap)
    end = np.zeros(n)
    e_prefill = np.zeros(n)
    e_decode = np.zeros(n)
    g_at_f = np.zeros(n)
    h_at_s = np.zeros(n)
    k_f = np.zeros(n, dtype=np.int64)
    k_e = np.zeros(n, dtype=np.int64)
    heap = [(np.inf, np.int64(-1))]
    heap.pop()
    t = 0.0
    phi = 0.0
    batch = 0.0
    context = 0.0
    g = 0.0  # cumulative energy given to each decoding sequence
    h = 0.0  # cumulative energy given to the prefilling request
    energy_cum = 0.0
    busy_cum = 0.0
    ib = 0.0
    i_s = 0
    i_f = 0
    k = 0
    while True:
        prefilling = i_f < i_s
        tau = 0.0
        step_e = 0.0
        step_busy = 0.0
        rate = 0.0
        if prefilling:
            p = f[i_f] - s[i_f]
            rate = chunks[i_f] / p
        elif batch > 0.5:
            tau, step_e, step_busy = decode_cost(batch, context, prm)
            rate = 1.0 / tau
        t_next = np.inf
        if prefilling:
            t_next = max(f[i_f], t)
        elif i_s < n:
            # FIFO: the next prompt starts once the previous one is done (max() absorbs the
            # rounding of s = f - prefill).
            t_next = max(s[i_s], t)
        if len(heap) > 0 and rate > 0.0:
            t_c = max(t + (heap[0][0] - phi) / rate, t)
            if t_c < t_next:
                t_next = t_c
        if t_next == np.inf:
            break
        dur = t_next - t
        ev_tau[k] = tau
        if prefilling:
            j = i_f
            p = f[j] - s[j]
            e_seg = prefill_energy[j] * dur / p
            busy_cum += prefill_busy[j] * dur / p
            work = n_in[j] + decode_weight * batch * chunks[j]
            g += e_seg * decode_weight * chunks[j] / work
            h += e_seg * n_in[j] / work
            energy_cum += e_seg
        elif batch > 0.5:
            e_seg = step_e * dur / tau
            busy_cum += step_busy * dur / tau
            g += e_seg / batch
            energy_cum += e_seg
        ib += batch * dur
        phi += rate * dur
        t = t_next
        k += 1
        # One event at t, in the order prefill start < first token < end for ties.
        if not prefilling and i_s < n and s[i_s] <= t:
            h_at_s[i_s] = h
            i_s += 1
        elif prefilling and f[i_f] <= t:
            j = i_f
            e_prefill[j] = h - h_at_s[j]
            k_f[j] = k
            if steps[j] > 0.0:
                heapq.heappush(heap, (phi + steps[j], np.int64(j)))
                g_at_f[j] = g
                batch += 1.0
                context += ctx[j]
            else:
                end[j] = t
                k_e[j] = k
            i_f += 1
        else:
            if len(heap) == 0:
                raise RuntimeError("replica event loop found no event to process")
            _, done = heapq.heappop(heap)
            end[done] = t
            k_e[done] = k
            e_decode[done] = g - g_at_f[done]
            batch -= 1.0
            context = max(context - ctx[done], 0.0) if batch > 0.5 else 0.0
        ev_t[k] = t
        ev_energy[k] = energy_cum
        ev_busy[k] = busy_cum
        ev_ib[k] = ib
    m = k + 1
    return (
        end, e_prefill, e_decode, k_f, k_e,
        ev_t[:m], ev_energy[:m], ev_busy[:m], ev_ib[:m], ev_tau[:m],
    )  # fmt: skip


def warn_if_slow(n_requests: int) -> None:
    """Log once per call site that a large simulation runs without numba."""
    if not HAVE_NUMBA and n_requests > 200_000:
        logger.warning(
            "numba is not installed: simulating %d requests in pure Python is slow; "
            "install 'wattledger[sim]' for the compiled event loop",
            n_requests,
        )
