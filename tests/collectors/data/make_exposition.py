"""Regenerate the Prometheus exposition recordings in this folder (see README.md).

Usage: python tests/collectors/data/make_exposition.py /path/to/AzureLLMInferenceTrace_conv.csv

vLLM's text is produced by ``prometheus_client`` itself (the library vLLM exposes metrics
with) from vLLM v1's metric names, help texts, labels and histogram buckets, observing the
prompt/generated token counts of the first requests of the Azure LLM conversation trace
(CC-BY 4.0, Patel et al., ISCA 2024). Latencies are drawn from fixed-seed distributions.
dcgm-exporter and TGI texts are written in those exporters' own formats (Go text renderer;
Rust ``metrics-exporter-prometheus``) by the functions below.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import metrics as _metrics

HERE = Path(__file__).parent
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]  # fmt: skip
ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
               7.5, 10.0, 20.0, 40.0, 80.0]  # fmt: skip
#: vLLM v1 ``request_latency_buckets`` (vllm/v1/metrics/loggers.py): e2e, queue, prefill, decode.
REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                           50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]  # fmt: skip


def vllm_text(rows: list[tuple[int, int]], seed: int) -> str:
    """The /metrics page of a vLLM v1 server after serving ``rows`` (prompt, generated)."""
    _metrics.disable_created_metrics()
    rng = random.Random(seed)
    reg = CollectorRegistry()
    labels = ["model_name", "engine"]
    running = Gauge("vllm:num_requests_running", "Number of requests in model execution "
                    "batches.", labels, registry=reg)  # fmt: skip
    waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
                    labels, registry=reg)  # fmt: skip
    kv = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels,
               registry=reg)  # fmt: skip
    prompt = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels,
                     registry=reg)  # fmt: skip
    gen = Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels,
                  registry=reg)  # fmt: skip
    success = Counter("vllm:request_success", "Count of successfully processed requests.",
                      [*labels, "finished_reason"], registry=reg)  # fmt: skip
    ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in "
                     "seconds.", labels, buckets=TTFT_BUCKETS, registry=reg)  # fmt: skip
    itl = Histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in "
                    "seconds.", labels, buckets=ITL_BUCKETS, registry=reg)  # fmt: skip
    tpot = Histogram("vllm:request_time_per_output_token_seconds", "Histogram of "
                     "time_per_output_token_seconds per request.", labels, buckets=ITL_BUCKETS,
                     registry=reg)  # fmt: skip
    phases = {
        name: Histogram(
            f"vllm:{name}_seconds", help_, labels, buckets=REQUEST_LATENCY_BUCKETS, registry=reg
        )
        for name, help_ in (
            ("e2e_request_latency", "Histogram of e2e request latency in seconds."),
            ("request_queue_time", "Histogram of time spent in WAITING phase for request."),
            ("request_prefill_time", "Histogram of time spent in PREFILL phase for request."),
            ("request_decode_time", "Histogram of time spent in DECODE phase for request."),
        )
    }
    # Queue times come from their own generator so the older series keep their values.
    queue_rng = random.Random(seed + 1000)
    lv = (MODEL, "0")
    for ctx, out in rows:
        prompt.labels(*lv).inc(ctx)
        gen.labels(*lv).inc(out)
        success.labels(*lv, "stop" if rng.random() < 0.9 else "length").inc()
        first = 0.02 + ctx * 0.00012 * rng.lognormvariate(0, 0.3)
        ttft.labels(*lv).observe(first)
        decode = 0.0
        for _ in range(max(out - 1, 0)):
            gap = 0.011 * rng.lognormvariate(0, 0.25)
            itl.labels(*lv).observe(gap)
            decode += gap
        # vLLM: TTFT counts from arrival, so prefill = TTFT - queue; TPOT = decode / (out - 1)
        queued = first * 0.3 * queue_rng.random()
        phases["request_queue_time"].labels(*lv).observe(queued)
        phases["request_prefill_time"].labels(*lv).observe(first - queued)
        phases["request_decode_time"].labels(*lv).observe(decode)
        phases["e2e_request_latency"].labels(*lv).observe(first + decode)
        tpot.labels(*lv).observe(decode / (out - 1) if out > 1 else 0.0)
    running.labels(*lv).set(7)
    waiting.labels(*lv).set(0)
    kv.labels(*lv).set(0.1834)
    return generate_latest(reg).decode()


def vllm_v0_text(rows: list[tuple[int, int]], seed: int) -> str:
    """An older (V0 engine, 0.7-era) vLLM /metrics: ``gpu_cache_usage_perc``, per-token
    ``time_per_output_token_seconds``, no per-request TPOT and no ``engine`` label."""
    _metrics.disable_created_metrics()
    rng = random.Random(seed)
    reg = CollectorRegistry()
    labels = ["model_name"]
    Gauge("vllm:num_requests_running", "Number of requests currently running on GPU.", labels,
          registry=reg).labels(MODEL).set(3)  # fmt: skip
    Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels,
          registry=reg).labels(MODEL).set(2)  # fmt: skip
    Gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", labels,
          registry=reg).labels(MODEL).set(0.4127)  # fmt: skip
    gen = Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels,
                  registry=reg)  # fmt: skip
    tpot = Histogram("vllm:time_per_output_token_seconds", "Histogram of time per output token "
                     "in seconds.", labels, buckets=ITL_BUCKETS, registry=reg)  # fmt: skip
    for _, out in rows:
        gen.labels(MODEL).inc(out)
        for _ in range(max(out - 1, 0)):
            tpot.labels(MODEL).observe(0.013 * rng.lognormvariate(0, 0.25))
    return generate_latest(reg).decode()


DCGM_HEADER = {
    "DCGM_FI_DEV_SM_CLOCK": ("gauge", "SM clock frequency (in MHz)."),
    "DCGM_FI_DEV_MEM_CLOCK": ("gauge", "Memory clock frequency (in MHz)."),
    "DCGM_FI_DEV_GPU_TEMP": ("gauge", "GPU temperature (in C)."),
    "DCGM_FI_DEV_POWER_USAGE": ("gauge", "Power draw (in W)."),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": (
        "counter",
        "Total energy consumption since boot (in mJ).",
    ),
    "DCGM_FI_DEV_GPU_UTIL": ("gauge", "GPU utilization (in %)."),
    "DCGM_FI_DEV_FB_FREE": ("gauge", "Framebuffer memory free (in MiB)."),
    "DCGM_FI_DEV_FB_USED": ("gauge", "Framebuffer memory used (in MiB)."),
}
GPUS = [
    ("0", "GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f", "00000000:18:00.0", "nvidia0"),
    ("1", "GPU-a3e1f5b2-77c0-4e1d-9c2a-6b0f3d8e4a19", "00000000:2A:00.0", "nvidia1"),
]


def dcgm_text(energy_mj: list[int], power_w: list[float], util: list[int]) -> str:
    """dcgm-exporter 3.3 output for two H100s, the second assigned to a vLLM pod."""
    lines: list[str] = []
    for field, (typ, help_) in DCGM_HEADER.items():
        lines += [f"# HELP {field} {help_}", f"# TYPE {field} {typ}"]
        for i, (gpu, uuid, bus, dev) in enumerate(GPUS):
            labels = (
                f'gpu="{gpu}",UUID="{uuid}",pci_bus_id="{bus}",device="{dev}",'
                f'modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node-7",'
                f'DCGM_FI_DRIVER_VERSION="550.54.15"'
            )
            if i == 1:
                labels += ',container="vllm",namespace="llm",pod="vllm-llama-8b-6f7d9c-x2x4k"'
            value = {
                "DCGM_FI_DEV_SM_CLOCK": "1980",
                "DCGM_FI_DEV_MEM_CLOCK": "2619",
                "DCGM_FI_DEV_GPU_TEMP": str(38 + util[i] // 4),
                "DCGM_FI_DEV_POWER_USAGE": f"{power_w[i]:.6f}",
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": str(energy_mj[i]),
                "DCGM_FI_DEV_GPU_UTIL": str(util[i]),
                "DCGM_FI_DEV_FB_FREE": "3914" if i == 1 else "81042",
                "DCGM_FI_DEV_FB_USED": "77165" if i == 1 else "37",
            }[field]
            lines.append(f"{field}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


def dcgm_shared_text() -> str:
    """dcgm-exporter 3.3 in Kubernetes mode with time-slicing: one H100 shared by two pods is
    exported once per pod, same values, different ``pod``/``namespace``/``container``."""
    gpu, uuid, bus, dev = GPUS[1]
    base = (
        f'gpu="{gpu}",UUID="{uuid}",pci_bus_id="{bus}",device="{dev}",'
        f'modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node-7",'
        f'DCGM_FI_DRIVER_VERSION="550.54.15"'
    )
    pods = [("vllm", "llm", "vllm-llama-8b-6f7d9c-x2x4k"), ("embed", "search", "tei-5b8c-qq7z")]
    values = {
        "DCGM_FI_DEV_POWER_USAGE": "388.120000",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "1812233991",
        "DCGM_FI_DEV_GPU_UTIL": "64",
    }
    lines: list[str] = []
    for field, value in values.items():
        typ, help_ = DCGM_HEADER[field]
        lines += [f"# HELP {field} {help_}", f"# TYPE {field} {typ}"]
        for container, namespace, pod in pods:
            labels = f'{base},container="{container}",namespace="{namespace}",pod="{pod}"'
            lines.append(f"{field}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


def kepler_text(scale: float) -> str:
    """Kepler 0.10+ on one node (Go client_golang text format, ``node_name`` constant label):
    node RAPL zones measured, pods' attributed shares; ``scale`` grows the counters."""
    node = 'node_name="gpu-node-7"'
    zones = [
        ("package", "/sys/class/powercap/intel-rapl:0", 182345.25, 95.5),
        ("core", "/sys/class/powercap/intel-rapl:0:0", 120001.5, 60.25),
        ("dram", "/sys/class/powercap/intel-rapl:0:1", 25012.75, 12.5),
    ]
    vllm_uid, dns_uid = (
        "1f7d1c2e-0b5e-4c59-9d56-2a4c0f1b7e10",
        "9a2b77c1-64d2-4b0e-a5f0-7c3e15d2e8aa",
    )
    pods = [
        (vllm_uid, "vllm-llama-8b-6f7d9c-x2x4k", "llm", 61234.5, 40.1),
        (dns_uid, "coredns-787d4945fb-46b9c", "kube-system", 88.25, 0.05),
    ]
    lines = [
        "# HELP kepler_node_cpu_joules_total Energy consumption of cpu at node level in joules",
        "# TYPE kepler_node_cpu_joules_total counter",
    ]
    for zone, path, joules, _ in zones:
        lines.append(
            f'kepler_node_cpu_joules_total{{{node},path="{path}",zone="{zone}"}} {joules * scale}'
        )
    lines += [
        "# HELP kepler_node_cpu_watts Power consumption of cpu at node level in watts",
        "# TYPE kepler_node_cpu_watts gauge",
    ]
    for zone, path, _, watts in zones:
        lines.append(f'kepler_node_cpu_watts{{{node},path="{path}",zone="{zone}"}} {watts}')
    for metric, typ, word, unit in (
        ("kepler_pod_cpu_joules_total", "counter", "Energy", "joules"),
        ("kepler_pod_cpu_watts", "gauge", "Power", "watts"),
    ):
        lines += [
            f"# HELP {metric} {word} consumption of cpu at pod level in {unit}",
            f"# TYPE {metric} {typ}",
        ]
        for uid, name, namespace, joules, watts in pods:
            for zone, share in (("package", 1.0), ("dram", 0.125)):
                value = joules * scale * share if typ == "counter" else watts * share
                lines.append(
                    f'{metric}{{{node},pod_id="{uid}",pod_name="{name}",'
                    f'pod_namespace="{namespace}",state="running",zone="{zone}"}} {value}'
                )
    return "\n".join(lines) + "\n"


def kepler_old_text() -> str:
    """Kepler 0.7 per-container series (``mode`` dynamic/idle), which have no pod series."""
    lines = []
    for metric, help_ in (
        ("kepler_container_package_joules_total", "Aggregated RAPL value in package (socket) in "
         "joules"),
        ("kepler_container_dram_joules_total", "Aggregated RAPL value in dram in joules"),
    ):  # fmt: skip
        lines += [f"# HELP {metric} {help_}", f"# TYPE {metric} counter"]
        for container, value in (("vllm", 1200.5), ("sidecar", 30.25)):
            for mode, part in (("dynamic", 0.75), ("idle", 0.25)):
                lines.append(
                    f'{metric}{{command="python3",container_id="c0ffee{container}",'
                    f'container_name="{container}",container_namespace="llm",mode="{mode}",'
                    f'pod_name="vllm-llama-8b-6f7d9c-x2x4k"}} {value * part}'
                )
    return "\n".join(lines) + "\n"


def tgi_text(rows: list[tuple[int, int]], seed: int) -> str:
    """TGI 3.x router output (Rust metrics-exporter-prometheus: TYPE lines, no HELP)."""
    rng = random.Random(seed)
    max_input, max_total = 4095, 4096
    input_buckets = [max_input / 100 * (x + 1) for x in range(100)]
    gen_buckets = [max_total / 100 * (x + 1) for x in range(100)]
    duration_buckets, v = [], 0.0001
    for _ in range(35):
        v *= 1.5
        duration_buckets.append(v)
    tpt = [0.012 * rng.lognormvariate(0, 0.2) for _ in rows]
    inputs = [float(min(c, max_input)) for c, _ in rows]

    def hist(name: str, bounds: list[float], values: list[float]) -> list[str]:
        out = [f"# TYPE {name} histogram"]
        for b in bounds:
            out.append(f'{name}_bucket{{le="{b!r}"}} {sum(1 for x in values if x <= b)}')
        out.append(f'{name}_bucket{{le="+Inf"}} {len(values)}')
        out += [f"{name}_sum {sum(values)!r}", f"{name}_count {len(values)}"]
        return out

    lines = [
        "# TYPE tgi_request_count counter",
        f"tgi_request_count {len(rows) + 3}",
        "# TYPE tgi_request_success counter",
        f"tgi_request_success {len(rows)}",
        "# TYPE tgi_queue_size gauge",
        "tgi_queue_size 0",
        "# TYPE tgi_batch_current_size gauge",
        "tgi_batch_current_size 5",
        *hist("tgi_request_input_length", input_buckets, inputs),
        *hist("tgi_request_generated_tokens", gen_buckets, [float(o) for _, o in rows]),
        *hist("tgi_request_mean_time_per_token_duration", duration_buckets, tpt),
    ]  # fmt: skip
    return "\n".join(lines) + "\n\n"


def main(trace: Path) -> None:
    """Write every recording."""
    with trace.open() as fh:
        rows = [(int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in csv.DictReader(fh)]
    (HERE / "vllm_metrics_1.txt").write_text(vllm_text(rows[:120], seed=1))
    (HERE / "vllm_metrics_2.txt").write_text(vllm_text(rows[:160], seed=1))
    (HERE / "vllm_metrics_v0.txt").write_text(vllm_v0_text(rows[:40], seed=3))
    (HERE / "tgi_metrics.txt").write_text(tgi_text(rows[:80], seed=2))
    (HERE / "dcgm_metrics_shared.txt").write_text(dcgm_shared_text())
    (HERE / "kepler_metrics_1.txt").write_text(kepler_text(1.0))
    (HERE / "kepler_metrics_2.txt").write_text(kepler_text(1.01))
    (HERE / "kepler_metrics_old.txt").write_text(kepler_old_text())
    (HERE / "dcgm_metrics_1.txt").write_text(
        dcgm_text([912_345_678, 1_804_223_991], [71.384, 612.447], [0, 97])
    )
    (HERE / "dcgm_metrics_2.txt").write_text(
        dcgm_text([913_059_518, 1_810_348_461], [71.384, 612.447], [0, 98])
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
