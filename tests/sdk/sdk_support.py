"""Helpers for the SDK tests: controlled clocks and real local HTTP servers.

- :class:`FakeClock` / :class:`SteppingClock`: monotonic clocks that make TTFT and gaps exact.
- :class:`OtlpReceiver`: a real OTLP/HTTP endpoint (``http.server``) that records every
  request and decodes the protobuf with ``opentelemetry-proto``.
- :func:`start_openai_server`: an OpenAI-compatible server (Starlette on uvicorn) serving
  ``/v1/chat/completions`` and ``/v1/responses`` as JSON and as real SSE streams (with the
  final usage chunk when ``stream_options.include_usage`` is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import wattledger


class FakeClock:
    """A monotonic nanosecond clock that moves only when told to."""

    def __init__(self, start_ns: int = 1_000_000_000) -> None:
        self.ns = start_ns

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


class SteppingClock:
    """A clock that moves ``step_s`` forward on every read (exact timings through real I/O)."""

    def __init__(self, step_s: float) -> None:
        self.ns = 0
        self.step_ns = round(step_s * 1e9)

    def __call__(self) -> int:
        self.ns += self.step_ns
        return self.ns


def span_attrs(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as a plain dict."""
    return dict(span.attributes or {})


def duration_ns(span: ReadableSpan) -> int:
    """A finished span's length in nanoseconds."""
    assert span.start_time is not None and span.end_time is not None
    return span.end_time - span.start_time


@dataclass
class Sdk:
    exporter: InMemorySpanExporter
    clock: FakeClock

    def spans(self) -> list[ReadableSpan]:
        assert wattledger.flush(5.0)
        return list(self.exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        (only,) = self.spans()
        return only


def free_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a real OTLP/HTTP receiver ------------------------------------------------------------


@dataclass
class OtlpReceiver:
    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trace_requests(self) -> list[tuple[dict[str, str], ExportTraceServiceRequest]]:
        out = []
        with self.lock:
            items = list(self.requests)
        for path, headers, body in items:
            if path == "/v1/traces":
                msg = ExportTraceServiceRequest()
                msg.ParseFromString(body)
                out.append((headers, msg))
        return out

    def spans(self) -> list[tuple[dict[str, Any], dict[str, Any], Any]]:
        """(resource attributes, span attributes, span) for every received span."""
        out = []
        for _, req in self.trace_requests():
            for rs in req.resource_spans:
                resource = {kv.key: _any_value(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        attrs = {kv.key: _any_value(kv.value) for kv in span.attributes}
                        out.append((resource, attrs, span))
        return out

    def wait_for_spans(self, n: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.spans()) < n and time.monotonic() < deadline:
            time.sleep(0.01)


def _any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


# --- a real OpenAI-compatible server -------------------------------------------------------

CHAT_WORDS = ["Hello", " from", " the", " local", " server"]
CHAT_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 4},
}
RESPONSES_WORDS = ["Watts", " per", " token", "."]
RESPONSES_USAGE = {
    "input_tokens": 20,
    "input_tokens_details": {"cached_tokens": 8},
    "output_tokens": 6,
    "output_tokens_details": {"reasoning_tokens": 2},
    "total_tokens": 26,
}
FIRST_CHUNK_DELAY_S = 0.05
CHUNK_GAP_S = 0.005


def served_model(requested: str) -> str:
    return f"{requested}-2025-01-01"


@dataclass
class OpenAIServer:
    base_url: str
    port: int
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _chat_app(state: OpenAIServer) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        state.requests.append(("/v1/chat/completions", body, dict(request.headers)))
        model = body["model"]
        if model == "rate-limited":
            return JSONResponse(
                {"error": {"message": "slow down", "type": "requests", "code": "rate_limit"}},
                status_code=429,
            )
        base = {"id": "chatcmpl-local-1", "created": 1700000000, "model": served_model(model)}
        if not body.get("stream"):
            return JSONResponse(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(CHAT_WORDS)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": CHAT_USAGE,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events() -> AsyncIterator[bytes]:
            chunk = {**base, "object": "chat.completion.chunk"}
            await asyncio.sleep(FIRST_CHUNK_DELAY_S)
            yield _sse(
                {
                    **chunk,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                }
            )
            for word in CHAT_WORDS:
                await asyncio.sleep(CHUNK_GAP_S)
                yield _sse(
                    {
                        **chunk,
                        "choices": [
                            {"index": 0, "delta": {"content": word}, "finish_reason": None}
                        ],
                    }
                )
            yield _sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if include_usage:
                yield _sse({**chunk, "choices": [], "usage": CHAT_USAGE})
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream")

    async def responses(request: Request) -> Response:
        body = await request.json()
        state.requests.append(("/v1/responses", body, dict(request.headers)))
        text = "".join(RESPONSES_WORDS)
        message = {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        full: dict[str, Any] = {
            "id": "resp_local_1",
            "object": "response",
            "created_at": 1700000000,
            "model": served_model(body["model"]),
            "status": "completed",
            "output": [message],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": RESPONSES_USAGE,
        }
        if not body.get("stream"):
            return JSONResponse(full)

        async def events() -> AsyncIterator[bytes]:
            # The event sequence the OpenAI Responses API sends for one text message.
            seq = iter(range(1000))
            item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant"}
            part = {"type": "output_text", "text": "", "annotations": []}
            where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}

            def event(kind: str, **fields: Any) -> bytes:
                return _sse({"type": kind, "sequence_number": next(seq), **fields}, kind)

            created = {**full, "status": "in_progress", "output": [], "usage": None}
            yield event("response.created", response=created)
            yield event("response.in_progress", response=created)
            await asyncio.sleep(FIRST_CHUNK_DELAY_S)
            yield event("response.output_item.added", output_index=0, item={**item, "content": []})
            yield event("response.content_part.added", part=part, **where)
            for word in RESPONSES_WORDS:
                yield event("response.output_text.delta", delta=word, logprobs=[], **where)
                await asyncio.sleep(CHUNK_GAP_S)
            yield event("response.output_text.done", text=text, logprobs=[], **where)
            yield event("response.content_part.done", part={**part, "text": text}, **where)
            yield event("response.output_item.done", output_index=0, item=message)
            yield event("response.completed", response=full)

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
        ]
    )


@contextlib.contextmanager
def run_otlp_receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/HTTP receiver on 127.0.0.1 answering 200 to every POST."""
    receiver: OtlpReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.requests.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = OtlpReceiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def start_openai_server() -> Iterator[OpenAIServer]:
    """The OpenAI-compatible server on uvicorn, in a thread, on a free 127.0.0.1 port."""
    port = free_port()
    state = OpenAIServer(base_url=f"http://127.0.0.1:{port}/v1", port=port)
    config = uvicorn.Config(
        _chat_app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the local OpenAI-compatible server did not start"
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(10)
