"""Server-side numbers from Prometheus endpoints: vLLM, TGI, dcgm-exporter and Kepler.

One :class:`PrometheusSource` scrapes one URL and understands whatever it finds there, parsed
with ``prometheus_client``'s text parser:

* **dcgm-exporter** (``DCGM_FI_*``, :mod:`~wattledger.collectors.sources.dcgm`): GPU energy
  and power by UUID, with the pod each GPU is assigned to in Kubernetes mode. dcgm-exporter
  refreshes every 30 s by default, so scraping it faster gains nothing (``min_interval_s``).
* **Kepler** (``kepler_*``, :mod:`~wattledger.collectors.sources.kepler`): the node's RAPL
  package and DRAM energy as devices, and each pod's attributed share as
  :class:`~wattledger.collectors.sources.base.WorkloadEnergy`.
* **vLLM** (``vllm:*``) and **TGI** (``tgi_*``): token counters, finished requests, the TTFT,
  per-request time-per-output-token, inter-token-latency, prefill, decode and queue-time
  histograms, running and waiting requests and KV-cache usage, per served model, as
  :class:`EngineStats`. Each name is read with its older spelling as a fallback
  (``vllm:request_time_per_output_token_seconds`` before ``vllm:inter_token_latency_seconds``
  and ``vllm:time_per_output_token_seconds``; ``vllm:kv_cache_usage_perc`` before
  ``vllm:gpu_cache_usage_perc``). TGI has no token counters or TTFT histogram: its token totals
  are the ``_sum`` of the input-length and generated-tokens histograms, and its model id comes
  from ``GET /info``.

The engines restart, and their counters with them. Each engine series keeps the wall-clock
time it started (``start_time_unix_nano``); a counter that goes down starts a new series,
which is how OTLP cumulative data says "reset" (the OTel Collector's Prometheus receiver
does the same).

A line the parser refuses is skipped (counted in ``skipped_lines`` and logged once) rather
than costing the whole scrape; NaN and infinite sample values are ignored.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from wattledger.collectors.sources.base import (
    DeviceInfo,
    EnergyReading,
    OnceLogger,
    WorkloadEnergy,
)
from wattledger.collectors.sources.counters import DEFAULT_MAX_GAP_S, DEFAULT_MAX_POWER_W
from wattledger.collectors.sources.dcgm import DcgmReader
from wattledger.collectors.sources.kepler import KeplerReader

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A cumulative histogram as OTLP wants it: per-bucket (not cumulative) counts.

    Attributes:
        explicit_bounds: Upper bounds, seconds, ascending (the ``+Inf`` bucket is implicit).
        bucket_counts: Observations per bucket, ``len(explicit_bounds) + 1`` of them.
        sum: Sum of observations, seconds.
        count: Number of observations.
    """

    explicit_bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    sum: float
    count: int


@dataclass(frozen=True, slots=True)
class EngineStats:
    """What a serving engine reports about one model, cumulative since the series started.

    Attributes:
        engine: ``vllm`` or ``tgi``.
        model: The served model name (vLLM ``model_name`` label, TGI ``/info``), or None.
        endpoint: ``host:port`` of the scraped server (``server.address``).
        prompt_tokens: Prompt (prefill) tokens processed.
        generation_tokens: Tokens generated.
        requests: Requests finished successfully.
        ttft: Time-to-first-token histogram (vLLM only).
        itl: Inter-token latency histogram, one observation per token (vLLM).
        start_time_unix_nano: When this series started (first seen, or last reset).
        monotonic_ns: When scraped.
        tpot: Time per output token, one observation per finished request (vLLM
            ``request_time_per_output_token``, TGI ``mean_time_per_token_duration``).
        prefill_time: Seconds each finished request spent in prefill (vLLM).
        decode_time: Seconds each finished request spent in decode (vLLM).
        queue_time: Seconds each finished request waited in the queue.
        requests_running: Requests in the running batch at the scrape.
        requests_waiting: Requests waiting to be scheduled at the scrape.
        kv_cache_usage_ratio: Share of KV-cache blocks in use, 0..1.
    """

    engine: str
    model: str | None
    endpoint: str
    prompt_tokens: float | None
    generation_tokens: float | None
    requests: float | None
    ttft: HistogramSnapshot | None
    itl: HistogramSnapshot | None
    start_time_unix_nano: int
    monotonic_ns: int
    tpot: HistogramSnapshot | None = None
    prefill_time: HistogramSnapshot | None = None
    decode_time: HistogramSnapshot | None = None
    queue_time: HistogramSnapshot | None = None
    requests_running: float | None = None
    requests_waiting: float | None = None
    kv_cache_usage_ratio: float | None = None


_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError)


def parse_exposition(text: str) -> tuple[dict[str, Metric], list[str]]:
    """The metric families of a scrape by name, and the lines the parser refused.

    A line ``prometheus_client`` cannot parse makes it give up on the whole text; one bad line
    (a truncated scrape, a buggy exporter) must not cost every other reading, so on failure
    each line is tried alone and the ones refused are left out and returned.

    Raises:
        ValueError: the remaining lines still do not parse together.
    """
    try:
        return {f.name: f for f in text_string_to_metric_families(text)}, []
    except _PARSE_ERRORS:
        pass
    good, bad = [], []
    for line in text.split("\n"):
        try:
            list(text_string_to_metric_families(line + "\n"))
        except _PARSE_ERRORS:
            bad.append(line)
        else:
            good.append(line)
    try:
        families = {f.name: f for f in text_string_to_metric_families("\n".join(good) + "\n")}
    except _PARSE_ERRORS as e:
        raise ValueError(f"the exposition does not parse: {e}") from e
    return families, bad


def histogram_from_family(
    family: Metric, match: dict[str, str] | None = None
) -> HistogramSnapshot | None:
    """Sum a Prometheus histogram family's series (optionally those whose labels ``match``)."""
    buckets: dict[float, float] = {}
    total, count = 0.0, 0.0
    for s in family.samples:
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        if match and any(labels.get(k) != v for k, v in match.items()):
            continue
        if not math.isfinite(s.value):
            continue  # NaN or infinite counts say nothing usable
        if s.name.endswith("_bucket"):
            try:
                le = float(s.labels["le"])
            except (KeyError, ValueError):
                continue  # a bucket without a usable bound
            if math.isnan(le):
                continue
            buckets[le] = buckets.get(le, 0.0) + s.value
        elif s.name.endswith("_sum"):
            total += s.value
        elif s.name.endswith("_count"):
            count += s.value
    if not buckets:
        return None
    bounds = sorted(b for b in buckets if b != float("inf"))
    cumulative = [buckets[b] for b in bounds] + [buckets.get(float("inf"), count)]
    per_bucket = [int(cumulative[0])] + [
        max(int(cumulative[i] - cumulative[i - 1]), 0) for i in range(1, len(cumulative))
    ]
    return HistogramSnapshot(tuple(bounds), tuple(per_bucket), total, int(cumulative[-1]))


def _counter_value(family: Metric | None, match: dict[str, str] | None = None) -> float | None:
    if family is None:
        return None
    values = [
        s.value
        for s in family.samples
        if not s.name.endswith("_created")
        and math.isfinite(s.value)
        and not (match and any(s.labels.get(k) != v for k, v in match.items()))
    ]
    return sum(values) if values else None


def _gauge_value(family: Metric | None, match: dict[str, str] | None = None) -> float | None:
    """Sum of a gauge's series (per engine for a served model), None when absent."""
    return _counter_value(family, match)


class PrometheusSource:
    """Scrape one Prometheus endpoint: DCGM and Kepler readings, vLLM/TGI engine stats.

    Args:
        url: The metrics URL, e.g. ``http://localhost:8000/metrics``.
        timeout_s: HTTP timeout per scrape.
        min_interval_s: The collector reads this source at most this often.
        clock_ns: Monotonic clock.
        wall_ns: Wall clock (series start times).
        fetch: ``url -> text`` override (tests, other transports); default HTTP GET.
        max_power_w: Plausibility bound for DCGM energy-counter deltas.
        max_gap_s: Longest power-integration gap.
    """

    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        min_interval_s: float = 5.0,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
        fetch: Callable[[str], str] | None = None,
        max_power_w: float = DEFAULT_MAX_POWER_W,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        self.url = url
        self.min_interval_s = min_interval_s
        parts = urlsplit(url)
        self.endpoint = parts.netloc
        self._base = f"{parts.scheme}://{parts.netloc}"
        self._clock_ns = clock_ns
        self._wall_ns = wall_ns
        self._client = httpx.Client(timeout=timeout_s) if fetch is None else None
        self._fetch = fetch or self._http_get
        self._max_power_w = max_power_w
        self._max_gap_s = max_gap_s
        self._dcgm = DcgmReader(url, self.name, max_power_w, max_gap_s)
        self._kepler = KeplerReader(
            url, self.name, parts.hostname or self.endpoint, max_power_w, self._start
        )
        self._engine: list[EngineStats] = []
        self._workloads: list[WorkloadEnergy] = []
        self._series_start: dict[tuple[str | None, ...], tuple[int, float]] = {}
        self._tgi_model: str | None = None
        self._tgi_model_tried = False
        self._once = OnceLogger(logger)
        self._down = False
        #: Lines skipped so far because the Prometheus text parser refused them.
        self.skipped_lines = 0

    def _http_get(self, url: str) -> str:
        assert self._client is not None
        response = self._client.get(url)
        response.raise_for_status()
        return response.text

    def devices(self) -> Sequence[DeviceInfo]:
        """GPUs (dcgm-exporter) and node zones (Kepler) seen so far; the list grows."""
        return [*self._dcgm.devices(), *self._kepler.devices()]

    def engine_stats(self) -> list[EngineStats]:
        """vLLM/TGI stats from the latest scrape."""
        return list(self._engine)

    def workload_energy(self) -> list[WorkloadEnergy]:
        """Per-pod energy Kepler attributed, from the latest scrape."""
        return list(self._workloads)

    def read(self) -> list[EnergyReading]:
        """Scrape once; an unreachable or malformed endpoint logs once and yields nothing."""
        try:
            text = self._fetch(self.url)
            t_ns = self._clock_ns()
            families, bad = parse_exposition(text)
        except (httpx.HTTPError, OSError, ValueError) as e:
            self._engine, self._workloads = [], []
            if not self._down:
                self._down = True
                logger.warning(
                    "Cannot scrape %s (%s); will keep trying. Is the server up and the URL "
                    "its /metrics path?",
                    self.url,
                    e,
                )
            return []
        if self._down:
            self._down = False
            logger.info("Scraping %s works again.", self.url)
        if bad:
            self.skipped_lines += len(bad)
            self._once.log(
                logging.WARNING,
                ("bad_lines",),
                "Scrape %s: skipped %d line(s) that are not Prometheus text format, first: "
                "%.120r (reported once; the count is in skipped_lines). Is the exporter "
                "up to date?",
                self.url,
                len(bad),
                bad[0],
            )
        self._engine = self._engines(families, t_ns)
        readings = self._dcgm.read(families, t_ns)
        if any(name.startswith("kepler_") for name in families):
            node, self._workloads = self._kepler.read(families, t_ns)
            readings += node
        return readings

    # --- vLLM and TGI ------------------------------------------------------------------------
    def _start(self, key: tuple[str | None, ...], total: float) -> int:
        """The series' start time; a total lower than last time means the engine restarted."""
        start, last = self._series_start.get(key, (self._wall_ns(), total))
        if total < last:
            start = self._wall_ns()
            logger.info(
                "Engine series %s restarted (counter went from %s to %s).", key, last, total
            )
        self._series_start[key] = (start, total)
        return start

    def _engines(self, families: dict[str, Metric], t_ns: int) -> list[EngineStats]:
        out: list[EngineStats] = []
        get = families.get
        if any(name.startswith("vllm:") for name in families):
            itl = get("vllm:inter_token_latency_seconds") or get(
                "vllm:time_per_output_token_seconds"
            )
            kv = get("vllm:kv_cache_usage_perc") or get("vllm:gpu_cache_usage_perc")
            for model in _label_values(families.values(), "vllm:", "model_name"):
                match = {"model_name": model} if model is not None else None
                out.append(
                    self._engine_stats(
                        "vllm",
                        model,
                        t_ns,
                        prompt_tokens=_counter_value(get("vllm:prompt_tokens"), match),
                        generation_tokens=_counter_value(get("vllm:generation_tokens"), match),
                        requests=_counter_value(get("vllm:request_success"), match),
                        ttft=_hist(get("vllm:time_to_first_token_seconds"), match),
                        itl=_hist(itl, match),
                        tpot=_hist(get("vllm:request_time_per_output_token_seconds"), match),
                        prefill_time=_hist(get("vllm:request_prefill_time_seconds"), match),
                        decode_time=_hist(get("vllm:request_decode_time_seconds"), match),
                        queue_time=_hist(get("vllm:request_queue_time_seconds"), match),
                        requests_running=_gauge_value(get("vllm:num_requests_running"), match),
                        requests_waiting=_gauge_value(get("vllm:num_requests_waiting"), match),
                        kv_cache_usage_ratio=_kv_usage(kv, match),
                    )
                )
        if any(name.startswith("tgi_") for name in families):
            if not self._tgi_model_tried:
                self._tgi_model_tried = True
                self._tgi_model = self._tgi_info_model()
            generated = _hist(get("tgi_request_generated_tokens"))
            inputs = _hist(get("tgi_request_input_length"))
            out.append(
                self._engine_stats(
                    "tgi",
                    self._tgi_model,
                    t_ns,
                    prompt_tokens=inputs.sum if inputs else None,
                    generation_tokens=generated.sum if generated else None,
                    requests=_counter_value(get("tgi_request_success")),
                    ttft=None,
                    itl=None,
                    tpot=_hist(get("tgi_request_mean_time_per_token_duration")),
                    queue_time=_hist(get("tgi_request_queue_duration")),
                    requests_running=_gauge_value(get("tgi_batch_current_size")),
                    requests_waiting=_gauge_value(get("tgi_queue_size")),
                )
            )
        return out

    def _engine_stats(
        self,
        engine: str,
        model: str | None,
        t_ns: int,
        *,
        prompt_tokens: float | None,
        generation_tokens: float | None,
        requests: float | None,
        ttft: HistogramSnapshot | None,
        itl: HistogramSnapshot | None,
        tpot: HistogramSnapshot | None = None,
        prefill_time: HistogramSnapshot | None = None,
        decode_time: HistogramSnapshot | None = None,
        queue_time: HistogramSnapshot | None = None,
        requests_running: float | None = None,
        requests_waiting: float | None = None,
        kv_cache_usage_ratio: float | None = None,
    ) -> EngineStats:
        marker = sum(v for v in (prompt_tokens, generation_tokens, requests) if v is not None)
        return EngineStats(
            engine=engine,
            model=model,
            endpoint=self.endpoint,
            prompt_tokens=prompt_tokens,
            generation_tokens=generation_tokens,
            requests=requests,
            ttft=ttft,
            itl=itl,
            start_time_unix_nano=self._start((engine, model), marker),
            monotonic_ns=t_ns,
            tpot=tpot,
            prefill_time=prefill_time,
            decode_time=decode_time,
            queue_time=queue_time,
            requests_running=requests_running,
            requests_waiting=requests_waiting,
            kv_cache_usage_ratio=kv_cache_usage_ratio,
        )

    def _tgi_info_model(self) -> str | None:
        try:
            info = json.loads(self._fetch(self._base + "/info"))
        except (httpx.HTTPError, OSError, ValueError) as e:
            logger.info("TGI at %s: no model id from /info (%s).", self._base, e)
            return None
        model = info.get("model_id") if isinstance(info, dict) else None
        return str(model) if model else None

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()


def _kv_usage(family: Metric | None, match: dict[str, str] | None) -> float | None:
    """KV-cache usage 0..1: the mean over a model's engines (data-parallel ranks), clamped."""
    if family is None:
        return None
    values = [
        s.value
        for s in family.samples
        if math.isfinite(s.value)
        and not (match and any(s.labels.get(k) != v for k, v in match.items()))
    ]
    return min(max(sum(values) / len(values), 0.0), 1.0) if values else None


def _hist(family: Metric | None, match: dict[str, str] | None = None) -> HistogramSnapshot | None:
    return histogram_from_family(family, match) if family is not None else None


def _label_values(families: Iterable[Metric], prefix: str, label: str) -> list[str | None]:
    seen: dict[str | None, None] = {}
    for family in families:
        if family.name.startswith(prefix):
            for s in family.samples:
                seen.setdefault(s.labels.get(label))
    models = [m for m in seen if m is not None]
    return list(models) if models else [None]


__all__ = [
    "EngineStats",
    "HistogramSnapshot",
    "PrometheusSource",
    "histogram_from_family",
    "parse_exposition",
]
