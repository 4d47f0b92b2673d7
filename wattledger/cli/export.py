"""``wattledger export``: cost data for other tools (FinOps FOCUS)."""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from wattledger.cli._common import CONTEXT_SETTINGS, err_console, state
from wattledger.errors import WattledgerError
from wattledger.models import make_engine

export_app = typer.Typer(
    help="Export cost data for FinOps tools.",
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
)


def _day(value: str, option: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as e:
        raise WattledgerError(
            f"{option} {value!r} is not a date.",
            hint=f"Use YYYY-MM-DD, e.g. {option} 2026-11-01.",
        ) from e
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@export_app.command("focus")
def focus(
    ctx: typer.Context,
    start: Annotated[
        str, typer.Option("--from", help="First UTC day, YYYY-MM-DD.", show_default=False)
    ],
    end: Annotated[
        str,
        typer.Option("--to", help="Day after the last UTC day (exclusive).", show_default=False),
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or parquet. Default: from --out's suffix, else csv."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="File to write; CSV may go to stdout.", show_default=False
        ),
    ] = None,
    tenant: Annotated[str, typer.Option("--tenant", help='One tenant, or "*" for all.')] = "*",
    self_hosted_name: Annotated[
        str,
        typer.Option("--self-hosted-name", help="ProviderName of charges on your own hardware."),
    ] = "Self-hosted",
) -> None:
    """Write FinOps FOCUS 1.2 charges: one row per UTC day × route × tenant.

    Tokens are the consumed quantity (ConsumedUnit "Tokens") and, in millions, the pricing
    quantity; costs are fully loaded, in USD. Every mandatory FOCUS 1.2 column is filled;
    energy, CO2e and token splits are in x_ columns. See docs/focus.md.

    \b
    Example:
      wattledger export focus --from 2026-11-01 --to 2026-12-01 --out nov.csv
      wattledger export focus --from 2026-11-01 --to 2026-12-01 --format parquet --out nov.parquet
    """
    from wattledger.analytics.focus import focus_table, write_focus, write_focus_csv

    first, last = _day(start, "--from"), _day(end, "--to")
    if last <= first:
        raise WattledgerError(
            f"--to {end} is not after --from {start}.",
            hint="--to is exclusive: --from 2026-11-01 --to 2026-11-02 exports one day.",
        )
    kind = fmt or ("parquet" if out is not None and out.suffix == ".parquet" else "csv")
    if kind not in ("csv", "parquet"):
        raise WattledgerError(f"--format {kind!r} is not known.", hint="Use csv or parquet.")
    if kind == "parquet" and out is None:
        raise WattledgerError(
            "Parquet is binary and needs a file.", hint="Add --out charges.parquet."
        )
    settings = state(ctx).settings()
    engine = make_engine(settings.url, read_only=True)
    try:
        with engine.connect() as conn:
            table = focus_table(conn, first, last, tenant=tenant, self_hosted_name=self_hosted_name)
    finally:
        engine.dispose()
    if table.num_rows == 0:
        err_console.print(
            "[yellow]No charges in that range.[/yellow] Has `wattledger analytics run` "
            "rolled up those days?"
        )
    if out is None:
        buf = io.StringIO()
        write_focus_csv(table, buf)
        sys.stdout.write(buf.getvalue())
        sys.stdout.flush()
        return
    write_focus(table, out, "parquet" if kind == "parquet" else "csv")
    err_console.print(f"Wrote {table.num_rows:,} FOCUS 1.2 charges to {out}.")


def register(app: typer.Typer) -> None:
    """Add the ``export`` group."""
    app.add_typer(export_app, name="export")
