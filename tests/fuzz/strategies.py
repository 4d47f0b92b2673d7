"""Hypothesis strategies: OTLP trace and metric export requests, and byte mutations.

The requests are built with the official ``opentelemetry-proto`` classes and cover every
``AnyValue`` type (nested arrays and key-value lists, bytes, NaN and infinities, 64-bit
extremes), ids of any length, timestamps anywhere in uint64, events, unknown status codes and
attributes the mapping reads next to ones it ignores (message content, a claimed tenant).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from wattledger.collectors import semconv as sc
from wattledger.ingest.mapping.requests import REQUEST_ATTRIBUTE_KEYS
from wattledger.ingest.mapping.samples import METRIC_COLUMNS, SAMPLE_ATTRIBUTE_KEYS
from wattledger.models import bounds

T0 = 1_763_000_000_000_000_000  # 2025-11-13 in ns
UINT64 = 2**64 - 1
INT64 = (-(2**63), 2**63 - 1)

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["chat", "openai", "groq", "gpt-4o", "api.groq.com", "", "NaN", "1e3"]),
    st.text(min_size=190, max_size=260),  # around the VARCHAR(200) limits
    # Unstorable on PostgreSQL (issue 16): NUL inside or at the end of a name.
    st.text(max_size=8).map(lambda s: f"llama{s}\x00{s}"),
)
#: Numbers at and just past the documented bounds (wattledger.models.bounds).
_BOUNDARY_NUMBERS = [
    bounds.MAX_TOKENS,
    bounds.MAX_TOKENS + 1,
    2**63 - 1,
    bounds.MAX_DURATION_S,
    bounds.MAX_DURATION_S * 1.0001,
    1e308,
    bounds.MAX_POWER_W,
    bounds.MAX_POWER_W * 1.0001,
    1e300,
    -5.0,
    -1,
]
scalars = st.one_of(
    texts.map(lambda s: AnyValue(string_value=s)),
    st.integers(*INT64).map(lambda i: AnyValue(int_value=i)),
    st.integers(-5, 10**7).map(lambda i: AnyValue(int_value=i)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: AnyValue(double_value=f)),
    st.floats(-1, 1e4).map(lambda f: AnyValue(double_value=f)),
    st.sampled_from(_BOUNDARY_NUMBERS).map(
        lambda x: AnyValue(int_value=x) if isinstance(x, int) else AnyValue(double_value=x)
    ),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)


def _array(values: list[AnyValue]) -> AnyValue:
    v = AnyValue()
    v.array_value.values.extend(values)
    return v


def _kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    v = AnyValue()
    v.kvlist_value.values.extend(KeyValue(key=k, value=x) for k, x in pairs)
    return v


any_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(_array),
        st.lists(st.tuples(st.text(max_size=5), inner), max_size=3).map(_kvlist),
    ),
    max_leaves=6,
)
SPAN_KEYS = sorted(REQUEST_ATTRIBUTE_KEYS) + [
    "gen_ai.input.messages",
    "gen_ai.prompt.0.content",
    sc.WL_TENANT,
    "tenant",
    "http.route",
]
keys = st.one_of(st.sampled_from(SPAN_KEYS), st.text(max_size=10))


def attributes(key_strategy: st.SearchStrategy[str] = keys) -> st.SearchStrategy[list[KeyValue]]:
    return st.lists(
        st.tuples(key_strategy, any_values).map(lambda kv: KeyValue(key=kv[0], value=kv[1])),
        max_size=8,
    )


ids16 = st.one_of(st.binary(min_size=16, max_size=16), st.just(b"\0" * 16), st.binary(max_size=20))
ids8 = st.one_of(st.binary(min_size=8, max_size=8), st.just(b"\0" * 8), st.binary(max_size=12))
times = st.one_of(st.integers(T0 - 10**12, T0 + 10**12), st.just(0), st.integers(0, UINT64))


@st.composite
def spans(draw: Any) -> Span:
    start = draw(times)
    end = draw(st.one_of(st.integers(0, 10**11).map(lambda d: min(start + d, UINT64)), times))
    sp = Span(
        trace_id=draw(ids16),
        span_id=draw(ids8),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        name=draw(st.text(max_size=5)),
    )
    if draw(st.booleans()):
        sp.attributes.append(
            KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))
        )
    sp.attributes.extend(draw(attributes()))
    for name, t in draw(
        st.lists(
            st.tuples(
                st.sampled_from([sc.EVENT_COMPLETION_CHUNK, "other", ""]),
                st.one_of(st.integers(0, 10**10).map(lambda d: min(start + d, UINT64)), times),
            ),
            max_size=3,
        )
    ):
        ev = sp.events.add()
        ev.name, ev.time_unix_nano = name, t
        ev.attributes.extend(draw(attributes(st.text(max_size=4))))
    sp.status.code = draw(st.sampled_from([0, 1, 2, 3, -1, 2**31 - 1]))
    return sp


@st.composite
def trace_requests(draw: Any) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(
            draw(attributes(st.sampled_from(["service.name", "host.name", *SPAN_KEYS])))
        )
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add()
            ss.scope.name = draw(st.sampled_from(["", "openlit", "wattledger", "x" * 250]))
            ss.spans.extend(draw(st.lists(spans(), max_size=4)))
    return req


METRIC_NAMES = [*METRIC_COLUMNS, "hw.errors", "process.cpu.time", ""]
point_keys = st.one_of(st.sampled_from(sorted(SAMPLE_ATTRIBUTE_KEYS) + ["tenant"]), keys)


@st.composite
def metric_requests(draw: Any) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend(draw(attributes(point_keys)))
        for _ in range(draw(st.integers(0, 2))):
            sm = rm.scope_metrics.add()
            for _ in range(draw(st.integers(0, 3))):
                m: Metric = sm.metrics.add()
                m.name = draw(st.one_of(st.sampled_from(METRIC_NAMES), st.text(max_size=8)))
                kind = draw(st.sampled_from(["gauge", "sum", "histogram", "summary", None]))
                if kind is None:
                    continue
                data = getattr(m, kind)
                for _ in range(draw(st.integers(0, 3))):
                    dp = data.data_points.add()
                    dp.time_unix_nano = draw(times)
                    dp.attributes.extend(draw(attributes(point_keys)))
                    if draw(st.booleans()):
                        dp.attributes.append(
                            KeyValue(
                                key=sc.HW_ID,
                                value=AnyValue(string_value=draw(st.sampled_from(["g0", "g1"]))),
                            )
                        )
                    dp.flags = draw(st.sampled_from([0, 0, 1]))
                    if kind in ("gauge", "sum"):
                        if draw(st.booleans()):
                            dp.as_double = draw(st.floats(allow_nan=True, allow_infinity=True))
                        else:
                            dp.as_int = draw(st.integers(*INT64))
                    else:
                        dp.count = draw(st.integers(0, 10))
    return req


@st.composite
def mutated(draw: Any, body: bytes) -> bytes:
    """``body`` with a few random byte flips, insertions, deletions or a truncation."""
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[pos:]
        elif op == "duplicate" and data:
            data += data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)
