"""``wattledger db``: create, migrate and check the warehouse schema."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from wattledger.cli._common import (
    CONTEXT_SETTINGS,
    emit_json,
    err_console,
    existing_warehouse,
    json_option,
    state,
)
from wattledger.errors import WattledgerError
from wattledger.migrations import runner
from wattledger.models import redact

db_app = typer.Typer(
    help="Create, migrate and check the warehouse schema.",
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
)


def _describe(rev: runner.Revision) -> dict[str, object]:
    return {"current": rev.current, "head": rev.head, "is_current": rev.is_current}


@db_app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[
        str, typer.Argument(help="Target revision; 'head' is the newest.")
    ] = "head",
    as_json: bool = json_option(),
) -> None:
    """Create or migrate the warehouse schema up to REVISION.

    Safe to run repeatedly: an up-to-date database is left as it is.

    \b
    Example:
      wattledger db upgrade
      wattledger --database-url postgresql+psycopg://postgres@127.0.0.1/test db upgrade
    """
    url = state(ctx).settings().url
    rev = runner.upgrade(url, revision)
    if as_json:
        emit_json({"database_url": redact(url), **_describe(rev)})
    else:
        err_console.print(
            f"Warehouse {redact(url)} is at revision [bold]{rev.current}[/bold]"
            + (" (newest)." if rev.is_current else f" (newest is {rev.head}).")
        )


@db_app.command()
def downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: bool = json_option(),
) -> None:
    """Migrate the warehouse schema down to REVISION. Data in dropped tables is lost.

    \b
    Example:
      wattledger db downgrade base --yes
    """
    url = state(ctx).settings().url
    if not yes:
        if not sys.stdin.isatty():
            raise WattledgerError(
                f"Downgrading {redact(url)} to {revision} can drop tables and their data.",
                hint="Pass --yes to confirm when running non-interactively.",
            )
        typer.confirm(
            f"Downgrade {redact(url)} to {revision}? Dropped tables lose their data",
            abort=True,
        )
    rev = runner.downgrade(url, revision)
    if as_json:
        emit_json({"database_url": redact(url), **_describe(rev)})
    else:
        err_console.print(
            f"Warehouse {redact(url)} is at revision [bold]{rev.current or 'base (empty)'}[/bold]."
        )


@db_app.command()
def current(ctx: typer.Context, as_json: bool = json_option()) -> None:
    """Show the warehouse's schema revision and whether it is the newest.

    \b
    Example:
      wattledger db current --json
    """
    url = existing_warehouse(state(ctx).settings().url)
    rev = runner.status(url)
    if as_json:
        emit_json({"database_url": redact(url), **_describe(rev)})
        return
    where = rev.current or "base (empty: run `wattledger db upgrade`)"
    note = "newest" if rev.is_current else f"newest is {rev.head}"
    typer.echo(f"{where} ({note})")


@db_app.command()
def check(ctx: typer.Context, as_json: bool = json_option()) -> None:
    """Check that the models and the migrated schema agree. Exits 1 on any difference.

    The database must be at the newest revision. Use it in CI after `db upgrade`.

    \b
    Example:
      wattledger db upgrade && wattledger db check
    """
    url = state(ctx).settings().url
    problems = runner.check(url)
    if as_json:
        emit_json({"database_url": redact(url), "in_sync": not problems, "differences": problems})
    elif problems:
        for p in problems:
            err_console.print(f"- {p}", highlight=False)
    if problems:
        raise WattledgerError(
            f"The schema of {redact(url)} differs from the models in {len(problems)} place(s).",
            hint="A model changed without a migration: add one in migrations/versions/.",
        )
    if not as_json:
        err_console.print("Models and migrations agree.")


@db_app.command()
def history(ctx: typer.Context, as_json: bool = json_option()) -> None:
    """List the schema revisions, newest first.

    \b
    Example:
      wattledger db history
    """
    revisions = runner.history()
    if as_json:
        emit_json([{"revision": r, "down_revision": d, "message": m} for r, d, m in revisions])
        return
    for rev, down, message in revisions:
        typer.echo(f"{down or 'base'} -> {rev}: {message.splitlines()[0] if message else ''}")


def register(app: typer.Typer) -> None:
    """Add the ``db`` group to the root app."""
    app.add_typer(db_app, name="db")
