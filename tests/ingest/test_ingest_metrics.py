"""Power metrics over real HTTP: the official OTLP metric exporter in, pivoted rows out."""

from __future__ import annotations

import json

import pytest
from ingest_helpers import T0_NS, post, rows
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

GPU = "GPU-0a1b2c3d-1111-2222-3333-444455556666"


def _export(url: str, key: str, attrs: dict[str, object], readings: dict[str, float]) -> None:
    exporter = OTLPMetricExporter(
        endpoint=f"{url}/v1/metrics", headers={"Authorization": f"Bearer {key}"}
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create(
            {
                "service.name": "wattledger-collector",
                "host.name": "node-3",
                "wattledger.site": "eu-west",
            }
        ),
    )
    meter = provider.get_meter("wattledger")
    for name, value in readings.items():
        cb = [lambda _o, v=value: [Observation(v, attrs)]]
        if name == "hw.energy":
            meter.create_observable_counter(name, callbacks=cb, unit="J")
        elif name == "hw.gpu.memory.usage":
            meter.create_observable_up_down_counter(name, callbacks=cb, unit="By")
        else:
            meter.create_observable_gauge(name, callbacks=cb)
    provider.shutdown()  # collects once (one timestamp for every instrument) and exports


def test_official_exporter_power_metrics_pivot_into_one_row(serve, engine, key):
    server = serve()
    attrs = {
        "hw.id": GPU,
        "hw.type": "gpu",
        "hw.vendor": "nvidia",
        "hw.model": "H100-SXM",
        "wattledger.power.source": "nvml",
        "wattledger.energy.method": "counter",
        "wattledger.device.index": 0,
        "wattledger.device.tdp_w": 700.0,
        "wattledger.device.idle_power_w": 60.0,
    }
    readings = {
        "hw.power": 312.5,
        "hw.energy": 123456.0,
        "hw.gpu.utilization": 0.75,
        "hw.gpu.memory.usage": 42e9,
        "hw.temperature": 61.0,
        "process.cpu.time": 3.0,
    }
    _export(server.url, key, attrs, readings)
    server.flush()
    (s,) = rows(engine, "SELECT * FROM power_samples")
    assert (s["device_id"], s["source"], s["tenant"], s["method"]) == (
        GPU,
        "nvml",
        "acme",
        "counter",
    )
    assert (s["power_w"], s["energy_counter_j"], s["utilization_ratio"]) == (312.5, 123456.0, 0.75)
    assert (s["memory_used_bytes"], s["temperature_c"]) == (42_000_000_000, 61.0)
    (d,) = rows(engine, "SELECT * FROM devices")
    assert (d["vendor"], d["hardware_model"], d["node"], d["site"], d["power_source"]) == (
        "nvidia",
        "H100-SXM",
        "node-3",
        "eu-west",
        "nvml",
    )
    assert (d["device_index"], d["tdp_w"], d["idle_power_w"], d["uuid"]) == (0, 700.0, 60.0, GPU)
    assert d["last_seen_at"] == s["ts"]
    stats = server.service.stats
    assert (
        stats.value("wattledger_ingest_dropped_total", signal="metrics", reason="not_stored") == 1
    )  # process.cpu.time


def _json_points(points: list[tuple[str, int, object, dict[str, object]]]) -> bytes:
    def attr(k: str, v: object) -> dict[str, object]:
        kind = {str: "stringValue", float: "doubleValue", int: "intValue"}[type(v)]
        return {"key": k, "value": {kind: v}}

    metrics = []
    for name, t, value, attrs in points:
        dp = {"timeUnixNano": str(t), "attributes": [attr(k, v) for k, v in attrs.items()]}
        dp["asDouble" if isinstance(value, float) else "asInt"] = value
        metrics.append({"name": name, "gauge": {"dataPoints": [dp]}})
    return json.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {"attributes": [attr("host.name", "n1")]},
                    "scopeMetrics": [{"metrics": metrics}],
                }
            ]
        }
    ).encode()


def test_samples_are_idempotent_and_devices_keep_known_values(serve, engine, key):
    server = serve()
    a = {"hw.id": "rapl:package-0", "wattledger.power.source": "rapl", "hw.vendor": "intel"}
    body = _json_points(
        [
            ("hw.energy", T0_NS, 10.0, a),
            ("hw.power", T0_NS, 55.0, a),
            ("hw.energy", T0_NS + 10**9, 65.5, a),
        ]
    )
    for _ in range(2):
        r = post(server.url, "/v1/metrics", body, key, "application/json")
        assert r.status_code == 200 and r.json() == {}
    # a later report without a vendor must not erase it
    later = _json_points(
        [
            (
                "hw.power",
                T0_NS + 2 * 10**9,
                50.0,
                {"hw.id": "rapl:package-0", "wattledger.power.source": "rapl"},
            )
        ]
    )
    assert post(server.url, "/v1/metrics", later, key, "application/json").status_code == 200
    server.flush()
    got = rows(engine, "SELECT power_w, energy_counter_j, method FROM power_samples ORDER BY ts")
    assert got == [
        {"power_w": 55.0, "energy_counter_j": 10.0, "method": "counter"},
        {"power_w": None, "energy_counter_j": 65.5, "method": "counter"},
        {"power_w": 50.0, "energy_counter_j": None, "method": "power"},
    ]
    (d,) = rows(engine, "SELECT vendor, first_seen_at, last_seen_at FROM devices")
    assert d["vendor"] == "intel"
    assert (d["last_seen_at"] - d["first_seen_at"]).total_seconds() == pytest.approx(2.0)
    assert server.service.stats.value("wattledger_ingest_duplicates_total", signal="metrics") == 2


def test_invalid_points_are_refused_with_partial_success(serve, engine, key):
    server = serve()
    ok = {"hw.id": "d1", "wattledger.power.source": "nvml"}
    body = _json_points(
        [
            ("hw.power", T0_NS, 100.0, ok),
            ("hw.power", T0_NS + 1, -5.0, ok),
            ("hw.gpu.utilization", T0_NS, 1.7, ok),
            ("hw.power", T0_NS, 1.0, {"wattledger.power.source": "nvml"}),  # no hw.id
            ("hw.power", T0_NS + 2, 1.0, {**ok, "wattledger.energy.method": "guess"}),
        ]
    )
    r = post(server.url, "/v1/metrics", body, key, "application/json")
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "4"
    assert "point 1 of hw.power: value -5.0 is outside" in partial["errorMessage"]
    server.flush()
    assert rows(engine, "SELECT power_w FROM power_samples") == [{"power_w": 100.0}]


def test_protobuf_metrics_answer_in_protobuf(serve, key):
    server = serve()
    r = post(server.url, "/v1/metrics", b"", key)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    assert not ExportMetricsServiceResponse.FromString(r.content).HasField("partial_success")
