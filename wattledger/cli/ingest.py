"""``wattledger ingest serve``: the OTLP/HTTP receiver."""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wattledger.cli._common import CONTEXT_SETTINGS, emit_json, err_console, json_option, state
from wattledger.config import Settings
from wattledger.errors import DatabaseError, WattledgerError
from wattledger.models import redact

if TYPE_CHECKING:
    from wattledger.ingest.connections import ConnectionLimits

ingest_app = typer.Typer(
    help="Receive OpenTelemetry spans and power metrics (OTLP/HTTP) into the warehouse.",
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
)
logger = logging.getLogger(__name__)


def check_schema(url: str) -> None:
    """Fail when the warehouse is reachable but not migrated; only warn when unreachable.

    Raises:
        DatabaseError: the schema is missing or older than this version.
    """
    from wattledger.migrations import runner

    try:
        rev = runner.status(url)
    except DatabaseError as e:
        logger.warning("%s; serving anyway and answering 503 until it is reachable", e.message)
        return
    if not rev.is_current:
        raise DatabaseError(
            f"The warehouse {redact(url)} is at schema revision "
            f"{rev.current or 'base (empty)'}, not {rev.head}.",
            hint="Run `wattledger db upgrade` first.",
        )


def _with_overrides(settings: Settings, **changes: object) -> Settings:
    update = {k: v for k, v in changes.items() if v is not None}
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update=update)})


def _check(settings: Settings, as_json: bool) -> None:
    from starlette.testclient import TestClient

    from wattledger.ingest import IngestService
    from wattledger.models import make_engine

    engine = make_engine(settings.url)
    try:
        with tempfile.TemporaryDirectory(prefix="wattledger-check-") as spool:
            service = IngestService(settings, engine, spool_dir=Path(spool))
            with TestClient(service.app) as client:
                r = client.get("/readyz")
    finally:
        engine.dispose()
    result = {"request": "GET /readyz", "status_code": r.status_code, "body": r.json()}
    if as_json:
        emit_json(result)
    if r.status_code != 200:
        raise WattledgerError(
            f"ingest is not ready: {r.json().get('detail', r.text)}",
            hint="Check the database URL and that `wattledger db upgrade` ran.",
        )
    if not as_json:
        err_console.print("ingest check passed: the app starts and the warehouse answers.")


@ingest_app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface to bind (default 127.0.0.1, or ingest.host in the config).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="TCP port (default 4318, or ingest.port in the config).", show_default=False
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Accept data without an API key (tenant 'default'). Local demos only.",
        ),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Boot the app, run GET /readyz in-process, print the result, exit."
        ),
    ] = False,
    as_json: bool = json_option(),
) -> None:
    """Serve OTLP/HTTP: POST /v1/traces and /v1/metrics (protobuf or JSON, gzip).

    Also GET /healthz, /readyz and /metrics (Prometheus). Requests need
    'Authorization: Bearer <key>' (see `wattledger keys create`). Stop with Ctrl-C: queued
    rows are written first.

    \b
    Example:
      wattledger keys create --tenant acme
      wattledger ingest serve --port 4318
      wattledger ingest serve --check --json
    """

    from wattledger.ingest import create_ingest
    from wattledger.models import make_engine

    settings = _with_overrides(
        state(ctx).settings(),
        host=host,
        port=port,
        insecure_no_auth=True if insecure_no_auth else None,
    )
    check_schema(settings.url)
    if check:
        _check(settings, as_json)
        return
    cfg = settings.ingest
    if cfg.insecure_no_auth:
        err_console.print(
            "[bold red]INSECURE:[/bold red] no API key is required; anyone who "
            "can reach this port can write data. Local demos only."
        )
    engine = make_engine(settings.url)
    service = create_ingest(settings, engine)
    err_console.print(
        f"wattledger ingest on http://{cfg.host}:{cfg.port} → {redact(settings.url)}",
        highlight=False,
    )
    # Start here rather than in the app's lifespan, so a spool held by another process or a
    # similar problem is a one-line error with a hint, not a traceback from the ASGI server.
    service.start()
    try:
        run_asgi(service.app, cfg.host, cfg.port, cfg.connection_limits())
    finally:
        service.stop()
        engine.dispose()


def run_asgi(app: object, host: str, port: int, limits: ConnectionLimits | None = None) -> None:
    """Serve an ASGI app with uvicorn until interrupted; uvicorn logs go where ours go.

    With ``limits``, every connection is held to its read timeouts, connection cap and body
    budget (:mod:`wattledger.ingest.connections`).
    """
    import uvicorn

    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.handlers[:] = logging.getLogger("wattledger").handlers
    uvicorn_logger.setLevel(logging.getLogger("wattledger").level)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
    )
    if limits is not None:
        from wattledger.ingest.connections import protocol_class

        config.http = protocol_class(limits)
        config.timeout_keep_alive = limits.keep_alive_timeout_s
        config.backlog = limits.accept_backlog()
    # uvicorn shuts down gracefully on SIGTERM and then raises the signal again, which with the
    # default handler kills the process before the caller's ``finally`` writes queued rows and
    # closes the spool. Turn that second SIGTERM into a clean exit so the ``finally`` runs.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_cleanly) if main else None
    try:
        uvicorn.Server(config).run()
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def register(app: typer.Typer) -> None:
    """Add the ``ingest`` group to the root app."""
    app.add_typer(ingest_app, name="ingest")
