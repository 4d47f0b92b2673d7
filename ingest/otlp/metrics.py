"""OTLP metric export requests (protobuf or JSON) → point columns for :mod:`..mapping.samples`.

One row per data point: ``metric`` (name), ``time_unix_nano``, ``value`` (``asDouble`` or
``asInt``) and the attributes in :data:`~wattledger.ingest.mapping.samples.SAMPLE_ATTRIBUTE_KEYS`,
the point's value winning over the resource's. Gauges and sums carry values; points of other
kinds (histograms, summaries…) get a row without a value, so a power metric sent as the wrong
kind is refused with a message while other metrics are simply ignored. Points flagged
``NO_RECORDED_VALUE`` are skipped. Metric volume is small (a few points per device per
second), so a plain loop is fast enough here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from wattledger.ingest.mapping import samples as sm
from wattledger.ingest.otlp import values as av
from wattledger.ingest.otlp.values import DecodeError

WANTED = sm.SAMPLE_ATTRIBUTE_KEYS
_NO_RECORDED_VALUE = 1
_NUMBER_KINDS = ("gauge", "sum")
_JSON_KINDS = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponentialHistogram": "exponential_histogram",
    "summary": "summary",
}


@dataclass(frozen=True)
class DecodedPoints:
    """Point columns of one export request, and how many points it held."""

    columns: dict[str, Sequence[Any]]
    count: int


class _Points:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        time_ns: int | None,
        value: Any,
        attrs: dict[str, Any],
        resource: dict[str, Any],
    ) -> None:
        row = dict(resource)
        row.update((k, v) for k, v in attrs.items() if k in WANTED and v is not None)
        row[sm.METRIC] = name
        row[sm.TIME] = time_ns
        row[sm.VALUE] = value
        self.rows.append(row)

    def decoded(self) -> DecodedPoints:
        keys: dict[str, None] = {sm.METRIC: None}
        for r in self.rows:
            keys.update(dict.fromkeys(r))
        return DecodedPoints({k: [r.get(k) for r in self.rows] for k in keys}, len(self.rows))


def _wanted(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k in WANTED}


def decode_protobuf(body: bytes) -> DecodedPoints:
    """Point columns of a protobuf ``ExportMetricsServiceRequest``.

    Raises:
        DecodeError: the body is not one.
    """
    try:
        request = ExportMetricsServiceRequest.FromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError) as e:
        raise DecodeError(f"body is not a protobuf ExportMetricsServiceRequest: {e}") from e
    points = _Points()
    for rm in request.resource_metrics:
        resource = _wanted({kv.key: av.from_proto(kv.value) for kv in rm.resource.attributes})
        for sm_ in rm.scope_metrics:
            for metric in sm_.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                for dp in data.data_points:
                    if dp.flags & _NO_RECORDED_VALUE:
                        continue
                    attrs = {kv.key: av.from_proto(kv.value) for kv in dp.attributes}
                    value = None
                    if kind in _NUMBER_KINDS:
                        which = dp.WhichOneof("value")
                        value = getattr(dp, which) if which else None
                    points.add(metric.name, dp.time_unix_nano, value, attrs, resource)
    return points.decoded()


def _json_value(dp: dict[str, Any]) -> Any:
    if "asDouble" in dp:
        v = dp["asDouble"]
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            return v  # left for the mapping to refuse with a message
        try:
            return float(v)
        except ValueError:
            return v
    if "asInt" in dp:
        return av.json_uint(dp["asInt"]) if not isinstance(dp["asInt"], bool) else dp["asInt"]
    return None


def decode_json(body: bytes) -> DecodedPoints:
    """Point columns of an OTLP/JSON ``ExportMetricsServiceRequest``.

    Raises:
        DecodeError: the body is not JSON or not shaped like one.
    """
    try:
        doc = json.loads(body)
        if b"\\u" in body:  # a lone surrogate escape ("\\ud800") is valid JSON, not text
            json.dumps(doc, ensure_ascii=False).encode()
    except (UnicodeError, json.JSONDecodeError, RecursionError) as e:
        raise DecodeError(f"body is not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise DecodeError("body must be a JSON object with resourceMetrics")
    points = _Points()
    for rm in av.json_list(doc, "resourceMetrics"):
        res_obj = rm.get("resource") if isinstance(rm, dict) else None
        resource = _wanted(av.json_attributes(res_obj or {}))
        for sm_ in av.json_list(rm, "scopeMetrics"):
            for metric in av.json_list(sm_, "metrics"):
                if not isinstance(metric, dict):
                    raise DecodeError("each metric must be a JSON object")
                name = metric.get("name")
                if not isinstance(name, str):
                    raise DecodeError("metric name must be a string")
                for json_kind, kind in _JSON_KINDS.items():
                    if not isinstance(metric.get(json_kind), dict):
                        continue
                    for dp in av.json_list(metric[json_kind], "dataPoints"):
                        if not isinstance(dp, dict):
                            raise DecodeError("each data point must be a JSON object")
                        if (av.json_uint(dp.get("flags")) or 0) & _NO_RECORDED_VALUE:
                            continue
                        value = _json_value(dp) if kind in _NUMBER_KINDS else None
                        points.add(
                            name,
                            av.json_uint(dp.get("timeUnixNano")),
                            value,
                            av.json_attributes(dp),
                            resource,
                        )
    return points.decoded()


def decode(body: bytes, fmt: str) -> DecodedPoints:
    """Point columns of a body in ``fmt`` (``protobuf`` or ``json``)."""
    return decode_protobuf(body) if fmt == "protobuf" else decode_json(body)


__all__ = ["DecodedPoints", "decode", "decode_json", "decode_protobuf"]
