"""Every value that enters is storable and inside its bound, or rejected per item with a reason.

Seen (issue 16): on PostgreSQL, 100 valid spans plus one whose model was ``llama\\x00`` were
answered 200 "rejected 0" and then all 101 dropped by the writer; a NUL in a metric's
``host.name`` dropped its samples; token counts up to INT64_MAX, power of 1e300 W, TTFT of
1e308 s, TDP of -5 W and cached input tokens above the input tokens were stored as given (the
last gave negative costs). And a device named by one tenant's span in the same write window as
another tenant's body became the other tenant's.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from ingest_helpers import T0_NS, add_key, make_spans, post, protobuf_body, rows
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from wattledger.ingest.mapping.requests import map_requests
from wattledger.ingest.writer import Batch

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}


def _spans_answer(r) -> ExportTraceServiceResponse:
    assert r.status_code == 200, r.text
    return ExportTraceServiceResponse.FromString(r.content)


def test_a_nul_in_one_span_rejects_that_span_and_stores_the_other_100(serve, engine, key):
    server = serve()
    attrs = [{**CHAT, "gen_ai.request.model": f"llama-{i}"} for i in range(100)]
    attrs.insert(37, {**CHAT, "gen_ai.request.model": "llama\x00"})
    r = post(server.url, "/v1/traces", protobuf_body(make_spans(attrs)), key)
    answer = _spans_answer(r)
    assert answer.partial_success.rejected_spans == 1
    assert "NUL" in answer.partial_success.error_message
    assert "gen_ai.request.model" in answer.partial_success.error_message
    server.flush()
    stored = rows(engine, "SELECT llm_model FROM inference_requests")
    assert sorted(r["llm_model"] for r in stored) == sorted(f"llama-{i}" for i in range(100))
    stats = server.service.stats
    assert stats.value("wattledger_ingest_rejected_total", signal="traces", reason="bad_string")
    assert not stats.value(
        "wattledger_ingest_rejected_total", signal="traces", reason="write_refused"
    )


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _power_body(points: list[tuple[dict[str, object], float]], host: str = "node-1") -> bytes:
    """One OTLP metrics body: resource ``host.name`` = host, one hw.power gauge point each."""
    dps = [
        NumberDataPoint(
            time_unix_nano=T0_NS + i * 1_000_000_000,
            as_double=value,
            attributes=[_kv(k, v) for k, v in attrs.items()],
        )
        for i, (attrs, value) in enumerate(points)
    ]
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=[_kv("host.name", host)]),
                scope_metrics=[
                    ScopeMetrics(
                        metrics=[Metric(name="hw.power", unit="W", gauge=Gauge(data_points=dps))]
                    )
                ],
            )
        ]
    )
    return req.SerializeToString()


def _gpu(i: int = 0, **extra: object) -> dict[str, object]:
    return {"hw.id": f"GPU-{i}", "hw.type": "gpu", "hw.vendor": "nvidia", **extra}


def test_a_nul_in_a_metrics_host_name_rejects_only_its_points(serve, engine, key):
    server = serve()
    good = post(server.url, "/v1/metrics", _power_body([(_gpu(0), 300.0)] * 3), key)
    bad = post(server.url, "/v1/metrics", _power_body([(_gpu(1), 300.0)], host="n\x00de"), key)
    assert good.status_code == bad.status_code == 200
    answer = ExportMetricsServiceResponse.FromString(bad.content)
    assert answer.partial_success.rejected_data_points == 1
    assert "host.name" in answer.partial_success.error_message
    server.flush()
    assert rows(engine, "SELECT count(*) AS n FROM power_samples") == [{"n": 3}]


BAD_SPANS = [
    pytest.param({"gen_ai.usage.input_tokens": 2**63 - 1}, "gen_ai.usage.input_tokens", id="i64"),
    pytest.param(
        {"gen_ai.usage.output_tokens": 1_000_000_001}, "gen_ai.usage.output_tokens", id="1e9+1"
    ),
    pytest.param(
        {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.cache_read.input_tokens": 200},
        "more than the input tokens",
        id="cached>input",
    ),
    pytest.param({"wattledger.ttft_s": 1e308}, "time to first token", id="ttft"),
    pytest.param({"wattledger.itl.p95_s": 1e9}, "wattledger.itl", id="itl"),
    pytest.param({"wattledger.batch_size": 10**12}, "wattledger.batch_size", id="batch"),
]


@pytest.mark.parametrize(("attrs", "named"), BAD_SPANS)
def test_values_beyond_their_bound_are_rejected_with_a_reason(serve, engine, key, attrs, named):
    server = serve()
    body = protobuf_body(make_spans([CHAT, {**CHAT, **attrs}, CHAT]))
    answer = _spans_answer(post(server.url, "/v1/traces", body, key))
    assert answer.partial_success.rejected_spans == 1
    assert named in answer.partial_success.error_message
    server.flush()
    assert rows(engine, "SELECT count(*) AS n FROM inference_requests") == [{"n": 2}]


def test_a_span_longer_than_a_day_is_rejected(serve, engine, key):
    server = serve()
    body = protobuf_body(make_spans([CHAT], duration_ns=2 * 86_400 * 10**9))
    answer = _spans_answer(post(server.url, "/v1/traces", body, key))
    assert answer.partial_success.rejected_spans == 1
    assert "longer than 86400 s" in answer.partial_success.error_message


@pytest.mark.parametrize(
    ("attrs", "value", "named"),
    [
        pytest.param({}, 1e300, "hw.power", id="power"),
        pytest.param({"wattledger.device.idle_power_w": 1e300}, 300.0, "idle_power_w", id="idle"),
        pytest.param({"wattledger.device.tdp_w": -5.0}, 300.0, "tdp_w", id="tdp"),
    ],
)
def test_device_values_beyond_their_bound_are_rejected(serve, engine, key, attrs, value, named):
    server = serve()
    r = post(server.url, "/v1/metrics", _power_body([(_gpu(0, **attrs), value)]), key)
    assert r.status_code == 200
    answer = ExportMetricsServiceResponse.FromString(r.content)
    assert answer.partial_success.rejected_data_points == 1
    assert named in answer.partial_success.error_message
    server.flush()
    assert rows(engine, "SELECT count(*) AS n FROM power_samples") == [{"n": 0}]


def test_a_device_named_in_a_shared_write_window_belongs_to_its_own_tenant(serve, engine):
    # One flush window for both bodies: the writer writes them in one batch.
    server = serve(flush_interval_s=3.0)
    key_a, key_b = add_key(engine, "tenant-a"), add_key(engine, "tenant-b")
    a = make_spans([{**CHAT, "wattledger.device.id": "gpu-of-a"}])
    b = make_spans([{**CHAT, "wattledger.device.id": "gpu-of-b"}], start_ns=T0_NS + 10**9)
    assert post(server.url, "/v1/traces", protobuf_body(a), key_a).status_code == 200
    assert post(server.url, "/v1/traces", protobuf_body(b), key_b).status_code == 200
    server.flush()
    owners = rows(engine, "SELECT device_id, tenant FROM devices ORDER BY device_id")
    assert owners == [
        {"device_id": "gpu-of-a", "tenant": "tenant-a"},
        {"device_id": "gpu-of-b", "tenant": "tenant-b"},
    ]


def test_the_writer_drops_only_the_row_the_warehouse_refuses(serve, engine, key):
    """Defence in depth: should a value the mapping let through be refused by the warehouse,
    the writer splits the batch and stores every other row (it used to drop the batch)."""
    server = serve()
    cols = {
        "trace_id": [f"{i + 1:032x}" for i in range(40)],
        "span_id": [f"{i + 1:016x}" for i in range(40)],
        "start_time_unix_nano": [T0_NS + i for i in range(40)],
        "end_time_unix_nano": [T0_NS + 10**9 + i for i in range(40)],
        "gen_ai.operation.name": ["chat"] * 40,
        "gen_ai.provider.name": ["openai"] * 40,
    }
    table = map_requests(cols, tenant="acme").table
    assert table.num_rows == 40
    # A value no backend stores, past the mapping (a mapping bug): NULL in a NOT NULL column.
    service = table["service"].to_pylist()
    service[13] = None
    i = table.schema.get_field_index("service")
    table = table.set_column(i, "service", pa.array(service, pa.string()))
    server.service.writer.submit(Batch(None, requests=table))
    server.flush()
    assert rows(engine, "SELECT count(*) AS n FROM inference_requests") == [{"n": 39}]
    stats = server.service.stats
    assert (
        stats.value("wattledger_ingest_rejected_total", signal="traces", reason="write_refused")
        == 1
    )
