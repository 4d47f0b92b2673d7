"""Soak: ``wattledger serve`` (ingest + scheduler) fed at a steady rate for minutes.

What runs:

1. ``wattledger serve`` as its own process on 127.0.0.1, on a fresh DuckDB file (default) or a
   fresh PostgreSQL database (``--backend postgres``), with an API key and the analytics
   scheduler on (``--analytics-interval-s``, the product's 60 s by default).
2. This process sends protobuf bodies of 512 spans (the official exporter's encoding, as in
   ``bench/ingest_throughput.py``), each with fresh trace/span ids and current timestamps, at a
   steady rate over keep-alive connections: by default 60 % of the rate
   ``bench/ingest_throughput.py`` measured end to end (docs/benchmarks/ingest.md). A 429/503
   answer is retried after a pause, as an exporter would; nothing is skipped.
3. Every ``--sample-s`` seconds: the server's resident memory (VmRSS of the process and its
   children, from /proc), the writer queue depth (``wattledger_ingest_queue_rows``), the spool
   size (``wattledger_ingest_spool_bytes``) and committed spans, from its ``/metrics``.
4. At the end: wait until the writer drains, stop the server (SIGTERM), count the rows in the
   warehouse, and count the analytics runs the server logged.

It fails (exit 1) when a span acknowledged by the server is not in the warehouse (or the
server's committed counter disagrees), when the writer queue has not drained, when an analytics
run fails, when the server dies, or when memory is out of bounds: resident memory above
``--max-rss-mib`` (4096) at any sample, or growing faster than ``--max-rss-slope-mib-min``
(50 MiB/min) over the second half of the sending phase (least-squares slope). The bounds and why
they are what they are: docs/benchmarks/soak.md.

    .venv/bin/python bench/soak.py                          # 10 minutes on DuckDB
    .venv/bin/python bench/soak.py --seconds 60 --backend postgres
    make soak SOAK_SECONDS=120
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from ingest_throughput import (
    SPANS_PER_BODY,
    _drop_pg,
    _free_port,
    _pg_database,
    _RawClient,
    template_body,
    wait_ready,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from wattledger.ingest.auth import create_key
from wattledger.migrations import runner
from wattledger.models import make_engine

#: End-to-end rates measured by bench/ingest_throughput.py (docs/benchmarks/ingest.md), spans/s:
#: the loaded-machine figures of the first recorded runs, kept so soaks stay comparable. On a
#: quiet machine ingest alone now does 68,100 (DuckDB) and 44,800 (PostgreSQL); ``serve`` with
#: the analytics scheduler on DuckDB does not sustain 60 % of those (docs/benchmarks/soak.md).
BENCHMARKED_SPANS_PER_S = {"duckdb": 26_800, "postgres": 21_200}
_ANALYTICS_LOG = re.compile(r"analytics \S+\.\.\S+: (\d+) requests on \d+ devices in ([\d.]+) s")


class BodyFactory:
    """Bodies of 512 spans with unique ids and current timestamps, patched into one encoded
    template (encoding 512 spans per body with the exporter would cost the client a core)."""

    def __init__(self) -> None:
        request = ExportTraceServiceRequest.FromString(template_body())
        spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        durations = [s.end_time_unix_nano - s.start_time_unix_nano for s in spans]
        marker = int.from_bytes(os.urandom(7), "little") << 8  # unique, findable placeholders
        for i, s in enumerate(spans):
            s.trace_id, s.span_id = os.urandom(16), os.urandom(8)
            s.start_time_unix_nano, s.end_time_unix_nano = marker + 2 * i, marker + 2 * i + 1
        self.template = request.SerializeToString()
        #: per span: offsets of trace id, span id, start and end time; and its duration (ns)
        self.fields: list[tuple[int, int, int, int, int]] = [
            (
                self._find(s.trace_id),
                self._find(s.span_id),
                self._find(struct.pack("<Q", s.start_time_unix_nano)),
                self._find(struct.pack("<Q", s.end_time_unix_nano)),
                durations[i],
            )
            for i, s in enumerate(spans)
        ]
        self.run = os.urandom(8)  # trace ids are run + sequence number: unique across runs
        self.next = 0
        self.lock = threading.Lock()

    def _find(self, needle: bytes) -> int:
        at = self.template.find(needle)
        assert at >= 0 and self.template.find(needle, at + 1) < 0, "ambiguous template field"
        return at

    def body(self) -> bytes:
        with self.lock:
            first = self.next
            self.next += len(self.fields)
        buf = bytearray(self.template)
        end = time.time_ns()
        for i, (t_at, s_at, st_at, en_at, dur) in enumerate(self.fields):
            seq = struct.pack(">Q", first + i + 1)
            buf[t_at : t_at + 16] = self.run + seq
            buf[s_at : s_at + 8] = seq
            buf[st_at : st_at + 8] = struct.pack("<Q", end - dur)
            buf[en_at : en_at + 8] = struct.pack("<Q", end)
        return bytes(buf)


@dataclass
class Sample:
    t_s: float
    rss_mib: float
    queue_rows: float
    spool_bytes: float
    committed: float
    acked: int
    load1: float
    cpu_s: float


@dataclass
class Sender:
    """Connections that each send bodies at ``rate / connections`` bodies per second."""

    port: int
    key: str
    factory: BodyFactory
    bodies_per_s: float
    connections: int
    acked_spans: int = 0
    retries: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, conn: int) -> None:
        period = self.connections / self.bodies_per_s
        next_at = time.monotonic() + conn * period / self.connections
        try:
            with _RawClient(self.port, self.key) as client:
                while not self.stop.is_set():
                    wait = next_at - time.monotonic()
                    if wait > 0 and self.stop.wait(wait):
                        return
                    next_at = max(next_at + period, time.monotonic() - 5 * period)
                    body = self.factory.body()
                    sent_at = time.monotonic()
                    while (status := client.post(body)) != 200:
                        if status not in (429, 503):
                            raise RuntimeError(f"unexpected HTTP {status}")
                        with self.lock:
                            self.retries += 1
                        time.sleep(0.5)  # as an exporter honouring Retry-After would
                    with self.lock:
                        self.acked_spans += SPANS_PER_BODY
                        self.latencies_s.append(time.monotonic() - sent_at)
        except Exception as e:  # recorded and reported: the soak fails
            self.errors.append(f"connection {conn}: {e!r}")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MiB (VmRSS from /proc)."""
    total_kib = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out = {"queue_rows": 0.0, "spool_bytes": 0.0, "committed": 0.0}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "wattledger_ingest_queue_rows":
                out["queue_rows"] += s.value
            elif s.name == "wattledger_ingest_spool_bytes":
                out["spool_bytes"] += s.value
            elif (
                s.name
                in (
                    "wattledger_ingest_written_total",
                    "wattledger_ingest_duplicates_total",
                )
                and s.labels.get("signal") == "traces"
            ):
                out["committed"] += s.value
    return out


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return 60 * sxy / sxx if sxx else None


def _latency(values: list[float]) -> dict[str, float | None]:
    """Median, p99 and max seconds from sending a body to its 200 (retries included)."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    v = sorted(values)
    return {
        "p50": round(v[len(v) // 2], 3),
        "p99": round(v[min(len(v) - 1, int(len(v) * 0.99))], 3),
        "max": round(v[-1], 3),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def soak(args: argparse.Namespace, work: Path, url: str) -> dict[str, Any]:
    runner.upgrade(url)
    engine = make_engine(url)
    key = create_key(engine, "soak").key
    engine.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "WATTLEDGER_DATABASE_URL": url,
        "WATTLEDGER_DATA_DIR": str(work / "data"),
        "WATTLEDGER_LOG_LEVEL": "INFO",
        "WATTLEDGER_INGEST__STATS_LOG_INTERVAL_S": "0",
        "WATTLEDGER_ANALYTICS__INTERVAL_S": str(args.analytics_interval_s),
    }
    log_path = work / "serve.log"
    rate = args.rate or args.fraction * BENCHMARKED_SPANS_PER_S[args.backend]
    factory = BodyFactory()
    result: dict[str, Any] = {
        "backend": args.backend,
        "seconds": args.seconds,
        "target_spans_per_s": round(rate),
        "fraction_of_benchmark": rate / BENCHMARKED_SPANS_PER_S[args.backend],
        "analytics_interval_s": args.analytics_interval_s if args.scheduler else None,
        "duckdb_memory_limit": args.duckdb_memory_limit if args.backend == "duckdb" else None,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    samples: list[Sample] = []
    failures: list[str] = []
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wattledger",
                "serve",
                "--no-migrate",
                "--port",
                str(port),
                "--scheduler" if args.scheduler else "--no-scheduler",
            ],  # fmt: skip
            env=env,
            stdout=log,
            stderr=log,
        )
        sender = Sender(port, key, factory, rate / SPANS_PER_BODY, args.connections)
        threads: list[threading.Thread] = []
        try:
            wait_ready(proc, port, log_path)
            threads = [
                threading.Thread(target=sender.run, args=(i,), daemon=True)
                for i in range(args.connections)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            while (elapsed := time.monotonic() - started) < args.seconds:
                if proc.poll() is not None:
                    failures.append(f"the server exited with {proc.returncode}")
                    break
                if sender.errors:
                    break
                m = scrape(port)
                samples.append(
                    Sample(
                        round(elapsed, 1),
                        round(rss_mib(proc.pid), 1),
                        m["queue_rows"],
                        m["spool_bytes"],
                        m["committed"],
                        sender.acked_spans,
                        os.getloadavg()[0],
                        round(cpu_s(proc.pid), 1),
                    )
                )
                if not args.json:
                    s = samples[-1]
                    print(
                        f"{s.t_s:7.1f}s rss {s.rss_mib:8.1f} MiB  queue {s.queue_rows:9,.0f}  "
                        f"spool {s.spool_bytes / 2**20:7.1f} MiB  acked {s.acked:11,}  "
                        f"committed {s.committed:11,.0f}  load {s.load1:.1f}",
                        flush=True,
                    )
                time.sleep(max(0.0, args.sample_s - (time.monotonic() - started - elapsed)))
            sender.stop.set()
            for t in threads:
                t.join(timeout=120)
            send_s = time.monotonic() - started
            failures.extend(sender.errors)
            drained = None
            deadline = time.monotonic() + 600
            while proc.poll() is None and time.monotonic() < deadline:
                m = scrape(port)
                if m["committed"] >= sender.acked_spans and m["queue_rows"] == 0:
                    drained = time.monotonic() - started - send_s
                    break
                time.sleep(0.5)
            end_metrics = scrape(port) if proc.poll() is None else {}
        finally:
            sender.stop.set()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # graceful: queued rows are written first
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                failures.append("the server did not stop within 300 s of SIGTERM")
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM inference_requests")).scalar_one()
        if args.backend == "postgres":
            size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    if args.backend == "duckdb":
        db_file = Path(make_url(url).database or "")
        size = sum(f.stat().st_size for f in db_file.parent.glob(db_file.name + "*"))
    log_text = log_path.read_text(errors="replace")
    runs = [(int(n), float(s)) for n, s in _ANALYTICS_LOG.findall(log_text)]
    failed_runs = log_text.count("analytics run failed")
    half = max(args.warmup_s, send_s / 2)
    warm = [(s.t_s, s.rss_mib) for s in samples if s.t_s >= half]
    all_warm = [(s.t_s, s.rss_mib) for s in samples if s.t_s >= args.warmup_s]
    rss = [s.rss_mib for s in samples]
    slope = slope_per_min(warm)
    sent = sender.acked_spans
    result.update(
        {
            "load_after": os.getloadavg(),
            "send_s": round(send_s, 1),
            "spans_sent": sent,
            "achieved_spans_per_s": round(sent / send_s) if send_s else 0,
            "retries_429_503": sender.retries,
            "ack_latency_s": _latency(sender.latencies_s),
            "server_cores_mean": round(
                (samples[-1].cpu_s - samples[0].cpu_s) / (samples[-1].t_s - samples[0].t_s), 2
            )
            if len(samples) > 1
            else None,
            "warehouse_bytes": size,
            "warehouse_bytes_per_request": round(size / stored) if stored else None,
            "spans_committed_metric": end_metrics.get("committed"),
            "rows_in_warehouse": stored,
            "drain_s_after_send": None if drained is None else round(drained, 1),
            "rss_mib": {
                "start": rss[0] if rss else None,
                "end": rss[-1] if rss else None,
                "max": max(rss, default=None),
                "warmup_s": args.warmup_s,
                "slope_after_warmup_mib_per_min": _round(slope_per_min(all_warm)),
                "slope_second_half_mib_per_min": _round(slope),
            },
            "queue_rows": {
                "max": max((s.queue_rows for s in samples), default=None),
                "end_of_send": samples[-1].queue_rows if samples else None,
                "after_drain": end_metrics.get("queue_rows"),
            },
            "spool_bytes_max": max((s.spool_bytes for s in samples), default=None),
            "analytics_runs": len(runs),
            "analytics_runs_failed": failed_runs,
            "analytics_run_s": {
                "max": max((s for _, s in runs), default=None),
                "last": runs[-1][1] if runs else None,
                "last_requests": runs[-1][0] if runs else None,
            },
            "samples": [asdict(s) for s in samples],
        }
    )
    if sent == 0:
        failures.append("nothing was sent")
    if stored != sent:
        failures.append(f"{sent:,} spans acknowledged but {stored:,} rows in the warehouse")
    if end_metrics.get("queue_rows"):
        failures.append(f"the writer queue still held {end_metrics['queue_rows']:,.0f} rows")
    if failed_runs:
        failures.append(f"{failed_runs} analytics run(s) failed (see the server log)")
    if rss and max(rss) > args.max_rss_mib:
        failures.append(f"resident memory reached {max(rss):,.0f} MiB > {args.max_rss_mib:,} MiB")
    if slope is not None and slope > args.max_rss_slope_mib_min:
        failures.append(
            f"resident memory grew {slope:.1f} MiB/min in the second half "
            f"> {args.max_rss_slope_mib_min} MiB/min"
        )
    result["failures"] = failures
    result["server_errors"] = [
        line[:300] for line in log_text.splitlines() if re.search(r"ERROR|Error:|Exception", line)
    ][:20]
    result["server_log_tail"] = log_text[-1500:] if failures else ""
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("SOAK_SECONDS", 600)),
        help="how long to send (default $SOAK_SECONDS, else 600)",
    )
    p.add_argument("--backend", choices=("duckdb", "postgres"), default="duckdb")
    p.add_argument(
        "--fraction", type=float, default=0.6, help="of the benchmarked ingest rate (default 0.6)"
    )
    p.add_argument("--rate", type=float, help="spans/s (overrides --fraction)")
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--analytics-interval-s", type=float, default=60.0)
    p.add_argument(
        "--no-scheduler",
        dest="scheduler",
        action="store_false",
        help="serve without the analytics scheduler (to tell ingest's memory from analytics')",
    )
    p.add_argument("--sample-s", type=float, default=5.0)
    p.add_argument(
        "--warmup-s", type=float, help="excluded from the RSS slope (default: a fifth, ≤ 120 s)"
    )
    p.add_argument(
        "--duckdb-memory-limit",
        default="none",
        help="DuckDB memory_limit in the warehouse URL, e.g. 2GB (default: none, DuckDB's own "
        "default of 80%% of RAM, as wattledger ships)",
    )
    p.add_argument("--max-rss-mib", type=float, default=4096.0)
    p.add_argument(
        "--max-rss-slope-mib-min",
        type=float,
        default=50.0,
        help="bound on the RSS slope over the second half of the sending phase",
    )
    p.add_argument(
        "--pg-url",
        default=os.environ.get(
            "WATTLEDGER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON only")
    p.add_argument("--out", type=Path, help="also write the JSON result here")
    args = p.parse_args(argv)
    if args.warmup_s is None:
        args.warmup_s = min(120.0, args.seconds / 5)
    with tempfile.TemporaryDirectory(prefix="wl-soak-") as tmp:
        work = Path(tmp)
        if args.backend == "duckdb":
            url = f"duckdb:///{work}/soak.duckdb"
            if args.duckdb_memory_limit != "none":
                url += f"?memory_limit={args.duckdb_memory_limit}"
            result = soak(args, work, url)
        else:
            url, name = _pg_database(args.pg_url, "wl_soak")
            try:
                result = soak(args, work, url)
            finally:
                _drop_pg(args.pg_url, name)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        summary = {
            k: v
            for k, v in result.items()
            if k not in ("samples", "server_log_tail", "server_errors")
        }
        print(json.dumps(summary, indent=2))
        for line in result["server_errors"]:
            print(line, file=sys.stderr)
    if result["failures"]:
        print("SOAK FAILED: " + "; ".join(result["failures"]), file=sys.stderr)
        return 1
    print("soak passed: nothing lost, memory within bounds", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
