"""Request arrivals: the Azure LLM inference traces replayed over days, and synthetic classes.

The Azure 2023 traces (Patel et al., Splitwise, ISCA 2024; CC-BY 4.0, see data/LICENSES.md)
hold one hour of production requests each: arrival time, context tokens, generated tokens.
Replaying them over days:

* The trace is one *period* of ``3600 / rate`` seconds: ``rate`` > 1 compresses its arrival
  times (more requests per second), < 1 stretches them.
* Period p carries ``f_p`` copies of the trace, ``f_p`` being the daily and weekly pattern
  (:func:`load_factor`, mean 1 over a week). Copy 0 keeps each row with probability
  ``min(f_p, 1)`` at its original offset; copy c >= 1 keeps each row with probability
  ``clip(f_p - c, 0, 1)``, shifted circularly by a random offset within the period. Every
  request is therefore a real trace row (tokens unchanged), and at ``f_p = 1`` the period is
  the trace itself.

Synthetic classes draw Poisson arrivals inside a daily window and lognormal token counts.
Everything is drawn from a ``numpy.random.Generator`` the caller seeds, so it is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
from numpy.typing import NDArray

from wattledger.collectors.simulate.config import DATA_DIR, SimulationSettings, SyntheticWorkload
from wattledger.errors import ConfigError

TRACES = {
    "conv": DATA_DIR / "AzureLLMInferenceTrace_conv.csv",
    "code": DATA_DIR / "AzureLLMInferenceTrace_code.csv",
}
TRACE_PERIOD_S = 3600.0
_DAY_S = 86400.0


@dataclass(frozen=True)
class Trace:
    """One trace: offsets from its first request, and token counts, in arrival order."""

    name: str
    offset_s: NDArray[np.float64]
    input_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]


@dataclass(frozen=True)
class Arrivals:
    """Requests of one workload class, sorted by arrival.

    Attributes:
        arrival_s: Seconds since the simulation start.
        input_tokens: Prompt (context) tokens.
        output_tokens: Generated tokens (at least 1).
        trace_row: Row of the trace the request replays, -1 for synthetic requests.
        copy: Which copy of the trace period it belongs to (0 = unshifted).
    """

    arrival_s: NDArray[np.float64]
    input_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]
    trace_row: NDArray[np.int64]
    copy: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.arrival_s)

    def take(self, idx: NDArray[np.int64] | NDArray[np.bool_]) -> Arrivals:
        """The subset ``idx`` (indices or a mask), still sorted."""
        return Arrivals(
            self.arrival_s[idx],
            self.input_tokens[idx],
            self.output_tokens[idx],
            self.trace_row[idx],
            self.copy[idx],
        )


def load_trace(name: str) -> Trace:
    """Load a packaged trace (``conv``, ``code``) or a CSV with the same three columns.

    Raises:
        ConfigError: unknown name, missing file or wrong columns.
    """
    path = TRACES.get(name) or Path(name)
    try:
        table = pacsv.read_csv(path)
    except FileNotFoundError as e:
        raise ConfigError(
            f"Trace '{name}' is neither a packaged trace nor an existing file.",
            hint=f"Use one of {', '.join(TRACES)} or a CSV path.",
        ) from e
    want = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}
    if not want <= set(table.column_names):
        raise ConfigError(
            f"Trace {path} lacks columns {sorted(want - set(table.column_names))}.",
            hint="Traces need TIMESTAMP, ContextTokens and GeneratedTokens (Azure format).",
        )
    ts = table["TIMESTAMP"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    return Trace(
        name=name,
        offset_s=(ts - ts[0]) / 1e9,
        input_tokens=np.maximum(table["ContextTokens"].to_numpy()[order].astype(np.int64), 1),
        output_tokens=np.maximum(table["GeneratedTokens"].to_numpy()[order].astype(np.int64), 1),
    )


def load_factor(t_unix_s: NDArray[np.float64], sim: SimulationSettings) -> NDArray[np.float64]:
    """Traffic relative to the weekly mean at Unix times ``t_unix_s`` (UTC).

    ``(1 + A cos(2 pi (hour - peak) / 24)) x w_day``, where w_day is 1 on weekdays and
    ``weekend_factor`` on Saturday and Sunday, scaled so that the weekly mean is 1.
    """
    hour = (t_unix_s % _DAY_S) / 3600.0
    daily = 1.0 + sim.diurnal_amplitude * np.cos(
        2 * np.pi * (hour - sim.diurnal_peak_hour_utc) / 24
    )
    weekday = ((t_unix_s // _DAY_S).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    w = np.where(weekday >= 5, sim.weekend_factor, 1.0)
    return daily * w * (7.0 / (5.0 + 2.0 * sim.weekend_factor))


def replay_trace(
    trace: Trace,
    *,
    start_unix_s: float,
    horizon_s: float,
    rate: float,
    sim: SimulationSettings,
    rng: np.random.Generator,
) -> Arrivals:
    """Replay ``trace`` from ``start_unix_s`` for ``horizon_s`` seconds (see module doc)."""
    period = TRACE_PERIOD_S / rate
    offsets = np.mod(trace.offset_s / rate, period)
    n_rows = len(offsets)
    n_periods = math.ceil(horizon_s / period)
    mids = start_unix_s + (np.arange(n_periods, dtype=np.float64) + 0.5) * period
    factors = load_factor(mids, sim)
    parts: list[tuple[NDArray[np.float64], NDArray[np.int64], int]] = []
    for p in range(n_periods):
        f = float(factors[p])
        for c in range(math.ceil(f) if f > 0 else 0):
            keep = np.flatnonzero(rng.random(n_rows) < min(f - c, 1.0))
            shift = 0.0 if c == 0 else float(rng.uniform(0.0, period))
            t = p * period + np.mod(offsets[keep] + shift, period)
            parts.append((t, keep, c))
    if not parts:
        return _empty()
    arrival = np.concatenate([t for t, _, _ in parts])
    rows = np.concatenate([k for _, k, _ in parts]).astype(np.int64)
    copies = np.concatenate([np.full(len(k), c, dtype=np.int64) for _, k, c in parts])
    order = np.argsort(arrival, kind="stable")
    arrivals = Arrivals(
        arrival[order], trace.input_tokens[rows[order]], trace.output_tokens[rows[order]],
        rows[order], copies[order],
    )  # fmt: skip
    return arrivals.take(arrivals.arrival_s < horizon_s)


def synthetic_arrivals(
    spec: SyntheticWorkload,
    *,
    start_unix_s: float,
    horizon_s: float,
    rate: float,
    rng: np.random.Generator,
) -> Arrivals:
    """Poisson arrivals at ``requests_per_hour x rate`` inside the daily active window."""
    lam = spec.requests_per_hour * rate / 3600.0
    lo, hi = spec.active_hours_utc
    window_s = ((hi - lo) % 24 or 24) * 3600.0
    n_days = math.ceil(horizon_s / _DAY_S) + 1
    day0 = math.floor(start_unix_s / _DAY_S) * _DAY_S
    counts = rng.poisson(lam * window_s, size=n_days)
    day = np.repeat(np.arange(n_days), counts)
    t_unix = day0 + day * _DAY_S + lo * 3600.0 + rng.uniform(0.0, window_s, size=len(day))
    t = np.sort(t_unix - start_unix_s)
    n = len(t)
    inp = _lognormal_tokens(rng, spec.input_tokens_median, spec.input_tokens_sigma, n)
    out = _lognormal_tokens(rng, spec.output_tokens_median, spec.output_tokens_sigma, n)
    arrivals = Arrivals(
        t,
        np.minimum(inp, spec.input_tokens_max),
        np.minimum(out, spec.output_tokens_max),
        np.full(n, -1, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
    )
    return arrivals.take((arrivals.arrival_s >= 0) & (arrivals.arrival_s < horizon_s))


def _lognormal_tokens(
    rng: np.random.Generator, median: float, sigma: float, n: int
) -> NDArray[np.int64]:
    return np.maximum(np.rint(median * np.exp(sigma * rng.standard_normal(n))), 1).astype(np.int64)


def _empty() -> Arrivals:
    f, i = np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
    return Arrivals(f, i, i, i, i)
