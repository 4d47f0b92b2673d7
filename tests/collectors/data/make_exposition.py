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
    lv = (MODEL, "0")
    for ctx, out in rows:
        prompt.labels(*lv).inc(ctx)
        gen.labels(*lv).inc(out)
        success.labels(*lv, "stop" if rng.random() < 0.9 else "length").inc()
        ttft.labels(*lv).observe(0.02 + ctx * 0.00012 * rng.lognormvariate(0, 0.3))
        for _ in range(max(out - 1, 0)):
            itl.labels(*lv).observe(0.011 * rng.lognormvariate(0, 0.25))
    running.labels(*lv).set(7)
    waiting.labels(*lv).set(0)
    kv.labels(*lv).set(0.1834)
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
    (HERE / "tgi_metrics.txt").write_text(tgi_text(rows[:80], seed=2))
    (HERE / "dcgm_metrics_1.txt").write_text(
        dcgm_text([912_345_678, 1_804_223_991], [71.384, 612.447], [0, 97])
    )
    (HERE / "dcgm_metrics_2.txt").write_text(
        dcgm_text([913_059_518, 1_810_348_461], [71.384, 612.447], [0, 98])
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
