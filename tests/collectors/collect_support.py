"""Test helpers for the collector: real HTTP servers on 127.0.0.1 and a hand-driven clock."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

DATA = Path(__file__).parent / "data"


class ManualClock:
    """A monotonic clock tests advance by hand (nanoseconds)."""

    def __init__(self, start_ns: int = 1_000_000_000) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now_ns += int(seconds * 1e9)


@dataclass
class Received:
    """One request the OTLP receiver got."""

    path: str
    headers: dict[str, str]
    request: ExportMetricsServiceRequest


@dataclass
class OtlpReceiver:
    """A minimal OTLP/HTTP metrics endpoint that decodes and keeps every request."""

    port: int
    received: list[Received] = field(default_factory=list)
    status: int = 200
    event: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """Base URL (without /v1/metrics)."""
        return f"http://127.0.0.1:{self.port}"

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, data point)`` of every point of metric ``name`` received so far."""
        out = []
        for rec in self.received:
            for rm in rec.request.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name != name:
                            continue
                        data = getattr(m, m.WhichOneof("data"))
                        for dp in data.data_points:
                            out.append((attrs_of(dp.attributes), dp))
        return out

    def metrics(self, name: str) -> list[Any]:
        """Every ``Metric`` message called ``name``."""
        return [
            m
            for rec in self.received
            for rm in rec.request.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == name
        ]


def attrs_of(kvs: Any) -> dict[str, Any]:
    """Protobuf KeyValue list -> dict of Python values."""
    out: dict[str, Any] = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def free_port() -> int:
    """A TCP port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def otlp_receiver(port: int = 0, status: int = 200) -> Iterator[OtlpReceiver]:
    """Run an OTLP/HTTP metrics receiver on 127.0.0.1 (``port=0``: any free port)."""
    holder: dict[str, OtlpReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rec = holder["r"]
            if rec.status == 200:
                req = ExportMetricsServiceRequest()
                req.ParseFromString(body)
                rec.received.append(Received(self.path, dict(self.headers.items()), req))
                rec.event.set()
            out = ExportMetricsServiceResponse().SerializeToString() if rec.status == 200 else b""
            self.send_response(rec.status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    holder["r"] = OtlpReceiver(server.server_address[1], status=status)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield holder["r"]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def text_server(pages: Callable[[str], tuple[int, str]]) -> Iterator[str]:
    """Serve ``pages(path) -> (status, text)`` over HTTP on 127.0.0.1; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status, text = pages(self.path)
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
