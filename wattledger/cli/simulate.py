"""``wattledger simulate``: run the fleet simulator live over OTLP, or backfill days of history.

The simulator (``wattledger.collectors.simulate``) only produces data. This command composes
it with the rest of the pipeline: live mode sends spans and device readings to a running
ingest server with the official OTLP exporters; backfill mode maps the same columns through
the ingest mapping (``wattledger.ingest``) straight into the warehouse. Both write the true
energy of every request to a separate ground-truth Parquet file, never to the warehouse.
"""

from __future__ import annotations

import datetime as dt
import math
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wattledger.cli._common import emit_json, err_console, json_option, state
from wattledger.errors import DatabaseError, WattledgerError

if TYPE_CHECKING:  # the simulator (numpy, numba, pyarrow) loads only when the command runs
    from wattledger.collectors.simulate import Simulation

#: Power samples per device: every second live, every ten seconds in a backfill (a 14-day
#: backfill at 1 s writes ~17 million readings for the demo fleet; pass 1 for full detail).
LIVE_SAMPLE_INTERVAL_S = 1.0
BACKFILL_SAMPLE_INTERVAL_S = 10.0


def _ingest_api() -> SimpleNamespace:
    """The ingest mapping and writers, imported only when a backfill needs them."""
    try:
        from wattledger.ingest import (  # type: ignore[attr-defined]
            request_table_from_columns,
            sample_tables_from_columns,
            write_requests,
            write_samples,
        )
    except ImportError as e:
        raise WattledgerError(
            "This installation's ingest package has no column mapping "
            f"(wattledger.ingest.request_table_from_columns and friends): {e}.",
            hint="Upgrade wattledger, or run `wattledger ingest serve` and use "
            "`wattledger simulate --endpoint http://localhost:4318` instead.",
        ) from e
    return SimpleNamespace(
        request_table=request_table_from_columns,
        sample_tables=sample_tables_from_columns,
        write_requests=write_requests,
        write_samples=write_samples,
    )


def _prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Produce ``items`` in a background thread, ``depth`` ahead of the consumer.

    The simulator's event loop and numpy release the GIL, so simulating the next chunk
    overlaps with writing the current one. Errors in the producer are raised here.
    """
    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    thread = threading.Thread(target=produce, name="simulate-prefetch", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def simulate(
    ctx: typer.Context,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Live mode: OTLP/HTTP base URL of a running ingest server, "
            "e.g. http://localhost:4318.",
            show_default=False,
        ),
    ] = None,
    backfill_days: Annotated[
        float | None,
        typer.Option(
            "--backfill-days",
            help="Backfill mode: simulate this many days (ending at the current hour) and "
            "write them straight into the warehouse.",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Warehouse URL for a backfill (overrides the global option and "
            "WATTLEDGER_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    fleet: Annotated[
        Path | None,
        typer.Option("--fleet", help="Fleet TOML file. Default: the packaged demo fleet."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of every random draw.")] = 0,
    rate: Annotated[
        float,
        typer.Option("--rate", help="Request rate relative to the Azure traces (2 = twice)."),
    ] = 1.0,
    start: Annotated[
        dt.datetime | None,
        typer.Option(
            "--start",
            formats=[
                "%Y-%m-%d",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S%z",
            ],
            help="Simulated start time (ISO 8601; UTC unless it has an offset). Default: "
            "now (live) or --backfill-days before the current hour (backfill).",
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Live mode: simulated seconds per wall second.")
    ] = 1.0,
    duration_s: Annotated[
        float, typer.Option("--duration-s", help="Live mode: wall seconds to run.")
    ] = 60.0,
    sample_interval_s: Annotated[
        float | None,
        typer.Option(
            "--sample-interval-s",
            help=f"Seconds between power samples per device. Default: "
            f"{LIVE_SAMPLE_INTERVAL_S:g} live, {BACKFILL_SAMPLE_INTERVAL_S:g} in a backfill.",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="WATTLEDGER_API_KEY",
            help="Live mode: ingest API key, sent as 'Authorization: Bearer <key>'.",
            show_default=False,
        ),
    ] = None,
    ground_truth: Annotated[
        Path | None,
        typer.Option(
            "--ground-truth",
            help="Where to write the ground truth (Parquet). Default: next to a DuckDB "
            "warehouse, else in the data directory.",
            show_default=False,
        ),
    ] = None,
    tenant: Annotated[
        str, typer.Option("--tenant", help="Backfill mode: tenant the rows belong to.")
    ] = "default",
    as_json: bool = json_option(),
) -> None:
    """Simulate a heterogeneous inference fleet replaying the Azure traces.

    Give --endpoint (live: spans and device readings over OTLP to a running
    ingest server, --speed times faster than real time, for --duration-s) or
    --backfill-days (fast: the same rows written straight into the warehouse).
    The same --seed, --fleet, --rate and --start give the same requests in
    both modes. True per-request energy goes to the --ground-truth file only.

    \b
    Example:
      wattledger simulate --backfill-days 14 --database-url duckdb:///wl.duckdb
      wattledger simulate --endpoint http://localhost:4318 --speed 60
    """
    from wattledger.collectors.simulate import Simulation, default_ground_truth_path, load_fleet

    if (endpoint is None) == (backfill_days is None):
        raise typer.BadParameter(
            "give exactly one of --endpoint (live) and --backfill-days (backfill)",
            param_hint="--endpoint / --backfill-days",
        )
    for name, value in (("--rate", rate), ("--speed", speed), ("--duration-s", duration_s)):
        if not (math.isfinite(value) and value > 0):
            raise typer.BadParameter(f"must be a positive number, not {value}", param_hint=name)
    settings = state(ctx).settings()
    fleet_cfg = load_fleet(fleet)
    start_utc = _utc(start)
    if backfill_days is not None:
        if not (math.isfinite(backfill_days) and 0 < backfill_days <= 366):
            raise typer.BadParameter(
                f"must be between 0 and 366 days, not {backfill_days}",
                param_hint="--backfill-days",
            )
        url = database_url or settings.url
        if start_utc is None:
            hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
            start_utc = hour - dt.timedelta(days=backfill_days)
        sim = Simulation(
            fleet_cfg,
            start_unix_s=start_utc.timestamp(),
            horizon_s=backfill_days * 86400.0,
            seed=seed,
            rate=rate,
            sample_interval_s=sample_interval_s or BACKFILL_SAMPLE_INTERVAL_S,
        )
        truth_path = ground_truth or default_ground_truth_path(url, settings.data_dir)
        summary = _backfill(sim, url, truth_path, tenant)
    else:
        assert endpoint is not None
        if start_utc is None:
            start_utc = dt.datetime.now(dt.UTC).replace(microsecond=0)
        sim = Simulation(
            fleet_cfg,
            start_unix_s=start_utc.timestamp(),
            horizon_s=duration_s * speed,
            seed=seed,
            rate=rate,
            sample_interval_s=sample_interval_s or LIVE_SAMPLE_INTERVAL_S,
        )
        truth_path = ground_truth or default_ground_truth_path(settings.url, settings.data_dir)
        summary = _live(sim, endpoint, api_key, speed, truth_path)
    summary.update(
        {
            "start": start_utc.isoformat(),
            "seed": seed,
            "rate": rate,
            "ground_truth": str(truth_path),
        }
    )
    if as_json:
        emit_json(summary)
    else:
        err_console.print(
            f"Simulated {summary['requests']:,} requests and {summary['metric_points']:,} "
            f"device readings in {summary['wall_s']:.1f} s; ground truth in {truth_path}."
        )


def _backfill(sim: Simulation, url: str, truth_path: Path, tenant: str) -> dict[str, Any]:
    from wattledger.collectors.simulate import GroundTruthWriter
    from wattledger.migrations import runner
    from wattledger.models import make_engine, redact

    ingest = _ingest_api()
    rev = runner.status(url)
    if not rev.is_current:
        raise DatabaseError(
            f"The warehouse {redact(url)} is not at the newest schema revision.",
            hint="Run `wattledger db upgrade` first.",
        )
    engine = make_engine(url)
    started = time.perf_counter()
    requests = points = 0
    try:
        with GroundTruthWriter(truth_path, sim.metadata()) as truth, _progress() as bar:
            task = bar.add_task("Backfilling", total=sim.total_chunks)
            for chunk in _prefetch(sim.chunks()):
                if chunk.n_metric_points:
                    samples, devices = ingest.sample_tables(chunk.metric_columns, tenant=tenant)
                    ingest.write_samples(engine, samples, devices)
                if chunk.n_requests:
                    table = ingest.request_table(chunk.request_columns, tenant=tenant)
                    ingest.write_requests(engine, table)
                truth.write(chunk)
                requests += chunk.n_requests
                points += chunk.n_metric_points
                bar.advance(task)
    finally:
        engine.dispose()
    return {
        "mode": "backfill",
        "database_url": redact(url),
        "days": sim.horizon_s / 86400.0,
        "requests": requests,
        "metric_points": points,
        "wall_s": time.perf_counter() - started,
    }


def _live(
    sim: Simulation, endpoint: str, api_key: str | None, speed: float, truth_path: Path
) -> dict[str, Any]:
    from wattledger.collectors.simulate import GroundTruthWriter, OtlpSender, run_live

    sender = OtlpSender(endpoint, api_key=api_key)
    try:
        with GroundTruthWriter(truth_path, sim.metadata()) as truth, _progress() as bar:
            chunks = list(sim.chunks())
            for chunk in chunks:
                truth.write(chunk)
            task = bar.add_task("Sending", total=None)
            result = run_live(
                chunks,
                sender,
                start_unix_nano=sim.start_unix_nano,
                end_unix_nano=sim.start_unix_nano + int(sim.horizon_s * 1e9),
                speed=speed,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        sender.shutdown()
    return {
        "mode": "live",
        "endpoint": endpoint,
        "requests": result.spans,
        "metric_points": result.metric_points,
        "wall_s": result.wall_s,
    }


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the root app."""
    app.command("simulate")(simulate)
