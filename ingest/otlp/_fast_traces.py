"""Vectorised decoding of protobuf trace requests: five C-level parses instead of a Python loop.

Reading attributes through the generated classes costs about 1 µs each in Python, which caps a
receiver near 60k spans/s (REFERENCE.md §9). This module relies on two properties of the
protobuf wire format instead:

1. Concatenated messages parse as one message in which repeated fields append and singular
   embedded messages merge. We join every span's bytes into one buffer and parse it with a
   private schema whose fields are *repeated* (ids, times) or a *merged* message (attributes
   become one message with a list of keys and a list of values), so upb fills whole columns.
2. Field numbers, not names, are on the wire, so a private schema reads the standard bytes.

A sentinel written after every span marks span boundaries in each merged list. Each check
below verifies the shape the trick assumes (one value per field per span, as every standard
encoder writes); a body that fails one raises :class:`NotCanonical` and the caller uses the
reference decoder, which gives the same columns.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError

from wattledger.ingest.mapping import requests as rq
from wattledger.ingest.otlp import traces, values
from wattledger.ingest.otlp.traces import DecodedSpans

_F = descriptor_pb2.FieldDescriptorProto
_PKG = "wattledger.ingest.merged"
_STRING, _BYTES = _F.TYPE_STRING, _F.TYPE_BYTES
_TTFT_KEYS = (rq.sc.WL_TTFT_S, rq.sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)


class NotCanonical(Exception):
    """The body is not in the shape the fast path assumes; use the reference decoder."""


def _schema() -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto(
        name="wattledger/ingest/merged_traces.proto", package=_PKG, syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, bool, str]) -> None:
        m = fd.message_type.add(name=name)
        for fname, number, ftype, repeated, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype)
            f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if type_name:
                f.type_name = f".{_PKG}.{type_name}"

    msg = _F.TYPE_MESSAGE
    # The request, down to each span's raw bytes (standard field numbers).
    message("Scope", ("name", 1, _STRING, False, ""))
    message("Resource", ("attributes", 1, _BYTES, True, ""))
    message("ScopeSpans", ("scope", 1, msg, False, "Scope"), ("spans", 2, _BYTES, True, ""))
    message(
        "ResourceSpans",
        ("resource", 1, msg, False, "Resource"),
        ("scope_spans", 2, msg, True, "ScopeSpans"),
    )
    message("Request", ("resource_spans", 1, msg, True, "ResourceSpans"))
    # All spans of a request, merged: one list per field.
    message("KeyValues", ("key", 1, _STRING, True, ""), ("value", 2, _BYTES, True, ""))
    message("Codes", ("code", 3, _F.TYPE_INT32, True, ""))
    message(
        "Spans",
        ("trace_id", 1, _BYTES, True, ""),
        ("span_id", 2, _BYTES, True, ""),
        ("start", 7, _F.TYPE_FIXED64, True, ""),
        ("end", 8, _F.TYPE_FIXED64, True, ""),
        ("attributes", 9, msg, False, "KeyValues"),
        ("events", 11, _BYTES, True, ""),
        ("status", 15, msg, False, "Codes"),
    )
    # All attribute values, merged: one list per AnyValue type.
    message(
        "Values",
        ("s", 1, _STRING, True, ""),
        ("b", 2, _F.TYPE_BOOL, True, ""),
        ("i", 3, _F.TYPE_INT64, True, ""),
        ("d", 4, _F.TYPE_DOUBLE, True, ""),
        ("array", 5, _BYTES, True, ""),
        ("kvlist", 6, _BYTES, True, ""),
        ("raw", 7, _BYTES, True, ""),
    )
    message("Event", ("time", 1, _F.TYPE_FIXED64, False, ""), ("name", 2, _STRING, False, ""))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {
        m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PKG}.{m.name}"))
        for m in fd.message_type
    }


_M = _schema()
_SENTINEL_KEY = "\x00"
_SENTINEL_CODE = -1
_SEP: bytes = _M["Spans"](
    trace_id=[b""],
    span_id=[b""],
    start=[0],
    end=[0],
    attributes=_M["KeyValues"](key=[_SENTINEL_KEY], value=[b""]),
    events=[b""],
    status=_M["Codes"](code=[_SENTINEL_CODE]),
).SerializeToString()
_KEYS = [_SENTINEL_KEY, *sorted(traces.WANTED)]
_KEY_SET = pa.array(_KEYS, pa.string())
# AnyValue field tags (field number << 3 | wire type) -> (Values list, Arrow type)
_SCALARS = {
    0x0A: ("s", pa.string()),
    0x10: ("b", pa.bool_()),
    0x18: ("i", pa.int64()),
    0x21: ("d", pa.float64()),
}
_OTHERS = {0x2A: "array", 0x32: "kvlist", 0x3A: "raw"}


def _every_other(seq: Any, n: int, sentinel: Any, what: str) -> list[Any]:
    if len(seq) != 2 * n:
        raise NotCanonical(f"{what}: {len(seq)} values for {n} spans")
    data, marks = seq[0::2], seq[1::2]
    if marks.count(sentinel) != n:
        raise NotCanonical(f"{what}: span boundaries do not line up")
    return list(data)


def _every_other_number(seq: Any, n: int, what: str) -> np.ndarray:
    """:func:`_every_other` for a repeated fixed64 field, read from its buffer."""
    values = np.asarray(seq, np.uint64)
    if len(values) != 2 * n:
        raise NotCanonical(f"{what}: {len(values)} values for {n} spans")
    if (values[1::2] != 0).any():
        raise NotCanonical(f"{what}: span boundaries do not line up")
    return values[0::2]


def _raw_offsets(items: list[bytes]) -> tuple[np.ndarray, np.ndarray, pa.BinaryArray]:
    """First byte and length of each item, vectorised, and the items as an Arrow array."""
    arr = pa.array(items, pa.binary())
    offsets = np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, arr.offset * 4)
    lengths = np.diff(offsets)
    buf = arr.buffers()[2]
    if buf is None or buf.size == 0:
        return np.zeros(len(items), np.uint8), lengths, arr
    data = np.frombuffer(buf, np.uint8)
    first = data[np.minimum(offsets[:-1], len(data) - 1)]
    return np.where(lengths > 0, first, 0).astype(np.uint8), lengths, arr


_NUMPY_TYPES = {pa.int64(): np.int64, pa.float64(): np.float64, pa.bool_(): np.bool_}


def _typed_values(
    got: Any, arrow_type: pa.DataType, raw: pa.BinaryArray, positions: np.ndarray
) -> pa.Array:
    """The values of one AnyValue type as an Arrow array, without a Python object per value.

    Numbers come straight from the parsed message's buffer. Strings are cut out of their
    encoded AnyValue (tag byte, one-byte length, text) when every one is shorter than 128
    bytes; the message parse has already checked them, e.g. their UTF-8.
    """
    if arrow_type != pa.string():
        return pa.array(np.asarray(got, _NUMPY_TYPES[arrow_type]))
    encoded = raw.take(pa.array(positions))
    offsets = np.frombuffer(encoded.buffers()[1], np.int32, len(encoded) + 1, encoded.offset * 4)
    lengths = np.diff(offsets)
    data = encoded.buffers()[2]
    if data is not None and (lengths <= 129).all():
        second = np.frombuffer(data, np.uint8)[offsets[:-1] + 1]
        if (second == lengths - 2).all():
            return pc.binary_slice(encoded, 2, 1 << 30).cast(pa.string())
    return pa.array(got, pa.string())


# Each byte's two lower-case hex digits, as the little-endian uint16 that holds them.
_HEX_PAIRS = np.array(
    [ord(f"{b:02x}"[0]) | ord(f"{b:02x}"[1]) << 8 for b in range(256)], dtype="<u2"
)


def _hex_ids(ids: list[bytes], size: int) -> pa.Array:
    """Ids as lower-case hex strings (None for an empty id), vectorised when all are ``size``."""
    n = len(ids)
    joined = b"".join(ids)
    if len(joined) != n * size or any(len(b) != size for b in ids):
        return pa.array([b.hex() if b else None for b in ids], pa.string())
    text = _HEX_PAIRS[np.frombuffer(joined, np.uint8)].tobytes()
    offsets = np.arange(0, (n + 1) * 2 * size, 2 * size, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def _statuses(codes: list[int], n: int) -> np.ndarray:
    c = np.array(codes, np.int64)
    ends = np.flatnonzero(c == _SENTINEL_CODE)
    if len(ends) != n:
        raise NotCanonical("status: span boundaries do not line up")
    prev = ends - 1
    has = (prev >= 0) & (c[np.maximum(prev, 0)] != _SENTINEL_CODE)
    return np.where(has, c[np.maximum(prev, 0)], 0)


def _pick(items: Any, positions: np.ndarray) -> list[Any]:
    """``items`` at ``positions``, gathered in C."""
    if len(positions) == 0:
        return []
    if len(positions) == 1:
        return [items[int(positions[0])]]
    return list(operator.itemgetter(*positions.tolist())(items))


def _attribute_columns(kvs: Any, n: int) -> dict[str, Any]:
    keys = list(kvs.key)
    raw_all = kvs.value  # indexed lazily: only the values we read become Python objects
    if len(keys) != len(raw_all):
        raise NotCanonical("attributes without a key or a value")
    codes = pc.index_in(pa.array(keys, pa.string()), value_set=_KEY_SET).fill_null(-1)
    code_all = codes.to_numpy(zero_copy_only=False)
    is_sep = code_all == 0
    separators = np.flatnonzero(is_sep)
    if len(separators) != n or any(_pick(raw_all, separators)):
        raise NotCanonical("attributes: span boundaries do not line up")
    span_of_all = np.cumsum(is_sep) - is_sep
    # From here on only the attributes the mapping reads (a prompt is never even parsed).
    wanted = np.flatnonzero(code_all > 0)
    raw = _pick(raw_all, wanted)
    code, span_of = code_all[wanted], span_of_all[wanted]
    tags, lengths, raw_arr = _raw_offsets(raw)
    vals = _M["Values"].FromString(b"".join(raw))  # also checks each value, e.g. its UTF-8
    typed: dict[int, tuple[pa.Array, np.ndarray]] = {}
    for tag, (field, arrow_type) in _SCALARS.items():
        positions = np.flatnonzero(tags == tag)
        got = getattr(vals, field)
        if len(got) != len(positions):
            raise NotCanonical("attribute values with more than one field")
        if len(positions):
            index = np.full(len(raw), -1, np.int64)
            index[positions] = np.arange(len(positions))
            typed[tag] = (_typed_values(got, arrow_type, raw_arr, positions), index)
    for tag, field in _OTHERS.items():
        if len(getattr(vals, field)) != int((tags == tag).sum()):
            raise NotCanonical("attribute values with more than one field")
    if (tags[(lengths > 0)] == 0).any() or not np.isin(tags, [0, *_SCALARS, *_OTHERS]).all():
        raise NotCanonical("attribute values of unknown type")

    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(1, len(_KEYS) + 1))
    columns: dict[str, Any] = {}
    for j in range(1, len(_KEYS)):
        at = order[bounds[j - 1] : bounds[j]]
        if not len(at):
            continue
        spans = span_of[at]
        last = np.append(spans[1:] != spans[:-1], True)  # a key repeated in a span: last wins
        at, spans = at[last], spans[last]
        kinds = np.unique(tags[at])
        if len(kinds) == 1 and int(kinds[0]) in typed:
            arr, index = typed[int(kinds[0])]
            pos = np.full(n, -1, np.int64)
            pos[spans] = index[at]
            columns[_KEYS[j]] = arr.take(pa.array(pos, mask=pos < 0))
        else:
            column: list[Any] = [None] * n
            for a in at:
                column[span_of[a]] = values.from_proto_bytes(raw[a])
            columns[_KEYS[j]] = column
    return columns


def _first_chunks(events: list[bytes], n: int, need: np.ndarray) -> list[int | None] | None:
    tags, lengths, _ = _raw_offsets(events)
    is_sep = lengths == 0
    if int(is_sep.sum()) != n:
        raise NotCanonical("events: span boundaries do not line up")
    if len(events) == n:
        return None  # no events at all
    span_of = np.cumsum(is_sep) - is_sep
    out: list[int | None] = [None] * n
    parse = _M["Event"].FromString
    for i in np.flatnonzero(~is_sep & need[span_of]):
        ev = parse(events[i])
        if ev.name == rq.sc.EVENT_COMPLETION_CHUNK and ev.time:
            s = int(span_of[i])
            if out[s] is None or ev.time < out[s]:  # type: ignore[operator]
                out[s] = ev.time
    return out


def _resource_columns(resources: list[dict[str, Any]], res_of: np.ndarray) -> dict[str, Any]:
    """Each resource attribute as a per-span column (the resource's value for its spans)."""
    keys = {k for r in resources for k in r}
    out: dict[str, Any] = {}
    for k in keys:
        per_resource = [r.get(k) for r in resources]
        kinds = {type(v) for v in per_resource if v is not None}
        if len(kinds) <= 1 and kinds <= {str, int, float, bool}:
            try:
                out[k] = pa.array(per_resource).take(pa.array(res_of))
                continue
            except (pa.ArrowInvalid, OverflowError):
                pass  # e.g. an integer beyond 64 bits
        # mixed or structured values: plain Python values, converted by the mapping
        out[k] = [per_resource[r] for r in res_of]
    return out


def _merge(primary: Any, fallback: Any) -> Any:
    """``primary``'s value where present, else ``fallback``'s (the resource's)."""
    if (
        isinstance(primary, pa.Array)
        and isinstance(fallback, pa.Array)
        and (fallback.type == primary.type or pa.types.is_null(fallback.type))
    ):
        return pc.coalesce(primary, fallback.cast(primary.type))
    p = primary.to_pylist() if isinstance(primary, pa.Array) else primary
    f = fallback.to_pylist() if isinstance(fallback, pa.Array) else fallback
    return [a if a is not None else b for a, b in zip(p, f, strict=True)]


def decode(body: bytes) -> DecodedSpans:
    """Span columns of a protobuf ``ExportTraceServiceRequest``.

    Raises:
        NotCanonical: the body needs the reference decoder (including undecodable bodies,
            for which the reference decoder raises the error the client sees).
    """
    return decode_many([body])[0]


def decode_many(bodies: list[bytes]) -> tuple[DecodedSpans, list[int]]:
    """Span columns of several request bodies decoded as one, and each body's span count.

    Decoding costs a fixed part per call (a few dozen Arrow and NumPy calls) besides its part
    per span, so requests that arrive together are decoded together.

    Raises:
        NotCanonical: some body needs the reference decoder, or cannot be decoded.
    """
    try:
        raw_spans: list[bytes] = []
        resources: list[dict[str, Any]] = []
        res_counts: list[int] = []
        scopes: list[str | None] = []
        scope_counts: list[int] = []
        per_body: list[int] = []
        for body in bodies:
            before = len(raw_spans)
            for rs in _M["Request"].FromString(body).resource_spans:
                attrs = {}
                for kv in rs.resource.attributes:
                    k, v = _kv(kv)
                    attrs[k] = v
                resources.append(traces.resource_values(attrs))
                total = 0
                for ss in rs.scope_spans:
                    spans = ss.spans
                    raw_spans.extend(spans)
                    scopes.append(ss.scope.name or None)
                    scope_counts.append(len(spans))
                    total += len(spans)
                res_counts.append(total)
            per_body.append(len(raw_spans) - before)
        n = len(raw_spans)
        if n == 0:
            return DecodedSpans({rq.TRACE_ID: []}, 0), per_body
        merged = _M["Spans"].FromString(_SEP.join(raw_spans) + _SEP)
    except (ProtobufDecodeError, RuntimeError, ValueError) as e:
        raise NotCanonical(str(e)) from e

    try:
        return _columns(merged, n, resources, res_counts, scopes, scope_counts), per_body
    except (ProtobufDecodeError, RuntimeError, ValueError) as e:
        raise NotCanonical(str(e)) from e


def _columns(
    merged: Any,
    n: int,
    resources: list[dict[str, Any]],
    res_counts: list[int],
    scopes: list[str | None],
    scope_counts: list[int],
) -> DecodedSpans:
    trace_ids = _every_other(merged.trace_id, n, b"", "trace_id")
    span_ids = _every_other(merged.span_id, n, b"", "span_id")
    starts = _every_other_number(merged.start, n, "start_time_unix_nano")
    ends = _every_other_number(merged.end, n, "end_time_unix_nano")
    columns = _attribute_columns(merged.attributes, n)
    columns[rq.TRACE_ID] = _hex_ids(trace_ids, 16)
    columns[rq.SPAN_ID] = _hex_ids(span_ids, 8)
    columns[rq.START_TIME] = pa.array(starts, pa.uint64())
    columns[rq.END_TIME] = pa.array(ends, pa.uint64())
    columns[rq.STATUS_CODE] = pa.array(_statuses(list(merged.status.code), n))
    columns[rq.SCOPE_NAME] = pa.array(
        np.repeat(np.array(scopes, object), scope_counts).tolist(), pa.string()
    )

    res_of = np.repeat(np.arange(len(resources)), res_counts)
    for key, fallback in _resource_columns(resources, res_of).items():
        columns[key] = _merge(columns[key], fallback) if key in columns else fallback

    need = np.ones(n, dtype=bool)
    for key in _TTFT_KEYS:
        if key in columns:
            col = columns[key]
            # NaN means "not measured" (stored as NULL): the chunk event is then still needed.
            present = (
                pc.fill_null(pc.invert(pc.is_nan(col)), False).to_numpy(zero_copy_only=False)
                if isinstance(col, pa.Array) and pa.types.is_floating(col.type)
                else col.is_valid().to_numpy(zero_copy_only=False)
                if isinstance(col, pa.Array)
                else np.array([v is not None and v == v for v in col])
            )
            need &= ~present
    chunks = _first_chunks(list(merged.events), n, need) if need.any() else None
    if chunks is not None:
        columns[rq.FIRST_CHUNK_TIME] = chunks
    return DecodedSpans(columns, n)


def _kv(raw: bytes) -> tuple[str, Any]:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    kv = KeyValue.FromString(raw)
    return kv.key, values.from_proto(kv.value)
