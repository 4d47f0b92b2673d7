"""``wattledger analytics``: attribute energy, cost requests and roll up, once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from wattledger.cli._common import (
    CONTEXT_SETTINGS,
    emit_json,
    err_console,
    existing_warehouse,
    json_option,
    parse_utc,
    progress_bar,
    state,
)
from wattledger.models import make_engine

analytics_app = typer.Typer(
    help="Energy attribution, costs and rollups.",
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
)


@analytics_app.command("run")
def run(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            help="Re-derive from this UTC date/time instead of the watermark (from the "
            "midnight before it, so the numbers equal a full run's)."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Derive up to this UTC date/time (default: now).")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Re-derive all history.")] = False,
    as_json: bool = json_option(),
) -> None:
    """Attribute device energy to requests, cost them and refresh the rollups, once.

    Incremental by default: from the last run's watermark minus the lateness window
    (`[analytics] lateness_s`), so late data is picked up and old data is not redone.
    `wattledger serve` runs this every `[analytics] interval_s` seconds.

    \b
    Example:
      wattledger analytics run
      wattledger analytics run --since 2026-11-01 --json
    """
    from wattledger.analytics.jobs import run_analytics

    settings = state(ctx).settings()
    engine = make_engine(existing_warehouse(settings.url))
    now = parse_utc(until, "--until") or dt.datetime.now(dt.UTC)
    try:
        with progress_bar() as bar:
            task = bar.add_task("Attributing energy", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage.capitalize(), completed=done, total=total)

            result = run_analytics(
                engine,
                settings.analytics,
                now=now,
                since=parse_utc(since, "--since"),
                full=full,
                progress=progress,
            )
    finally:
        engine.dispose()
    data = {
        "window_start": result.window_start,
        "window_end": result.window_end,
        "requests": result.requests,
        "devices": result.devices,
        "device_hours": result.device_hours,
        "hourly_rows": result.hourly_rows,
        "daily_rows": result.daily_rows,
        "uncovered_requests": result.uncovered_requests,
        "devices_without_idle_baseline": sorted(result.devices_without_idle_baseline),
        "quarantined_requests": result.quarantined_requests,
        "unpriced_requests": result.unpriced_requests,
        "skipped": result.skipped,
        "duration_s": round(result.duration_s, 3),
    }
    if as_json:
        emit_json(data)
        return
    if result.skipped:
        err_console.print(f"Skipped: {result.skipped}.")
    elif result.window_start is None:
        err_console.print("No requests in the warehouse yet: nothing to derive.")
    else:
        err_console.print(
            f"Derived {result.requests:,} requests on {result.devices} devices "
            f"({result.window_start:%Y-%m-%d %H:%M} → {result.window_end:%Y-%m-%d %H:%M} UTC), "
            f"{result.hourly_rows:,} hourly and {result.daily_rows:,} daily rollup rows "
            f"in {result.duration_s:.1f} s."
        )
        if result.unpriced_requests:
            err_console.print(
                f"[yellow]{result.unpriced_requests:,} requests are unpriced[/yellow] (no list "
                "price or contract rate for their provider and model, or no $/device-hour or "
                "energy tariff for their device): they are counted at $0 and shown as n/a per "
                "1M tokens. `wattledger prices sync`, `prices set`, `prices hardware` and "
                "`prices tariff` add them."
            )
        if result.uncovered_requests:
            err_console.print(
                f"[yellow]{result.uncovered_requests:,} requests ran on devices with no power "
                "samples covering them: their energy is unknown.[/yellow] Is a collector "
                "running on those nodes (`wattledger collect`)?"
            )
        if result.devices_without_idle_baseline:
            names = sorted(result.devices_without_idle_baseline)
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            err_console.print(
                f"[yellow]{len(names)} devices have no idle baseline ({shown}): they were "
                "never seen idle, send no power gauge and have no configured or catalog idle "
                "figure, so all their energy went to their requests.[/yellow] Send their "
                "idle watts as the resource attribute `wattledger.device.idle_power_w` "
                "(docs/semantic-conventions.md), or a power gauge or samples while idle."
            )
        if result.quarantined_requests:
            err_console.print(
                f"[yellow]{result.quarantined_requests:,} requests were quarantined: their "
                "token counts are beyond 10⁹ (stored before ingest checked them), so they "
                "have no cost.[/yellow] Fix the producer; see docs/security.md (bounds)."
            )


def register(app: typer.Typer) -> None:
    """Add the ``analytics`` group."""
    app.add_typer(analytics_app, name="analytics")
