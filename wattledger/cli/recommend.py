"""``wattledger recommend``: where traffic should move, and what it would save."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import typer

from wattledger.cli._common import (
    emit_json,
    err_console,
    existing_warehouse,
    json_option,
    parse_utc,
    state,
)
from wattledger.models import make_engine


def _money(v: Decimal | None) -> str:
    return f"${v:,.0f}" if v is not None else "n/a"


def recommend(
    ctx: typer.Context,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also list rejected candidates and why.")
    ] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="Evaluate as of this UTC time (default now).")
    ] = None,
    as_json: bool = json_option(),
) -> None:
    """Recommend reroutes, right-sizing, consolidation and prefill/decode splits.

    Compares every route (provider × hardware × model × quantization) serving each workload on
    fully-loaded cost per 1M tokens, with bootstrap confidence intervals, and only recommends a
    route that meets the workload's SLO at its upper confidence bound with enough samples.
    Results are stored (stable ids) for the dashboard and the weekly report.

    \b
    Example:
      wattledger recommend
      wattledger recommend --json --explain
    """
    from wattledger.analytics.jobs.recommend import run_recommendations

    settings = state(ctx).settings()
    engine = make_engine(existing_warehouse(settings.url))
    now = parse_utc(at, "--at") or dt.datetime.now(dt.UTC)
    try:
        result = run_recommendations(engine, settings.analytics, now=now)
    finally:
        engine.dispose()
    recs = result.recommendations
    if as_json:
        data: dict[str, object] = {
            "recommendations": [
                {c.name: getattr(r, c.key) for c in r.__table__.columns} for r in recs
            ]
        }
        if explain:
            data["rejected"] = [r.__dict__ for r in result.rejected]
        emit_json(data)
        return
    if not recs:
        err_console.print(
            "No recommendations: no cheaper route meets its workload's SLO with confidence."
            + ("" if explain else " Run with --explain to see every candidate and why.")
        )
    for i, r in enumerate(recs, start=1):
        to = f" → {r.to_route}" if r.to_route else ""
        saving = (
            f"{_money(r.savings_usd_month)}/month "
            f"({_money(r.savings_usd_month_low)}–{_money(r.savings_usd_month_high)})"
            if r.savings_usd_month is not None
            else "latency"
        )
        typer.echo(f"{i}. [{r.kind}] {r.workload}: {r.from_route}{to}  {saving}  [{r.basis}]")
        typer.echo(f"   {r.explanation}")
        for risk in (r.risks or "").splitlines():
            typer.echo(f"   risk: {risk}")
    if explain:
        typer.echo("\nRejected candidates:")
        for rej in result.rejected:
            typer.echo(f"- {rej.workload}: {rej.from_route} → {rej.to_route}: {rej.reason}")


def register(app: typer.Typer) -> None:
    """Add the ``recommend`` command."""
    app.command("recommend")(recommend)
