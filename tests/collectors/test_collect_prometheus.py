"""Scraping vLLM, TGI, dcgm-exporter and Kepler recordings (most through real HTTP)."""

from __future__ import annotations

import json
import logging

import pytest
from collect_support import DATA, ManualClock, free_port, text_server

from wattledger.collectors.sources.prometheus import PrometheusSource

H100_0 = "GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f"
H100_1 = "GPU-a3e1f5b2-77c0-4e1d-9c2a-6b0f3d8e4a19"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


class Pages:
    """Serves one recording at /metrics; tests switch recordings between scrapes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = 200
        self.info: dict[str, str] | None = None

    def __call__(self, path: str) -> tuple[int, str]:
        if path == "/info":
            return (200, json.dumps(self.info)) if self.info else (404, "not found")
        if path != "/metrics":
            return 404, "not found"
        return self.status, (DATA / self.name).read_text()


def test_dcgm_exporter_energy_counter_and_units() -> None:
    pages, clock = Pages("dcgm_metrics_1.txt"), ManualClock()
    with text_server(pages) as base:
        source = PrometheusSource(base + "/metrics", clock_ns=clock)
        first = {r.device_id: r for r in source.read()}
        pages.name = "dcgm_metrics_2.txt"
        clock.advance(10.0)
        second = {r.device_id: r for r in source.read()}
        source.close()
    assert set(second) == {H100_0, H100_1}
    busy = second[H100_1]
    assert busy.method == "counter"
    assert busy.energy_j == pytest.approx(1_810_348.461)  # mJ -> J, as nvidia-smi shows
    assert busy.energy_j - first[H100_1].energy_j == pytest.approx(612.447 * 10, rel=1e-6)
    assert busy.power_w == pytest.approx(612.447)
    assert busy.utilization_ratio == pytest.approx(0.98)
    assert busy.memory_used_bytes == 77165 * 2**20  # MiB -> bytes
    assert busy.memory_total_bytes == (77165 + 3914) * 2**20
    assert busy.temperature_c == 62.0 and busy.clock_mhz == 1980.0
    info = {d.device_id: d for d in source.devices()}[H100_1]
    assert (info.model, info.name, info.index, info.source) == (
        "NVIDIA H100 80GB HBM3",
        "gpu1",
        1,
        "prometheus",
    )


def test_vllm_tokens_and_latency_histograms() -> None:
    pages, clock = Pages("vllm_metrics_1.txt"), ManualClock()
    with text_server(pages) as base:
        source = PrometheusSource(base + "/metrics", clock_ns=clock)
        assert source.read() == []  # an engine has no devices
        (stats,) = source.engine_stats()
        source.close()
    assert (stats.engine, stats.model) == ("vllm", MODEL)
    assert stats.endpoint == base.removeprefix("http://")
    text = (DATA / "vllm_metrics_1.txt").read_text()
    assert f'vllm:generation_tokens_total{{engine="0",model_name="{MODEL}"}} 23054.0' in text
    assert stats.generation_tokens == 23054.0 and stats.prompt_tokens == 97473.0
    assert stats.requests == 120.0  # stop + length
    ttft = stats.ttft
    assert ttft is not None
    assert ttft.count == 120 and sum(ttft.bucket_counts) == 120  # per-bucket, not cumulative
    assert len(ttft.bucket_counts) == len(ttft.explicit_bounds) + 1
    assert ttft.explicit_bounds[0] == 0.001 and ttft.explicit_bounds[-1] == 2560.0
    assert ttft.bucket_counts[4] == 19  # le=0.04 cumulative 19, le=0.02 cumulative 0
    assert stats.itl is not None and stats.itl.count == sum(stats.itl.bucket_counts)


def test_tgi_token_totals_come_from_histogram_sums_and_model_from_info() -> None:
    """Quirk: TGI has no token counters and no TTFT histogram; /info names the model."""
    pages = Pages("tgi_metrics.txt")
    pages.info = {"model_id": "bigscience/bloom-560m"}
    with text_server(pages) as base:
        source = PrometheusSource(base + "/metrics")
        source.read()
        (stats,) = source.engine_stats()
        source.close()
    assert (stats.engine, stats.model, stats.requests) == ("tgi", "bigscience/bloom-560m", 80)
    assert stats.ttft is None
    text = (DATA / "tgi_metrics.txt").read_text()
    generated_sum = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("tgi_request_generated_tokens_sum")
    )
    assert stats.generation_tokens == generated_sum > 0
    # TGI's mean time per token is per request: the per-request TPOT, not per-token ITL
    assert stats.itl is None and stats.tpot is not None and stats.tpot.count == 80
    assert (stats.requests_running, stats.requests_waiting) == (5.0, 0.0)


def test_engine_restart_starts_a_new_series() -> None:
    pages, wall = Pages("vllm_metrics_2.txt"), [1_700_000_000_000_000_000]
    with text_server(pages) as base:
        source = PrometheusSource(base + "/metrics", wall_ns=lambda: wall[0])
        source.read()
        start1 = source.engine_stats()[0].start_time_unix_nano
        wall[0] += 60_000_000_000
        source.read()
        assert source.engine_stats()[0].start_time_unix_nano == start1  # same series
        pages.name = "vllm_metrics_1.txt"  # counters went down: vLLM restarted
        wall[0] += 60_000_000_000
        source.read()
        assert source.engine_stats()[0].start_time_unix_nano == wall[0]
        source.close()


def test_unreachable_endpoint_logs_once_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    source = PrometheusSource(f"http://127.0.0.1:{free_port()}/metrics", timeout_s=0.5)
    for _ in range(3):
        assert source.read() == [] and source.engine_stats() == []
    assert sum("Cannot scrape" in m for m in caplog.messages) == 1
    source.close()


def test_http_error_and_garbage_are_survived(caplog: pytest.LogCaptureFixture) -> None:
    pages = Pages("dcgm_metrics_1.txt")
    with text_server(pages) as base:
        source = PrometheusSource(base + "/metrics")
        pages.status = 503
        assert source.read() == []
        pages.status = 200
        assert len(source.read()) == 2
        source.close()
    bad = PrometheusSource("http://x/metrics", fetch=lambda url: "this is { not exposition")
    assert bad.read() == []


def test_power_only_dcgm_is_integrated() -> None:
    """Without DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION in the counter set, power is integrated."""
    text = "\n".join(
        line
        for line in (DATA / "dcgm_metrics_1.txt").read_text().splitlines()
        if "TOTAL_ENERGY" not in line
    )
    clock = ManualClock()
    source = PrometheusSource("http://x/metrics", fetch=lambda url: text, clock_ns=clock)
    source.read()
    clock.advance(30.0)  # dcgm-exporter's default collect interval
    readings = {r.device_id: r for r in source.read()}
    assert readings[H100_1].method == "power"
    assert readings[H100_1].energy_j == pytest.approx(612.447 * 10.0)  # gap bounded at 10 s


def _scrape(*names: str, clock: ManualClock | None = None) -> PrometheusSource:
    """Read recordings in order through one source (``fetch`` stands in for HTTP)."""
    pages = iter(names)
    return PrometheusSource(
        "http://node:9400/metrics",
        fetch=lambda url: (DATA / next(pages)).read_text(),
        clock_ns=clock or ManualClock(),
        wall_ns=lambda: 1_700_000_000_000_000_000,
    )


def _bucket_total(text: str, series: str) -> float:
    return next(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f"{series}_count{{")
    )


def test_vllm_per_request_series_phases_queue_and_kv_cache() -> None:
    """vLLM v1: per-request TPOT, prefill/decode/queue histograms, running/waiting, KV cache."""
    source = _scrape("vllm_metrics_2.txt")
    source.read()
    (stats,) = source.engine_stats()
    text = (DATA / "vllm_metrics_2.txt").read_text()
    assert stats.tpot is not None and stats.itl is not None
    # one observation per finished request, not one per token
    assert (
        stats.tpot.count == 160 == _bucket_total(text, "vllm:request_time_per_output_token_seconds")
    )
    assert stats.itl.count == _bucket_total(text, "vllm:inter_token_latency_seconds") > 160
    assert stats.tpot.explicit_bounds[0] == 0.01 and stats.tpot.explicit_bounds[-1] == 80.0
    for hist, series in (
        (stats.prefill_time, "vllm:request_prefill_time_seconds"),
        (stats.decode_time, "vllm:request_decode_time_seconds"),
        (stats.queue_time, "vllm:request_queue_time_seconds"),
    ):
        assert hist is not None and hist.count == 160 == _bucket_total(text, series)
        assert hist.explicit_bounds[:3] == (0.3, 0.5, 0.8)  # vLLM's request_latency_buckets
    # decode time per request / generated tokens agrees with the ITL sum (same observations)
    assert stats.decode_time is not None
    assert stats.decode_time.sum == pytest.approx(stats.itl.sum, rel=1e-9)
    assert (stats.requests_running, stats.requests_waiting) == (7.0, 0.0)
    assert stats.kv_cache_usage_ratio == pytest.approx(0.1834)


def test_older_vllm_names_are_the_fallback() -> None:
    """vLLM V0: gpu_cache_usage_perc and per-token time_per_output_token_seconds only."""
    source = _scrape("vllm_metrics_v0.txt")
    source.read()
    (stats,) = source.engine_stats()
    assert stats.tpot is None and stats.itl is not None and stats.itl.count > 0
    assert stats.kv_cache_usage_ratio == pytest.approx(0.4127)
    assert (stats.requests_running, stats.requests_waiting) == (3.0, 2.0)
    assert stats.prefill_time is None and stats.queue_time is None


def test_dcgm_kubernetes_mode_keeps_the_pod_of_each_gpu() -> None:
    """dcgm-exporter's Kubernetes mode labels a GPU with the pod the device plugin gave it."""
    source = _scrape("dcgm_metrics_1.txt")
    readings = {r.device_id: r for r in source.read()}
    assert readings[H100_0].attributes == ()  # no pod holds it
    assert dict(readings[H100_1].attributes) == {
        "k8s.container.name": "vllm",
        "k8s.namespace.name": "llm",
        "k8s.pod.name": "vllm-llama-8b-6f7d9c-x2x4k",
    }
    assert readings[H100_1].method == "counter"


def test_a_gpu_shared_by_pods_is_counted_once_and_lists_them() -> None:
    """Quirk: with time-slicing dcgm-exporter repeats each GPU series once per pod."""
    source = _scrape("dcgm_metrics_shared.txt")
    (reading,) = source.read()
    assert reading.device_id == H100_1 and reading.power_w == pytest.approx(388.12)
    assert reading.energy_j == pytest.approx(1_812_233.991)  # once, not once per pod
    assert dict(reading.attributes) == {
        "wattledger.gpu.shared_pods": "llm/vllm-llama-8b-6f7d9c-x2x4k,search/tei-5b8c-qq7z"
    }


def test_kepler_node_zones_are_devices_and_pod_shares_are_not() -> None:
    clock = ManualClock()
    source = _scrape("kepler_metrics_1.txt", "kepler_metrics_2.txt", clock=clock)
    first = {r.device_id: r for r in source.read()}
    clock.advance(10.0)
    second = {r.device_id: r for r in source.read()}
    # package and DRAM only: core lies inside package (no double counting, as RAPL)
    assert set(second) == {"gpu-node-7:kepler:intel-rapl:0", "gpu-node-7:kepler:intel-rapl:0:1"}
    package = second["gpu-node-7:kepler:intel-rapl:0"]
    assert package.method == "counter" and package.power_w == 95.5
    assert package.energy_j - first["gpu-node-7:kepler:intel-rapl:0"].energy_j == pytest.approx(
        182345.25 * 0.01, rel=1e-6
    )
    kinds = {d.device_id: d.hw_type for d in source.devices()}
    assert kinds == {
        "gpu-node-7:kepler:intel-rapl:0": "cpu",
        "gpu-node-7:kepler:intel-rapl:0:1": "memory",
    }
    shares = {(w.pod_name, w.zone): w for w in source.workload_energy()}
    assert len(shares) == 4
    vllm = shares[("vllm-llama-8b-6f7d9c-x2x4k", "package")]
    assert (vllm.namespace, vllm.pod_uid, vllm.state, vllm.node) == (
        "llm",
        "1f7d1c2e-0b5e-4c59-9d56-2a4c0f1b7e10",
        "running",
        "gpu-node-7",
    )
    assert vllm.energy_j == pytest.approx(61234.5 * 1.01) and vllm.power_w == 40.1
    assert (
        vllm.hw_type == "cpu" and shares[("vllm-llama-8b-6f7d9c-x2x4k", "dram")].hw_type == "memory"
    )
    assert vllm.start_time_unix_nano == 1_700_000_000_000_000_000


def test_old_kepler_container_series_are_summed_per_pod() -> None:
    """Kepler 0.7 has no pod series: its containers' dynamic and idle joules add up per pod."""
    source = _scrape("kepler_metrics_old.txt")
    assert source.read() == []  # no node series in this recording
    shares = {w.zone: w for w in source.workload_energy()}
    assert shares["package"].energy_j == pytest.approx(1200.5 + 30.25)
    assert shares["package"].pod_name == "vllm-llama-8b-6f7d9c-x2x4k"
    assert shares["package"].namespace == "llm" and shares["dram"].state is None
