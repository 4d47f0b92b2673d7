"""``wattledger whatif``: predict what a model would cost and draw on hardware you may not own."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from wattledger.cli._common import emit_json, err_console, json_option, parse_utc, state

log = logging.getLogger(__name__)


def _ms(x: float) -> str:
    return f"{x * 1000:,.1f} ms" if x < 1 else f"{x:,.2f} s"


def _open_warehouse(url: str) -> Any:
    """A read-only engine on the warehouse, or None (with the reason) when there is none."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from wattledger.models import make_engine

    if url.startswith("duckdb"):
        database = make_url(url).database
        if not database or database == ":memory:" or not Path(database).expanduser().exists():
            return None, f"no warehouse at {database}"
    try:
        engine = make_engine(url, read_only=True)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - the planner works without a warehouse
        return None, f"warehouse unavailable ({type(e).__name__})"
    return engine, ""


def whatif(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="LLM: a catalog key, a Hugging Face id (meta-llama/Llama-3.1-8B-Instruct) or a "
            "hosted API's name (llama-3.3-70b-versatile).",
        ),
    ] = None,
    hardware: Annotated[
        str | None, typer.Option(help="Accelerator: H100 (the SXM part), H100-PCIe, B200, MI300X…")
    ] = None,
    gpus: Annotated[int, typer.Option(help="Devices of one replica.", min=1)] = 1,
    parallelism: Annotated[
        str, typer.Option(help="How the devices split the model: tp (tensor) or ep (experts).")
    ] = "tp",
    pipeline_stages: Annotated[
        int, typer.Option("--pipeline-stages", help="Pipeline stages (--gpus divides).", min=1)
    ] = 1,
    quantization: Annotated[
        str, typer.Option(help="Weight precision: bf16, fp8, mxfp4, int4 (or fp4 = NVFP4).")
    ] = "bf16",
    kv_cache_dtype: Annotated[
        str, typer.Option(help="KV-cache precision: auto (the quantization's), bf16 or fp8.")
    ] = "auto",
    input_tokens: Annotated[
        float | None, typer.Option(help="Prompt tokens per request (default: the workload's).")
    ] = None,
    output_tokens: Annotated[
        float | None, typer.Option(help="Output tokens per request (default: the workload's).")
    ] = None,
    workload: Annotated[
        str | None,
        typer.Option(help="Workload class: its token mix and SLO come from the warehouse."),
    ] = None,
    batch: Annotated[
        int | None, typer.Option(help="Sequences decoding together (memory fit is checked).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight (capped by the engine and memory).")
    ] = None,
    utilisation: Annotated[
        float, typer.Option(help="Share of the hour the replica serves (cost per token).")
    ] = 1.0,
    engine_profile: Annotated[
        str, typer.Option("--engine", help="Serving-engine profile from the catalog.")
    ] = "vllm",
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate/--no-calibrate", help="Scale by the fleet's measured routes, if any."
        ),
    ] = True,
    at: Annotated[str | None, typer.Option("--at", help="As of this UTC time.")] = None,
    list_catalog: Annotated[
        bool, typer.Option("--list", help="List the catalog's models and hardware and exit.")
    ] = False,
    fleet: Annotated[
        bool,
        typer.Option(
            "--fleet",
            help="Show how much of the roofline each measured route uses (bandwidth, compute) "
            "and exit.",
        ),
    ] = False,
    as_json: bool = json_option(),
) -> None:
    """Predict time per token, energy per token and cost of a model on hardware.

    The catalog's roofline (memory bandwidth, dense FLOP/s, interconnect, KV cache) at the
    given batch, calibrated on the routes the fleet measures when a warehouse is there. Every
    figure is PREDICTED; assumptions are listed. A configuration that does not fit in memory
    exits 1 with the reason.

    \b
    Examples:
      wattledger whatif --model meta-llama/Llama-3.1-70B-Instruct --hardware H100 --gpus 4 \\
          --input-tokens 1000 --output-tokens 300 --batch 32
      wattledger whatif --model gpt-oss-120b --hardware B200 --quantization mxfp4 \\
          --input-tokens 500 --output-tokens 500 --batch 64 --json
      wattledger whatif --workload chat --model llama-3.1-70b --hardware MI300X --quantization fp8
    """
    from wattledger.analytics.whatif import predict
    from wattledger.catalog.predict import NoFit
    from wattledger.errors import WattledgerError

    if list_catalog:
        _list(as_json)
        return
    if fleet:
        _fleet(ctx, at, as_json)
        return
    if not model or not hardware:
        raise WattledgerError(
            "Give --model and --hardware.", hint="`wattledger whatif --list` shows the catalog."
        )
    settings = state(ctx).settings()
    engine, why = _open_warehouse(settings.url)
    if engine is None and (input_tokens is None or output_tokens is None):
        raise WattledgerError(
            f"Cannot take a token mix: {why}.",
            hint="Give --input-tokens and --output-tokens.",
        )
    try:
        out = predict(
            engine,
            settings.analytics,
            hardware=hardware,
            llm_model=model,
            quantization=quantization,
            gpus=gpus,
            pp=pipeline_stages,
            parallelism=parallelism,
            kv_cache_dtype=kv_cache_dtype,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            workload=workload,
            batch=batch,
            concurrency=concurrency,
            utilisation=utilisation,
            engine_profile=engine_profile,
            calibrated=calibrate,
            now=parse_utc(at, "--at") or dt.datetime.now(dt.UTC),
        )
    except NoFit as e:
        if as_json:
            emit_json({"basis": "predicted", "fits": False, "reason": e.message})
        err_console.print(
            f"[bold red]Does not fit:[/bold red] {e.message.removeprefix('Does not fit: ')}",
            highlight=False,
        )
        raise typer.Exit(1) from None
    finally:
        if engine is not None:
            engine.dispose()
    if engine is None and "calibration" in out["assumptions"]:
        out["assumptions"]["calibration"]["evidence"] = f"none ({why})"
    if as_json:
        emit_json(out)
        return
    _print(out)


def _print(out: dict[str, Any]) -> None:
    a = out["assumptions"]
    if out["basis"] == "modeled":
        typer.echo(f"MODELED  {out['model']} on {a['system']} ({a['provider']})")
        typer.echo(f"  time per output token  {_ms(out['time_per_output_token_s'])} (published)")
        typer.echo(
            f"  energy                 {out['energy_per_output_token_j']:.3f} J per output token "
            f"({a['method']})"
        )
        cost = out["cost_per_mtok_usd"]
        typer.echo(
            f"  cost per 1M tokens     {'$' + cost if cost else 'n/a'} ({out['cost_source']})"
        )
        return
    typer.echo(
        f"PREDICTED  {out['model']}@{out['quantization']} on {out['gpus']} x {out['hardware']} "
        f"(batch {a['batch']:g}, {a['input_tokens']:,.0f} in / {a['output_tokens']:,.0f} out "
        "tokens)"
    )
    typer.echo(f"  time per output token  {_ms(out['time_per_output_token_s'])}")
    typer.echo(f"  time to first token    {_ms(out['ttft_s'])} (prefill only, no queueing)")
    typer.echo(f"  throughput             {out['output_tokens_per_s']:,.0f} output tokens/s")
    typer.echo(
        f"  energy                 {out['energy_per_output_token_j']:.3f} J per output token "
        f"({out['output_tokens_per_j']:.2f} output tokens/J, idle included)"
    )
    typer.echo(
        f"  cost per 1M tokens     ${out['cost_per_mtok_usd']} at {a['utilisation']:.0%} "
        f"utilisation (${out['usd_per_device_hour']}/device-hour: "
        f"{out['usd_per_device_hour_source']})"
    )
    if out.get("meets_slo") is not None:
        typer.echo(
            f"  SLO                    {'met' if out['meets_slo'] else 'MISSED'} (predicted)"
        )
    m = a["memory"]
    typer.echo(
        f"  memory                 {m['weights_gb']:,.1f} GB weights + {m['kv_cache_gb']:,.1f} GB "
        f"KV cache of {m['usable_gb']:,.1f} GB usable"
    )
    typer.echo(f"  batch                  {a['batch_source']}")
    typer.echo(f"  utilisation            {a['utilisation_note']}")
    cal = a["calibration"]
    if cal.get("routes"):
        errs = ", ".join(
            f"{k} {v:.0%} (uncalibrated {cal['uncalibrated_mape'].get(k) or 0:.0%})"
            for k, v in cal["held_out_mape"].items()
            if v is not None
        )
        typer.echo(f"  calibrated on {len(cal['routes'])} measured routes; held-out error: {errs}")
    else:
        err_console.print(
            f"[yellow]Uncalibrated:[/yellow] {cal['evidence']}; roofline estimates.",
            highlight=False,
        )
    if meas := out.get("measured"):
        typer.echo(
            f"MEASURED   this route in your fleet: time per output token "
            f"{_ms(meas['time_per_output_token_s'] or 0)}, batch {meas['batch']:g}, "
            f"${meas['cost_per_mtok_usd']} per 1M tokens ({meas['requests']:,} requests)"
        )


def _fleet(ctx: typer.Context, at: str | None, as_json: bool) -> None:
    from wattledger.analytics.whatif import fleet_roofline_use
    from wattledger.errors import WattledgerError

    settings = state(ctx).settings()
    engine, why = _open_warehouse(settings.url)
    if engine is None:
        raise WattledgerError(f"--fleet needs the warehouse: {why}.")
    try:
        rows = fleet_roofline_use(
            engine, settings.analytics, parse_utc(at, "--at") or dt.datetime.now(dt.UTC)
        )
    finally:
        engine.dispose()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("No measured self-hosted route the catalog knows in the lookback window.")
        return
    typer.echo(
        f"{'route':<44} {'batch':>7} {'bandwidth':>9} {'compute':>8} {'ITL':>9} {'ITL@32':>9}"
    )
    for r in rows:
        route = f"{r['provider']}/{r['hardware_model']}/{r['llm_model']}"
        at32 = r["at_batch_32"]
        compute = r["prefill_compute_utilisation"]
        typer.echo(
            f"{route[:44]:<44} {r['batch']:>7.1f} {r['decode_bandwidth_utilisation']:>9.0%} "
            f"{'n/a' if compute is None else f'{compute:.0%}':>8} "
            f"{_ms(r['itl_p50_s'] or 0):>9} "
            f"{_ms(at32['time_per_output_token_s']) if at32 else 'n/a':>9}"
        )
    typer.echo(
        "bandwidth: bytes a decode step reads / p50 ITL / peak; compute: prefill FLOPs / p50 "
        "TTFT / peak (a lower bound); ITL@32: PREDICTED at batch 32."
    )


def _list(as_json: bool) -> None:
    from wattledger.catalog.specs import load_catalog

    c = load_catalog()
    data = {
        "models": {k: {"name": m.name, "aliases": list(m.aliases)} for k, m in c.models.items()},
        "hardware": {k: {"name": d.name, "aliases": list(d.aliases)} for k, d in c.devices.items()},
        "quantizations": sorted(c.quantizations),
        "engines": sorted(c.engines),
    }
    if as_json:
        emit_json(data)
        return
    typer.echo("Models:")
    for k, v in data["models"].items():
        typer.echo(f"  {k:<28} {v['name']}")
    typer.echo("Hardware:")
    for k, v in data["hardware"].items():
        typer.echo(f"  {k:<28} {v['name']}")
    typer.echo(f"Quantizations: {', '.join(data['quantizations'])}")
    typer.echo(f"Engine profiles: {', '.join(data['engines'])}")


def register(app: typer.Typer) -> None:
    """Add the ``whatif`` command."""
    app.command("whatif")(whatif)
