"""``wattledger export``: cost data for other tools (FinOps FOCUS)."""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from wattledger.cli._common import (
    CONTEXT_SETTINGS,
    err_console,
    existing_warehouse,
    output_file,
    state,
)
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
    focus_version: Annotated[
        str | None,
        typer.Option(
            "--focus-version",
            help="FOCUS version to write: 1.3 (default) or 1.2.",
            show_default=False,
        ),
    ] = None,
    self_hosted_name: Annotated[
        str | None,
        typer.Option(
            "--self-hosted-name",
            help="Your organisation, as the provider of inference on your own hardware "
            "(ServiceProviderName, ProviderName, InvoiceIssuerName of those charges). Default: "
            '"Self-hosted".',
            show_default=False,
        ),
    ] = None,
    host_provider_name: Annotated[
        str | None,
        typer.Option(
            "--host-provider-name",
            help="HostProviderName of charges on your own hardware when it runs on someone "
            "else's infrastructure (e.g. your cloud). Default: the --self-hosted-name.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write FinOps FOCUS charges (FOCUS 1.3 by default, or 1.2).

    FOCUS 1.3: one row per UTC day × tenant × route × service × workload; a self-hosted
    route's cost is split among its services and workloads by measured energy and device time,
    described in the Allocated* columns. FOCUS 1.2: one row per UTC day × tenant × route.
    Tokens are the consumed quantity (ConsumedUnit "Tokens") and, in millions, the pricing
    quantity; costs are fully loaded, in USD. Every mandatory column is filled; energy, CO2e
    and token splits are in x_ columns. See docs/focus.md.

    \b
    Example:
      wattledger export focus --from 2026-11-01 --to 2026-12-01 --out nov.csv
      wattledger export focus --from 2026-11-01 --to 2026-12-01 --format parquet --out nov.parquet
      wattledger export focus --from 2026-11-01 --to 2026-12-01 --focus-version 1.2 -o nov.csv
    """
    from wattledger.analytics.focus import (
        DEFAULT_FOCUS_VERSION,
        SELF_HOSTED,
        check_version,
        focus_table,
        write_focus,
        write_focus_csv,
    )

    version = check_version(DEFAULT_FOCUS_VERSION if focus_version is None else focus_version)
    first, last = _day(start, "--from"), _day(end, "--to")
    if last <= first:
        raise WattledgerError(
            f"--to {end} is not after --from {start}.",
            hint="--to is exclusive: --from 2026-11-01 --to 2026-11-02 exports one day.",
        )
    kind = fmt or ("parquet" if out is not None and out.suffix == ".parquet" else "csv")
    if kind not in ("csv", "parquet"):
        raise WattledgerError(f"--format {kind!r} is not known.", hint="Use csv or parquet.")
    if out is not None:
        output_file(out)
    if kind == "parquet" and out is None:
        raise WattledgerError(
            "Parquet is binary and needs a file.", hint="Add --out charges.parquet."
        )
    settings = state(ctx).settings()
    engine = make_engine(existing_warehouse(settings.url), read_only=True)
    try:
        with engine.connect() as conn:
            table = focus_table(
                conn,
                first,
                last,
                version=version,
                tenant=tenant,
                self_hosted_name=self_hosted_name or SELF_HOSTED,
                host_provider_name=host_provider_name,
            )
    finally:
        engine.dispose()
    if (
        version == "1.3"
        and self_hosted_name is None
        and any(table.column("x_HardwareModel").to_pylist())
    ):
        err_console.print(
            f"[yellow]ServiceProviderName of self-hosted charges is {SELF_HOSTED!r}.[/yellow] "
            "FOCUS 1.3 wants the name of who provides them: add --self-hosted-name "
            '"<your organisation>" (and --host-provider-name if your GPUs are rented).',
            highlight=False,
        )
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
    err_console.print(f"Wrote {table.num_rows:,} FOCUS {version} charges to {out}.")


def register(app: typer.Typer) -> None:
    """Add the ``export`` group."""
    app.add_typer(export_app, name="export")
