"""The ``wattledger`` command line.

One console script with a group per deployable. Each module in this package (not starting with
``_``) defines ``register(app)`` and is picked up automatically, so adding a command group
touches one new file.

Expected failures (:class:`~wattledger.errors.WattledgerError`, Click usage errors) print one
line and a hint on stderr and exit non-zero; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from sqlalchemy.exc import DBAPIError

from wattledger._version import __version__
from wattledger.cli._common import CONTEXT_SETTINGS, STATE, CliState, err_console
from wattledger.errors import WattledgerError
from wattledger.models.engine import explain_connection_error

app = typer.Typer(
    name="wattledger",
    help="Energy-aware FinOps telemetry for AI inference: tokens, joules and dollars.",
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wattledger {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (TOML). Default: $WATTLEDGER_CONFIG, then ./wattledger.toml.",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Warehouse URL, e.g. duckdb:///wl.duckdb or "
            "postgresql+psycopg://user@host/db. Env: WATTLEDGER_DATABASE_URL.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs, and tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Energy-aware FinOps telemetry for AI inference: tokens, joules and dollars.

    Global options come before the command, e.g.
    [bold]wattledger --database-url duckdb:///wl.duckdb db upgrade[/bold].
    """
    new = CliState(config_path=config, database_url=database_url, verbose=verbose)
    STATE.__dict__.update(new.__dict__)
    ctx.obj = STATE


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``wattledger`` console script."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args or "-v" in args
    try:
        try:
            # Typer handles usage errors (exit 2), --help and Exit itself; ours propagate here.
            app(args=args, prog_name="wattledger")
        except (DBAPIError, duckdb.Error) as e:
            # A driver error that escaped a command: say what it means for the user.
            url = STATE._settings.url if STATE._settings else ""
            raise explain_connection_error(url or "duckdb://", e) from e
    except WattledgerError as e:
        if verbose or STATE.verbose:
            traceback.print_exc()
        err_console.print(f"[bold red]Error:[/bold red] {e.message}", highlight=False)
        if e.hint:
            err_console.print(f"[bold]Hint:[/bold] {e.hint}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
    except Exception as e:  # an unexpected failure: say so, show the trace on request
        if verbose or STATE.verbose:
            traceback.print_exc()
        err_console.print(
            f"[bold red]Error:[/bold red] unexpected {type(e).__name__}: {e}", highlight=False
        )
        err_console.print(
            "[bold]Hint:[/bold] run again with --verbose for the traceback, and report it "
            "if it looks like a bug.",
            highlight=False,
        )
        sys.exit(1)
