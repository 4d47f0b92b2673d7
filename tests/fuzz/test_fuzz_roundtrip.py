"""Round trip of generated GenAI spans: every value lands in its column, through protobuf (fast
and reference decoders) and OTLP/JSON alike; random JSON never raises anything but DecodeError.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.fuzz.profiles import fuzz
from tests.fuzz.strategies import T0, metric_requests, trace_requests
from wattledger.collectors import semconv as sc
from wattledger.ingest.mapping.requests import map_requests
from wattledger.ingest.otlp import DecodeError, _fast_traces, metrics, traces
from wattledger.models import bounds

# Any storable text: NUL is refused by ingest (PostgreSQL cannot store it), see test_ingest_bounds.
names = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=40,
)


def to_otlp_json(req: Any) -> bytes:
    """OTLP/JSON as the spec has it: proto3 JSON with hex trace/span ids."""
    doc = MessageToDict(req, use_integers_for_enums=True)

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (base64.b64decode(v).hex().upper() if k in ("traceId", "spanId") else fix(v))
                for k, v in node.items()
            }
        return [fix(x) for x in node] if isinstance(node, list) else node

    return json.dumps(fix(doc)).encode()


@st.composite
def genai_spans(draw: Any) -> tuple[ExportTraceServiceRequest, dict[str, Any]]:
    """A request holding one valid GenAI span, and the row it must become."""
    start = T0 + draw(st.integers(0, 10**15))
    duration = draw(st.integers(0, 10**12))
    ttft = draw(st.one_of(st.none(), st.floats(0, duration / 1e9)))
    v = {
        "trace_id": draw(st.binary(min_size=16, max_size=16).filter(any)),
        "span_id": draw(st.binary(min_size=8, max_size=8).filter(any)),
        "service": draw(names),
        "provider": draw(st.sampled_from(["openai", "groq", "cerebras", "together", "vllm"])),
        "llm_model": draw(names),
        "operation": draw(st.sampled_from(["chat", "text_completion", "embeddings"])),
        # Valid values reach the bounds (docs/security.md): at most 10⁹ tokens, cached ≤ input.
        "input_tokens": (tokens_in := draw(st.integers(0, bounds.MAX_TOKENS))),
        "output_tokens": draw(st.integers(0, bounds.MAX_TOKENS)),
        "cached_input_tokens": draw(st.integers(0, tokens_in)),
        "team": draw(st.one_of(st.none(), names)),
        "workload": draw(st.one_of(st.none(), names)),
        "quantization": draw(st.one_of(st.none(), st.sampled_from(["fp8", "int4", "bf16"]))),
        "quality_score": draw(st.one_of(st.none(), st.floats(0, 1))),
        "status_code": draw(st.sampled_from([0, 1, 2])),
    }
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(
        KeyValue(key=sc.SERVICE_NAME, value=AnyValue(string_value=v["service"]))
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "fuzz"
    sp = ss.spans.add(
        trace_id=v["trace_id"],
        span_id=v["span_id"],
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration,
        name="chat",
    )
    sp.status.code = v["status_code"]

    def put(key: str, value: Any) -> None:
        if value is None:
            return
        av = AnyValue()
        if isinstance(value, str):
            av.string_value = value
        elif isinstance(value, int):
            av.int_value = value
        else:
            av.double_value = value
        sp.attributes.append(KeyValue(key=key, value=av))

    put(sc.GEN_AI_OPERATION_NAME, v["operation"])
    put(sc.GEN_AI_PROVIDER_NAME, v["provider"])
    put(sc.GEN_AI_RESPONSE_MODEL, v["llm_model"])
    put(sc.GEN_AI_USAGE_INPUT_TOKENS, v["input_tokens"])
    put(sc.GEN_AI_USAGE_OUTPUT_TOKENS, v["output_tokens"])
    put(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, v["cached_input_tokens"])
    put(sc.WL_TEAM, v["team"])
    put(sc.WL_WORKLOAD, v["workload"])
    put(sc.WL_QUANTIZATION, v["quantization"])
    put(sc.WL_QUALITY_SCORE, v["quality_score"])
    put(sc.WL_TTFT_S, ttft)
    put(sc.WL_TENANT, "someone-else")  # ignored: the tenant is the key's
    put("gen_ai.input.messages", "never stored")

    def ts(ns: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ns // 1000 / 1e6, dt.UTC).replace(
            microsecond=(ns // 1000) % 10**6
        )

    expected = {
        "trace_id": v["trace_id"].hex(),
        "span_id": v["span_id"].hex(),
        "tenant": "acme",
        "service": v["service"],
        "provider": v["provider"],
        "llm_model": v["llm_model"],
        "operation": v["operation"],
        "input_tokens": v["input_tokens"],
        "output_tokens": v["output_tokens"],
        "cached_input_tokens": v["cached_input_tokens"],
        "team": v["team"],
        "workload": v["workload"],
        "quantization": v["quantization"],
        "quality_score": v["quality_score"],
        "ttft_s": ttft,
        "start_ts": ts(start),
        "end_ts": ts(start + duration),
        "duration_s": duration / 1e9,
        "status": "error" if v["status_code"] == 2 else "ok",
        "producer": "fuzz",
    }
    return req, expected


@fuzz(60)
@given(genai_spans())
def test_genai_span_values_land_in_their_columns(case: Any) -> None:
    req, expected = case
    body = req.SerializeToString()
    decodings = {
        "fast": _fast_traces.decode(body),  # canonical: the fast path must take it
        "reference": traces.decode_reference(req),
        "json": traces.decode_json(to_otlp_json(req)),
    }
    for how, decoded in decodings.items():
        m = map_requests(decoded.columns, tenant="acme")
        assert (m.received, m.rejected, m.non_genai) == (1, 0, 0), (how, m.first_error)
        (row,) = m.table.to_pylist()
        got = {k: row[k] for k in expected}
        assert got == expected, how
        assert "never stored" not in json.dumps(row, default=str)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def graft(doc: Any, draw: Any) -> Any:
    """``doc`` with random subtrees replaced by random JSON values."""
    if isinstance(doc, dict):
        return {k: (draw(json_values) if draw(st.integers(0, 9)) == 0 else graft(v, draw))
                for k, v in doc.items()}  # fmt: skip
    if isinstance(doc, list):
        return [draw(json_values) if draw(st.integers(0, 9)) == 0 else graft(v, draw) for v in doc]
    return doc


@fuzz(60)
@given(st.data())
def test_json_bodies_decode_or_raise_decode_error(data: st.DataObject) -> None:
    trace_doc = json.loads(to_otlp_json(data.draw(trace_requests())))
    metric_doc = json.loads(to_otlp_json(data.draw(metric_requests())))
    for decode, doc in ((traces.decode_json, trace_doc), (metrics.decode_json, metric_doc)):
        for body in (
            json.dumps(graft(doc, data.draw)).encode(),
            json.dumps(data.draw(json_values)).encode(),
            data.draw(st.binary(max_size=40)),
        ):
            try:
                decoded = decode(body)
            except DecodeError:
                continue
            if decode is traces.decode_json:
                m = map_requests(decoded.columns, tenant="acme")
                assert m.table.num_rows + m.rejected + m.non_genai == decoded.count


def test_a_lone_surrogate_in_json_is_a_decode_error() -> None:
    """Found by atheris: "\\ud800" is valid JSON but not text; Arrow refused it in the mapping."""
    value = {"key": "host.name", "value": {"stringValue": "gpu-\ud800"}}
    traces_doc = {"resourceSpans": [{"resource": {"attributes": [value]}}]}
    metrics_doc = {"resourceMetrics": [{"resource": {"attributes": [value]}}]}
    for decode, doc in ((traces.decode_json, traces_doc), (metrics.decode_json, metrics_doc)):
        body = json.dumps(doc).encode()  # ASCII, with the escape \ud800
        assert b"\\ud800" in body
        with pytest.raises(DecodeError, match="not valid JSON"):
            decode(body)
    # A surrogate *pair* is one real character and stays fine.
    ok = json.dumps({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "\U0001f600"}}]}]})
    assert traces.decode_json(ok.encode()).count == 0
