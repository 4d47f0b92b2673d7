"""Connection limits for the OTLP/HTTP receiver: read timeouts, a connection cap, a body budget.

uvicorn has a keep-alive timeout but no read timeouts: a client that sends its headers a byte
at a time, or a ``Content-Length`` larger than the body it sends, holds its connection (and a
file descriptor) for ever, and a few hundred of them exhaust the process's descriptors. This
module wraps uvicorn's httptools protocol so that each connection is held to
:class:`ConnectionLimits`:

- headers must be complete within ``header_timeout_s`` of the connection opening (or of the
  first byte of a later request on a kept-alive connection), else ``408`` and close;
- a body must not pause longer than ``body_idle_timeout_s`` nor take longer than
  ``body_timeout_s`` in all, else ``408`` (or a close, when an answer was already sent).
  Time during which *we* stopped reading (the app is behind) does not count;
- past ``max_connections`` open connections a new one is answered ``503`` with
  ``Retry-After`` and closed at once, so the descriptor is returned straight away. The cap is
  lowered below the open-file limit by a reserve and by the listen backlog (which is also how
  many connections asyncio accepts in one go, before any can be refused), and the backlog is
  kept to a quarter of the limit, so a burst of connections never runs out of descriptors;
- bodies being received or decoded hold their declared size (or ``max_body_bytes`` when the
  size is not declared) against ``max_inflight_body_bytes``; a request that would exceed it is
  answered ``503`` with ``Retry-After`` before its body is read.

Answers written here have the OTLP error shape (a ``google.rpc.Status``, protobuf or JSON by
the request's content type) and ``Connection: close``. Everything runs on the event loop, so
the shared counters need no lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass, field
from typing import Any

from google.rpc import status_pb2
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

#: Descriptors kept free for the warehouse, the spool, logs and worker threads.
FD_RESERVE = 64
#: uvicorn's default listen backlog.
MAX_BACKLOG = 2048
_REASONS = {408: b"Request Timeout", 503: b"Service Unavailable"}
_RPC_CODES = {408: 4, 503: 14}  # DEADLINE_EXCEEDED, UNAVAILABLE


@dataclass
class ConnectionLimits:
    """The limits one receiver enforces, and the state they share across its connections."""

    header_timeout_s: float = 10.0
    body_idle_timeout_s: float = 30.0
    body_timeout_s: float = 300.0
    keep_alive_timeout_s: float = 5.0
    max_connections: int = 1000
    max_inflight_body_bytes: int = 256 * 1024 * 1024
    max_body_bytes: int = 16 * 1024 * 1024
    retry_after_s: int = 1
    open_connections: int = field(default=0, init=False)
    inflight_body_bytes: int = field(default=0, init=False)
    refused: dict[str, int] = field(
        default_factory=lambda: {"connections": 0, "body_budget": 0, "timeouts": 0}, init=False
    )

    def accept_backlog(self) -> int:
        """The listen backlog, which is also how many connections asyncio accepts in one go
        before any is answered: small enough that a burst cannot run out of descriptors."""
        soft = _open_file_limit()
        return MAX_BACKLOG if soft is None else max(16, min(MAX_BACKLOG, (soft - FD_RESERVE) // 4))

    def effective_max_connections(self) -> int:
        """``max_connections``, lowered so that the cap, plus one burst of accepted
        connections not yet refused, is reached before the descriptor limit."""
        soft = _open_file_limit()
        if soft is None:
            return self.max_connections
        return max(1, min(self.max_connections, soft - FD_RESERVE - self.accept_backlog()))


def _open_file_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def protocol_class(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """A uvicorn ``http`` protocol class holding every connection to ``limits``."""
    cap = limits.effective_max_connections()
    if cap < limits.max_connections:
        logger.warning(
            "ingest accepts at most %d connections at once (max_connections is %d, but the "
            "process may open only %d files; raise it with `ulimit -n`)",
            cap,
            limits.max_connections,
            _open_file_limit(),
        )
    return type(
        "GuardedHttpToolsProtocol", (_GuardedProtocol,), {"limits": limits, "max_connections": cap}
    )


class _GuardedProtocol(HttpToolsProtocol):
    limits: ConnectionLimits
    max_connections: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counted = False
        self._done = False  # answered here and closing: ignore whatever else arrives
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # loop time by which the body must be complete
        self._reserved = 0  # body bytes this connection's current request holds
        self._in_body = False

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        limits = self.limits
        if limits.open_connections >= self.max_connections:
            self.transport = transport
            self._done = True
            limits.refused["connections"] += 1
            self._answer(503, "too many connections; retry later", retry=True)
            return
        limits.open_connections += 1
        self._counted = True
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._release()
        if not self._counted:
            return
        self._counted = False
        self.limits.open_connections -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        super().data_received(data)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # a later request on a kept-alive connection
            self._arm(self.limits.header_timeout_s, self._header_timeout)

    def on_headers_complete(self) -> None:
        self._cancel()
        if self._reserve():
            self._done = True
            return
        self._in_body = True
        self._deadline = self.loop.time() + self.limits.body_timeout_s
        self._arm(self._next_wait(), self._body_timeout)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._done:
            return
        super().on_body(body)
        self._arm(self._next_wait(), self._body_timeout)

    def on_message_complete(self) -> None:
        if self._done:
            return
        self._in_body = False
        self._cancel()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._release()
        super().on_response_complete()

    # Limits

    def _reserve(self) -> bool:
        """Reserve this request's body against the budget; True when it was refused."""
        limits = self.limits
        declared, chunked = 0, False
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                declared = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        # A chunked body's size is unknown until it ends: it holds the most a body may be.
        size = limits.max_body_bytes if chunked else min(declared, limits.max_body_bytes)
        self._release()
        if size and limits.inflight_body_bytes + size > limits.max_inflight_body_bytes:
            limits.refused["body_budget"] += 1
            self._answer(503, "too many request bodies in flight; retry later", retry=True)
            return True
        limits.inflight_body_bytes += size
        self._reserved = size
        return False

    def _release(self) -> None:
        self.limits.inflight_body_bytes -= self._reserved
        self._reserved = 0

    def _next_wait(self) -> float:
        return max(0.0, min(self.limits.body_idle_timeout_s, self._deadline - self.loop.time()))

    def _header_timeout(self) -> None:
        self._timer = None
        self.limits.refused["timeouts"] += 1
        self._done = True
        self._answer(408, f"request headers not received within {self.limits.header_timeout_s:g} s")

    def _body_timeout(self) -> None:
        self._timer = None
        if not self._in_body:
            return
        if self.flow is not None and self.flow.read_paused:
            # We stopped reading because the app is behind: not the client's delay.
            self._deadline += self.limits.body_idle_timeout_s
            self._arm(self.limits.body_idle_timeout_s, self._body_timeout)
            return
        self.limits.refused["timeouts"] += 1
        self._done = True
        idle = self._deadline - self.loop.time() > 1e-3
        what = (
            f"no body data for {self.limits.body_idle_timeout_s:g} s"
            if idle
            else f"body not complete within {self.limits.body_timeout_s:g} s"
        )
        if self.cycle is not None and not self.cycle.response_started:
            self._answer(408, f"{what}; send the whole body promptly")
        else:
            self.transport.close()

    def _arm(self, delay: float, callback: Any) -> None:
        self._cancel()
        self._timer = self.loop.call_later(delay, callback)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _answer(self, status: int, message: str, retry: bool = False) -> None:
        """Write an OTLP-shaped error answer and close the connection."""
        if self.transport.is_closing():
            return
        ctype = b""
        for name, value in self.headers or ():
            if name == b"content-type":
                ctype = value.split(b";")[0].strip().lower()
        code = _RPC_CODES[status]
        if ctype == b"application/x-protobuf":
            body = status_pb2.Status(code=code, message=message).SerializeToString()
        else:
            ctype = b"application/json"
            body = json.dumps({"code": code, "message": message}).encode()
        head = [
            b"HTTP/1.1 %d %s" % (status, _REASONS[status]),
            b"content-type: " + ctype,
            b"content-length: %d" % len(body),
            b"connection: close",
        ]
        if retry:
            head.append(b"retry-after: %d" % self.limits.retry_after_s)
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()
