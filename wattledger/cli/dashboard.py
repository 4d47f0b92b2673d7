"""``wattledger dashboard``: the Streamlit dashboard, and a helper to set its password."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from wattledger.cli._common import CONTEXT_SETTINGS, err_console, state
from wattledger.errors import WattledgerError

if TYPE_CHECKING:
    from wattledger.dashboard.launch import DashboardProcess


class _Terminated(Exception):
    """SIGTERM arrived while the dashboard ran."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def run_until_stopped(
    handle: DashboardProcess, first: Callable[[], None] | None = None
) -> int | None:
    """Run ``first()`` (e.g. wait until ready and say where), then wait for the dashboard to
    exit and return its code. SIGTERM (e.g. from a supervisor) or Ctrl-C stops the Streamlit
    child too instead of orphaning it: ``None`` after SIGTERM; Ctrl-C is raised again."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if first is not None:
            first()
        return handle.wait()
    except _Terminated:
        handle.stop()
        return None
    except KeyboardInterrupt:
        handle.stop()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


dashboard_app = typer.Typer(
    context_settings=CONTEXT_SETTINGS, invoke_without_command=True, no_args_is_help=False
)


@dashboard_app.callback()
def dashboard(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            "-p",
            help="TCP port. Default: \\[dashboard] port (8501).",
            min=1,
            max=65535,
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Interface to bind. Default: \\[dashboard] host (127.0.0.1).",
            show_default=False,
        ),
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh/--no-refresh",
            help="Publish a fresh mart snapshot first when no server holds the DuckDB warehouse.",
        ),
    ] = True,
) -> None:
    """Open the dashboard: spend, efficiency, workloads, savings, fleet and reports.

    Reads rollups and marts only, read-only: on DuckDB the snapshot that `wattledger serve`
    publishes (default <data_dir>/marts.duckdb), on PostgreSQL the database itself. Without a
    server running, it first publishes a snapshot of the warehouse itself.

    \b
    Example:
      wattledger dashboard
      wattledger dashboard --port 8502 --host 0.0.0.0
      wattledger dashboard hash-password     # then set \\[dashboard] password_hash
    """
    if ctx.invoked_subcommand is not None:
        return
    from wattledger.dashboard.launch import start_dashboard
    from wattledger.dashboard.source import GET_DATA_HINT, refresh_snapshot, resolve_source

    cli = state(ctx)
    settings = cli.settings()
    if refresh and (snap := refresh_snapshot(settings)) is not None:
        err_console.print(f"Published a fresh snapshot of the warehouse to {snap}.")
    source = resolve_source(settings)
    if source.url is None:
        err_console.print(
            f"[yellow]No data yet:[/yellow] {source.problem} {GET_DATA_HINT}", highlight=False
        )
    handle = start_dashboard(settings, host=host, port=port, config_path=cli.config_path)

    def announce() -> None:
        handle.wait_ready()
        err_console.print(
            f"Dashboard: [bold]{handle.url}[/bold] (data: {source.label}). Ctrl-C stops it.",
            highlight=False,
        )

    code = run_until_stopped(handle, announce)
    if code is None:
        return
    if code not in (0, -15):
        raise WattledgerError(
            f"The dashboard exited with code {code}.",
            hint="Its messages are above; --verbose shows more of ours.",
        )


@dashboard_app.command("hash-password")
def hash_password(
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Print a hash of a dashboard password, to put in the configuration.

    Only the hash is stored: set it as \\[dashboard] password_hash in wattledger.toml or as
    WATTLEDGER_DASHBOARD__PASSWORD_HASH. The dashboard then asks for the password.

    \b
    Example:
      wattledger dashboard hash-password
      echo -n 's3cret' | wattledger dashboard hash-password --password-stdin
    """
    from wattledger.dashboard.passwords import hash_password as make_hash

    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise WattledgerError("The password is empty.", hint="Choose a non-empty password.")
    typer.echo(make_hash(password))
    err_console.print(
        'Put it in wattledger.toml as [dashboard] password_hash = "…" or set '
        "WATTLEDGER_DASHBOARD__PASSWORD_HASH.",
        markup=False,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command group."""
    app.add_typer(dashboard_app, name="dashboard")
