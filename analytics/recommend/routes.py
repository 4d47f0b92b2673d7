"""Routes and their evidence: cost, energy and latency with bootstrap confidence intervals.

A route is provider × hardware × model × quantization serving a workload. Cost per 1M tokens is
fully loaded (``cost_total_usd`` over input + output tokens); its interval comes from a block
bootstrap over hours (hours, not requests, are resampled because load varies by hour). Latency
p95s and their intervals come from a bootstrap over a deterministic request sample.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection

from wattledger.analytics.queries.routes import latency_samples, route_hours
from wattledger.analytics.settings import RecommendSettings
from wattledger.models.bulk import fetch_arrow

DAYS_PER_MONTH = 30.0
LATENCY_SAMPLE = 5000


@dataclass(frozen=True)
class RouteKey:
    """A route: where a workload's requests are served."""

    workload: str
    provider: str
    hardware_model: str
    llm_model: str
    quantization: str

    @property
    def label(self) -> str:
        """``provider/hardware/model[@quantization]``; ``hosted`` when there is no device."""
        base = f"{self.provider}/{self.hardware_model or 'hosted'}/{self.llm_model}"
        return f"{base}@{self.quantization}" if self.quantization else base

    @property
    def hosted(self) -> bool:
        """True for a hosted API (no device of ours)."""
        return not self.hardware_model


@dataclass
class Interval:
    """A point estimate with a confidence interval."""

    value: float
    low: float
    high: float


@dataclass
class RouteStats:
    """Evidence about one route over the lookback window."""

    key: RouteKey
    requests: int
    hours: int
    tokens: float
    output_tokens: float
    cost_usd: float
    energy_j: float
    modeled_j: float
    co2e_g: float
    unpriced_requests: int
    cost_per_mtok: Interval | None
    ttft_p95_s: Interval | None
    itl_p95_s: Interval | None
    quality: float | None
    tokens_per_month: float
    peak_output_tokens_per_s: float
    hour_costs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    hour_tokens: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def energy_per_token_j(self) -> float | None:
        """Fully-loaded joules per token."""
        return self.energy_j / self.tokens if self.tokens else None

    @property
    def co2e_per_token_g(self) -> float | None:
        """Grams CO2e per token."""
        return self.co2e_g / self.tokens if self.tokens else None


def rng_for(*parts: str) -> np.random.Generator:
    """A generator seeded from ``parts``, so the same data gives the same intervals."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def ratio_interval(
    num: np.ndarray, den: np.ndarray, rng: np.random.Generator, samples: int, confidence: float
) -> tuple[Interval, np.ndarray]:
    """Σnum/Σden with a block-bootstrap interval; also returns the bootstrap draws."""
    value = float(num.sum() / den.sum())
    idx = rng.integers(0, num.size, size=(samples, num.size))
    sums_d = den[idx].sum(axis=1)
    draws = np.where(sums_d > 0, num[idx].sum(axis=1) / np.where(sums_d > 0, sums_d, 1), value)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(value, float(low), float(high)), draws


def p95_interval(
    x: np.ndarray, rng: np.random.Generator, samples: int, confidence: float
) -> Interval | None:
    """p95 of ``x`` with a bootstrap interval (NaNs ignored)."""
    x = x[np.isfinite(x)]
    if x.size < 20:
        return None
    idx = rng.integers(0, x.size, size=(samples, x.size))
    draws = np.percentile(x[idx], 95, axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(np.percentile(x, 95)), float(low), float(high))


def _column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def load_routes(
    conn: Connection, settings: RecommendSettings, now: dt.datetime
) -> dict[RouteKey, RouteStats]:
    """Evidence for every route observed in the lookback window before ``now``."""
    start = now - dt.timedelta(days=settings.lookback_days)
    hours = fetch_arrow(conn, route_hours(start, now))
    lat = fetch_arrow(conn, latency_samples(start, now, LATENCY_SAMPLE))
    keys = ("workload", "provider", "hardware_model", "llm_model", "quantization")
    window_days = settings.lookback_days

    def key_of(t: pa.Table, i: int, cols: dict[str, list]) -> RouteKey:
        return RouteKey(*(cols[k][i] for k in keys))

    h_cols = {k: hours.column(k).to_pylist() for k in keys}
    groups: dict[RouteKey, list[int]] = {}
    for i in range(hours.num_rows):
        groups.setdefault(key_of(hours, i, h_cols), []).append(i)
    l_cols = {k: lat.column(k).to_pylist() for k in keys}
    lat_groups: dict[RouteKey, list[int]] = {}
    for i in range(lat.num_rows):
        lat_groups.setdefault(key_of(lat, i, l_cols), []).append(i)
    ttft_all, itl_all = _column(lat, "ttft_s"), _column(lat, "itl_s")
    quality_all = _column(lat, "quality_score")
    arrays = {
        name: _column(hours, name)
        for name in (
            "requests",
            "tokens",
            "output_tokens",
            "cost_usd",
            "energy_j",
            "modeled_j",
            "co2e_g",
            "unpriced_requests",
        )
    }
    out: dict[RouteKey, RouteStats] = {}
    for key, rows in groups.items():
        idx = np.array(rows)
        cost, tokens = arrays["cost_usd"][idx], arrays["tokens"][idx]
        rng = rng_for(key.label, key.workload)
        cost_iv = None
        if tokens.sum() > 0:
            cost_iv, _ = ratio_interval(
                cost * 1e6, tokens, rng, settings.bootstrap_samples, settings.confidence
            )
        li = np.array(lat_groups.get(key, []), dtype=np.int64)
        quality = quality_all[li] if li.size else np.zeros(0)
        quality = quality[np.isfinite(quality)]
        out[key] = RouteStats(
            key=key,
            requests=int(arrays["requests"][idx].sum()),
            hours=int(idx.size),
            tokens=float(tokens.sum()),
            output_tokens=float(arrays["output_tokens"][idx].sum()),
            cost_usd=float(cost.sum()),
            energy_j=float(arrays["energy_j"][idx].sum()),
            modeled_j=float(arrays["modeled_j"][idx].sum()),
            co2e_g=float(arrays["co2e_g"][idx].sum()),
            unpriced_requests=int(arrays["unpriced_requests"][idx].sum()),
            cost_per_mtok=cost_iv,
            ttft_p95_s=p95_interval(
                ttft_all[li], rng, settings.bootstrap_samples, settings.confidence
            )
            if li.size
            else None,
            itl_p95_s=p95_interval(
                itl_all[li], rng, settings.bootstrap_samples, settings.confidence
            )
            if li.size
            else None,
            quality=float(quality.mean()) if quality.size else None,
            tokens_per_month=float(tokens.sum()) / window_days * DAYS_PER_MONTH,
            peak_output_tokens_per_s=float(arrays["output_tokens"][idx].max() / 3600.0),
            hour_costs=cost,
            hour_tokens=tokens,
        )
    return out
