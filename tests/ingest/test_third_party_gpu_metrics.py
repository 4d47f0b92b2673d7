"""GPU power from producers other than our collector, in the shapes they send (issue 21).

* OpenLIT's opentelemetry-gpu-collector: ``hw.gpu.power.draw`` (Gauge, W),
  ``hw.gpu.energy.consumed`` (Counter, J), ``hw.gpu.temperature`` (Gauge, Cel, with
  ``sensor=die|memory``), ``hw.gpu.utilization`` (with ``hw.gpu.task``), ``hw.gpu.memory.usage``;
  device attributes ``hw.id``, ``hw.name`` (``NVIDIA A100-SXM4-80GB``), ``hw.vendor``,
  ``gpu.index``, ``gpu.pci_address`` (openlit/openlit, opentelemetry-gpu-collector README, Apache
  2.0; shapes restated here, no code copied).
* NVIDIA dcgm-exporter through an OpenTelemetry Collector's Prometheus receiver: the field names
  as metric names (``DCGM_FI_DEV_POWER_USAGE`` W, ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` mJ,
  ``DCGM_FI_DEV_GPU_UTIL`` %, ``DCGM_FI_DEV_GPU_TEMP`` C, ``DCGM_FI_DEV_FB_USED`` MiB) and its
  labels as attributes (``gpu="0"``, ``UUID``, ``device="nvidia0"``, ``modelName``,
  ``Hostname``, and in Kubernetes ``pod``/``namespace``/``container``).

Both are sent by the official OpenTelemetry SDK exporter to a running ingest.
"""

from __future__ import annotations

import pytest
from ingest_helpers import rows
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from wattledger.ingest.mapping.samples import map_samples

GPU = "GPU-5fd4c1a2-7777-8888-9999-aaaabbbbcccc"


def _export(url: str, key: str, resource: dict[str, object], instruments: list) -> None:  # type: ignore[type-arg]
    exporter = OTLPMetricExporter(
        endpoint=f"{url}/v1/metrics", headers={"Authorization": f"Bearer {key}"}
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create(resource))
    meter = provider.get_meter("otelcol.gpu.collector")
    for kind, name, unit, observations in instruments:
        cb = [lambda _o, obs=observations: [Observation(v, a) for v, a in obs]]
        make = {
            "gauge": meter.create_observable_gauge,
            "counter": meter.create_observable_counter,
            "updown": meter.create_observable_up_down_counter,
        }[kind]
        make(name, callbacks=cb, unit=unit)
    provider.shutdown()


def test_openlit_gpu_collector_metrics_land_as_power_samples(serve, engine, key):
    server = serve()
    device = {
        "hw.id": GPU,
        "hw.name": "NVIDIA A100-SXM4-80GB",
        "hw.vendor": "nvidia",
        "gpu.index": 0,
        "gpu.pci_address": "0000:01:00.0",
    }
    _export(
        server.url,
        key,
        {"service.name": "opentelemetry-gpu-collector", "host.name": "gpu-node-7"},
        [
            ("gauge", "hw.gpu.power.draw", "W", [(287.5, device)]),
            ("counter", "hw.gpu.energy.consumed", "J", [(9_876_543.0, device)]),
            (
                "gauge",
                "hw.gpu.temperature",
                "Cel",
                [(58.0, {**device, "sensor": "die"}), (71.0, {**device, "sensor": "memory"})],
            ),
            (
                "gauge",
                "hw.gpu.utilization",
                "1",
                [
                    (0.83, {**device, "hw.gpu.task": "general"}),
                    (0.1, {**device, "hw.gpu.task": "encoder"}),
                ],
            ),
            ("updown", "hw.gpu.memory.usage", "By", [(61_000_000_000, device)]),
            ("gauge", "hw.gpu.clock.graphics", "MHz", [(1410.0, device)]),
        ],
    )
    server.flush()
    (s,) = rows(engine, "SELECT * FROM power_samples")
    assert s["device_id"] == GPU and s["source"] == "openlit" and s["method"] == "counter"
    assert (s["power_w"], s["energy_counter_j"]) == (287.5, 9_876_543.0)
    assert s["temperature_c"] == 58.0  # the die's, not the memory's 71
    assert s["utilization_ratio"] == 0.83  # the general task, not the encoder's
    assert s["memory_used_bytes"] == 61_000_000_000
    (d,) = rows(engine, "SELECT * FROM devices")
    assert (d["hardware_model"], d["vendor"], d["node"], d["device_index"]) == (
        "NVIDIA A100-SXM4-80GB",
        "nvidia",
        "gpu-node-7",
        0,
    )
    assert d["power_source"] == "openlit"


def test_dcgm_exporter_fields_via_a_prometheus_receiver_land_in_our_units(serve, engine, key):
    server = serve()
    labels = {
        "gpu": "3",
        "UUID": GPU,
        "device": "nvidia3",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": "dgx-12",
        "pci_bus_id": "00000000:9A:00.0",
        "pod": "vllm-llama-70b-0",
        "namespace": "inference",
        "container": "vllm",
    }
    _export(
        server.url,
        key,
        {"service.name": "dcgm-exporter"},
        [
            ("gauge", "DCGM_FI_DEV_POWER_USAGE", "", [(412.25, labels)]),
            ("counter", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "", [(123_456_789, labels)]),
            ("gauge", "DCGM_FI_DEV_GPU_UTIL", "", [(64, labels)]),
            ("gauge", "DCGM_FI_DEV_GPU_TEMP", "", [(49, labels)]),
            ("gauge", "DCGM_FI_DEV_FB_USED", "", [(70_000, labels)]),
            ("gauge", "DCGM_FI_DEV_SM_CLOCK", "", [(1980, labels)]),
        ],
    )
    server.flush()
    (s,) = rows(engine, "SELECT * FROM power_samples")
    assert s["device_id"] == GPU and s["source"] == "dcgm"
    assert s["power_w"] == 412.25
    assert s["energy_counter_j"] == pytest.approx(123_456.789)  # mJ -> J
    assert s["utilization_ratio"] == pytest.approx(0.64)  # percent -> fraction
    assert s["temperature_c"] == 49
    assert s["memory_used_bytes"] == 70_000 * 1024 * 1024  # MiB -> bytes
    (d,) = rows(engine, "SELECT * FROM devices")
    assert (d["hardware_model"], d["node"], d["device_index"], d["uuid"]) == (
        "NVIDIA H100 80GB HBM3",
        "dgx-12",
        3,
        GPU,
    )


def test_our_own_attributes_win_over_a_producers_labels() -> None:
    mapped = map_samples(
        {
            "metric": ["DCGM_FI_DEV_POWER_USAGE"],
            "time_unix_nano": [1_767_225_600 * 10**9],
            "value": [300.0],
            "hw.id": ["gpu-ours"],
            "UUID": ["GPU-theirs"],
            "wattledger.power.source": ["prometheus"],
        },
        tenant="acme",
    )
    (s,) = mapped.samples.to_pylist()
    assert s["device_id"] == "gpu-ours" and s["source"] == "prometheus" and s["power_w"] == 300.0


def test_a_bad_value_from_a_producer_is_refused_by_name() -> None:
    mapped = map_samples(
        {
            "metric": ["hw.gpu.power.draw", "DCGM_FI_DEV_GPU_UTIL"],
            "time_unix_nano": [1_767_225_600 * 10**9] * 2,
            "value": [-5.0, 250],  # negative watts; 250 % utilisation
            "hw.id": [GPU, GPU],
        },
        tenant="acme",
    )
    assert mapped.rejected == 2 and mapped.samples.num_rows == 0
    assert "hw.power" in (mapped.first_error or "")


def test_a_producer_label_of_the_wrong_type_is_refused_not_a_crash() -> None:
    """Found by the OTLP fuzzer: an array-valued ``UUID`` label crashed the alias mapping."""
    mapped = map_samples(
        {
            "metric": ["hw.power", "DCGM_FI_DEV_POWER_USAGE"],
            "time_unix_nano": [1_767_225_600 * 10**9] * 2,
            "value": [100.0, 200.0],
            "UUID": [["not", "a", "string"], {"k": 1}],
        },
        tenant="acme",
    )
    assert mapped.rejected == 2 and mapped.samples.num_rows == 0
    assert "hw.id" in (mapped.first_error or "")
