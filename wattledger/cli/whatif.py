"""``wattledger whatif``: predict a route the fleet does not run yet."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

import typer

from wattledger.cli._common import emit_json, err_console, json_option, parse_utc, state
from wattledger.models import make_engine


def _ms(x: float) -> str:
    return f"{x * 1000:,.0f} ms" if x < 1 else f"{x:,.2f} s"


def whatif(
    ctx: typer.Context,
    workload: Annotated[str, typer.Option(help="Workload class whose traffic would move.")],
    model: Annotated[str, typer.Option("--model", help="LLM, e.g. llama-3.1-70b.")],
    hardware: Annotated[str, typer.Option(help="Hardware, e.g. MI300X, H100-SXM, L4.")],
    quantization: Annotated[str, typer.Option(help="bf16, fp8, int4, fp4.")] = "bf16",
    batch: Annotated[
        int | None, typer.Option(help="Batch size (default: largest meeting the ITL SLO).")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="As of this UTC time.")] = None,
    as_json: bool = json_option(),
) -> None:
    """Predict TTFT, ITL, tokens per joule and cost per 1M tokens for a route not yet in use.

    Uses the simulator's roofline model calibrated on the fleet's own measured routes, and
    reports the calibration's leave-one-out error. Every figure is PREDICTED, not measured.

    \b
    Example:
      wattledger whatif --workload chat --model llama-3.1-70b --hardware MI300X --quantization fp8
    """
    from wattledger.analytics.whatif import predict

    settings = state(ctx).settings()
    engine = make_engine(settings.url)
    try:
        p = predict(
            engine,
            settings.analytics,
            workload=workload,
            hardware=hardware,
            llm_model=model,
            quantization=quantization,
            now=parse_utc(at, "--at") or dt.datetime.now(dt.UTC),
            batch=batch,
        )
    finally:
        engine.dispose()
    if as_json:
        emit_json(dataclasses.asdict(p))
        return
    cal = p.calibration
    typer.echo(
        f"PREDICTED  {p.workload} on {p.hardware} · {p.llm_model}@{p.quantization} "
        f"(batch {p.batch}, median {p.input_tokens:.0f} in / {p.output_tokens:.0f} out tokens)"
    )
    typer.echo(f"  TTFT               {_ms(p.ttft_s)}")
    typer.echo(f"  ITL                {_ms(p.itl_s)}")
    typer.echo(f"  throughput         {p.output_tokens_per_s:,.0f} output tokens/s per replica")
    typer.echo(f"  tokens per joule   {p.tokens_per_j:.3f} (fully loaded)")
    cost = f"${p.cost_per_mtok_usd:,.4f}" if p.cost_per_mtok_usd is not None else "n/a"
    typer.echo(
        f"  cost per 1M tokens {cost} (hardware at ${p.usd_per_hour}/h: {p.usd_per_hour_source})"
    )
    if p.meets_slo is not None:
        typer.echo(f"  SLO                {'met' if p.meets_slo else 'MISSED'} (predicted)")
    if cal.routes:
        errs = ", ".join(
            f"{m} {e:.0%}" if e is not None else f"{m} n/a" for m, e in cal.held_out_mape.items()
        )
        typer.echo(f"  calibrated on {len(cal.routes)} measured routes; held-out error: {errs}")
    else:
        err_console.print(
            "[yellow]Uncalibrated:[/yellow] no measured self-hosted route in the catalog to "
            "calibrate on; treat these as roofline estimates."
        )


def register(app: typer.Typer) -> None:
    """Add the ``whatif`` command."""
    app.command("whatif")(whatif)
