"""Helpers for ingest tests: real servers on 127.0.0.1, spans built by the OpenTelemetry SDK."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import Engine

from wattledger.config import Settings, load_settings
from wattledger.ingest import IngestService
from wattledger.ingest.auth import create_key

T0_NS = 1_763_000_000_000_000_000  # 2025-11-13, a fixed instant


class Capture(SpanExporter):
    """Keeps finished spans in memory (like the SDK's InMemorySpanExporter)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def make_spans(
    attrs: Sequence[Mapping[str, Any]],
    *,
    resource: Mapping[str, Any] | None = None,
    events: Mapping[int, Sequence[tuple[str, int]]] | None = None,
    start_ns: int = T0_NS,
    duration_ns: int = 2_000_000_000,
    scope: str = "wattledger",
) -> list[ReadableSpan]:
    """One SDK span per attribute dict, with fixed times; ``events[i]`` = [(name, offset_ns)]."""
    cap = Capture()
    provider = TracerProvider(resource=Resource.create(dict(resource or {"service.name": "svc"})))
    provider.add_span_processor(SimpleSpanProcessor(cap))
    tracer = provider.get_tracer(scope)
    for i, a in enumerate(attrs):
        start = start_ns + i * 1000
        span = tracer.start_span("chat", start_time=start, attributes=dict(a))
        for name, offset in (events or {}).get(i, []):
            span.add_event(name, timestamp=start + offset)
        span.end(end_time=start + duration_ns)
    provider.shutdown()
    return cap.spans


def protobuf_body(spans: Sequence[ReadableSpan]) -> bytes:
    """The body the official OTLP/HTTP exporter sends for ``spans``."""
    return encode_spans(spans).SerializeToString()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(url: str, tmp: Path, **ingest: Any) -> Settings:
    """Settings for a test warehouse, quick to flush, with ``ingest`` overrides."""
    base = {"flush_interval_s": 0.05, "stats_log_interval_s": 0, "auth_cache_ttl_s": 0.2}
    base.update(ingest)
    return load_settings(database_url=url, data_dir=tmp, ingest=base)


class RunningServer:
    """An :class:`IngestService` served by uvicorn on a free 127.0.0.1 port in a thread."""

    def __init__(self, service: IngestService) -> None:
        self.service = service
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(service.app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    def flush(self) -> None:
        """Wait until every accepted row is committed."""
        assert self.service.writer.wait_idle(20), "writer did not catch up"


def add_key(engine: Engine, tenant: str = "acme") -> str:
    return create_key(engine, tenant).key


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def post(
    url: str,
    path: str,
    body: bytes,
    key: str | None,
    ctype: str = "application/x-protobuf",
    **headers: str,
) -> httpx.Response:
    h = {"content-type": ctype, **headers}
    if key:
        h["authorization"] = f"Bearer {key}"
    return httpx.post(url + path, content=body, headers=h, timeout=30)


@contextlib.contextmanager
def server_process(
    url: str, data_dir: Path, port: int, *extra: str, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``wattledger ingest serve`` as a real subprocess; waits until /readyz answers."""
    e = {
        **os.environ,
        "WATTLEDGER_DATABASE_URL": url,
        "WATTLEDGER_DATA_DIR": str(data_dir),
        "WATTLEDGER_INGEST__STATS_LOG_INTERVAL_S": "0",
        "WATTLEDGER_INGEST__FLUSH_INTERVAL_S": "0.05",
        **(env or {}),
    }
    log = open(data_dir / f"server-{port}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattledger", "ingest", "serve", "--port", str(port), *extra],
        env=e,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {proc.returncode}: "
                    f"{(data_dir / f'server-{port}.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be cut and restored, to simulate an outage."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> TcpProxy:
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(64)
        self._listener = lst
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()
        return self

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self.start()

    def stop(self) -> None:
        self.cut()
