"""OTLP export with the official exporter to a real HTTP server that decodes the protobuf."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from collect_support import DATA, ManualClock, OtlpReceiver, attrs_of, free_port, otlp_receiver

from wattledger.collectors import semconv as sc
from wattledger.collectors.collector.run import Collector
from wattledger.collectors.settings import CollectorSettings
from wattledger.collectors.sources.fake import FakeSource
from wattledger.collectors.sources.fakes.nvml import FakeGpu, FakeNvml
from wattledger.collectors.sources.nvml import NvmlSource
from wattledger.collectors.sources.prometheus import PrometheusSource

UUID0 = "GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f"
UUID1 = "GPU-a3e1f5b2-77c0-4e1d-9c2a-6b0f3d8e4a19"
WALL0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
CUMULATIVE = 2  # AggregationTemporality.CUMULATIVE in the OTLP proto


class Clocks:
    """A monotonic and a wall clock moving together."""

    def __init__(self) -> None:
        self.mono = ManualClock()
        self.wall_start = WALL0 - self.mono.now_ns

    def wall(self) -> int:
        return self.mono.now_ns + self.wall_start

    def advance(self, seconds: float) -> None:
        self.mono.advance(seconds)


def nvml_collector(
    receiver_url: str, clocks: Clocks, **settings: object
) -> tuple[FakeNvml, Collector]:
    fake = FakeNvml(
        [
            FakeGpu(uuid=UUID0, power_w=350.0, energy_mj=1_000_000.0, utilization_gpu_pct=90),
            FakeGpu(uuid=UUID1, power_w=80.0, energy_mj=2_000_000.0, utilization_gpu_pct=0),
        ],
        clock_ns=clocks.mono,
    )
    source = NvmlSource(fake.module, clock_ns=clocks.mono)
    cfg = CollectorSettings(endpoint=receiver_url, site="dc-eu-1", **settings)  # type: ignore[arg-type]
    env = {"K8S_POD_NAME": "vllm-0", "K8S_NODE_NAME": "gpu-node-7", "POD_NAMESPACE": "llm"}
    collector = Collector(
        cfg,
        [source],
        api_key="wl_test_key",
        host="gpu-node-7",
        environ=env,
        clock_ns=clocks.mono,
        wall_ns=clocks.wall,
    )
    return fake, collector


def test_every_sample_is_exported_with_semantic_convention_names_and_units() -> None:
    clocks = Clocks()
    with otlp_receiver() as rx:
        _, collector = nvml_collector(rx.url, clocks)
        readings = []
        for _ in range(10):  # 0.5 s sampling, one export: all 10 samples must arrive
            readings.append({r.device_id: r for r in collector.sampler.sample().readings})
            clocks.advance(0.5)
        assert collector.exporter.send_pending()
        collector.exporter.shutdown(1.0)
    (req,) = rx.received
    assert req.path == "/v1/metrics"
    assert req.headers["authorization"] == "Bearer wl_test_key"
    assert req.headers["content-type"] == "application/x-protobuf"
    rm = req.request.resource_metrics[0]
    resource = attrs_of(rm.resource.attributes)
    assert resource[sc.SERVICE_NAME] == "wattledger-collector"
    assert resource[sc.HOST_NAME] == "gpu-node-7"
    assert resource[sc.K8S_POD_NAME] == "vllm-0" and resource[sc.K8S_NODE_NAME] == "gpu-node-7"
    assert resource[sc.K8S_NAMESPACE_NAME] == "llm" and resource[sc.WL_SITE] == "dc-eu-1"
    scope = rm.scope_metrics[0]
    assert scope.scope.name == sc.SCOPE_NAME and scope.schema_url == sc.SCHEMA_URL
    metrics = {m.name: m for m in scope.metrics}
    units = {name: m.unit for name, m in metrics.items()}
    assert units == {
        sc.HW_ENERGY: "J",
        sc.HW_POWER: "W",
        sc.HW_GPU_UTILIZATION: "1",
        sc.HW_GPU_MEMORY_USAGE: "By",
        sc.HW_GPU_MEMORY_LIMIT: "By",
        sc.HW_TEMPERATURE: "Cel",
    }
    energy = metrics[sc.HW_ENERGY].sum
    assert energy.is_monotonic and energy.aggregation_temporality == CUMULATIVE
    memory = metrics[sc.HW_GPU_MEMORY_USAGE].sum
    assert not memory.is_monotonic and memory.aggregation_temporality == CUMULATIVE
    assert metrics[sc.HW_POWER].WhichOneof("data") == "gauge"
    for name in (sc.HW_ENERGY, sc.HW_POWER, sc.HW_GPU_UTILIZATION, sc.HW_TEMPERATURE):
        assert len(rx.points(name)) == 20  # 10 cycles x 2 GPUs

    energy_points = rx.points(sc.HW_ENERGY)
    attrs, first = energy_points[0]
    assert attrs == {
        sc.HW_ID: UUID0,
        sc.HW_TYPE: "gpu",
        sc.HW_VENDOR: "nvidia",
        sc.HW_MODEL: "NVIDIA H100 80GB HBM3",
        sc.HW_NAME: "gpu0",
        sc.WL_POWER_SOURCE: "nvml",
        sc.WL_ENERGY_METHOD: "counter",
        sc.WL_DEVICE_INDEX: 0,
        sc.WL_TDP_W: 700.0,
    }
    assert first.time_unix_nano == WALL0 and first.start_time_unix_nano == WALL0
    gpu0 = [p for a, p in energy_points if a[sc.HW_ID] == UUID0]
    assert [p.as_double for p in gpu0] == pytest.approx([r[UUID0].energy_j for r in readings])
    assert [p.time_unix_nano for p in gpu0] == [WALL0 + i * 500_000_000 for i in range(10)]
    assert all(p.start_time_unix_nano == WALL0 for p in gpu0)
    assert gpu0[-1].as_double - gpu0[0].as_double == pytest.approx(350.0 * 4.5, abs=0.01)

    # One row per (device, timestamp, source): every instrument of a device in a cycle
    # carries the same timestamp.
    times = {
        name: sorted(p.time_unix_nano for a, p in rx.points(name) if a[sc.HW_ID] == UUID1)
        for name in (sc.HW_ENERGY, sc.HW_POWER, sc.HW_GPU_MEMORY_USAGE, sc.HW_TEMPERATURE)
    }
    assert len({tuple(t) for t in times.values()}) == 1
    util = [(a, p) for a, p in rx.points(sc.HW_GPU_UTILIZATION) if a[sc.HW_ID] == UUID0]
    assert util[0][0][sc.HW_GPU_TASK] == "general" and util[0][1].as_double == pytest.approx(0.9)
    mem = rx.points(sc.HW_GPU_MEMORY_USAGE)[0][1]
    assert mem.as_int == 20 * 2**30


def test_engine_metrics_are_exported_as_counters_and_histograms() -> None:
    clocks = Clocks()
    pages = iter([DATA / "vllm_metrics_1.txt", DATA / "vllm_metrics_2.txt"])
    scrape = PrometheusSource(
        "http://vllm.llm.svc:8000/metrics",
        fetch=lambda url: next(pages).read_text(),
        clock_ns=clocks.mono,
        wall_ns=clocks.wall,
        min_interval_s=0.0,
    )
    with otlp_receiver() as rx:
        collector = Collector(
            CollectorSettings(endpoint=rx.url),
            [scrape],
            host="h",
            environ={},
            clock_ns=clocks.mono,
            wall_ns=clocks.wall,
        )
        collector.sampler.sample()
        clocks.advance(5.0)
        collector.sampler.sample()
        assert collector.exporter.send_pending()
    tokens = rx.points(sc.WL_ENGINE_GENERATION_TOKENS)
    assert [p.as_double for _, p in tokens] == [23054.0, 35612.0]
    attrs = tokens[0][0]
    assert attrs == {
        sc.GEN_AI_PROVIDER_NAME: "vllm",  # required on gen_ai.server.* (GenAI conventions)
        sc.GEN_AI_OPERATION_NAME: "text_completion",
        sc.WL_ENGINE: "vllm",
        sc.GEN_AI_REQUEST_MODEL: "meta-llama/Llama-3.1-8B-Instruct",
        sc.SERVER_ADDRESS: "vllm.llm.svc",
        sc.SERVER_PORT: 8000,
    }
    assert all(p.start_time_unix_nano == WALL0 for _, p in tokens)
    (ttft_metric,) = rx.metrics(sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN)
    assert ttft_metric.unit == "s"
    assert ttft_metric.histogram.aggregation_temporality == CUMULATIVE
    last = ttft_metric.histogram.data_points[-1]
    assert last.count == 160 and sum(last.bucket_counts) == 160
    assert list(last.explicit_bounds)[:3] == [0.001, 0.005, 0.01]
    assert not last.HasField("min") and not last.HasField("max")
    assert len(rx.points(sc.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN)) == 2
    assert rx.points(sc.WL_ENGINE_PROMPT_TOKENS)[1][1].as_double == 144237.0


def test_unreachable_endpoint_drops_oldest_counts_and_recovers() -> None:
    """A closed port: no crash, bounded memory, the newest samples survive and arrive later."""
    clocks, port = Clocks(), free_port()
    _, collector = nvml_collector(
        f"http://127.0.0.1:{port}",
        clocks,
        max_buffered_samples=5,
        max_batch_samples=2,
        export_timeout_s=0.3,
    )
    for _ in range(12):
        collector.sampler.sample()
        clocks.advance(0.5)
    assert collector.exporter.send_pending() is False  # refused, but no exception
    assert len(collector.buffer) == 5 and collector.buffer.dropped == 7
    assert collector.exporter.stats.failed_attempts == 1
    with otlp_receiver(port=port) as rx:
        assert collector.exporter.send_pending()
        collector.exporter.shutdown(1.0)
    assert collector.exporter.stats.exported_cycles == 5
    assert len(rx.received) == 3  # 5 cycles in batches of 2
    times = sorted({p.time_unix_nano for _, p in rx.points(sc.HW_ENERGY)})
    assert times == [WALL0 + i * 500_000_000 for i in range(7, 12)]  # the newest five
    dropped = rx.points(sc.WL_COLLECTOR_DROPPED)
    assert dropped and all(p.as_int == 7 for _, p in dropped)


def test_server_errors_are_retried_and_bad_requests_are_not() -> None:
    clocks = Clocks()
    with otlp_receiver(status=503) as rx:
        _, collector = nvml_collector(rx.url, clocks, export_timeout_s=0.3)
        collector.sampler.sample()
        assert collector.exporter.send_pending() is False
        assert len(collector.buffer) == 1  # kept for a retry
        rx.status = 400
        assert collector.exporter.send_pending() is True  # dropped: retrying cannot help
        assert len(collector.buffer) == 0 and collector.exporter.stats.rejected_cycles == 1
        rx.status = 200
        collector.sampler.sample()
        assert collector.exporter.send_pending()
        assert len(rx.received) == 1


def test_running_collector_exports_everything_and_flushes_on_stop(
    receiver: OtlpReceiver,
) -> None:
    settings = CollectorSettings(endpoint=receiver.url, interval_s=0.02, export_interval_s=0.1)
    collector = Collector(settings, [FakeSource(200.0, devices=3, host="h")], host="h", environ={})
    thread = threading.Thread(target=collector.run)
    thread.start()
    assert receiver.event.wait(5.0)  # the periodic export happened
    time.sleep(0.1)
    collector.stop()
    thread.join(10.0)
    assert not thread.is_alive()
    stats = collector.exporter.stats
    assert stats.exported_cycles == collector.sampler.cycles > 3  # incl. the final sample
    assert len(collector.buffer) == 0
    points = receiver.points(sc.HW_ENERGY)
    assert len(points) == 3 * collector.sampler.cycles
    for device in ("h:fake:0", "h:fake:1", "h:fake:2"):
        series = [p for a, p in points if a[sc.HW_ID] == device]
        t = [p.time_unix_nano for p in series]
        assert t == sorted(t) and len(set(t)) == len(t)  # monotonic clocks, UTC stamps
        values = [p.as_double for p in series]
        assert values == sorted(values)


def test_shutdown_with_the_endpoint_down_gives_up_in_time() -> None:
    settings = CollectorSettings(
        endpoint=f"http://127.0.0.1:{free_port()}",
        interval_s=0.02,
        export_interval_s=0.05,
        export_timeout_s=0.2,
        shutdown_timeout_s=0.5,
    )
    collector = Collector(settings, [FakeSource(200.0, host="h")], host="h", environ={})
    thread = threading.Thread(target=collector.run)
    thread.start()
    time.sleep(0.2)
    collector.stop()
    thread.join(10.0)
    assert not thread.is_alive()
    assert len(collector.buffer) > 0  # undelivered, reported, not lost silently
    assert collector.exporter.stats.exported_cycles == 0


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as rx:
        yield rx


def test_cached_encoding_equals_the_official_encoder() -> None:
    """The exporter encodes requests itself (attributes cached per device); the result must
    be exactly what the official encoder makes of the SDK's MetricsData."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    from wattledger.collectors.collector.otlp import OtlpEncoder, build_resource
    from wattledger.collectors.sources.fakes.nvml import FakeMigInstance

    clocks = Clocks()
    fake = FakeNvml(
        [FakeGpu(uuid=UUID0, mig=[FakeMigInstance(1)]), FakeGpu(uuid=UUID1)],
        clock_ns=clocks.mono,
    )
    pages = iter([DATA / "vllm_metrics_1.txt", DATA / "tgi_metrics.txt"])
    scrape = PrometheusSource(
        "http://vllm:8000/metrics",
        fetch=lambda url: next(pages).read_text(),
        clock_ns=clocks.mono,
        min_interval_s=0.0,
    )
    node_pages = iter(
        [
            (DATA / "dcgm_metrics_1.txt").read_text() + (DATA / "kepler_metrics_1.txt").read_text(),
            (DATA / "dcgm_metrics_2.txt").read_text() + (DATA / "kepler_metrics_2.txt").read_text(),
        ]
    )
    node_scrape = PrometheusSource(
        "http://gpu-node-7:9400/metrics",
        fetch=lambda url: next(node_pages),
        clock_ns=clocks.mono,
        min_interval_s=0.0,
    )
    collector = Collector(
        CollectorSettings(endpoint="http://127.0.0.1:9"),
        [NvmlSource(fake.module, clock_ns=clocks.mono), scrape, node_scrape],
        host="h",
        environ={"K8S_POD_NAME": "p"},
        clock_ns=clocks.mono,
        wall_ns=clocks.wall,
    )
    cycles = []
    for _ in range(2):
        cycles.append(collector.sampler.sample())
        clocks.advance(0.5)
    encoder = OtlpEncoder(build_resource("h", "site", {"K8S_POD_NAME": "p"}))
    start_times = collector.sampler.start_times
    dropped = (WALL0, WALL0 + 1, 3)
    ours = encoder.request(cycles, start_times, dropped)
    official = encode_metrics(encoder.metrics_data(cycles, start_times, dropped))
    assert ours == official
    assert ours.SerializeToString(deterministic=True) == official.SerializeToString(
        deterministic=True
    )
    names = {m.name for m in ours.resource_metrics[0].scope_metrics[0].metrics}
    assert {
        sc.HW_ENERGY,
        sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
        sc.WL_COLLECTOR_DROPPED,
        sc.WL_ENGINE_REQUESTS_RUNNING,
        sc.WL_ENGINE_KV_CACHE_USAGE,
        sc.WL_ENGINE_PREFILL_TIME,
        sc.WL_K8S_POD_ENERGY,
        sc.WL_K8S_POD_POWER,
    } <= names
    collector.exporter.shutdown(0.0)


def test_vllm_phases_queue_and_kv_cache_are_exported() -> None:
    clocks = Clocks()
    scrape = PrometheusSource(
        "http://vllm.llm.svc:8000/metrics",
        fetch=lambda url: (DATA / "vllm_metrics_2.txt").read_text(),
        clock_ns=clocks.mono,
        wall_ns=clocks.wall,
    )
    with otlp_receiver() as rx:
        collector = Collector(
            CollectorSettings(endpoint=rx.url), [scrape], host="h", environ={}, clock_ns=clocks.mono
        )
        collector.sampler.sample()
        assert collector.exporter.send_pending()
    (tpot,) = rx.points(sc.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN)
    (itl,) = rx.points(sc.WL_ENGINE_INTER_TOKEN_LATENCY)
    assert tpot[1].count == 160 and itl[1].count > 160  # per request vs per token
    for name in (sc.WL_ENGINE_PREFILL_TIME, sc.WL_ENGINE_DECODE_TIME, sc.WL_ENGINE_QUEUE_TIME):
        (metric,) = rx.metrics(name)
        assert metric.unit == "s" and metric.histogram.data_points[0].count == 160
    (running,) = rx.metrics(sc.WL_ENGINE_REQUESTS_RUNNING)
    assert not running.sum.is_monotonic and running.sum.data_points[0].as_double == 7.0
    (kv,) = rx.points(sc.WL_ENGINE_KV_CACHE_USAGE)
    assert kv[1].as_double == pytest.approx(0.1834)
    assert kv[0][sc.GEN_AI_PROVIDER_NAME] == "vllm"


def test_gpu_pods_and_kepler_pod_energy_are_exported() -> None:
    clocks = Clocks()
    pages = iter([DATA / "dcgm_metrics_1.txt", DATA / "kepler_metrics_1.txt"])
    dcgm = PrometheusSource(
        "http://gpu-node-7:9400/metrics",
        fetch=lambda url: next(pages).read_text(),
        clock_ns=clocks.mono,
        wall_ns=clocks.wall,
        min_interval_s=0.0,
    )
    with otlp_receiver() as rx:
        collector = Collector(
            CollectorSettings(endpoint=rx.url), [dcgm], host="h", environ={}, clock_ns=clocks.mono
        )
        collector.sampler.sample()
        collector.sampler.sample()  # the second page is Kepler's
        assert collector.exporter.send_pending()
    by_gpu = {a[sc.HW_ID]: a for a, _ in rx.points(sc.HW_ENERGY)}
    assert by_gpu[UUID1][sc.K8S_POD_NAME] == "vllm-llama-8b-6f7d9c-x2x4k"
    assert by_gpu[UUID1][sc.K8S_NAMESPACE_NAME] == "llm"
    assert by_gpu[UUID1][sc.K8S_CONTAINER_NAME] == "vllm"
    assert sc.K8S_POD_NAME not in by_gpu[UUID0]
    assert by_gpu["gpu-node-7:kepler:intel-rapl:0"][sc.HW_TYPE] == "cpu"
    shares = {
        (a[sc.K8S_POD_NAME], a[sc.WL_ENERGY_ZONE]): (a, p)
        for a, p in rx.points(sc.WL_K8S_POD_ENERGY)
    }
    attrs, point = shares[("vllm-llama-8b-6f7d9c-x2x4k", "package")]
    assert point.as_double == 61234.5 and point.start_time_unix_nano == clocks.wall()
    assert attrs[sc.WL_ENERGY_METHOD] == "modeled" and attrs[sc.WL_ENERGY_EXPORTER] == "kepler"
    assert attrs[sc.K8S_NODE_NAME] == "gpu-node-7" and attrs[sc.K8S_NAMESPACE_NAME] == "llm"
    assert attrs[sc.K8S_POD_UID] == "1f7d1c2e-0b5e-4c59-9d56-2a4c0f1b7e10"
    assert attrs[sc.WL_WORKLOAD_STATE] == "running" and attrs[sc.HW_TYPE] == "cpu"
    (power,) = [p for a, p in rx.points(sc.WL_K8S_POD_POWER) if a == attrs]
    assert power.as_double == 40.1
