"""``wattledger demo``: a heterogeneous fleet's two weeks, end to end, on an embedded warehouse."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.resources
import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from wattledger.cli._common import err_console, progress_bar, state
from wattledger.config import load_settings


def _step(msg: str) -> None:
    err_console.print(f"[bold cyan]›[/bold cyan] {msg}", highlight=False)


@contextlib.contextmanager
def _quiet_logs(verbose: bool):  # type: ignore[no-untyped-def]
    """The demo prints its own summary: the analytics job's INFO line would cut into it."""
    log = logging.getLogger("wattledger.analytics")
    previous = log.level
    if not verbose:
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(previous)


def demo(
    ctx: typer.Context,
    days: Annotated[float, typer.Option(help="Days of history to simulate.")] = 14.0,
    rate: Annotated[
        float, typer.Option(help="Traffic relative to the Azure production traces.")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 42,
    no_dashboard: Annotated[
        bool, typer.Option("--no-dashboard", help="Build the demo warehouse and stop.")
    ] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Rebuild even if it exists.")] = False,
    port: Annotated[int | None, typer.Option(help="Dashboard port (default 8501).")] = None,
) -> None:
    """Simulate a heterogeneous inference fleet, derive costs and savings, open the dashboard.

    Creates a DuckDB warehouse in the data directory, replays the Azure LLM inference traces
    through a fleet of H100, H200, A100, L4 and MI300X GPUs and Groq, Cerebras and an
    OpenAI-compatible API (the fleet simulator), loads list prices, runs attribution, costs,
    rollups and recommendations, then starts the dashboard and prints its URL.

    \b
    Example:
      wattledger demo                    # then open the printed URL
      wattledger demo --no-dashboard     # build only
    """
    from wattledger.analytics.jobs import run_analytics
    from wattledger.analytics.jobs.recommend import run_recommendations
    from wattledger.analytics.marts import publish_snapshot
    from wattledger.analytics.prices import sync_list_prices
    from wattledger.migrations import runner
    from wattledger.models import InferenceRequest, make_engine

    started = time.perf_counter()
    base = state(ctx).settings()
    data_dir = base.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "wattledger.toml"
    if not config.exists():
        config.write_text(
            importlib.resources.files("wattledger").joinpath("data/demo.toml").read_text()
        )
    settings = load_settings(config, database_url=state(ctx).database_url)
    url = settings.url
    _step(f"warehouse {url} (config {config})")
    runner.upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            import sqlalchemy as sa

            existing = conn.execute(
                sa.select(sa.func.count()).select_from(InferenceRequest)
            ).scalar()
        if existing and not fresh:
            _step(f"reusing {existing:,} simulated requests (--fresh rebuilds)")
        else:
            engine.dispose()
            if existing:
                runner.downgrade(url, "base")
                runner.upgrade(url)
            _simulate(url, data_dir, days, rate, seed)
            engine = make_engine(url)
        _step("loading list prices from genai-prices (offline)")
        prices = sync_list_prices(engine)
        _step(f"{prices.prices:,} list prices, {prices.aliases} aliases")
        now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        with progress_bar() as bar, _quiet_logs(state(ctx).verbose):
            task = bar.add_task("Attributing energy and costs", total=None)
            result = run_analytics(
                engine,
                settings.analytics,
                now=now + dt.timedelta(hours=1),
                full=True,
                progress=lambda stage, done, total: bar.update(task, completed=done, total=total),
            )
        _step(
            f"derived {result.requests:,} requests on {result.devices} devices "
            f"in {result.duration_s:.1f} s"
        )
        recs = run_recommendations(engine, settings.analytics, now=now)
        snapshot = settings.dashboard.snapshot_path(data_dir)
        publish_snapshot(engine, snapshot)
        _summary(engine, recs.recommendations)
    finally:
        engine.dispose()
    err_console.print(f"\nDemo built in {time.perf_counter() - started:.0f} s.", highlight=False)
    # Both variables: in a fresh shell, WATTLEDGER_CONFIG alone would leave the default data
    # directory in force (an empty warehouse). One command per line: " | " reads as a pipe.
    err_console.print(
        "Next, in a shell:\n"
        f"  export WATTLEDGER_DATA_DIR={data_dir.resolve()} WATTLEDGER_CONFIG={config.resolve()}\n"
        "  wattledger recommend --explain\n"
        "  wattledger whatif --workload chat --model llama-3.1-70b --hardware H200 "
        "--quantization fp8\n"
        "  wattledger report preview --out report.html",
        highlight=False,
        soft_wrap=True,
    )
    if no_dashboard:
        return
    from wattledger.cli.dashboard import run_until_stopped
    from wattledger.dashboard.launch import start_dashboard

    dashboard = start_dashboard(settings, port=port, config_path=config)
    err_console.print(f"\n[bold]Dashboard: {dashboard.url}[/bold]  (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stopped, a normal end
        run_until_stopped(dashboard)  # SIGTERM stops the dashboard too


def _simulate(url: str, data_dir: Path, days: float, rate: float, seed: int) -> None:
    import subprocess
    import sys

    _step(f"simulating {days:g} days of the demo fleet at {rate:g}× the Azure traces")
    cmd = [
        sys.executable,
        "-m",
        "wattledger",
        "--database-url",
        url,
        "simulate",
        "--backfill-days",
        str(days),
        "--rate",
        str(rate),
        "--seed",
        str(seed),
        "--ground-truth",
        str(data_dir / "groundtruth.parquet"),
    ]
    if subprocess.run(cmd, check=False).returncode != 0:
        from wattledger.errors import WattledgerError

        raise WattledgerError("The simulation failed (see above).", hint="Run with --verbose.")


def _summary(engine: object, recs: list) -> None:  # type: ignore[type-arg]
    import sqlalchemy as sa

    from wattledger.models import RollupDaily as R

    with engine.connect() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            sa.select(
                sa.func.sum(R.requests),
                sa.func.sum(R.input_tokens + R.output_tokens),
                sa.func.sum(R.output_tokens),
                sa.func.sum(R.cost_total_usd),
                sa.func.sum(R.energy_measured_j),
                sa.func.sum(R.energy_modeled_j),
                sa.func.sum(R.idle_energy_j),
                sa.func.sum(R.unpriced_requests),
            )
        ).one()
    requests, tokens, out, cost, measured, modeled, idle, unpriced = row
    cost = cost or Decimal(0)
    err_console.print("\n[bold]Fleet, fully loaded[/bold]", highlight=False)
    err_console.print(f"  requests           {requests or 0:,}  ({unpriced or 0:,} unpriced)")
    err_console.print(f"  tokens             {tokens or 0:,}")
    err_console.print(f"  spend              ${cost:,.2f}")
    if tokens:
        err_console.print(f"  blended            ${cost * 1_000_000 / tokens:,.3f} per 1M tokens")
    kwh = ((measured or 0) + (idle or 0)) / 3.6e6
    err_console.print(
        f"  energy             {kwh:,.1f} kWh measured (+{(modeled or 0) / 3.6e6:,.1f}"
        " kWh modeled for hosted APIs)"
    )
    if out and measured:
        err_console.print(
            f"  tokens per joule   {out / ((measured or 0) + (idle or 0)):.3f} "
            "(self-hosted, measured, fully loaded)"
        )
    err_console.print(f"\n[bold]Top recommendations[/bold] ({len(recs)})", highlight=False)
    for r in recs[:5]:
        saving = f"${r.savings_usd_month:,.0f}/month" if r.savings_usd_month else "latency"
        line = f"  [{r.kind}] {r.workload}: {r.from_route} → {r.to_route}  {saving}"
        err_console.print(line, highlight=False, markup=False)


def register(app: object) -> None:
    """Add the ``demo`` command."""
    app.command("demo")(demo)  # type: ignore[attr-defined]
