"""``wattledger report``: preview and send the weekly cost report."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from wattledger.cli._common import (
    CONTEXT_SETTINGS,
    emit_json,
    err_console,
    existing_warehouse,
    json_option,
    output_file,
    state,
)
from wattledger.errors import WattledgerError
from wattledger.models import make_engine

report_app = typer.Typer(
    help="The weekly cost report: preview it, or email it.",
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
)

WeekOption = Annotated[
    str | None,
    typer.Option(
        "--week",
        help="ISO week, e.g. 2026-W46 (UTC days). Default: the last complete week.",
        show_default=False,
    ),
]


def _week(value: str | None) -> Any:
    from wattledger.analytics.reports.weekly import Week

    return Week.parse(value) if value else Week.last_complete(dt.datetime.now(dt.UTC))


def _write(data: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    err_console.print(f"Wrote {out} ({len(data):,} bytes).")


@report_app.command("preview")
def preview(
    ctx: typer.Context,
    week: WeekOption = None,
    tenant: Annotated[
        str, typer.Option("--tenant", help='One tenant, or "*" for all tenants.')
    ] = "*",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write here instead of stdout.", show_default=False),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="html (charts embedded, opens in a browser), text, or csv."),
    ] = "html",
) -> None:
    """Render the weekly report without sending it.

    The HTML embeds its charts as data URIs so it opens in any browser; the email itself
    references them as inline (cid:) images. Reads the warehouse only.

    \b
    Example:
      wattledger report preview --week 2026-W46 --out report.html
      wattledger report preview --tenant acme --format text
    """
    from wattledger.analytics.reports.job import build_report

    if fmt not in ("html", "text", "csv"):
        raise WattledgerError(f"--format {fmt!r} is not known.", hint="Use html, text or csv.")
    settings = state(ctx).settings()
    wk = _week(week)
    if out is not None:
        output_file(out)
    engine = make_engine(existing_warehouse(settings.url), read_only=True)
    try:
        rendered = build_report(
            engine, wk, tenant, slos=settings.analytics.slos, top_n=settings.report.top_n
        )
    finally:
        engine.dispose()
    if fmt == "html":
        data = rendered.preview_html().encode()
    elif fmt == "text":
        data = rendered.text.encode()
    else:
        data = rendered.csv_bytes
    _write(data, out)


@report_app.command("send")
def send(
    ctx: typer.Context,
    week: WeekOption = None,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only this configured tenant (repeatable)."),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            help="Send to this address instead of the configured recipients (repeatable).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send again even if this week's report went out.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Write the email (.eml) to --out or stdout; send nothing."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="With --dry-run: the .eml file.", show_default=False),
    ] = None,
    as_json: bool = json_option(),
) -> None:
    """Email the weekly report to each tenant's recipients over SMTP, once per week.

    Recipients come from [report.recipients] ("*" gets all tenants). A report already sent
    to the same recipient list for the same week is skipped unless --force; a failed send is
    retried with backoff and recorded in report_runs. The SMTP password is read from the
    variable named by [report] password_env (default WATTLEDGER_SMTP_PASSWORD) and never shown.

    \b
    Example:
      wattledger report send --week 2026-W46 --dry-run --out report.eml
      wattledger report send --week 2026-W46
      wattledger report send --to me@example.com --force
    """
    from wattledger.analytics.reports.job import build_report, run_weekly_reports, targets

    settings = state(ctx).settings()
    wk = _week(week)
    if to and tenant and len(tenant) > 1:
        raise WattledgerError("--to sends one report: give at most one --tenant with it.")
    engine = make_engine(existing_warehouse(settings.url))
    try:
        if dry_run:
            pairs = [(tenant[0] if tenant else "*", to)] if to else targets(settings.report, tenant)
            for i, (who, addrs) in enumerate(pairs):
                rendered = build_report(
                    engine, wk, who, slos=settings.analytics.slos, top_n=settings.report.top_n
                )
                msg = rendered.to_message(settings.report.from_address, addrs)
                path = out
                if out is not None and len(pairs) > 1:
                    path = out.with_name(f"{out.stem}-{who.replace('*', 'all')}{out.suffix}")
                _write(bytes(msg) + (b"\n" if out is None and i < len(pairs) - 1 else b""), path)
            return
        outcomes = run_weekly_reports(
            engine,
            settings.report,
            now=dt.datetime.now(dt.UTC),
            slos=settings.analytics.slos,
            week=wk,
            tenants=tenant,
            recipients=to,
            force=force,
        )
    finally:
        engine.dispose()
    if as_json:
        emit_json([o.__dict__ for o in outcomes])
    for o in outcomes:
        who = "all tenants" if o.tenant == "*" else f"tenant {o.tenant}"
        line = f"{o.iso_week} {who} → {', '.join(o.recipients)}: {o.status}"
        if o.status == "skipped":
            line += " (already sent this week; --force sends again)"
        elif o.status == "failed":
            line += f" after {o.attempts} attempt(s): {o.error}"
        err_console.print(line, highlight=False)
    if any(o.status == "failed" for o in outcomes):
        raise WattledgerError(
            "Some reports could not be sent (recorded in report_runs).",
            hint="Check [report] smtp_host, port and security; the next run retries.",
        )


def register(app: typer.Typer) -> None:
    """Add the ``report`` group."""
    app.add_typer(report_app, name="report")
