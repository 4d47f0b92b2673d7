"""The ASGI app: OTLP/HTTP ``POST /v1/traces`` and ``/v1/metrics``, health and metrics.

Answers follow the OTLP/HTTP specification (REFERENCE.md §2): the response has the request's
content type; 200 with ``partial_success`` when some items were refused; 400 for a body that
cannot be decoded; 401 for a missing, wrong or revoked key; 413 above ``max_body_bytes`` (as
sent or decompressed); 415 for other content types or encodings; 429 when the writer is behind
and 503 when the warehouse is down, both with ``Retry-After`` (the codes exporters retry).
Decoding runs in worker threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wattledger.ingest.auth import AuthError
from wattledger.ingest.decoding import DecoderStopped
from wattledger.ingest.otlp.values import DecodeError
from wattledger.ingest.service import DEFAULT_TENANT, BodyTooLarge, Outcome
from wattledger.ingest.spool import SpoolRecord, Ticket

if TYPE_CHECKING:
    from wattledger.ingest.service import IngestService

logger = logging.getLogger(__name__)

PROTOBUF, JSON = "application/x-protobuf", "application/json"
_FORMATS = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
_ENCODINGS = {
    "": "identity",
    "identity": "identity",
    "gzip": "gzip",
    "x-gzip": "gzip",
    "deflate": "deflate",
}
# google.rpc.Code for each HTTP status we send
_RPC_CODES = {400: 3, 401: 16, 404: 5, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


class _Refusal(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def _error(fmt: str, status: int, message: str, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="wattledger"'
    if status == 415:
        headers["Accept-Encoding"] = "gzip, deflate, identity"
    code = _RPC_CODES.get(status, 2)
    if fmt == "protobuf":
        body = status_pb2.Status(code=code, message=message).SerializeToString()
        return Response(body, status, headers=headers, media_type=PROTOBUF)
    return JSONResponse({"code": code, "message": message}, status, headers=headers)


def _success(fmt: str, signal: str, out: Outcome) -> Response:
    message = None
    if out.rejected:
        message = f"{out.rejected} of {out.received} rejected; first: {out.first_error}"
    if fmt == "protobuf":
        if signal == "traces":
            resp: Any = ExportTraceServiceResponse()
            if message:
                resp.partial_success.rejected_spans = out.rejected
                resp.partial_success.error_message = message
        else:
            resp = ExportMetricsServiceResponse()
            if message:
                resp.partial_success.rejected_data_points = out.rejected
                resp.partial_success.error_message = message
        return Response(resp.SerializeToString(), 200, media_type=PROTOBUF)
    doc: dict[str, Any] = {}
    if message:
        field = "rejectedSpans" if signal == "traces" else "rejectedDataPoints"
        doc["partialSuccess"] = {field: str(out.rejected), "errorMessage": message}
    return Response(json.dumps(doc), 200, media_type=JSON)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def build_app(service: IngestService) -> Starlette:
    """The Starlette app serving ``service``; its lifespan starts and stops the service."""
    cfg = service.config
    limiter = anyio.CapacityLimiter(cfg.decode_threads)
    spool_limiter = anyio.CapacityLimiter(16)

    async def tenant_of(request: Request) -> str:
        if cfg.insecure_no_auth:
            return DEFAULT_TENANT
        key = _bearer(request)
        if key is None:
            raise _Refusal(
                401,
                "missing API key: send the header 'Authorization: Bearer <key>' "
                "(create one with `wattledger keys create --tenant NAME`)",
            )
        try:
            tenant = service.verifier.cached(key)
            if tenant is None and (tenant := service.verifier.stale(key)) is not None:
                service.verifier.refresh_later(key)  # answer now, check the row meanwhile
            if tenant is None:
                tenant = await anyio.to_thread.run_sync(
                    service.verifier.verify, key, limiter=limiter
                )
        except AuthError as e:
            raise _Refusal(
                401,
                f"{e}: check the key or create a new one with "
                "`wattledger keys create --tenant NAME`",
            ) from e
        except Exception as e:  # noqa: BLE001 - the key table is unreachable
            logger.warning("cannot check an API key: %s", e)
            raise _Refusal(
                503, "cannot check the API key: the warehouse is unavailable", cfg.retry_after_s
            ) from e
        return tenant

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > cfg.max_body_bytes:
            raise _Refusal(
                413,
                f"body of {length} bytes exceeds the limit of "
                f"{cfg.max_body_bytes} bytes; send smaller batches",
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cfg.max_body_bytes:
                raise _Refusal(
                    413,
                    f"body exceeds the limit of {cfg.max_body_bytes} bytes; send smaller batches",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def export(signal: str) -> Callable[[Request], Awaitable[Response]]:
        path = f"/v1/{signal}"

        async def handler(request: Request) -> Response:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            fmt = _FORMATS.get(ctype)
            response = (
                await _handle(request, signal, fmt)
                if fmt
                else _error(
                    "json",
                    415,
                    f"content type {ctype or '(none)'!r} is not supported: send "
                    f"{PROTOBUF} or {JSON}",
                )
            )
            service.stats.requests.labels(path=path, code=str(response.status_code)).inc()
            return response

        return handler

    async def _handle(request: Request, signal: str, fmt: str) -> Response:
        encoding_header = request.headers.get("content-encoding", "").strip().lower()
        encoding = _ENCODINGS.get(encoding_header)
        try:
            if encoding is None:
                raise _Refusal(
                    415,
                    f"content encoding {encoding_header!r} is not supported: "
                    "send gzip, deflate or none",
                )
            tenant = await tenant_of(request)
            if not service.writer.healthy:
                raise _Refusal(503, "the warehouse is unavailable; retry later", cfg.retry_after_s)
            if service.writer.queued_rows > cfg.max_queue_rows:
                raise _Refusal(429, "the writer is behind; retry later", cfg.retry_after_s)
            service.decoder.expect()
            try:
                body = await read_body(request)
            except BaseException:
                service.decoder.withdraw()
                raise
            record = SpoolRecord(signal, tenant, fmt, encoding, body)
            out = await _decode(record)
            if out.batch is not None:
                # fsync waits happen here, apart from decoding, so they never hold a decoder
                out.batch.ticket = await anyio.to_thread.run_sync(
                    _spool, record, limiter=spool_limiter
                )
        except _Refusal as r:
            return _error(fmt, r.status, r.message, r.retry_after)
        except ClientDisconnect:
            return Response(status_code=400)
        if out.batch is not None:
            service.writer.submit(out.batch)
        return _success(fmt, signal, out)

    async def _decode(record: SpoolRecord) -> Outcome:
        try:
            out = await asyncio.wrap_future(service.decoder.submit(record, expected=True))
            assert isinstance(out, Outcome)
            return out
        except DecoderStopped as e:
            raise _Refusal(
                503, "the receiver is starting or stopping; retry later", cfg.retry_after_s
            ) from e
        except BodyTooLarge as e:
            raise _Refusal(
                413,
                f"body decompresses to more than {cfg.max_body_bytes} bytes; send smaller batches",
            ) from e
        except DecodeError as e:
            raise _Refusal(400, str(e)) from e
        except Exception as e:  # noqa: BLE001 - input we could not make sense of: a 400
            logger.exception("unexpected error decoding a %s body", record.signal)
            raise _Refusal(400, f"the body could not be decoded: {type(e).__name__}") from e

    def _spool(record: SpoolRecord) -> Ticket:
        try:
            return service.spool_append(record)
        except OSError as e:
            logger.error(
                "cannot write the spool %s: %s; answering 503 until it can. Free space on "
                "that file system, or set ingest.spool_dir (WATTLEDGER_INGEST__SPOOL_DIR) to "
                "a bigger one",
                service.spool.directory,
                e,
            )
            raise _Refusal(
                503,
                "cannot store the data durably right now (the ingest spool cannot be "
                "written); retry later",
                cfg.retry_after_s,
            ) from e

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok = service.started and await anyio.to_thread.run_sync(service.writer.probe)
        doc = {
            "status": "ready" if ok else "unavailable",
            "database": "up" if service.writer.healthy else "down",
            "queue_rows": service.writer.queued_rows,
            **{name: value() for name, value in service.status.items()},
        }
        if not ok:
            doc["detail"] = service.writer.last_error or "the service is not started"
        return JSONResponse(doc, 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        service.stats.queue_rows.set(service.writer.queued_rows)
        return Response(service.stats.exposition(), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        owned = not service.started
        if owned:
            await anyio.to_thread.run_sync(service.start)
        try:
            yield
        finally:
            if owned:
                await anyio.to_thread.run_sync(service.stop)

    return Starlette(
        routes=[
            Route("/v1/traces", export("traces"), methods=["POST"]),
            Route("/v1/metrics", export("metrics"), methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
