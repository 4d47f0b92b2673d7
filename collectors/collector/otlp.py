"""Sample cycles -> OTLP metrics, following the hardware semantic conventions.

Every sample is exported, not just the last value per export interval: each reading becomes
one data point per instrument carrying the reading's own UTC time, so a 0.5 s sampling
interval survives a 5 s export interval. The data model is what the OTel SDK would produce for
the same instruments (observable counter -> cumulative monotonic Sum, gauge -> Gauge,
up-down counter -> cumulative non-monotonic Sum). :class:`OtlpEncoder` builds either the SDK's
``MetricsData`` or, equal to the official encoding of it but with each device's attributes
encoded once, the ``ExportMetricsServiceRequest`` the exporter sends.

| instrument | OTLP type | unit | value |
| --- | --- | --- | --- |
| ``hw.energy`` | Sum, monotonic, cumulative | J | wrap-corrected joules since the series start |
| ``hw.power`` | Gauge | W | |
| ``hw.gpu.utilization`` | Gauge | 1 | 0..1, ``hw.gpu.task=general`` |
| ``hw.gpu.memory.usage`` / ``.limit`` | Sum, non-monotonic, cumulative | By | |
| ``hw.temperature`` | Gauge | Cel | |
| ``wattledger.engine.*`` | Sum, monotonic, cumulative | {token}, {request} | engine counters |
| ``wattledger.engine.requests.running`` / ``.waiting`` | Sum, non-monotonic | {request} | |
| ``wattledger.engine.kv_cache.usage`` | Gauge | 1 | 0..1 |
| ``gen_ai.server.time_to_first_token`` / ``time_per_output_token`` | Histogram | s | |
| ``wattledger.engine.inter_token_latency``, ``.request.*_time`` | Histogram | s | |
| ``wattledger.k8s.pod.energy`` / ``.power`` | Sum, monotonic / Gauge | J / W | Kepler |

Engine points carry ``gen_ai.provider.name`` (the engine) and ``gen_ai.operation.name``, which
the GenAI conventions require on ``gen_ai.server.*`` metrics. A reading's own ``attributes``
(the pod a scraped GPU serves) are added to its device's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1 import common_pb2 as pb_common
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb_metrics
from opentelemetry.proto.resource.v1 import resource_pb2 as pb_resource
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
from wattledger.collectors.sources.base import DeviceInfo, WorkloadEnergy
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
    if info.uncertainty_ratio is not None:
        attrs[sc.WL_UNCERTAINTY_RATIO] = float(info.uncertainty_ratio)
    return attrs


def _reading_attributes(
    info: DeviceInfo, method: str, extra: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    return {**device_attributes(info, method), **dict(extra)}


def _workload_attrs(w: WorkloadEnergy) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.WL_ENERGY_EXPORTER: w.exporter,
        sc.WL_POWER_SOURCE: "prometheus",
        sc.WL_ENERGY_METHOD: "modeled",
        sc.WL_ENERGY_ZONE: w.zone,
        sc.HW_TYPE: w.hw_type,
    }
    for key, value in (
        (sc.K8S_NAMESPACE_NAME, w.namespace),
        (sc.K8S_POD_NAME, w.pod_name),
        (sc.K8S_POD_UID, w.pod_uid),
        (sc.K8S_NODE_NAME, w.node),
        (sc.WL_WORKLOAD_STATE, w.state),
    ):
        if value:
            attrs[key] = value
    return attrs


#: name -> (unit, description, kind) where kind is "counter", "gauge" or "updown".
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
    sc.WL_ENGINE_REQUESTS_RUNNING: ("{request}", "Requests in the running batch.", "updown"),
    sc.WL_ENGINE_REQUESTS_WAITING: ("{request}", "Requests waiting to be scheduled.", "updown"),
    sc.WL_ENGINE_KV_CACHE_USAGE: ("1", "Share of KV-cache blocks in use.", "gauge"),
    sc.WL_K8S_POD_ENERGY: ("J", "Energy the exporter attributes to the pod.", "counter"),
    sc.WL_K8S_POD_POWER: ("W", "Power the exporter attributes to the pod.", "gauge"),
    sc.WL_COLLECTOR_DROPPED: ("{cycle}", "Sample cycles dropped while ingest was down.", "counter"),
}
HISTOGRAMS: dict[str, tuple[str, str]] = {
    sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: ("s", "Time to generate the first token."),
    sc.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN: ("s", "Time per output token after the first."),
    sc.WL_ENGINE_INTER_TOKEN_LATENCY: ("s", "Time between two output tokens, per token."),
    sc.WL_ENGINE_PREFILL_TIME: ("s", "Time a finished request spent in prefill."),
    sc.WL_ENGINE_DECODE_TIME: ("s", "Time a finished request spent in decode."),
    sc.WL_ENGINE_QUEUE_TIME: ("s", "Time a finished request waited in the queue."),
}

#: (attributes, their encoded KeyValues, a serialized NumberDataPoint holding only them)
_Attrs = tuple[dict[str, Any], list[pb_common.KeyValue], bytes]


def _with_task(attrs: dict[str, Any]) -> dict[str, Any]:
    return {**attrs, sc.HW_GPU_TASK: "general"}


def _engine_attrs(stats: EngineStats) -> dict[str, Any]:
    # gen_ai.server.* require provider and operation (GenAI semantic conventions); the engine
    # is the provider of a self-hosted model, as the SDK's provider="vllm" says on spans.
    attrs: dict[str, Any] = {
        sc.GEN_AI_PROVIDER_NAME: stats.engine,
        sc.GEN_AI_OPERATION_NAME: sc.ENGINE_OPERATION_NAME,
        sc.WL_ENGINE: stats.engine,
    }
    if stats.model:
        attrs[sc.GEN_AI_REQUEST_MODEL] = stats.model
    host, _, port = stats.endpoint.rpartition(":")
    if host and port.isdigit():
        attrs[sc.SERVER_ADDRESS], attrs[sc.SERVER_PORT] = host, int(port)
    elif stats.endpoint:
        attrs[sc.SERVER_ADDRESS] = stats.endpoint
    return attrs


def _pb_value(value: Any) -> pb_common.AnyValue:
    # Same mapping as the official encoder for the scalar types we emit.
    if isinstance(value, bool):
        return pb_common.AnyValue(bool_value=value)
    if isinstance(value, str):
        return pb_common.AnyValue(string_value=value)
    if isinstance(value, int):
        return pb_common.AnyValue(int_value=value)
    return pb_common.AnyValue(double_value=float(value))


def _pb_attrs(attrs: Mapping[str, Any]) -> list[pb_common.KeyValue]:
    return [pb_common.KeyValue(key=k, value=_pb_value(v)) for k, v in attrs.items()]


class _Points:
    """Data points grouped by instrument, in first-seen order."""

    def __init__(self) -> None:
        self.number: dict[str, list[tuple[_Attrs, int, int, float | int]]] = {}
        self.hist: dict[str, list[tuple[_Attrs, int, int, HistogramSnapshot]]] = {}

    def add(self, name: str, attrs: _Attrs, start: int, t: int, value: float | int) -> None:
        self.number.setdefault(name, []).append((attrs, start, t, value))

    def add_hist(self, name: str, attrs: _Attrs, start: int, t: int, h: HistogramSnapshot) -> None:
        self.hist.setdefault(name, []).append((attrs, start, t, h))


class OtlpEncoder:
    """Turns sample cycles into OTLP, caching each device's encoded attributes.

    :meth:`metrics_data` builds the SDK's ``MetricsData`` (what ``OTLPMetricExporter.export``
    takes); :meth:`request` builds the identical ``ExportMetricsServiceRequest`` directly, with
    every device's attributes encoded once instead of once per data point, which is what keeps
    the collector under 1 % of a core at 10 Hz x 8 GPUs. Tests check both give equal messages.

    Args:
        resource: The collector's resource.
    """

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self._resource_pb = pb_resource.Resource(attributes=_pb_attrs(resource.attributes))
        self._cache: dict[tuple[Any, ...], _Attrs] = {}

    def _cached(
        self, key: tuple[Any, ...], make: Callable[..., dict[str, Any]], *args: Any
    ) -> _Attrs:
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            attrs = make(*args)
            kvs = _pb_attrs(attrs)
            template = pb_metrics.NumberDataPoint(attributes=kvs).SerializeToString()
            hit = self._cache[key] = (attrs, kvs, template)
        return hit

    def collect(
        self,
        cycles: Sequence[SampleCycle],
        start_times: Mapping[str, int],
        dropped: tuple[int, int, int] | None = None,
    ) -> _Points:
        """Every reading of ``cycles`` as a data point per instrument."""
        points = _Points()
        for cycle in cycles:
            for r in cycle.readings:
                info = cycle.devices.get(r.device_id)
                if info is None:
                    continue
                attrs = self._cached(
                    (info, r.method, r.attributes),
                    _reading_attributes,
                    info,
                    r.method,
                    r.attributes,
                )
                t = cycle.time_unix_nano(r)
                start = start_times.get(r.device_id, t)
                if r.energy_j is not None:
                    points.add(sc.HW_ENERGY, attrs, start, t, float(r.energy_j))
                if r.power_w is not None:
                    points.add(sc.HW_POWER, attrs, start, t, float(r.power_w))
                if r.utilization_ratio is not None:
                    key = (info, r.method, r.attributes, sc.HW_GPU_TASK)
                    util = self._cached(key, _with_task, attrs[0])
                    points.add(sc.HW_GPU_UTILIZATION, util, start, t, float(r.utilization_ratio))
                if r.memory_used_bytes is not None:
                    points.add(sc.HW_GPU_MEMORY_USAGE, attrs, start, t, int(r.memory_used_bytes))
                if r.memory_total_bytes is not None:
                    points.add(sc.HW_GPU_MEMORY_LIMIT, attrs, start, t, int(r.memory_total_bytes))
                if r.temperature_c is not None:
                    points.add(sc.HW_TEMPERATURE, attrs, start, t, float(r.temperature_c))
            for e in cycle.engines:
                key = ("engine", e.engine, e.model, e.endpoint)
                eattrs = self._cached(key, _engine_attrs, e)
                t, start = e.monotonic_ns + cycle.wall_offset_ns, e.start_time_unix_nano
                for name, value in (
                    (sc.WL_ENGINE_PROMPT_TOKENS, e.prompt_tokens),
                    (sc.WL_ENGINE_GENERATION_TOKENS, e.generation_tokens),
                    (sc.WL_ENGINE_REQUESTS, e.requests),
                    (sc.WL_ENGINE_REQUESTS_RUNNING, e.requests_running),
                    (sc.WL_ENGINE_REQUESTS_WAITING, e.requests_waiting),
                    (sc.WL_ENGINE_KV_CACHE_USAGE, e.kv_cache_usage_ratio),
                ):
                    if value is not None:
                        points.add(name, eattrs, start, t, float(value))
                # The per-request series is what the convention means; per-token ITL is the
                # fallback for engines (older vLLM) that have no per-request one.
                tpot = e.tpot if e.tpot is not None else e.itl
                for hname, hist in (
                    (sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, e.ttft),
                    (sc.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, tpot),
                    (sc.WL_ENGINE_INTER_TOKEN_LATENCY, e.itl),
                    (sc.WL_ENGINE_PREFILL_TIME, e.prefill_time),
                    (sc.WL_ENGINE_DECODE_TIME, e.decode_time),
                    (sc.WL_ENGINE_QUEUE_TIME, e.queue_time),
                ):
                    if hist is not None:
                        points.add_hist(hname, eattrs, start, t, hist)
            for w in cycle.workloads:
                wkey = (
                    "workload",
                    w.exporter,
                    w.namespace,
                    w.pod_name,
                    w.pod_uid,
                    w.zone,
                    w.state,
                    w.node,
                )
                wattrs = self._cached(wkey, _workload_attrs, w)
                t = w.monotonic_ns + cycle.wall_offset_ns
                points.add(
                    sc.WL_K8S_POD_ENERGY, wattrs, w.start_time_unix_nano, t, float(w.energy_j)
                )
                if w.power_w is not None:
                    points.add(
                        sc.WL_K8S_POD_POWER, wattrs, w.start_time_unix_nano, t, float(w.power_w)
                    )
        if dropped is not None:
            start, t, count = dropped
            points.add(sc.WL_COLLECTOR_DROPPED, self._cached(("dropped",), dict), start, t, count)
        return points

    def metrics_data(
        self,
        cycles: Sequence[SampleCycle],
        start_times: Mapping[str, int],
        dropped: tuple[int, int, int] | None = None,
    ) -> MetricsData:
        """The SDK ``MetricsData`` for ``cycles`` (input of ``OTLPMetricExporter.export``)."""
        points = self.collect(cycles, start_times, dropped)
        metrics: list[Metric] = []
        for name, rows in points.number.items():
            unit, description, kind = INSTRUMENTS[name]
            dps = [NumberDataPoint(a[0], start, t, v) for a, start, t, v in rows]
            data: Sum | Gauge
            if kind == "gauge":
                data = Gauge(dps)
            else:
                data = Sum(dps, CUMULATIVE, is_monotonic=kind == "counter")
            metrics.append(Metric(name, description, unit, data))
        for name, hrows in points.hist.items():
            unit, description = HISTOGRAMS[name]
            hdps = [
                HistogramDataPoint(
                    a[0],
                    start,
                    t,
                    h.count,
                    h.sum,
                    list(h.bucket_counts),
                    list(h.explicit_bounds),
                    None,  # type: ignore[arg-type]  # min/max are optional; a scrape lacks them
                    None,  # type: ignore[arg-type]
                )
                for a, start, t, h in hrows
            ]
            metrics.append(Metric(name, description, unit, Histogram(hdps, CUMULATIVE)))
        scope = ScopeMetrics(_SCOPE, metrics, sc.SCHEMA_URL)
        return MetricsData([ResourceMetrics(self.resource, [scope], sc.SCHEMA_URL)])

    def request(
        self,
        cycles: Sequence[SampleCycle],
        start_times: Mapping[str, int],
        dropped: tuple[int, int, int] | None = None,
    ) -> ExportMetricsServiceRequest:
        """The OTLP request for ``cycles``, equal to ``encode_metrics(self.metrics_data(...))``."""
        points = self.collect(cycles, start_times, dropped)
        request = ExportMetricsServiceRequest()
        rm = request.resource_metrics.add(schema_url=self.resource.schema_url)
        rm.resource.CopyFrom(self._resource_pb)
        sm = rm.scope_metrics.add(schema_url=_SCOPE.schema_url)
        sm.scope.name, sm.scope.version = _SCOPE.name, _SCOPE.version
        for name, rows in points.number.items():
            unit, description, kind = INSTRUMENTS[name]
            metric = sm.metrics.add(name=name, description=description, unit=unit)
            if kind == "gauge":
                container = metric.gauge.data_points
            else:
                metric.sum.aggregation_temporality = CUMULATIVE
                metric.sum.is_monotonic = kind == "counter"
                container = metric.sum.data_points
            for (_, _, template), start, t, value in rows:
                dp = container.add()
                dp.MergeFromString(template)  # parsing cached bytes beats copying KeyValues
                dp.time_unix_nano = t
                if kind != "gauge":
                    dp.start_time_unix_nano = start
                if isinstance(value, int):
                    dp.as_int = value
                else:
                    dp.as_double = value
        for name, hrows in points.hist.items():
            unit, description = HISTOGRAMS[name]
            metric = sm.metrics.add(name=name, description=description, unit=unit)
            metric.histogram.aggregation_temporality = CUMULATIVE
            for (_, kvs, _), start, t, h in hrows:
                dp = metric.histogram.data_points.add(
                    time_unix_nano=t,
                    start_time_unix_nano=start,
                    count=h.count,
                    sum=h.sum,
                    bucket_counts=h.bucket_counts,
                    explicit_bounds=h.explicit_bounds,
                )
                dp.attributes.extend(kvs)
        return request


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
    return OtlpEncoder(resource).metrics_data(cycles, start_times, dropped)


def count_points(request: ExportMetricsServiceRequest) -> int:
    """How many data points an OTLP request holds."""
    return sum(
        len(getattr(m, m.WhichOneof("data")).data_points)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )


__all__ = [
    "INSTRUMENTS",
    "OtlpEncoder",
    "K8S_ENV",
    "SERVICE_NAME",
    "build_metrics_data",
    "build_resource",
    "count_points",
    "device_attributes",
]
