"""Check attribution on a real NVIDIA GPU against its own energy counter.

Runs a small transformer with random weights (built from a config in code with torch: nothing
is downloaded), issues requests of varied prompt and output lengths, first one at a time with
idle gaps, then several at once; samples the GPU with the project's own NVML source at 10 Hz;
sends spans and samples through a real ingest (official OTLP exporters, a fresh DuckDB file);
runs analytics; and prints, for every request that ran alone, the attributed energy against the
NVML energy counter over the request (less the idle power the counter showed before the run),
the totals, and the hardware identity the device's name resolved to.

Exits 0 when the per-request median error is at most 5 % and the device energy analytics booked
is within 2 % of the counter over the run; 1 on a miss; 2 when there is no GPU, torch or NVML.

Usage:
  python bench/gpu_validate.py                  # the whole check (about 3 minutes on an H100)
  python bench/gpu_validate.py --json           # machine-readable result
  python bench/gpu_validate.py --sequential 12 --concurrent 8 --workers 4
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from _local_ingest import local_ingest

from wattledger.collectors import semconv as sc

MODEL_NAME = "wl-validate-random-3b"
#: Acceptance (issue 17).
MAX_MEDIAN_ERROR = 0.05
MAX_TOTAL_ERROR = 0.02


class Workload(Protocol):
    """Runs one request on the device; returns (first token, end) as ``time.time_ns()``."""

    def generate(self, prompt_tokens: int, output_tokens: int) -> tuple[int, int]: ...


@dataclass
class Done:
    """One finished request."""

    prompt_tokens: int
    output_tokens: int
    start_ns: int
    first_token_ns: int
    end_ns: int
    alone: bool
    span_id: str = ""


@dataclass
class Sampler:
    """Reads an NVML source every ``1 / rate_hz`` s in a thread, keeping every cycle."""

    source: Any
    rate_hz: float = 10.0
    cycles: list[Any] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nvml-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from wattledger.collectors.collector.buffer import SampleCycle

        devices = {d.device_id: d for d in self.source.devices()}
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            readings = tuple(self.source.read())
            offset = time.time_ns() - time.monotonic_ns()
            self.cycles.append(SampleCycle(offset, readings, devices))
            next_t += period
            self._stop.wait(max(next_t - time.monotonic(), 0.0))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _counter(self, device_id: str) -> list[tuple[int, float]]:
        """(wall time ns, counter J) of every reading of the device that has a counter."""
        return [
            (c.time_unix_nano(r), r.energy_j)
            for c in self.cycles
            for r in c.readings
            if r.device_id == device_id and r.energy_j is not None
        ]

    def mean_power_w(self, device_id: str, start_ns: int, end_ns: int) -> float:
        """Counter rise ÷ time between the first and last readings inside ``[start, end]``."""
        pts = [p for p in self._counter(device_id) if start_ns <= p[0] <= end_ns]
        if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
            return float("nan")
        return (pts[-1][1] - pts[0][1]) / ((pts[-1][0] - pts[0][0]) / 1e9)

    def counter_around_j(self, device_id: str, start_ns: int, end_ns: int) -> tuple[float, float]:
        """(counter rise, seconds) from the last reading at or before ``start`` to the first
        at or after ``end``: the counter's exact energy over an interval holding the request."""
        pts = self._counter(device_id)
        before = [p for p in pts if p[0] <= start_ns] or pts[:1]
        after = [p for p in pts if p[0] >= end_ns] or pts[-1:]
        (t0, e0), (t1, e1) = before[-1], after[0]
        return e1 - e0, (t1 - t0) / 1e9

    def counter_j(self, device_id: str, at_ns: int) -> float:
        """The device's energy counter at wall time ``at_ns``, interpolated between readings."""
        pts = self._counter(device_id)
        if not pts or at_ns <= pts[0][0]:
            return pts[0][1] if pts else float("nan")
        for (t0, e0), (t1, e1) in zip(pts, pts[1:], strict=False):
            if t0 <= at_ns <= t1:
                return e0 + (e1 - e0) * (at_ns - t0) / max(t1 - t0, 1)
        return pts[-1][1]


def torch_workload(device_index: int = 0) -> Workload:
    """A random-weight decoder-only transformer (about 3B parameters, bf16) on a CUDA GPU."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA GPU")
    dev = torch.device("cuda", device_index)
    torch.manual_seed(0)
    d, heads, layers, vocab, ffn = 3072, 24, 24, 32_000, 8192
    hd = d // heads

    def w(*shape: int) -> Any:
        return torch.randn(*shape, device=dev, dtype=torch.bfloat16) * 0.02

    emb = w(vocab, d)
    blocks = [
        {"qkv": w(d, 3 * d), "o": w(d, d), "up": w(d, ffn), "down": w(ffn, d)}
        for _ in range(layers)
    ]
    lock = threading.Lock()  # one CUDA stream: requests interleave token by token

    def step(x: Any, cache: list[tuple[Any, Any]] | None) -> tuple[Any, list[tuple[Any, Any]]]:
        new_cache = []
        for i, b in enumerate(blocks):
            h = F.layer_norm(x, (d,))
            q, k, v = (h @ b["qkv"]).split(d, dim=-1)
            q, k, v = (t.view(t.shape[0], -1, heads, hd).transpose(1, 2) for t in (q, k, v))
            if cache is not None:
                k = torch.cat((cache[i][0], k), dim=2)
                v = torch.cat((cache[i][1], v), dim=2)
            new_cache.append((k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None)
            x = x + a.transpose(1, 2).reshape(x.shape) @ b["o"]
            x = x + F.gelu(F.layer_norm(x, (d,)) @ b["up"]) @ b["down"]
        return x, new_cache

    class Torch:
        def generate(self, prompt_tokens: int, output_tokens: int) -> tuple[int, int]:
            with torch.inference_mode():
                tokens = torch.randint(0, vocab, (1, prompt_tokens), device=dev)
                with lock:
                    x, cache = step(emb[tokens], None)
                    nxt = (x[:, -1:] @ emb.T).argmax(-1)
                    torch.cuda.synchronize(dev)
                first = time.time_ns()
                for _ in range(output_tokens - 1):
                    with lock:
                        x, cache = step(emb[nxt], cache)
                        nxt = (x[:, -1:] @ emb.T).argmax(-1)
                        torch.cuda.synchronize(dev)
                return first, time.time_ns()

    Torch().generate(128, 4)  # warm up kernels outside the measured run
    return Torch()


def plan(n: int, seed: int = 0) -> list[tuple[int, int]]:
    """Varied (prompt, output) lengths: short and long prompts, short and long answers."""
    import random

    rng = random.Random(seed)
    return [(rng.choice((256, 1024, 2048, 4096)), rng.randint(64, 384)) for _ in range(n)]


def run_requests(
    workload: Workload,
    sequential: Sequence[tuple[int, int]],
    concurrent: Sequence[tuple[int, int]],
    *,
    workers: int,
    gap_s: float,
    log: Callable[[str], None],
) -> list[Done]:
    """Sequential requests with idle gaps, then ``concurrent`` ones on ``workers`` threads."""
    done: list[Done] = []
    for i, (p, o) in enumerate(sequential):
        start = time.time_ns()
        first, end = workload.generate(p, o)
        done.append(Done(p, o, start, first, end, alone=True))
        log(
            f"  sequential {i + 1}/{len(sequential)}: {p} prompt, {o} output tokens, "
            f"{(end - start) / 1e9:.2f} s"
        )
        time.sleep(gap_s)
    lock = threading.Lock()
    queue = list(concurrent)

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                p, o = queue.pop()
            start = time.time_ns()
            first, end = workload.generate(p, o)
            with lock:
                done.append(Done(p, o, start, first, end, alone=False))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if concurrent:
        log(f"  concurrent: {len(concurrent)} requests on {workers} workers")
    return done


def export(
    done: list[Done], cycles: list[Any], device_id: str, endpoint: str, api_key: str
) -> None:
    """Spans (OTel SDK) and samples (the collector's encoder) over the official exporters."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from wattledger.collectors.collector.otlp import OtlpEncoder

    kept: list[Any] = []

    class Keep(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            kept.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": "gpu-validate"}))
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("wattledger")
    for r in done:
        span = tracer.start_span(
            f"chat {MODEL_NAME}",
            start_time=r.start_ns,
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "torch",
                sc.GEN_AI_REQUEST_MODEL: MODEL_NAME,
                sc.GEN_AI_USAGE_INPUT_TOKENS: r.prompt_tokens,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: r.output_tokens,
                sc.WL_TTFT_S: (r.first_token_ns - r.start_ns) / 1e9,
                sc.WL_DEVICE_ID: device_id,
            },
        )
        span.end(end_time=r.end_ns)
        r.span_id = format(span.get_span_context().span_id, "016x")
    provider.shutdown()
    headers = {"Authorization": f"Bearer {api_key}"}
    spans_out = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers=headers, timeout=60)
    metrics_out = OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", headers=headers, timeout=60)
    try:
        if spans_out.export(kept) != SpanExportResult.SUCCESS:
            raise SystemExit("span export failed")
        encoder = OtlpEncoder(Resource.create({"service.name": "wattledger-collector"}))
        first = {device_id: cycles[0].time_unix_nano(cycles[0].readings[0])}
        for i in range(0, len(cycles), 1_000):
            data = encoder.metrics_data(cycles[i : i + 1_000], first)
            if metrics_out.export(data) != MetricExportResult.SUCCESS:
                raise SystemExit("metric export failed")
    finally:
        spans_out.shutdown()
        metrics_out.shutdown()


def validate(
    nvml: ModuleType | None = None,
    workload: Workload | None = None,
    *,
    sequential: int = 16,
    concurrent: int = 12,
    workers: int = 4,
    gap_s: float = 2.0,
    idle_s: float = 3.0,
    rate_hz: float = 10.0,
    plan_seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole check; returns the result (``ok`` says whether it met the targets)."""
    import sqlalchemy as sa

    from wattledger.analytics.jobs import run_analytics
    from wattledger.analytics.settings import AnalyticsSettings
    from wattledger.collectors.sources.nvml import NvmlSource
    from wattledger.hardware import resolve
    from wattledger.models import DeviceEnergyHourly, RequestCost

    source = NvmlSource(nvml)
    info = next(d for d in source.devices() if d.parent_id is None)
    first_reading = next(r for r in source.read() if r.device_id == info.device_id)
    identity = resolve(info.model, memory_bytes=first_reading.memory_total_bytes)
    log(f"device {info.device_id}: {info.model!r} -> {identity.label}")
    if first_reading.method != "counter":
        log("this GPU has no energy counter (pre-Volta): the check needs one")
        return {"ok": False, "error": "no energy counter", "identity": identity.label}
    workload = workload or torch_workload(0)
    sampler = Sampler(source, rate_hz)
    sampler.start()
    t_idle0 = time.time_ns()
    time.sleep(idle_s)
    t_idle1 = time.time_ns()
    log(f"running {sequential} requests one at a time, then {concurrent} on {workers} workers")
    done = run_requests(
        workload,
        plan(sequential, plan_seed),
        plan(concurrent, plan_seed + 1),
        workers=workers,
        gap_s=gap_s,
        log=log,
    )
    time.sleep(min(idle_s, 2.0))
    sampler.stop()
    source.close()
    idle_w = sampler.mean_power_w(info.device_id, t_idle0, t_idle1)
    with tempfile.TemporaryDirectory() as tmp, local_ingest(Path(tmp), "gpu-validate") as ingest:
        export(done, sampler.cycles, info.device_id, ingest.endpoint, ingest.api_key)
        ingest.flush()
        run_analytics(ingest.engine, AnalyticsSettings(), now=dt.datetime.now(dt.UTC))
        with ingest.engine.connect() as conn:
            rows = {
                r.span_id: r
                for r in conn.execute(
                    sa.select(
                        RequestCost.span_id,
                        RequestCost.energy_j,
                        RequestCost.energy_j_low,
                        RequestCost.energy_j_high,
                        RequestCost.energy_source,
                    )
                )
            }
            booked = conn.execute(
                sa.select(sa.func.sum(DeviceEnergyHourly.measured_j)).where(
                    DeviceEnergyHourly.device_id == info.device_id
                )
            ).scalar()
            idle_source = conn.execute(
                sa.select(sa.func.min(DeviceEnergyHourly.idle_source))
            ).scalar()
    per_request = []
    for r in done:
        got = rows.get(r.span_id)
        row = {
            "prompt_tokens": r.prompt_tokens,
            "output_tokens": r.output_tokens,
            "duration_s": (r.end_ns - r.start_ns) / 1e9,
            "alone": r.alone,
            "attributed_j": None if got is None else got.energy_j,
            "low_j": None if got is None else got.energy_j_low,
            "high_j": None if got is None else got.energy_j_high,
            "energy_source": None if got is None else got.energy_source,
        }
        if r.alone:
            # The counter from the middle of the idle gap before the request to the middle of
            # the gap after it: the device ran nothing else then, so all it drew above idle
            # there (a power tail after the last token included) is this request's, whatever
            # its span says.
            half_gap = int(gap_s * 0.5e9)
            counter, span_s = sampler.counter_around_j(
                info.device_id, r.start_ns - half_gap, r.end_ns + half_gap
            )
            row["counter_j"] = counter
            row["counter_above_idle_j"] = counter - idle_w * span_s
            if got is not None and got.energy_j is not None and row["counter_above_idle_j"] > 0:
                row["error"] = (
                    abs(got.energy_j - row["counter_above_idle_j"]) / row["counter_above_idle_j"]
                )
        per_request.append(row)
    errors = [r["error"] for r in per_request if "error" in r]
    cycles = sampler.cycles
    run_counter = sampler.counter_j(
        info.device_id, cycles[-1].time_unix_nano(cycles[-1].readings[0])
    ) - sampler.counter_j(info.device_id, cycles[0].time_unix_nano(cycles[0].readings[0]))
    median = statistics.median(errors) if errors else float("inf")
    total_error = abs((booked or 0.0) - run_counter) / run_counter if run_counter > 0 else 1.0
    alone_sum = sum(r["counter_above_idle_j"] for r in per_request if "error" in r)
    attributed_sum = sum(r["attributed_j"] for r in per_request if "error" in r)
    missing = sum(1 for r in per_request if r["attributed_j"] is None)
    ok = bool(errors) and median <= MAX_MEDIAN_ERROR and total_error <= MAX_TOTAL_ERROR
    ok = ok and missing == 0
    return {
        "ok": ok,
        "device_id": info.device_id,
        "reported_name": info.model,
        "identity": identity.label,
        "catalog_key": identity.key if identity.in_catalog else None,
        "sample_rate_hz": rate_hz,
        "samples": len(cycles),
        "idle_power_w_counter": idle_w,
        "idle_source": idle_source,
        "requests": len(done),
        "missing": missing,
        "median_error": median,
        "max_error": max(errors) if errors else None,
        "alone_attributed_j": attributed_sum,
        "alone_counter_above_idle_j": alone_sum,
        "run_counter_j": run_counter,
        "run_booked_j": booked,
        "total_error": total_error,
        "per_request": per_request,
    }


def _print(result: dict[str, Any]) -> None:
    print(f"\nhardware: {result['reported_name']!r} resolved to {result['identity']}")
    print(
        f"samples: {result['samples']} at {result['sample_rate_hz']:g} Hz; idle "
        f"{result['idle_power_w_counter']:.1f} W from the counter (analytics: "
        f"{result['idle_source']})"
    )
    print("| # | prompt | output | s | attributed J | range J | counter − idle J | error |")
    print("|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(result["per_request"]):
        if not r["alone"]:
            continue
        rng = f"{r['low_j']:.0f}–{r['high_j']:.0f}" if r["low_j"] is not None else "–"
        err = f"{r['error']:.1%}" if "error" in r else "–"
        print(
            f"| {i + 1} | {r['prompt_tokens']} | {r['output_tokens']} | {r['duration_s']:.2f} | "
            f"{r['attributed_j'] or 0:.1f} | {rng} | {r['counter_above_idle_j']:.1f} | {err} |"
        )
    print(
        f"per-request median error {result['median_error']:.2%} (target ≤ "
        f"{MAX_MEDIAN_ERROR:.0%}), max {result['max_error'] or 0:.2%}"
    )
    print(
        f"requests alone: attributed {result['alone_attributed_j']:.0f} J, counter above idle "
        f"{result['alone_counter_above_idle_j']:.0f} J"
    )
    print(
        f"whole run: analytics booked {result['run_booked_j'] or 0:.0f} J, the counter "
        f"{result['run_counter_j']:.0f} J ({result['total_error']:.2%}, target ≤ "
        f"{MAX_TOTAL_ERROR:.0%})"
    )
    print("RESULT: " + ("ok" if result["ok"] else "MISS"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=16, help="requests run alone (16)")
    parser.add_argument("--concurrent", type=int, default=12, help="requests run at once (12)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent workers (4)")
    parser.add_argument("--gap-s", type=float, default=2.0, help="idle gap between requests")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="NVML sampling rate (10)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        from wattledger.collectors.sources.nvml import load_pynvml

        nvml = load_pynvml()
        import torch  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any missing piece means: cannot run here
        print(f"cannot run the GPU check here: {e}", file=sys.stderr)
        return 2
    try:
        result = validate(
            nvml,
            sequential=args.sequential,
            concurrent=args.concurrent,
            workers=args.workers,
            gap_s=args.gap_s,
            rate_hz=args.rate_hz,
            log=(lambda m: print(m, file=sys.stderr)) if args.json else print,
        )
    except RuntimeError as e:
        print(f"cannot run the GPU check here: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
