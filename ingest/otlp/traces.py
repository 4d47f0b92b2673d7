"""OTLP trace export requests (protobuf or JSON) → span columns for :mod:`..mapping.requests`.

Protobuf bodies take the vectorised path in :mod:`._fast_traces` and fall back to the
reference decoder here (the official ``opentelemetry-proto`` classes, one span at a time) when
a body is not in the canonical shape the fast path assumes; both give the same columns. JSON
bodies follow the OTLP/JSON rules: lowerCamelCase keys, hex trace/span ids (not base64),
64-bit integers as strings or numbers, unknown fields ignored.

Columns: ``trace_id``/``span_id`` (lower-case hex), ``start_time_unix_nano``,
``end_time_unix_nano``, ``status_code``, ``resource.service.name``, ``resource.host.name``,
``scope.name``, ``first_chunk_time_unix_nano`` and every attribute in
:data:`~wattledger.ingest.mapping.requests.REQUEST_ATTRIBUTE_KEYS` (the span's value, else the
resource's). Nothing else is read, so message content never leaves the request body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from wattledger.collectors import semconv as sc
from wattledger.ingest.mapping import requests as rq
from wattledger.ingest.otlp import values as av
from wattledger.ingest.otlp.values import DecodeError

logger = logging.getLogger(__name__)

WANTED = rq.REQUEST_ATTRIBUTE_KEYS
#: Resource attributes with their own columns.
RESOURCE_KEYS = {sc.SERVICE_NAME: rq.RESOURCE_SERVICE_NAME, sc.HOST_NAME: rq.RESOURCE_HOST_NAME}


@dataclass(frozen=True)
class DecodedSpans:
    """Span columns of one export request.

    Attributes:
        columns: Column dict keyed as :func:`~wattledger.ingest.request_table_from_columns`
            expects.
        count: Spans in the request.
    """

    columns: dict[str, Sequence[Any] | Any]
    count: int


def resource_values(attrs: dict[str, Any]) -> dict[str, Any]:
    """The resource attributes the mapping reads, keyed as columns."""
    out = {k: v for k, v in attrs.items() if k in WANTED}
    for key, column in RESOURCE_KEYS.items():
        if key in attrs:
            out[column] = attrs[key]
    return out


def first_chunk_ns(events: Iterable[tuple[int, Any]]) -> int | None:
    """Time of the earliest completion-chunk event, ns; None when there is none."""
    times = [t for t, name in events if name == sc.EVENT_COMPLETION_CHUNK and t]
    return min(times) if times else None


class _Rows:
    """Accumulates span rows as dicts, then turns them into columns."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        ids: tuple[str | None, str | None],
        times: tuple[int | None, int | None],
        status: int,
        attrs: dict[str, Any],
        resource: dict[str, Any],
        scope: str | None,
        events: Iterable[tuple[int, Any]],
    ) -> None:
        row = dict(resource)
        row.update((k, v) for k, v in attrs.items() if k in WANTED and v is not None)
        row[rq.TRACE_ID], row[rq.SPAN_ID] = ids
        row[rq.START_TIME], row[rq.END_TIME] = times
        row[rq.STATUS_CODE] = status
        row[rq.SCOPE_NAME] = scope or None
        row[rq.FIRST_CHUNK_TIME] = first_chunk_ns(events)
        self.rows.append(row)

    def decoded(self) -> DecodedSpans:
        keys: dict[str, None] = {rq.TRACE_ID: None}
        for r in self.rows:
            keys.update(dict.fromkeys(r))
        return DecodedSpans({k: [r.get(k) for r in self.rows] for k in keys}, len(self.rows))


def _hex(b: bytes) -> str | None:
    return b.hex() if b else None


def decode_reference(request: ExportTraceServiceRequest) -> DecodedSpans:
    """Span columns from a parsed request, one span at a time (the reference path)."""
    rows = _Rows()
    for rs in request.resource_spans:
        resource = resource_values(
            {kv.key: av.from_proto(kv.value) for kv in rs.resource.attributes}
        )
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for sp in ss.spans:
                attrs = {
                    kv.key: av.from_proto(kv.value) for kv in sp.attributes if kv.key in WANTED
                }
                rows.add(
                    (_hex(sp.trace_id), _hex(sp.span_id)),
                    (sp.start_time_unix_nano, sp.end_time_unix_nano),
                    sp.status.code,
                    attrs,
                    resource,
                    scope,
                    ((e.time_unix_nano, e.name) for e in sp.events),
                )
    return rows.decoded()


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse a protobuf ``ExportTraceServiceRequest``.

    Raises:
        DecodeError: the body is not one.
    """
    try:
        return ExportTraceServiceRequest.FromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError) as e:
        raise DecodeError(f"body is not a protobuf ExportTraceServiceRequest: {e}") from e


def decode_protobuf(body: bytes) -> DecodedSpans:
    """Span columns of a protobuf body: fast path, else the reference path.

    Raises:
        DecodeError: the body is not an ``ExportTraceServiceRequest``.
    """
    from wattledger.ingest.otlp import _fast_traces

    try:
        fast = _fast_traces.decode(body)
    except _fast_traces.NotCanonical as e:
        logger.debug("trace body not in canonical shape (%s); using the reference decoder", e)
    else:
        return fast
    return decode_reference(parse_protobuf(body))


_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _json_status(v: Any) -> int | None:
    # The spec says integers; some producers send the enum name anyway.
    return _STATUS_NAMES[v] if isinstance(v, str) and v in _STATUS_NAMES else av.json_uint(v)


def decode(body: bytes, fmt: str) -> DecodedSpans:
    """Span columns of a body in ``fmt`` (``protobuf`` or ``json``)."""
    return decode_protobuf(body) if fmt == "protobuf" else decode_json(body)


def decode_json(body: bytes) -> DecodedSpans:
    """Span columns of an OTLP/JSON body.

    Raises:
        DecodeError: the body is not JSON or not shaped like an ``ExportTraceServiceRequest``.
    """
    try:
        doc = json.loads(body)
        if b"\\u" in body:  # a lone surrogate escape ("\\ud800") is valid JSON, not text
            json.dumps(doc, ensure_ascii=False).encode()
    except (UnicodeError, json.JSONDecodeError, RecursionError) as e:
        raise DecodeError(f"body is not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise DecodeError("body must be a JSON object with resourceSpans")
    rows = _Rows()
    for rs in av.json_list(doc, "resourceSpans"):
        res_obj = rs.get("resource") if isinstance(rs, dict) else None
        resource = resource_values(av.json_attributes(res_obj or {}))
        for ss in av.json_list(rs, "scopeSpans"):
            scope_obj = ss.get("scope") if isinstance(ss, dict) else None
            scope = scope_obj.get("name") if isinstance(scope_obj, dict) else None
            for sp in av.json_list(ss, "spans"):
                if not isinstance(sp, dict):
                    raise DecodeError("each span must be a JSON object")
                status = sp.get("status") or {}
                code = _json_status(status.get("code")) if isinstance(status, dict) else None
                events = [
                    (av.json_uint(e.get("timeUnixNano")) or 0, e.get("name"))
                    for e in av.json_list(sp, "events")
                    if isinstance(e, dict)
                ]
                rows.add(
                    (av.json_hex_id(sp.get("traceId")), av.json_hex_id(sp.get("spanId"))),
                    (
                        av.json_uint(sp.get("startTimeUnixNano")),
                        av.json_uint(sp.get("endTimeUnixNano")),
                    ),
                    code or 0,
                    av.json_attributes(sp),
                    resource,
                    scope if isinstance(scope, str) else None,
                    events,
                )
    return rows.decoded()
