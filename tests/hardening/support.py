"""Helpers for the fault tests: raw OTLP bodies with known ids, concurrent senders that record
what was acknowledged, fresh PostgreSQL databases and what the warehouse holds."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import fresh_pg_database as _fresh_pg_database
from wattledger.models import make_engine

T0_NS = 1_763_000_000_000_000_000  # 2025-11-13, a fixed instant
PROTOBUF = {"content-type": "application/x-protobuf"}


@dataclass(frozen=True)
class Body:
    """One OTLP request body and the keys of the rows it must become."""

    signal: str  # traces | metrics
    data: bytes
    keys: frozenset[str]  # span ids, or "device|ts_ns" of samples


def span_bodies(n: int, per_body: int = 20, *, tag: int = 0) -> list[Body]:
    """``n`` trace bodies of ``per_body`` GenAI spans each, every span id unique."""
    out = []
    for b in range(n):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        a = rs.resource.attributes.add()
        a.key, a.value.string_value = "service.name", "hardening"
        ss = rs.scope_spans.add()
        ids = set()
        for i in range(per_body):
            k = (tag << 40) | (b << 16) | i
            span = ss.spans.add()
            span.trace_id = (k + 1).to_bytes(16, "big")  # all-zero ids are invalid
            span.span_id = (k + 1).to_bytes(8, "big")
            span.name = "chat"
            span.start_time_unix_nano = T0_NS + k % 10**9 * 1000
            span.end_time_unix_nano = span.start_time_unix_nano + 1_500_000_000
            for key, value in (
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.provider.name", "vllm"),
                ("gen_ai.request.model", "m"),
            ):
                attr = span.attributes.add()
                attr.key, attr.value.string_value = key, value
            for key, n_tokens in (
                ("gen_ai.usage.input_tokens", 10 + i),
                ("gen_ai.usage.output_tokens", 5),
            ):
                attr = span.attributes.add()
                attr.key, attr.value.int_value = key, n_tokens
            ids.add(span.span_id.hex())
        out.append(Body("traces", req.SerializeToString(), frozenset(ids)))
    return out


def sample_bodies(n: int, devices: int = 4, *, tag: int = 0) -> list[Body]:
    """``n`` metric bodies, each one instant of ``hw.power`` for ``devices`` devices."""
    out = []
    for b in range(n):
        req = ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        a = rm.resource.attributes.add()
        a.key, a.value.string_value = "host.name", f"node-{tag}"
        metric = rm.scope_metrics.add().metrics.add()
        metric.name, metric.unit = "hw.power", "W"
        ts = T0_NS + (tag * 100_000 + b) * 1_000_000_000
        keys = set()
        for d in range(devices):
            point = metric.gauge.data_points.add()
            point.time_unix_nano, point.as_double = ts, 100.0 + d
            attr = point.attributes.add()
            attr.key, attr.value.string_value = "hw.id", f"hard-{tag}-{d}"
            keys.add(f"hard-{tag}-{d}|{ts}")
        out.append(Body("metrics", req.SerializeToString(), frozenset(keys)))
    return out


@dataclass
class Sender:
    """Posts bodies to ingest URLs from threads, recording every acknowledged (2xx) body.

    A body answered 429/503 or cut off is retried (to the next URL in turn, as an exporter behind
    a load balancer would) until ``attempts`` runs out or :meth:`stop` is called.
    """

    urls: Sequence[str]
    key: str | None = None
    attempts: int = 200
    acked: set[str] = field(default_factory=set)
    codes: dict[int, int] = field(default_factory=dict)
    retry_after: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def send(self, body: Body, first: int = 0) -> bool:
        """Post ``body`` until acknowledged; True when it was."""
        headers = dict(PROTOBUF)
        if self.key:
            headers["authorization"] = f"Bearer {self.key}"
        for attempt in range(self.attempts):
            if self._stop.is_set():
                return False
            url = self.urls[(first + attempt) % len(self.urls)]
            try:
                r = httpx.post(
                    f"{url}/v1/{body.signal}", content=body.data, headers=headers, timeout=15
                )
            except httpx.HTTPError:
                self._stop.wait(0.2)
                continue
            with self._lock:
                self.codes[r.status_code] = self.codes.get(r.status_code, 0) + 1
                if r.status_code in (429, 503) and "retry-after" in r.headers:
                    self.retry_after.add(r.headers["retry-after"])
            if r.status_code == 200:
                with self._lock:
                    self.acked |= body.keys
                return True
            assert r.status_code in (429, 502, 503, 504), (r.status_code, r.text[:300])
            self._stop.wait(0.2)
        return False

    def run(self, bodies: Sequence[Body], threads: int = 3) -> list[threading.Thread]:
        """Send ``bodies`` from ``threads`` threads (started; join them)."""

        def work(share: Sequence[Body], offset: int) -> None:
            for i, body in enumerate(share):
                self.send(body, first=offset + i)

        out = [
            threading.Thread(target=work, args=(bodies[t::threads], t), daemon=True)
            for t in range(threads)
        ]
        for t in out:
            t.start()
        return out

    def stop(self) -> None:
        """Give up on bodies not acknowledged yet."""
        self._stop.set()


def fresh_pg_database() -> contextlib.AbstractContextManager[str]:
    """A new database on the shared test server (dropped at exit); yields its URL."""
    return _fresh_pg_database("wl_hard")


def stored(url: str) -> tuple[list[str], list[str]]:
    """Every stored span id and sample key ("device|ts_ns"), duplicates included."""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            spans = [r[0] for r in c.execute(sa.text("SELECT span_id FROM inference_requests"))]
            samples = [
                f"{device}|{ts_ns}"
                for device, ts_ns in c.execute(sa.text("SELECT device_id, ts FROM power_samples"))
            ]
    finally:
        engine.dispose()
    return spans, [_sample_key(k) for k in samples]


def _sample_key(key: str) -> str:
    import datetime as dt

    device, _, ts = key.partition("|")
    when = dt.datetime.fromisoformat(ts)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    return f"{device}|{ns}"
