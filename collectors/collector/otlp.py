"""Sample cycles -> OpenTelemetry ``MetricsData``, following the hardware semantic conventions.

Every sample is exported, not just the last value per export interval: each reading becomes
one data point per instrument carrying the reading's own UTC time, so a 0.5 s sampling
interval survives a 5 s export interval. The data model is what the OTel SDK would produce for
the same instruments (observable counter -> cumulative monotonic Sum, gauge -> Gauge,
up-down counter -> cumulative non-monotonic Sum), encoded by the official OTLP exporter.

| instrument | OTLP type | unit | value |
| --- | --- | --- | --- |
| ``hw.energy`` | Sum, monotonic, cumulative | J | wrap-corrected joules since the series start |
| ``hw.power`` | Gauge | W | |
| ``hw.gpu.utilization`` | Gauge | 1 | 0..1, ``hw.gpu.task=general`` |
| ``hw.gpu.memory.usage`` / ``.limit`` | Sum, non-monotonic, cumulative | By | |
| ``hw.temperature`` | Gauge | Cel | |
| ``wattledger.engine.*`` | Sum, monotonic, cumulative | {token}, {request} | engine counters |
| ``gen_ai.server.time_to_first_token`` / ``time_per_output_token`` | Histogram | s | |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from wattledger import __version__
from wattledger.collectors import semconv as sc
from wattledger.collectors.collector.buffer import SampleCycle
from wattledger.collectors.sources.base import DeviceInfo
from wattledger.collectors.sources.prometheus import EngineStats, HistogramSnapshot

SERVICE_NAME = "wattledger-collector"
CUMULATIVE = AggregationTemporality.CUMULATIVE
#: Downward-API environment variables read for Kubernetes resource attributes, in order.
K8S_ENV = {
    sc.K8S_POD_NAME: ("K8S_POD_NAME", "POD_NAME"),
    sc.K8S_NODE_NAME: ("K8S_NODE_NAME", "NODE_NAME"),
    sc.K8S_NAMESPACE_NAME: ("K8S_NAMESPACE_NAME", "POD_NAMESPACE"),
}
_SCOPE = InstrumentationScope(sc.SCOPE_NAME, __version__, sc.SCHEMA_URL)


def build_resource(host: str, site: str | None, environ: Mapping[str, str]) -> Resource:
    """The collector's resource: service, host, Kubernetes pod/node/namespace, site."""
    attrs: dict[str, Any] = {sc.SERVICE_NAME: SERVICE_NAME, sc.HOST_NAME: host}
    for key, names in K8S_ENV.items():
        value = next((environ[n] for n in names if environ.get(n)), None)
        if value:
            attrs[key] = value
    if site:
        attrs[sc.WL_SITE] = site
    return Resource.create(attrs, schema_url=sc.SCHEMA_URL)


def device_attributes(info: DeviceInfo, method: str) -> dict[str, Any]:
    """Point attributes identifying a device and how its energy was obtained."""
    attrs: dict[str, Any] = {
        sc.HW_ID: info.device_id,
        sc.HW_TYPE: info.hw_type,
        sc.HW_VENDOR: info.vendor,
        sc.HW_MODEL: info.model,
        sc.HW_NAME: info.name,
        sc.WL_POWER_SOURCE: info.source,
        sc.WL_ENERGY_METHOD: method,
    }
    if info.index is not None:
        attrs[sc.WL_DEVICE_INDEX] = info.index
    if info.parent_id:
        attrs[sc.HW_PARENT] = info.parent_id
    if info.tdp_w is not None:
        attrs[sc.WL_TDP_W] = float(info.tdp_w)
    if info.idle_power_w is not None:
        attrs[sc.WL_IDLE_POWER_W] = float(info.idle_power_w)
    return attrs


class _Points:
    """Data points grouped by instrument, in first-seen order."""

    def __init__(self) -> None:
        self.number: dict[str, list[NumberDataPoint]] = {}
        self.hist: dict[str, list[HistogramDataPoint]] = {}

    def add(self, name: str, attrs: dict[str, Any], start: int, t: int, value: float) -> None:
        self.number.setdefault(name, []).append(NumberDataPoint(attrs, start, t, value))

    def add_hist(
        self, name: str, attrs: dict[str, Any], start: int, t: int, h: HistogramSnapshot
    ) -> None:
        point = HistogramDataPoint(
            attrs,
            start,
            t,
            h.count,
            h.sum,
            list(h.bucket_counts),
            list(h.explicit_bounds),
            None,  # type: ignore[arg-type]  # min/max are optional in OTLP; unknown from a scrape
            None,  # type: ignore[arg-type]
        )
        self.hist.setdefault(name, []).append(point)


#: (name, unit, description, kind) where kind is "counter", "gauge" or "updown".
INSTRUMENTS: dict[str, tuple[str, str, str]] = {
    sc.HW_ENERGY: ("J", "Energy consumed by the component.", "counter"),
    sc.HW_POWER: ("W", "Instantaneous power consumed by the component.", "gauge"),
    sc.HW_GPU_UTILIZATION: ("1", "Fraction of time the GPU was busy.", "gauge"),
    sc.HW_GPU_MEMORY_USAGE: ("By", "GPU memory used.", "updown"),
    sc.HW_GPU_MEMORY_LIMIT: ("By", "Size of the GPU memory.", "updown"),
    sc.HW_TEMPERATURE: ("Cel", "Temperature of the component.", "gauge"),
    sc.WL_ENGINE_PROMPT_TOKENS: ("{token}", "Prompt tokens processed by the engine.", "counter"),
    sc.WL_ENGINE_GENERATION_TOKENS: ("{token}", "Tokens generated by the engine.", "counter"),
    sc.WL_ENGINE_REQUESTS: ("{request}", "Requests the engine finished.", "counter"),
    sc.WL_COLLECTOR_DROPPED: ("{cycle}", "Sample cycles dropped while ingest was down.", "counter"),
}
HISTOGRAMS: dict[str, tuple[str, str]] = {
    sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: ("s", "Time to generate the first token."),
    sc.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN: ("s", "Time per output token after the first."),
}


def _engine_attrs(stats: EngineStats) -> dict[str, Any]:
    attrs: dict[str, Any] = {sc.WL_ENGINE: stats.engine}
    if stats.model:
        attrs[sc.GEN_AI_REQUEST_MODEL] = stats.model
    host, _, port = stats.endpoint.rpartition(":")
    if host and port.isdigit():
        attrs[sc.SERVER_ADDRESS], attrs[sc.SERVER_PORT] = host, int(port)
    elif stats.endpoint:
        attrs[sc.SERVER_ADDRESS] = stats.endpoint
    return attrs


def build_metrics_data(
    cycles: Sequence[SampleCycle],
    resource: Resource,
    start_times: Mapping[str, int],
    *,
    dropped: tuple[int, int, int] | None = None,
) -> MetricsData:
    """One ``MetricsData`` holding every reading of ``cycles`` as its own data point.

    Args:
        cycles: Sample cycles, oldest first.
        resource: The collector's resource.
        start_times: Device id -> Unix ns when this collector started its energy series.
        dropped: ``(start_ns, time_ns, count)`` of the dropped-cycles counter, if any.
    """
    points = _Points()
    for cycle in cycles:
        for r in cycle.readings:
            info = cycle.devices.get(r.device_id)
            if info is None:
                continue
            attrs = device_attributes(info, r.method)
            t = cycle.time_unix_nano(r)
            start = start_times.get(r.device_id, t)
            if r.energy_j is not None:
                points.add(sc.HW_ENERGY, attrs, start, t, float(r.energy_j))
            if r.power_w is not None:
                points.add(sc.HW_POWER, attrs, start, t, float(r.power_w))
            if r.utilization_ratio is not None:
                util_attrs = {**attrs, sc.HW_GPU_TASK: "general"}
                points.add(sc.HW_GPU_UTILIZATION, util_attrs, start, t, float(r.utilization_ratio))
            if r.memory_used_bytes is not None:
                points.add(sc.HW_GPU_MEMORY_USAGE, attrs, start, t, int(r.memory_used_bytes))
            if r.memory_total_bytes is not None:
                points.add(sc.HW_GPU_MEMORY_LIMIT, attrs, start, t, int(r.memory_total_bytes))
            if r.temperature_c is not None:
                points.add(sc.HW_TEMPERATURE, attrs, start, t, float(r.temperature_c))
        for e in cycle.engines:
            attrs = _engine_attrs(e)
            t, start = e.monotonic_ns + cycle.wall_offset_ns, e.start_time_unix_nano
            for name, value in (
                (sc.WL_ENGINE_PROMPT_TOKENS, e.prompt_tokens),
                (sc.WL_ENGINE_GENERATION_TOKENS, e.generation_tokens),
                (sc.WL_ENGINE_REQUESTS, e.requests),
            ):
                if value is not None:
                    points.add(name, attrs, start, t, float(value))
            if e.ttft is not None:
                points.add_hist(sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, attrs, start, t, e.ttft)
            if e.itl is not None:
                points.add_hist(sc.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, attrs, start, t, e.itl)
    if dropped is not None:
        start, t, count = dropped
        points.add(sc.WL_COLLECTOR_DROPPED, {}, start, t, int(count))
    metrics: list[Metric] = []
    for name, data_points in points.number.items():
        unit, description, kind = INSTRUMENTS[name]
        data: Sum | Gauge
        if kind == "gauge":
            data = Gauge(data_points)
        else:
            data = Sum(data_points, CUMULATIVE, is_monotonic=kind == "counter")
        metrics.append(Metric(name, description, unit, data))
    for name, hist_points in points.hist.items():
        unit, description = HISTOGRAMS[name]
        metrics.append(Metric(name, description, unit, Histogram(hist_points, CUMULATIVE)))
    scope = ScopeMetrics(_SCOPE, metrics, sc.SCHEMA_URL)
    return MetricsData([ResourceMetrics(resource, [scope], sc.SCHEMA_URL)])


def count_points(data: MetricsData) -> int:
    """How many data points ``data`` holds."""
    return sum(
        len(m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )


__all__ = [
    "INSTRUMENTS",
    "K8S_ENV",
    "SERVICE_NAME",
    "build_metrics_data",
    "build_resource",
    "count_points",
    "device_attributes",
]
