"""OTLP decoding: the vectorised path, the reference path and OTLP/JSON agree on every input."""

from __future__ import annotations

import base64
import json
from typing import Any

import pyarrow as pa
import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from wattledger.ingest.mapping.requests import map_requests
from wattledger.ingest.otlp import DecodeError, _fast_traces, traces

T0 = 1_763_000_000_000_000_000
KEYS = [
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.output_tokens",
    "wattledger.ttft_s",
    "gen_ai.response.time_to_first_chunk",
    "server.address",
    "gen_ai.request.model",
    "wattledger.device.id",
    "wattledger.quality_score",
    "error.type",
    "http.route",
    "gen_ai.input.messages",
]

any_values = st.one_of(
    st.text(max_size=12).map(lambda s: AnyValue(string_value=s)),
    # long enough for a two-byte length: the decoder cuts short strings out of the bytes
    st.text(min_size=126, max_size=140).map(lambda s: AnyValue(string_value=s)),
    st.integers(-5, 10**12).map(lambda i: AnyValue(int_value=i)),
    st.one_of(st.floats(-1, 1e6), st.just(float("nan"))).map(lambda f: AnyValue(double_value=f)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.just(AnyValue()),
    st.lists(st.text(max_size=3), max_size=2).map(
        lambda xs: AnyValue(array_value={"values": [AnyValue(string_value=x) for x in xs]})
    ),
    st.binary(max_size=4).map(lambda b: AnyValue(bytes_value=b)),
)
attributes = st.lists(st.tuples(st.sampled_from(KEYS), any_values), max_size=8)


@st.composite
def spans(draw: Any) -> Span:
    start = draw(st.sampled_from([T0, T0 + 7, 0]))
    sp = Span(
        trace_id=draw(st.sampled_from([b"\x01" * 16, b"\xab" * 16, b"\x02" * 3])),
        span_id=draw(st.binary(min_size=8, max_size=8)),
        start_time_unix_nano=start,
        end_time_unix_nano=start + draw(st.integers(0, 5 * 10**9)),
        name="x",
    )
    # Every span claims to be GenAI unless the draw says otherwise, to exercise the mapping.
    if draw(st.booleans()):
        sp.attributes.append(
            KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))
        )
    for k, v in draw(attributes):
        sp.attributes.append(KeyValue(key=k, value=v))
    for name, offset in draw(
        st.lists(
            st.tuples(
                st.sampled_from(["gen_ai.content.completion.chunk", "other"]), st.integers(0, 10**9)
            ),
            max_size=3,
        )
    ):
        ev = sp.events.add()
        ev.name, ev.time_unix_nano = name, start + offset
    sp.status.code = draw(st.sampled_from([0, 1, 2]))
    return sp


@st.composite
def requests(draw: Any) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rs = ResourceSpans()
        for k, v in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(
                        ["service.name", "host.name", "wattledger.device.id", "gen_ai.system"]
                    ),
                    any_values,
                ),
                max_size=3,
            )
        ):
            rs.resource.attributes.append(KeyValue(key=k, value=v))
        for _ in range(draw(st.integers(1, 2))):
            ss = ScopeSpans()
            ss.scope.name = draw(st.sampled_from(["", "openlit", "wattledger"]))
            ss.spans.extend(draw(st.lists(spans(), max_size=5)))
            rs.scope_spans.append(ss)
        req.resource_spans.append(rs)
    return req


def mapped(columns: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
    m = map_requests(columns, tenant="t")
    return m.table.drop(["ingested_at"]).to_pylist(), m.rejected, m.non_genai


def to_otlp_json(req: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON as the spec has it: proto3 JSON, but hex trace/span ids."""
    doc = MessageToDict(req, use_integers_for_enums=True)

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (base64.b64decode(v).hex().upper() if k in ("traceId", "spanId") else fix(v))
                for k, v in node.items()
            }
        return [fix(x) for x in node] if isinstance(node, list) else node

    return json.dumps(fix(doc)).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_fast_reference_and_json_decoders_agree(req: ExportTraceServiceRequest) -> None:
    body = req.SerializeToString()
    reference = mapped(traces.decode_reference(req).columns)
    assert mapped(traces.decode_protobuf(body).columns) == reference
    assert mapped(traces.decode_json(to_otlp_json(req)).columns) == reference


@settings(max_examples=40, deadline=None)
@given(requests())
def test_fast_path_takes_every_canonical_body(req: ExportTraceServiceRequest) -> None:
    """Bodies the official serializer writes never need the slow path (ids always present)."""
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                sp.trace_id, sp.start_time_unix_nano = b"\x01" * 16, T0
                sp.end_time_unix_nano = max(sp.end_time_unix_nano, T0)
    fast = _fast_traces.decode(req.SerializeToString())  # would raise NotCanonical
    assert mapped(fast.columns) == mapped(traces.decode_reference(req).columns)


def _kv(key: str, value: bytes) -> bytes:
    return b"\x0a" + bytes([len(key)]) + key.encode() + b"\x12" + bytes([len(value)]) + value


def test_non_canonical_bodies_fall_back_to_the_reference_decoder() -> None:
    spans_ = [
        Span(
            trace_id=b"\x01" * 16,
            span_id=bytes([i]) * 8,
            start_time_unix_nano=T0,
            end_time_unix_nano=T0 + 1,
        )
        for i in range(1, 3)
    ]
    spans_[0].attributes.append(
        KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))
    )
    spans_[1].attributes.append(KeyValue(key="gen_ai.operation.name"))  # no value field
    req = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans_)])]
    )
    body = req.SerializeToString()
    with pytest.raises(_fast_traces.NotCanonical):
        _fast_traces.decode(body)
    decoded = traces.decode_protobuf(body)
    assert decoded.count == 2
    assert mapped(decoded.columns)[0] == mapped(traces.decode_reference(req).columns)[0]
    # a repeated key within one span: the last value wins on both paths
    sp = spans_[0]
    sp.attributes.append(KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="a")))
    sp.attributes.append(KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="b")))
    req2 = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[sp])])]
    )
    fast = _fast_traces.decode(req2.SerializeToString())
    assert fast.columns["gen_ai.request.model"].to_pylist() == ["b"]


def test_resource_attributes_fill_in_for_the_span() -> None:
    sp = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 1,
    )
    sp.attributes.append(KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="c")))
    rs = ResourceSpans(scope_spans=[ScopeSpans(spans=[sp])])
    rs.resource.attributes.append(
        KeyValue(key="wattledger.device.id", value=AnyValue(string_value="GPU-9"))
    )
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="svc")))
    body = ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()
    (row,), _, _ = mapped(traces.decode_protobuf(body).columns)
    assert (row["device_id"], row["service"]) == ("GPU-9", "svc")


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05abc"])
def test_undecodable_protobuf_raises(body: bytes) -> None:
    with pytest.raises(DecodeError):
        traces.decode_protobuf(body)


def test_empty_request_is_fine() -> None:
    assert traces.decode_protobuf(b"").count == 0
    assert traces.decode_json(b"{}").count == 0
    assert isinstance(traces.decode_protobuf(b"").columns["trace_id"], list | pa.Array)


def _outcome(m: Any) -> tuple[list[dict[str, Any]], int, int, dict[str, int], str | None]:
    rows = m.table.drop(["ingested_at"]).to_pylist()
    return rows, m.rejected, m.non_genai, m.rejected_by_reason, m.first_error


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=1, max_size=4))
def test_bodies_decoded_together_give_each_body_its_own_result(
    reqs: list[ExportTraceServiceRequest],
) -> None:
    """Several bodies decoded and mapped as one: each part equals that body mapped alone."""
    for req in reqs:  # shapes the fast path takes (the others are decoded body by body)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    sp.trace_id, sp.start_time_unix_nano = b"\x01" * 16, T0
                    sp.end_time_unix_nano = max(sp.end_time_unix_nano, T0)
                    kept = [kv for kv in sp.attributes if kv.value.WhichOneof("value")]
                    del sp.attributes[:]
                    sp.attributes.extend(kept)
    bodies = [r.SerializeToString() for r in reqs]
    decoded, counts = _fast_traces.decode_many(bodies)
    assert counts == [
        sum(len(ss.spans) for rs in r.resource_spans for ss in rs.scope_spans) for r in reqs
    ]
    together = map_requests(decoded.columns, tenant="t", segments=counts)
    assert len(together.parts) == len(reqs)
    for req, part in zip(reqs, together.parts, strict=True):
        alone = map_requests(traces.decode_reference(req).columns, tenant="t")
        assert _outcome(part) == _outcome(alone)
