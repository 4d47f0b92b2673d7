"""``wattledger collect`` (the sidecar power collector) and ``wattledger doctor``."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from wattledger.cli._common import emit_json, err_console, json_option, state
from wattledger.collectors.settings import CollectorSettings
from wattledger.errors import ConfigError, WattledgerError

logger = logging.getLogger(__name__)


def _settings(ctx: typer.Context, **flags: Any) -> CollectorSettings:
    """Collector settings: flags > WATTLEDGER_* env > config file > defaults."""
    base = state(ctx).settings().collector
    overrides = {k: v for k, v in flags.items() if v not in (None, [], ())}
    try:
        return CollectorSettings.model_validate({**base.model_dump(), **overrides})
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"Collector option '{key}' has value {first.get('input')!r}: {first['msg']}.",
            hint="See `wattledger collect --help` and docs/collector.md.",
        ) from e


def collect(
    ctx: typer.Context,
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval", help="Seconds between samples. [default: 0.5]", show_default=False
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="OTLP/HTTP base URL of ingest; metrics go to <URL>/v1/metrics. "
            "[default: http://localhost:4318]",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Power source, repeatable: auto | nvml | amdsmi | rapl | tpu[=<tpu-info path>] | "
            "neuron[=<neuron-monitor path>] | prometheus=<URL> | "
            "modeled=<model>@<hardware>[#<served name>] | fake[=<devices>] | replay=<csv>. "
            "[default: auto]",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="WATTLEDGER_API_KEY",
            help="Ingest API key, sent as a Bearer token. Env: WATTLEDGER_API_KEY.",
            show_default=False,
        ),
    ] = None,
    site: Annotated[
        str | None, typer.Option("--site", help="Site key for tariffs.", show_default=False)
    ] = None,
    export_interval: Annotated[
        float | None,
        typer.Option(
            "--export-interval",
            help="Seconds between exports (every sample is sent). [default: 5]",
            show_default=False,
        ),
    ] = None,
    rapl_root: Annotated[
        Path | None,
        typer.Option("--rapl-root", help="Powercap sysfs root.", show_default=False),
    ] = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Print one set of readings as JSON and exit; export nothing."),
    ] = False,
) -> None:
    """Sample device power and energy and export them to ingest over OTLP/HTTP.

    Auto-detects NVIDIA GPUs (NVML), AMD GPUs (AMD SMI), CPU/DRAM (RAPL), and TPUs (tpu-info)
    and Inferentia/Trainium (neuron-monitor), whose power is modeled from utilisation.
    Scrapes vLLM, TGI, dcgm-exporter and Kepler with --source prometheus=<URL>.
    Runs until SIGTERM/SIGINT, then flushes what is buffered. Logs go to stderr.

    \b
    Example:
      wattledger collect --endpoint http://ingest:4318
      wattledger collect -s nvml -s prometheus=http://localhost:8000/metrics --interval 0.5
      wattledger collect --once -s rapl
    """
    from wattledger.collectors.collector.run import Collector, cycle_as_json
    from wattledger.collectors.collector.sampler import Sampler
    from wattledger.collectors.sources.detect import detect_sources

    settings = _settings(
        ctx,
        interval_s=interval,
        endpoint=endpoint,
        sources=source,
        site=site,
        export_interval_s=export_interval,
        rapl_root=rapl_root,
    )
    detected = detect_sources(settings)
    if once:
        sampler = Sampler(detected.sources, honor_min_interval=False)
        try:
            sampler.sample()  # the first read primes counters so rates exist
            time.sleep(min(settings.interval_s, 2.0))
            emit_json(cycle_as_json(sampler.sample()))
        finally:
            sampler.close()
        return
    collector = Collector(settings, detected.sources, api_key=api_key)

    def _stop(signum: int, frame: Any) -> None:
        # A signal handler runs on the main thread between two bytecodes, possibly while that
        # thread holds the stop event's lock (inside Event.wait): setting the event here could
        # deadlock on it. Stop from another thread, which waits for the lock like any other.
        def stop() -> None:
            err_console.print(f"Received {signal.Signals(signum).name}; flushing and stopping.")
            collector.stop()

        threading.Thread(target=stop, name="wattledger-collect-stop", daemon=True).start()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        collector.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def doctor(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Also check these sources (prometheus=<URL>, modeled=..., ...).",
            show_default=False,
        ),
    ] = None,
    as_json: bool = json_option(),
) -> None:
    """List every power source as found or unavailable, with the reason and the fix.

    Says which devices' power is modeled (TPU, Neuron, modeled=...) rather than measured.
    Also checks that the ingest endpoint answers. Exits 0 either way.

    \b
    Example:
      wattledger doctor
      wattledger doctor -s prometheus=http://localhost:9400/metrics --json
    """
    import httpx

    from wattledger.collectors.sources.detect import detect_sources
    from wattledger.hardware import resolve

    base = _settings(ctx)
    given = [*(s for s in base.sources if "=" in s), *(source or [])]
    with_value = {s.partition("=")[0] for s in given if "=" in s}
    # Every probe runs; a tool given a path (tpu=/opt/bin/tpu-info) replaces its default probe.
    probes = [k for k in ("nvml", "amdsmi", "rapl", "tpu", "neuron") if k not in with_value]
    extra = [s for s in given if "=" in s or s.partition("=")[0] not in (*probes, "auto")]
    settings = _settings(ctx, sources=list(dict.fromkeys([*probes, *extra])))
    detected = detect_sources(settings, log_unavailable=False)
    found = [
        {
            "source": s.name,
            "status": "found",
            "devices": [
                {
                    "id": d.device_id,
                    "type": d.hw_type,
                    "vendor": d.vendor,
                    "model": d.model,
                    "hardware": _identity(resolve(d.model)) if d.hw_type == "gpu" else None,
                    "power": "modeled"
                    if d.uncertainty_ratio is not None or s.name == "modeled"
                    else "measured",
                    "uncertainty_ratio": d.uncertainty_ratio,
                }
                for d in s.devices()
            ],
        }
        for s in detected.sources
    ]
    missing = [
        {"source": u.source, "status": "unavailable", "reason": u.reason, "fix": u.fix}
        for u in detected.unavailable
    ]
    detected.close()
    health = settings.endpoint + "/healthz"
    try:
        code = httpx.get(health, timeout=2.0).status_code
        endpoint = {"url": settings.endpoint, "reachable": True, "healthz_status": code}
    except httpx.HTTPError as e:
        endpoint = {"url": settings.endpoint, "reachable": False, "error": str(e)}
    warehouse = _warehouse(state(ctx).settings().url)
    if as_json:
        emit_json({"sources": found + missing, "endpoint": endpoint, "warehouse": warehouse})
        return
    for f in found:
        devices = ", ".join(_device_line(d) for d in f["devices"]) or "no devices yet"
        typer.echo(f"[found]       {f['source']}: {devices}")
        modeled = [d for d in f["devices"] if d["power"] == "modeled"]
        if modeled:
            ratio = max((d["uncertainty_ratio"] or 0.0) for d in modeled)
            width = f" (±{ratio:.0%})" if ratio else ""
            how = _MODELED_HOW.get(f["source"], "from utilisation")
            typer.echo(f"              power is MODELED {how}{width}, not measured")
    for m in missing:
        typer.echo(f"[unavailable] {m['source']}: {m['reason']}")
        if m["fix"]:
            typer.echo(f"              fix: {m['fix']}")
    reach = "reachable" if endpoint["reachable"] else f"NOT reachable ({endpoint.get('error')})"
    typer.echo(f"[endpoint]    {settings.endpoint}: {reach}")
    if not warehouse["checked"]:
        typer.echo(f"[warehouse]   {warehouse['url']}: not checked ({warehouse['error']})")
    elif warehouse["quarantined_requests"]:
        typer.echo(
            f"[warehouse]   {warehouse['url']}: {warehouse['quarantined_requests']:,} requests "
            "quarantined (token counts outside the ingest bounds, docs/security.md): they carry "
            "no cost or energy"
        )
    else:
        typer.echo(
            f"[warehouse]   {warehouse['url']}: no quarantined requests (as of the last "
            "`wattledger analytics run`)"
        )
    if warehouse.get("devices_without_idle_baseline"):
        names = warehouse["devices_without_idle_baseline"]
        typer.echo(
            f"[warehouse]   {len(names)} devices without an idle baseline ({', '.join(names[:5])}"
            f"{' …' if len(names) > 5 else ''}): never seen idle, no gauge, no configured or "
            "catalog idle figure, so all their energy went to requests"
        )
        typer.echo(
            "              fix: send `wattledger.device.idle_power_w` on their resource "
            "(docs/semantic-conventions.md), or samples while they are idle"
        )


#: How each modeled source models power (``doctor`` says so next to its devices).
_MODELED_HOW = {
    "tpu": "from TPU duty cycle between the catalog's idle and TDP figures",
    "neuron": "from NeuronCore utilisation between the catalog's idle and TDP figures",
    "modeled": "from generated tokens x published joules per token",
}


def _identity(identity: Any) -> dict[str, object]:
    return {
        "key": identity.key,
        "name": identity.name if identity.known else None,
        "known": identity.known,
        "in_catalog": identity.in_catalog,
    }


def _device_line(device: dict[str, Any]) -> str:
    hw = device.get("hardware")
    if hw is None:
        return f"{device['id']} ({device['model']})"
    if not hw["known"]:
        return f"{device['id']} ({device['model']}: unknown hardware, no catalog figures)"
    where = "in the catalog" if hw["in_catalog"] else "not in the catalog"
    return f"{device['id']} ({device['model']} = {hw['key']}, {where})"


#: How far back from the newest device-hour doctor looks for devices without an idle baseline.
IDLE_LOOKBACK = dt.timedelta(days=1)


def _warehouse(url: str) -> dict[str, object]:
    """Requests the last analytics runs quarantined and devices they found no idle baseline for
    (last day), read-only; a warehouse that cannot be read (not there yet, not migrated, locked
    by a running DuckDB ingest) is reported, not an error."""
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    from wattledger.models import DeviceEnergyHourly, QuarantineHourly, make_engine, redact

    shown = redact(url)
    try:
        engine = make_engine(url, read_only=True)
    except (WattledgerError, SQLAlchemyError, OSError) as e:
        return {"url": shown, "checked": False, "error": _first_line(e, url)}
    try:
        with engine.connect() as conn:
            count = sa.select(sa.func.sum(QuarantineHourly.requests))
            n = int(conn.execute(count).scalar() or 0)
            h = DeviceEnergyHourly
            latest = conn.execute(sa.select(sa.func.max(h.bucket_start))).scalar()
            without_idle: list[str] = []
            if latest is not None:
                no_idle = (
                    sa.select(h.device_id)
                    .where(h.idle_source == "none", h.bucket_start >= latest - IDLE_LOOKBACK)
                    .distinct()
                    .order_by(h.device_id)
                )
                without_idle = list(conn.execute(no_idle).scalars())
    except (WattledgerError, SQLAlchemyError, OSError) as e:
        return {"url": shown, "checked": False, "error": _first_line(e, url)}
    finally:
        engine.dispose()
    return {
        "url": shown,
        "checked": True,
        "quarantined_requests": n,
        "devices_without_idle_baseline": without_idle,
    }


def _first_line(e: BaseException, url: str) -> str:
    from wattledger.redact import scrub

    text = str(getattr(e, "orig", None) or e).strip().splitlines()
    return scrub(text[0] if text else type(e).__name__, url)


def register(app: typer.Typer) -> None:
    """Add ``collect`` and ``doctor`` to the root app."""
    app.command(name="collect")(collect)
    app.command(name="doctor")(doctor)
