"""Ingest throughput, end to end over HTTP, against DuckDB's raw Arrow insert in the same run.

What is measured, per backend:

1. ``wattledger ingest serve`` runs as its own process on 127.0.0.1 (DuckDB file or PostgreSQL)
   with its default settings.
2. This process is the client: it sends protobuf bodies of 512 spans each, encoded by the
   official OpenTelemetry exporter's encoder (``encode_spans``) from SDK spans carrying the
   attributes our SDK sets, over several keep-alive connections, as fast as the server answers.
   Bodies are built before the clock starts.
3. The clock stops when the server's own counters say every span is *committed* to the
   warehouse (``wattledger_ingest_written_total`` + duplicates), not merely acknowledged.

The ceiling: the same rows, already mapped to Arrow (decoding not timed), inserted into a fresh
DuckDB warehouse with ``INSERT INTO inference_requests SELECT * FROM arrow`` in chunks of the
writer's batch size (``[ingest] batch_max_rows``), measured right before and right after the
DuckDB end-to-end run so both see the same machine. A second ceiling into a copy of the table
without keys and checks shows what the primary key, foreign key and checks cost. Each run is
repeated (``--repeat``) and medians are reported, because a shared 2-core machine is noisy.

    .venv/bin/python bench/ingest_throughput.py                 # DuckDB and PostgreSQL
    .venv/bin/python bench/ingest_throughput.py --backends duckdb --spans 102400 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow as pa
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy.engine import make_url

from wattledger.ingest.auth import create_key
from wattledger.ingest.mapping.requests import map_requests
from wattledger.ingest.otlp import traces
from wattledger.migrations import runner
from wattledger.models import make_engine

SPANS_PER_BODY = 512
BATCH_MAX_ROWS = 122_880  # the writer's default batch size


class _Capture(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def template_body() -> bytes:
    """512 SDK spans with the attributes our SDK sets, encoded as the official exporter does."""
    cap = _Capture()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "chat-api", "host.name": "node-1", "wattledger.site": "eu-west"}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(cap))
    tracer = provider.get_tracer("wattledger")
    for i in range(SPANS_PER_BODY):
        with tracer.start_as_current_span("chat llama-3.1-8b") as s:
            s.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "vllm",
                    "gen_ai.request.model": "llama-3.1-8b",
                    "gen_ai.response.model": "llama-3.1-8b",
                    "gen_ai.usage.input_tokens": 100 + i,
                    "gen_ai.usage.output_tokens": 50 + i % 7,
                    "wattledger.ttft_s": 0.12,
                    "wattledger.workload": "chat",
                    "wattledger.device.id": f"GPU-{i % 8}",
                    "server.address": "10.0.0.7",
                    "wattledger.itl.mean_s": 0.021,
                    "wattledger.quantization": "bf16",
                }
            )
    provider.shutdown()
    return encode_spans(cap.spans).SerializeToString()


def make_bodies(n_bodies: int) -> list[bytes]:
    """``n_bodies`` copies of the template with fresh random trace and span ids."""
    request = ExportTraceServiceRequest.FromString(template_body())
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    out = []
    for _ in range(n_bodies):
        for s in spans:
            s.trace_id, s.span_id = os.urandom(16), os.urandom(8)
        out.append(request.SerializeToString())
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _committed(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(
            (
                'wattledger_ingest_written_total{signal="traces"}',
                'wattledger_ingest_duplicates_total{signal="traces"}',
            )
        ):
            total += float(line.split()[-1])
    return total


class _RawClient:
    """A minimal HTTP/1.1 keep-alive client: the request bytes are written straight to the
    socket, so the client costs almost no CPU and the benchmark measures the server. (httpx
    spent more CPU per 200 KB request than the server did.)"""

    def __init__(self, port: int, key: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.head = (
            "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/x-protobuf\r\n"
        ).encode()
        self.buf = b""

    def __enter__(self) -> _RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def post(self, body: bytes) -> int:
        """Send one export request; the HTTP status of the answer."""
        self.sock.sendall(self.head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            (
                int(v)
                for k, _, v in (line.partition(b":") for line in lines[1:])
                if k.strip().lower() == b"content-length"
            ),
            0,
        )
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            rest += chunk
        self.buf = rest[length:]
        return status


def run_server_bench(url: str, bodies: list[bytes], connections: int, work: Path) -> dict[str, Any]:
    """Send ``bodies`` to a fresh server on ``url``; spans/s until all are committed."""
    runner.upgrade(url)
    engine = make_engine(url)
    key = create_key(engine, "bench").key
    engine.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "WATTLEDGER_DATABASE_URL": url,
        "WATTLEDGER_DATA_DIR": str(work),
        "WATTLEDGER_INGEST__STATS_LOG_INTERVAL_S": "0",
    }
    log = open(work / f"server-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattledger", "ingest", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        wait_ready(proc, port, Path(log.name))
        total = len(bodies) * SPANS_PER_BODY
        queue = list(reversed(bodies))
        lock = threading.Lock()
        retries = [0]

        def client() -> None:
            with _RawClient(port, key) as c:
                while True:
                    with lock:
                        if not queue:
                            return
                        body = queue.pop()
                    while (status := c.post(body)) != 200:
                        if status not in (429, 503):
                            raise RuntimeError(f"unexpected HTTP {status}")
                        with lock:
                            retries[0] += 1
                        time.sleep(0.2)

        threads = [threading.Thread(target=client) for _ in range(connections)]
        cpu_before = _cpu_seconds(proc.pid)
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        acked = time.perf_counter() - started
        while _committed(port) < total:
            time.sleep(0.01)
        committed = time.perf_counter() - started
        server_cpu_s = _cpu_seconds(proc.pid) - cpu_before
        batch = _metric_sums(port, "wattledger_ingest_decode_batch_bodies")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        log.close()
    engine = make_engine(url)
    with engine.connect() as conn:
        from sqlalchemy import text

        stored = conn.execute(text("SELECT count(*) FROM inference_requests")).scalar_one()
    engine.dispose()
    assert stored == total, f"stored {stored} of {total}"
    return {
        "spans": total,
        "acked_s": acked,
        "committed_s": committed,
        "spans_per_s": total / committed,
        "retries_429_503": retries[0],
        "server_cpu_us_per_span": server_cpu_s / total * 1e6,
        "decode_bodies_per_batch": batch["sum"] / batch["count"] if batch["count"] else None,
    }


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 60) -> None:
    """Wait until the server on ``port`` answers ``/readyz`` with 200.

    Raises:
        RuntimeError: it exited or did not get ready in time (with the end of ``log``).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _metric_sums(port: int, histogram: str) -> dict[str, float]:
    """``_sum`` and ``_count`` of a histogram on the server's ``/metrics``."""
    out = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        for part in out:
            if line.startswith(f"{histogram}_{part} "):
                out[part] = float(line.split()[-1])
    return out


def mapped_rows(bodies: list[bytes]) -> pa.Table:
    """The rows the receiver stores for ``bodies`` (decoded and mapped, not timed)."""
    return pa.concat_tables(
        [map_requests(traces.decode_protobuf(b).columns, tenant="bench").table for b in bodies]
    )


def ceiling(rows: pa.Table, work: Path) -> dict[str, float]:
    """DuckDB raw Arrow insert of ``rows`` into a fresh warehouse, rows/s (with and without
    the table's keys and checks), in chunks of the writer's batch size."""
    import duckdb

    chunks = [rows.slice(i, BATCH_MAX_ROWS) for i in range(0, rows.num_rows, BATCH_MAX_ROWS)]
    out: dict[str, float] = {}
    for label, table in (("with_keys", "inference_requests"), ("no_keys", "bare")):
        path = work / f"ceiling-{label}-{uuid.uuid4().hex[:6]}.duckdb"
        runner.upgrade(f"duckdb:///{path}")
        con = duckdb.connect(str(path))
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE bare AS SELECT * FROM inference_requests LIMIT 0")
        con.register("all_rows", rows)
        con.execute(  # the devices the rows reference exist first, as the receiver ensures
            "INSERT INTO devices (device_id, tenant, vendor, hardware_model, power_source, "
            "first_seen_at, last_seen_at) SELECT DISTINCT device_id, 'bench', 'unknown', "
            "'unknown', 'unknown', now(), now() FROM all_rows WHERE device_id IS NOT NULL"
        )
        con.unregister("all_rows")
        started = time.perf_counter()
        for chunk in chunks:
            con.register("chunk", chunk)
            con.execute(f"INSERT INTO {table} SELECT * FROM chunk")  # noqa: S608 - constant
            con.unregister("chunk")
        out[label] = rows.num_rows / (time.perf_counter() - started)
        con.close()
    return out


def _pg_database(admin_url: str, prefix: str = "wl_bench") -> tuple[str, str]:
    """A new database on ``admin_url``'s server: (its URL, its name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conninfo = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(False), name


def _drop_pg(admin_url: str, name: str) -> None:
    conninfo = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spans", type=int, default=204_800, help="spans per backend")
    p.add_argument("--connections", type=int, default=4, help="concurrent HTTP connections")
    p.add_argument("--backends", default="duckdb,postgres")
    p.add_argument(
        "--pg-url",
        default=os.environ.get(
            "WATTLEDGER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    p.add_argument("--repeat", type=int, default=3, help="runs; medians are reported")
    p.add_argument("--json", action="store_true", help="print JSON only")
    args = p.parse_args(argv)
    n_bodies = max(1, args.spans // SPANS_PER_BODY)
    bodies = make_bodies(n_bodies)
    rows = mapped_rows(bodies)
    backends = args.backends.split(",")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wl-bench-") as tmp:
        work = Path(tmp)
        for rep in range(args.repeat):
            run: dict[str, Any] = {"load_before": os.getloadavg()[0]}
            before = ceiling(rows, work)  # measured right before and after DuckDB end to end,
            for backend in backends:  # so that all three see the same machine
                bench_dir = work / f"{backend}-{rep}"
                bench_dir.mkdir()
                if backend == "duckdb":
                    run["duckdb"] = run_server_bench(
                        f"duckdb:///{bench_dir}/wh.duckdb", bodies, args.connections, bench_dir
                    )
                    after = ceiling(rows, work)
                    run["ceiling_rows_per_s"] = {k: (before[k] + after[k]) / 2 for k in before}
                    run["ratio_duckdb_to_ceiling"] = (
                        run["duckdb"]["spans_per_s"] / run["ceiling_rows_per_s"]["with_keys"]
                    )
                else:
                    url, name = _pg_database(args.pg_url)
                    try:
                        run["postgres"] = run_server_bench(url, bodies, args.connections, bench_dir)
                    finally:
                        _drop_pg(args.pg_url, name)
            run.setdefault("ceiling_rows_per_s", before)
            runs.append(run)
    result: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "spans": n_bodies * SPANS_PER_BODY,
        "spans_per_body": SPANS_PER_BODY,
        "connections": args.connections,
        "runs": runs,
    }
    med = statistics.median
    summary: dict[str, float] = {}
    for backend in backends:
        summary[f"{backend}_spans_per_s"] = med(r[backend]["spans_per_s"] for r in runs)
    summary["ceiling_with_keys_rows_per_s"] = med(
        r["ceiling_rows_per_s"]["with_keys"] for r in runs
    )
    summary["ceiling_no_keys_rows_per_s"] = med(r["ceiling_rows_per_s"]["no_keys"] for r in runs)
    if "duckdb" in backends:
        summary["ratio_duckdb_to_ceiling"] = med(r["ratio_duckdb_to_ceiling"] for r in runs)
    result["median"] = summary
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    print(
        f"{result['spans']} spans per run, {SPANS_PER_BODY} per body, {args.connections} "
        f"connections, {os.cpu_count()} CPUs, {args.repeat} run(s); medians:"
    )
    for backend in backends:
        best = max(r[backend]["spans_per_s"] for r in runs)
        print(
            f"  {backend:9s} end to end: {summary[f'{backend}_spans_per_s']:>9,.0f} spans/s "
            f"(best {best:,.0f}); server CPU "
            f"{med(r[backend]['server_cpu_us_per_span'] for r in runs):.1f} µs/span, "
            f"{med(r[backend]['decode_bodies_per_batch'] or 0 for r in runs):.1f} bodies "
            "decoded per batch"
        )
    print(
        f"  DuckDB raw Arrow insert: {summary['ceiling_with_keys_rows_per_s']:>9,.0f} rows/s "
        f"into inference_requests, {summary['ceiling_no_keys_rows_per_s']:,.0f} rows/s "
        "without keys or checks"
    )
    if "ratio_duckdb_to_ceiling" in summary:
        print(f"  ratio DuckDB end to end / raw insert: {summary['ratio_duckdb_to_ceiling']:.0%}")
    print(f"  load average before each run: {[round(r['load_before'], 1) for r in runs]}")
    return result


if __name__ == "__main__":
    main()
