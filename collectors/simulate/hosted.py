"""Hosted API routes (Groq, Cerebras, an OpenAI-compatible API): latency without a device.

A hosted provider's hardware is invisible, so its requests carry no device and no energy.
Their timing follows the distributions in ``data/hosted.toml``:

* time to first token = lognormal(``ttft_median_s``, ``ttft_sigma``) +
  input_tokens / ``prefill_tokens_per_s``;
* the request then streams at lognormal(``output_tokens_per_s_median``,
  ``output_tokens_per_s_sigma``) tokens per second;
* within a request the gaps between tokens are lognormal with spread ``ITL_SIGMA`` around
  that rate, which gives the p50, p95 and expected maximum reported on the span;
* a share ``error_rate`` of requests fails (HTTP 429 or 500) before the first token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wattledger.catalog.specs import HostedModel, HostedProvider
from wattledger.collectors.simulate.workload import Arrivals

#: Spread (lognormal sigma) of token gaps within one hosted stream; an assumption.
ITL_SIGMA = 0.5
_Z95 = 1.6448536269514722


@dataclass(frozen=True)
class HostedRun:
    """Result of one hosted route; per-request arrays in arrival order, NaN = not reported."""

    arrival_s: NDArray[np.float64]
    first_token_s: NDArray[np.float64]
    end_s: NDArray[np.float64]
    output_tokens: NDArray[np.int64]
    itl_mean_s: NDArray[np.float64]
    itl_p50_s: NDArray[np.float64]
    itl_p95_s: NDArray[np.float64]
    itl_max_s: NDArray[np.float64]
    itl_count: NDArray[np.int64]
    error_type: NDArray[np.object_]

    @property
    def failed(self) -> NDArray[np.bool_]:
        """Whether each request failed."""
        return self.error_type != None  # noqa: E711 - elementwise on an object array


def simulate_hosted(
    provider: HostedProvider, model: HostedModel, arrivals: Arrivals, rng: np.random.Generator
) -> HostedRun:
    """Draw the timing of every request sent to a hosted route."""
    n = len(arrivals)
    a = arrivals.arrival_s
    ttft = model.ttft_median_s.value * np.exp(model.ttft_sigma.value * rng.standard_normal(n))
    ttft = ttft + arrivals.input_tokens / model.prefill_tokens_per_s.value
    tps = model.output_tokens_per_s_median.value * np.exp(
        model.output_tokens_per_s_sigma.value * rng.standard_normal(n)
    )
    failed = rng.random(n) < provider.error_rate.value
    kind = np.where(rng.random(n) < 0.7, "429", "500")
    gaps = (arrivals.output_tokens - 1).astype(np.float64)
    mean = 1.0 / tps
    median = mean * np.exp(-(ITL_SIGMA**2) / 2.0)
    expected_max_z = np.sqrt(2.0 * np.log(np.maximum(gaps, 2.0)))
    ok_gap = (~failed) & (gaps > 0)
    nan = np.where(ok_gap, 1.0, np.nan)
    out = np.where(failed, 0, arrivals.output_tokens).astype(np.int64)
    first = a + ttft
    return HostedRun(
        arrival_s=a,
        first_token_s=np.where(failed, np.nan, first),
        end_s=np.where(failed, first, first + gaps * mean),
        output_tokens=out,
        itl_mean_s=mean * nan,
        itl_p50_s=median * nan,
        itl_p95_s=median * np.exp(_Z95 * ITL_SIGMA) * nan,
        itl_max_s=np.maximum(median * np.exp(expected_max_z * ITL_SIGMA), mean) * nan,
        itl_count=np.where(ok_gap, gaps, 0).astype(np.int64),
        error_type=_errors(failed, kind),
    )


def _errors(failed: NDArray[np.bool_], kind: NDArray[np.str_]) -> NDArray[np.object_]:
    out = np.empty(len(failed), dtype=object)
    out[failed] = kind[failed]
    return out
