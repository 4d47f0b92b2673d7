"""Device traces whose true per-request energy is known by construction, to check attribution.

Each :class:`TruthCase` is one device over a few minutes: an idle draw with a little noise, and
requests that each add their own power on top of it while they run: nothing during a hidden
wait before prefill (the device is idle or busy with others), 350–500 W during prefill,
150–250 W during decode. A request's true energy is the integral of what it added. The device is
then sampled as real producers sample it:

- ``counter``: the hardware energy counter only (exact integral of the true power),
- ``gauge``: instantaneous power readings only, and the energy the project's NVML source
  integrates from them (``method=power``),
- ``both``: the counter and the gauge,

at 10, 1 or 0.2 Hz, on a route the catalog knows (``NVIDIA H100 80GB HBM3`` serving
``llama-3.1-8b``, where the roofline's prefill estimate is a prior) or one it does not. Half the
requests' prefills last several times the roofline's estimate, half last less of it after a
queue wait; requests run one at a time with idle gaps (``sequential``) or overlap (``overlap``).

:func:`send` exports traces with the official OpenTelemetry exporters (spans and metrics over
OTLP/HTTP, the documented attribute names); :func:`score` compares what analytics stored with
the truth. ``tests/energy`` and ``bench/energy_matrix.py`` use both.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wattledger.collectors import semconv as sc

RATES_HZ = (10.0, 1.0, 0.2)
MODES = ("counter", "gauge", "both")
ROUTES = ("catalog", "unknown")
LAYOUTS = ("sequential", "overlap")
#: The catalog route: the exact string NVML reports for an H100 SXM, and a catalog model.
CATALOG_HARDWARE, CATALOG_MODEL = "NVIDIA H100 80GB HBM3", "llama-3.1-8b"
UNKNOWN_HARDWARE, UNKNOWN_MODEL = "Acme Tensor X9", "acme-chat-7b"
#: Fine time step of the true power, seconds.
STEP_S = 0.005


@dataclass(frozen=True)
class TruthCase:
    """One device trace's shape."""

    rate_hz: float
    mode: str
    route: str
    layout: str
    seed: int = 0
    duration_s: float = 480.0
    requests: int = 30

    @property
    def name(self) -> str:
        return f"{self.mode}-{self.rate_hz:g}hz-{self.route}-{self.layout}"


@dataclass
class TruthTrace:
    """A generated trace: requests with their true energy, and what the device reported."""

    case: TruthCase
    device_id: str
    hardware_model: str
    llm_model: str
    t0_s: float
    idle_w: float
    start_s: np.ndarray
    first_token_s: np.ndarray
    end_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    true_j: np.ndarray
    sample_t_s: np.ndarray
    power_w: np.ndarray | None
    counter_j: np.ndarray | None
    method: str
    true_total_j: float = 0.0
    prefill_start_s: np.ndarray | None = None
    prefill_w: np.ndarray | None = None
    decode_w: np.ndarray | None = None
    span_ids: list[str] = field(default_factory=list)


def matrix(seed: int = 0, **overrides: Any) -> list[TruthCase]:
    """Every rate × mode × route × layout case."""
    return [
        TruthCase(rate, mode, route, layout, seed=seed + i, **overrides)
        for i, (rate, mode, route, layout) in enumerate(
            itertools.product(RATES_HZ, MODES, ROUTES, LAYOUTS)
        )
    ]


def _prefill_estimate(route: str, tokens: np.ndarray) -> np.ndarray:
    if route == "catalog":
        from wattledger.analytics.weights import prefill_seconds

        est = prefill_seconds(CATALOG_HARDWARE, CATALOG_MODEL, None)
        if est is not None:
            return est(tokens)
    return tokens / 40_000.0  # an unknown route's "roofline" for generating only


def generate(case: TruthCase, t0_s: float, index: int = 0) -> TruthTrace:
    """Build one trace starting at ``t0_s`` (epoch seconds)."""
    rng = np.random.default_rng(case.seed * 7919 + index)
    n = case.requests
    idle_w = float(rng.uniform(55, 90))
    inp = rng.integers(1_000, 16_000, n).astype(np.float64)
    out = rng.integers(40, 400, n).astype(np.float64)
    est = _prefill_estimate(case.route, inp)
    long_prefill = rng.random(n) < 0.5
    prefill_s = np.where(long_prefill, est * rng.uniform(3, 8, n), est * rng.uniform(0.3, 0.9, n))
    prefill_s = np.maximum(prefill_s, 0.01)
    wait_s = np.where(long_prefill, 0.0, rng.uniform(0.2, 2.0, n))
    decode_s = out * rng.uniform(0.015, 0.04, n)
    busy_s = wait_s + prefill_s + decode_s
    if case.layout == "sequential":
        gaps = rng.uniform(1.0, 6.0, n)
        start = 20.0 + np.concatenate(([0.0], np.cumsum(busy_s[:-1] + gaps[:-1])))
    else:  # Poisson arrivals at about three requests in flight
        mean_gap = float(busy_s.mean()) / 3.0
        start = 20.0 + np.cumsum(rng.exponential(mean_gap, n))
    duration = max(case.duration_s, float((start + busy_s).max()) + 30.0)
    prefill_w = rng.uniform(350, 500, n)
    decode_w = rng.uniform(150, 250, n)
    p_start = start + wait_s
    first = p_start + prefill_s
    end = first + decode_s

    grid = np.arange(0.0, duration + STEP_S / 2, STEP_S)
    noise = np.repeat(rng.normal(0.0, 1.5, grid.size // 40 + 1), 40)[: grid.size]
    power = idle_w + noise
    true_j = np.zeros(n)
    for i in range(n):
        for a, b, w in ((p_start[i], first[i], prefill_w[i]), (first[i], end[i], decode_w[i])):
            # Exact energy of a rectangle of power on the piecewise-linear fine grid.
            lo, hi = np.searchsorted(grid, a), np.searchsorted(grid, b)
            power[lo:hi] += w
            true_j[i] += w * STEP_S * (hi - lo)
    # Cumulative energy: left Riemann sums on the fine grid (what the rectangles above count).
    cum = np.concatenate(([0.0], np.cumsum(power[:-1] * STEP_S)))
    period = 1.0 / case.rate_hz
    offset = float(rng.uniform(0, period))
    t_s = np.arange(offset, duration, period)
    idx = np.minimum(np.searchsorted(grid, t_s), grid.size - 1)
    t_s = grid[idx]
    counter = cum[idx]
    gauge = power[idx]
    if case.mode == "counter":
        power_w, counter_j, method = None, counter, "counter"
    elif case.mode == "gauge":
        trapezoid = np.concatenate(
            ([0.0], np.cumsum(0.5 * (gauge[1:] + gauge[:-1]) * np.diff(t_s)))
        )
        power_w, counter_j, method = gauge, trapezoid, "power"
    else:
        power_w, counter_j, method = gauge, counter, "counter"
    route_hw = CATALOG_HARDWARE if case.route == "catalog" else UNKNOWN_HARDWARE
    route_model = CATALOG_MODEL if case.route == "catalog" else UNKNOWN_MODEL
    return TruthTrace(
        case=case,
        device_id=f"GPU-{index:08x}-truth-{case.name}",
        hardware_model=route_hw,
        llm_model=route_model,
        t0_s=t0_s,
        idle_w=idle_w,
        start_s=t0_s + start,
        first_token_s=t0_s + first,
        end_s=t0_s + end,
        input_tokens=inp,
        output_tokens=out,
        true_j=true_j,
        sample_t_s=t0_s + t_s,
        power_w=power_w,
        counter_j=counter_j,
        method=method,
        true_total_j=float(cum[idx[-1]] - cum[idx[0]]),
        prefill_start_s=t0_s + p_start,
        prefill_w=prefill_w,
        decode_w=decode_w,
    )


def generate_all(cases: Sequence[TruthCase], start: dt.datetime) -> list[TruthTrace]:
    """One trace per case, all starting at ``start`` (each on its own device)."""
    return [generate(c, start.timestamp(), i) for i, c in enumerate(cases)]


# -- export over OTLP -------------------------------------------------------------------------


def send(
    traces: Iterable[TruthTrace],
    endpoint: str,
    api_key: str,
    batch: int = 2_000,
    hosted_at: Sequence[float] = (),
) -> list[str]:
    """Export every trace's spans and samples with the official OTLP/HTTP exporters.

    Sets each trace's ``span_ids`` (hex) in request order. ``hosted_at`` adds one hosted-API
    request (Groq, no device) starting at each of those epoch seconds; their span ids are
    returned.
    """
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SpanExportResult

    from wattledger.collectors.collector.buffer import SampleCycle
    from wattledger.collectors.collector.otlp import OtlpEncoder
    from wattledger.collectors.sources.base import DeviceInfo, EnergyReading

    headers = {"Authorization": f"Bearer {api_key}"}
    spans_out = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers=headers, timeout=60)
    metrics_out = OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", headers=headers, timeout=60)
    resource = Resource.create({"service.name": "wattledger-collector", "host.name": "truth-node"})
    encoder = OtlpEncoder(resource)
    hosted_ids: list[str] = []
    try:
        if hosted_at:
            hosted = _hosted_spans(hosted_at)
            hosted_ids = [format(s.context.span_id, "016x") for s in hosted]
            if spans_out.export(hosted) != SpanExportResult.SUCCESS:
                raise RuntimeError("hosted span export failed")
        for trace in traces:
            spans = _spans(trace)
            trace.span_ids = [format(s.context.span_id, "016x") for s in spans]
            for i in range(0, len(spans), batch):
                if spans_out.export(spans[i : i + batch]) != SpanExportResult.SUCCESS:
                    raise RuntimeError(f"span export failed for {trace.device_id}")
            info = DeviceInfo(
                device_id=trace.device_id,
                source="nvml",
                hw_type="gpu",
                vendor="nvidia" if trace.case.route == "catalog" else "acme",
                model=trace.hardware_model,
                name="gpu0",
                index=0,
                tdp_w=700.0 if trace.case.route == "catalog" else None,
            )
            cycles = [
                SampleCycle(
                    wall_offset_ns=0,
                    readings=(
                        EnergyReading(
                            device_id=trace.device_id,
                            energy_j=None if trace.counter_j is None else float(trace.counter_j[k]),
                            power_w=None if trace.power_w is None else float(trace.power_w[k]),
                            monotonic_ns=int(round(t * 1e9)),
                            method=trace.method,  # type: ignore[arg-type]
                        ),
                    ),
                    devices={trace.device_id: info},
                )
                for k, t in enumerate(trace.sample_t_s)
            ]
            first_ns = {trace.device_id: int(round(trace.sample_t_s[0] * 1e9))}
            for i in range(0, len(cycles), batch):
                data = encoder.metrics_data(cycles[i : i + batch], first_ns)
                if metrics_out.export(data) != MetricExportResult.SUCCESS:
                    raise RuntimeError(f"metric export failed for {trace.device_id}")
    finally:
        spans_out.shutdown()
        metrics_out.shutdown()
    return hosted_ids


def _tracer(keep: list[Any]) -> tuple[Any, Any]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Keep(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            keep.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(
        resource=Resource.create({"service.name": "truth-chat", "host.name": "truth-node"})
    )
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    return provider, provider.get_tracer("wattledger")


def _hosted_spans(starts: Sequence[float]) -> list[Any]:
    keep: list[Any] = []
    provider, tracer = _tracer(keep)
    for t in starts:
        start_ns = int(round(t * 1e9))
        span = tracer.start_span(
            "chat llama-3.1-8b-instant",
            start_time=start_ns,
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "groq",
                sc.GEN_AI_REQUEST_MODEL: "llama-3.1-8b-instant",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 900,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 150,
                sc.WL_TTFT_S: 0.2,
            },
        )
        span.end(end_time=start_ns + 1_500_000_000)
    provider.shutdown()
    return keep


def _spans(trace: TruthTrace) -> list[Any]:
    keep: list[Any] = []
    provider, tracer = _tracer(keep)
    for i in range(trace.start_s.size):
        start_ns = int(round(trace.start_s[i] * 1e9))
        ttft = float(trace.first_token_s[i] - trace.start_s[i])
        span = tracer.start_span(
            f"chat {trace.llm_model}",
            start_time=start_ns,
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "vllm",
                sc.GEN_AI_REQUEST_MODEL: trace.llm_model,
                sc.GEN_AI_USAGE_INPUT_TOKENS: int(trace.input_tokens[i]),
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: int(trace.output_tokens[i]),
                sc.WL_TTFT_S: ttft,
                sc.WL_DEVICE_ID: trace.device_id,
            },
        )
        span.end(end_time=int(round(trace.end_s[i] * 1e9)))
    provider.shutdown()
    return keep


# -- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """How attribution did on a group of traces."""

    requests: int
    median_error: float
    p90_error: float
    max_error: float
    total_ratio: float
    contained: float
    point_zero: int
    not_measured: int
    conservation_j: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def stored(engine: Any, traces: Sequence[TruthTrace]) -> dict[str, dict[str, Any]]:
    """``request_costs`` rows of the traces' requests, by span id."""
    import sqlalchemy as sa

    from wattledger.models import RequestCost

    ids = [s for t in traces for s in t.span_ids]
    got: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 1_000):
            q = sa.select(RequestCost).where(RequestCost.span_id.in_(ids[i : i + 1_000]))
            got.update({r["span_id"]: dict(r) for r in conn.execute(q).mappings()})
    return got


def device_ledger(engine: Any, traces: Sequence[TruthTrace]) -> dict[str, tuple[float, float]]:
    """(measured, attributed + idle) per device from ``device_energy_hourly``."""
    import sqlalchemy as sa

    from wattledger.models import DeviceEnergyHourly as H

    q = (
        sa.select(H.device_id, sa.func.sum(H.measured_j), sa.func.sum(H.attributed_j + H.idle_j))
        .where(H.device_id.in_([t.device_id for t in traces]))
        .group_by(H.device_id)
    )
    with engine.connect() as conn:
        return {d: (float(m), float(a)) for d, m, a in conn.execute(q)}


def score(
    traces: Sequence[TruthTrace],
    rows: dict[str, dict[str, Any]],
    ledger: dict[str, tuple[float, float]],
) -> Score:
    """Per-request error, totals, interval containment and conservation over ``traces``."""
    truth, got, low, high, src = [], [], [], [], []
    for t in traces:
        for i, span in enumerate(t.span_ids):
            r = rows.get(span, {})
            truth.append(t.true_j[i])
            got.append(np.nan if r.get("energy_j") is None else r["energy_j"])
            low.append(np.nan if r.get("energy_j_low") is None else r["energy_j_low"])
            high.append(np.nan if r.get("energy_j_high") is None else r["energy_j_high"])
            src.append(r.get("energy_source"))
    tr, gt, lo, hi = (np.asarray(x, dtype=np.float64) for x in (truth, got, low, high))
    err = np.abs(np.nan_to_num(gt, nan=0.0) - tr) / np.maximum(tr, 1e-9)
    tol = 1e-6 * np.maximum(tr, 1.0)
    inside = (lo - tol <= tr) & (tr <= hi + tol)
    conservation = max(
        (abs(m - a) for d, (m, a) in ledger.items() if d in {t.device_id for t in traces}),
        default=0.0,
    )
    return Score(
        requests=int(tr.size),
        median_error=float(np.median(err)),
        p90_error=float(np.quantile(err, 0.9)),
        max_error=float(err.max()),
        total_ratio=float(np.nansum(gt) / tr.sum()),
        contained=float(np.mean(inside)),
        point_zero=int(np.count_nonzero((tr > 1.0) & ~(hi > 0))),
        not_measured=sum(s not in ("counter", "power") for s in src),
        conservation_j=float(conservation),
    )


#: The issue's acceptance bars per group (median, p90, totals within, containment).
def bars(mode: str, rate_hz: float) -> dict[str, float] | None:
    """Targets for a group; None where only containment and no-point-zero apply."""
    if mode in ("counter", "both"):
        return {"median_error": 0.02, "p90_error": 0.10, "total": 0.01}
    if rate_hz >= 1.0:
        return {"median_error": 0.10, "total": 0.02}
    return None
