"""Collector overhead: CPU per second at 10 Hz over 8 GPUs, and the cost of one read per source.

Run: ``.venv/bin/python bench/collector_overhead.py [--seconds 30]``

1. The whole collector (sampling thread + export thread, official OTLP exporter) reading 8
   GPUs through NVML at 10 Hz for ``--seconds``, exporting every 5 s to an OTLP receiver that
   runs in a *separate process* (so its CPU is not counted). CPU time of this process /
   wall time = share of one core. Target: under 1 %.
2. The peer, measured in the same run for the same time: the minimal Python sampler from
   REFERENCE.md §9 (10 Hz, two sysfs-style file reads per tick, nothing else). The collector's
   cost is reported as a ratio to it.
3. Per-read cost of each source (fakes at the hardware boundary: the vendor library's own
   time is not in these numbers; see docs/benchmarks/collector.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

from wattledger.collectors.collector.buffer import SampleCycle
from wattledger.collectors.collector.otlp import OtlpEncoder, build_resource
from wattledger.collectors.collector.run import Collector
from wattledger.collectors.settings import CollectorSettings
from wattledger.collectors.sources.amdsmi import AmdSmiSource
from wattledger.collectors.sources.fake import FakeSource
from wattledger.collectors.sources.fakes.amdsmi import FakeAmdGpu, FakeAmdSmi
from wattledger.collectors.sources.fakes.nvml import FakeGpu, FakeNvml
from wattledger.collectors.sources.fakes.sysfs import FakeRapl
from wattledger.collectors.sources.modeled import ModeledSource
from wattledger.collectors.sources.nvml import NvmlSource
from wattledger.collectors.sources.prometheus import PrometheusSource
from wattledger.collectors.sources.rapl import RaplSource

DATA = Path(__file__).resolve().parents[1] / "tests" / "collectors" / "data"
GPUS = 8
HZ = 10


def _receiver(port_queue: Any, stop: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    stop.wait()
    server.shutdown()


def cpu_share(fn: Callable[[threading.Event], None], seconds: float) -> tuple[float, int]:
    """Run ``fn(stop)`` in a thread for ``seconds``; return (CPU s per wall s, CPU ns)."""
    stop = threading.Event()
    thread = threading.Thread(target=fn, args=(stop,))
    cpu0, wall0 = time.process_time_ns(), time.monotonic_ns()
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    cpu, wall = time.process_time_ns() - cpu0, time.monotonic_ns() - wall0
    return cpu / wall, cpu


def peer_sampler(stop: threading.Event, files: list[str]) -> None:
    """REFERENCE.md §9's minimal sampler: 10 Hz, two file reads per tick."""
    interval = 1e9 / HZ
    next_ns = time.monotonic_ns()
    while not stop.is_set():
        for path in files:
            with open(path, "rb") as fh:
                int(fh.read())
        next_ns += interval
        stop.wait(max(next_ns - time.monotonic_ns(), 0) / 1e9)


def per_read_us(make: Callable[[], Any], n: int) -> float:
    """Microseconds per ``read()`` of a freshly made source (after one warm-up read)."""
    source = make()
    source.read()
    t = timeit.timeit(source.read, number=n)
    source.close()
    return t / n * 1e6


def main() -> None:
    """Run the benchmark and print a markdown report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wl-bench-"))

    ctx = multiprocessing.get_context("spawn")
    port_queue, stop_rx = ctx.Queue(), ctx.Event()
    rx = ctx.Process(target=_receiver, args=(port_queue, stop_rx), daemon=True)
    rx.start()
    port = port_queue.get(timeout=30)

    fake = FakeNvml([FakeGpu(uuid=f"GPU-{i:08d}-0000-0000-0000-000000000000") for i in range(GPUS)])
    settings = CollectorSettings(
        endpoint=f"http://127.0.0.1:{port}", interval_s=1 / HZ, export_interval_s=5.0
    )
    collector = Collector(settings, [NvmlSource(fake.module)], host="bench", environ={})

    def run_collector(stop: threading.Event) -> None:
        collector.stop_event = stop
        collector.run()

    share, _ = cpu_share(run_collector, args.seconds)
    stats = collector.exporter.stats

    files = []
    for name in ("a", "b"):
        path = tmp / name
        path.write_text("123456789\n")
        files.append(str(path))
    peer, _ = cpu_share(lambda stop: peer_sampler(stop, files), args.seconds)
    stop_rx.set()
    rx.join(10)

    rapl = FakeRapl(tmp / "powercap")
    for pkg in range(2):
        rapl.add_zone(f"intel-rapl:{pkg}", f"package-{pkg}", energy_uj=1000)
        rapl.add_zone(f"intel-rapl:{pkg}:1", "dram", energy_uj=1000)
    dcgm = (DATA / "dcgm_metrics_1.txt").read_text()
    vllm = (DATA / "vllm_metrics_1.txt").read_text()
    amd = [FakeAmdGpu(uuid=f"amd-{i}") for i in range(GPUS)]
    reads = {
        "nvml (8 GPUs, fake libnvidia-ml)": per_read_us(
            lambda: NvmlSource(FakeNvml([FakeGpu(uuid=f"GPU-{i}") for i in range(GPUS)]).module),
            2000,
        ),
        "amdsmi (8 GPUs, fake libamd_smi)": per_read_us(
            lambda: AmdSmiSource(FakeAmdSmi(amd).module), 2000
        ),
        "rapl (2 packages + 2 DRAM, sysfs files)": per_read_us(
            lambda: RaplSource(tmp / "powercap", host="b"), 2000
        ),
        "prometheus: dcgm-exporter page, parse only (2 GPUs)": per_read_us(
            lambda: PrometheusSource("http://x/metrics", fetch=lambda u: dcgm), 300
        ),
        "prometheus: vLLM page, parse only": per_read_us(
            lambda: PrometheusSource("http://x/metrics", fetch=lambda u: vllm), 300
        ),
        "modeled (1 device)": per_read_us(
            lambda: ModeledSource(["meta-llama/Meta-Llama-3.1-8B-Instruct@H100"], host="b"), 5000
        ),
        "fake (8 devices)": per_read_us(lambda: FakeSource(300.0, devices=GPUS, host="b"), 5000),
    }

    nvml = NvmlSource(FakeNvml([FakeGpu(uuid=f"GPU-{i}") for i in range(GPUS)]).module)
    devices = {d.device_id: d for d in nvml.devices()}
    cycles = [SampleCycle(0, tuple(nvml.read()), devices) for _ in range(int(5 * HZ))]
    encoder = OtlpEncoder(build_resource("bench", None, {}))
    ours_ms = timeit.timeit(
        lambda: encoder.request(cycles, {}).SerializeToString(), number=20
    ) / 20 * 1e3  # fmt: skip
    official_ms = timeit.timeit(
        lambda: encode_metrics(encoder.metrics_data(cycles, {})).SerializeToString(), number=5
    ) / 5 * 1e3  # fmt: skip
    size_kib = len(encoder.request(cycles, {}).SerializeToString()) / 1024
    print(f"# Collector overhead ({os.cpu_count()} CPUs, {args.seconds:.0f} s per run)\n")
    print("| measurement | value |\n| --- | --- |")
    print(f"| collector, {HZ} Hz x {GPUS} GPUs, export every 5 s: CPU share of one core "
          f"| {share * 100:.3f} % |")  # fmt: skip
    print(f"| peer: bare {HZ} Hz sampler, 2 file reads per tick | {peer * 100:.3f} % |")
    print(f"| ratio collector / peer | {share / peer:.1f}x |")
    print(f"| cycles sampled / exported / requests | {collector.sampler.cycles} / "
          f"{stats.exported_cycles} / {stats.requests} |")  # fmt: skip
    print(f"| encode 5 s of samples (50 cycles x 8 GPUs, {size_kib:.0f} KiB): collector's "
          f"cached encoder | {ours_ms:.1f} ms |")  # fmt: skip
    print(f"| same with SDK MetricsData + official encode_metrics | {official_ms:.1f} ms |")
    print("\n| source | one read() |\n| --- | --- |")
    for name, us in reads.items():
        print(f"| {name} | {us:.1f} us |")


if __name__ == "__main__":
    main()
