"""``wattledger serve``: the platform in one process — ingest, scheduler, optional dashboard."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from wattledger.cli._common import err_console, state
from wattledger.models import redact

log = logging.getLogger(__name__)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface ingest binds (default 127.0.0.1, local only; 0.0.0.0 to accept "
            "collectors and SDKs from other machines, behind TLS or a proxy).",
        ),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Ingest port (default 4318).")] = None,
    with_dashboard: Annotated[
        bool, typer.Option("--with-dashboard", help="Also run the dashboard (Streamlit).")
    ] = False,
    dashboard_port: Annotated[
        int | None, typer.Option(help="Dashboard port (default [dashboard] port, 8501).")
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option("--insecure-no-auth", help="Accept data without an API key. Demos only."),
    ] = False,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Run the analytics jobs here.")
    ] = True,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema at start.")
    ] = True,
) -> None:
    """Run the platform: OTLP ingest, the analytics scheduler and, optionally, the dashboard.

    On DuckDB this process owns the warehouse file; after every analytics run it publishes a
    read-only snapshot that the dashboard and reports read. On PostgreSQL run as many replicas
    as you like: one at a time is the scheduler leader (a PostgreSQL advisory lock) and runs the
    jobs; the others wait and take over within seconds when it dies. Upgrade the schema once
    (`wattledger db upgrade`) before starting several replicas on a new database. Stop with
    Ctrl-C: queued data is written first.

    \b
    Example:
      wattledger serve --insecure-no-auth --with-dashboard
      wattledger --database-url postgresql+psycopg://wl@db/wl serve --no-scheduler
    """
    from prometheus_client import Gauge

    from wattledger.analytics.jobs.pipeline import build_pipeline
    from wattledger.analytics.reports.schedule import add_report_job
    from wattledger.analytics.schedule import LeaderElection
    from wattledger.cli.ingest import _with_overrides, run_asgi
    from wattledger.ingest import create_ingest
    from wattledger.migrations import runner
    from wattledger.models import make_engine

    cli = state(ctx)
    settings = _with_overrides(
        cli.settings(),
        host=host,
        port=port,
        insecure_no_auth=True if insecure_no_auth else None,
    )
    if migrate:
        runner.upgrade(settings.url)  # one replica at a time on PostgreSQL
    engine = make_engine(settings.url)
    service = create_ingest(settings, engine)
    snapshot = settings.dashboard.snapshot_path(settings.data_dir)
    leader = None
    dashboard = None
    cfg = settings.ingest
    if cfg.insecure_no_auth:
        err_console.print(
            "[bold red]INSECURE:[/bold red] no API key is required; anyone who can reach "
            "this port can write data. Local demos only."
        )
    try:
        if scheduler:
            jobs = build_pipeline(engine, settings.analytics, snapshot)
            add_report_job(jobs, engine, settings)
            gauge = Gauge(
                "wattledger_scheduler_leader",
                "1 while this process is the scheduler leader and runs the analytics jobs.",
                registry=service.stats.registry,
            )
            leader = LeaderElection(
                engine, jobs, check_s=settings.analytics.leader_check_s, on_change=gauge.set
            )
            service.status["scheduler"] = lambda: leader.role if leader else "off"
            leader.start()
        else:
            service.status["scheduler"] = lambda: "off"
        if with_dashboard:
            from wattledger.dashboard.launch import start_dashboard

            dashboard = start_dashboard(settings, port=dashboard_port, config_path=cli.config_path)
            err_console.print(f"dashboard on {dashboard.url}", highlight=False)
        err_console.print(
            f"wattledger serving OTLP on http://{cfg.host}:{cfg.port} → {redact(settings.url)}"
            + (" with the analytics scheduler" if scheduler else ""),
            highlight=False,
        )
        service.start()  # a held spool or similar is a one-line error, not an ASGI traceback
        run_asgi(service.app, cfg.host, cfg.port, cfg.connection_limits())
    finally:
        if leader is not None:
            leader.stop()
        if dashboard is not None:
            dashboard.stop()
        service.stop()
        engine.dispose()


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command."""
    app.command("serve")(serve)
