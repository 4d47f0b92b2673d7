"""``wattledger prices``: list prices, contract rates, energy tariffs, hardware rates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from wattledger.cli._common import (
    CONTEXT_SETTINGS,
    emit_json,
    err_console,
    existing_warehouse,
    json_option,
    parse_utc,
    state,
)
from wattledger.errors import WattledgerError
from wattledger.models import make_engine

prices_app = typer.Typer(
    help="Prices per 1M tokens, energy tariffs and hardware rates used for costs.",
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
)


def _money(value: str | None, option: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation as e:
        raise WattledgerError(
            f"{option} {value!r} is not a number.", hint=f"Use e.g. {option} 0.15 (US dollars)."
        ) from e
    if not amount.is_finite() or amount < 0:
        raise WattledgerError(f"{option} {value!r} must be a non-negative amount.")
    return amount


def _engine(ctx: typer.Context):  # type: ignore[no-untyped-def]
    return make_engine(existing_warehouse(state(ctx).settings().url))


@prices_app.command()
def sync(
    ctx: typer.Context,
    max_age_days: Annotated[
        float,
        typer.Option(
            "--max-age-days",
            help="Warn about contract rates not set for this many days (they may be out of date).",
            min=0,
        ),
    ] = 180.0,
    as_json: bool = json_option(),
) -> None:
    """Load list prices from the installed genai-prices package (offline).

    Replaces every list price; contract rates are kept and still win. Each list price records
    its source (the genai-prices version and the provider's pricing page) and when it was
    loaded; contract rates older than --max-age-days are named.

    \b
    Example:
      wattledger prices sync
    """
    import genai_prices

    from wattledger.analytics.prices import stale_contract_prices, sync_list_prices

    engine = _engine(ctx)
    try:
        result = sync_list_prices(engine)
        stale = stale_contract_prices(engine, max_age_days)
    finally:
        engine.dispose()
    version = getattr(genai_prices, "__version__", "?")
    if as_json:
        emit_json({**result.__dict__, "genai_prices_version": version, "stale_contracts": stale})
        return
    err_console.print(
        f"Loaded {result.prices:,} list prices for {result.providers} providers from "
        f"genai-prices {version} (+{result.aliases} aliases for models seen in requests; "
        f"{result.skipped} non-token prices skipped)."
    )
    for s in stale:
        age = (dt.datetime.now(dt.UTC) - s["updated_at"]).days
        err_console.print(
            f"[yellow]Warning:[/yellow] contract rate {s['provider']}/{s['llm_model']} "
            f"(tenant {s['tenant']}) was set {age} days ago; check it is still current "
            "(`wattledger prices set` to renew).",
            highlight=False,
        )


@prices_app.command("set")
def set_price(
    ctx: typer.Context,
    provider: Annotated[str, typer.Option(help="Provider, e.g. groq, openai, together.")],
    model: Annotated[str, typer.Option(help="Model name exactly as requests report it.")],
    input_usd: Annotated[str, typer.Option("--input", help="USD per 1M input tokens.")],
    output_usd: Annotated[str, typer.Option("--output", help="USD per 1M output tokens.")],
    cached_usd: Annotated[
        str | None, typer.Option("--cached-input", help="USD per 1M cached input tokens.")
    ] = None,
    cache_write_usd: Annotated[
        str | None,
        typer.Option(
            "--cache-write", help="USD per 1M input tokens written to the cache (default: input)."
        ),
    ] = None,
    tenant: Annotated[str, typer.Option(help="Tenant it applies to; * for all.")] = "*",
    valid_from: Annotated[
        str | None, typer.Option("--from", help="Valid from (UTC date/time); default always.")
    ] = None,
    valid_to: Annotated[str | None, typer.Option("--to", help="Valid until (exclusive).")] = None,
) -> None:
    """Record a contract rate, which wins over list prices while valid.

    \b
    Example:
      wattledger prices set --provider groq --model llama-3.1-8b-instant \\
          --input 0.04 --output 0.06 --from 2026-10-01
    """
    from wattledger.analytics.prices import EPOCH, set_contract_price

    engine = _engine(ctx)
    try:
        set_contract_price(
            engine,
            provider=provider,
            llm_model=model,
            input_per_mtok_usd=_money(input_usd, "--input") or Decimal(0),
            output_per_mtok_usd=_money(output_usd, "--output") or Decimal(0),
            cached_input_per_mtok_usd=_money(cached_usd, "--cached-input"),
            cache_write_per_mtok_usd=_money(cache_write_usd, "--cache-write"),
            tenant=tenant,
            valid_from=parse_utc(valid_from, "--from") or EPOCH,
            valid_to=parse_utc(valid_to, "--to"),
        )
    finally:
        engine.dispose()
    err_console.print(f"Contract rate for {provider}/{model} recorded.")


def _usd(value: Decimal | None) -> str:
    """``$8.00``, ``$0.904``, ``$0.0375``: at least cents, no trailing zeros beyond them (a
    NUMERIC(18, 8) price would otherwise print as $8.00000000)."""
    if value is None:
        return "n/a"
    text = f"{Decimal(value).normalize():f}"
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


@prices_app.command("list")
def list_prices(
    ctx: typer.Context,
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    model: Annotated[str | None, typer.Option(help="Only models containing this.")] = None,
    as_json: bool = json_option(),
) -> None:
    """Show prices per 1M tokens.

    \b
    Example:
      wattledger prices list --provider groq --model llama
    """
    from wattledger.analytics.prices import price_rows

    engine = _engine(ctx)
    try:
        rows = price_rows(engine, provider, model)
    finally:
        engine.dispose()
    if as_json:
        emit_json(rows)
        return
    if rows:
        typer.echo(
            f"{'provider':<14} {'model':<40} {'origin':<8} {'input/1M':>10} {'output/1M':>10} "
            f"{'valid':<24} {'tenant':<8} checked     source"
        )
    for r in rows:
        start = r["valid_from"].date().isoformat()
        end = r["valid_to"].date().isoformat() if r["valid_to"] else "open"
        valid = "always" if start == "1970-01-01" and end == "open" else f"{start}..{end}"
        typer.echo(
            f"{r['provider']:<14} {r['llm_model']:<40} {r['origin']:<8} "
            f"{_usd(r['input_per_mtok_usd']):>10} {_usd(r['output_per_mtok_usd']):>10} "
            f"{valid:<24} {r['tenant']:<8} {r['updated_at'].date()}  {r.get('source') or ''}"
        )
    if not rows:
        err_console.print("No prices match. Load list prices with `wattledger prices sync`.")


@prices_app.command()
def tariff(
    ctx: typer.Context,
    usd_per_kwh: Annotated[str, typer.Option("--usd-per-kwh", help="Energy price, $/kWh.")],
    site: Annotated[str, typer.Option(help="Site key (devices' site); * for all.")] = "*",
    pue: Annotated[float, typer.Option(help="Power usage effectiveness, ≥ 1.")] = 1.0,
    grid: Annotated[
        float | None, typer.Option("--gco2e-per-kwh", help="Grid intensity, gCO2e/kWh.")
    ] = None,
    valid_from: Annotated[str | None, typer.Option("--from", help="Valid from (UTC).")] = None,
    valid_to: Annotated[str | None, typer.Option("--to", help="Valid until (UTC).")] = None,
) -> None:
    """Record an energy tariff, PUE and grid intensity for a site.

    \b
    Example:
      wattledger prices tariff --site eu-west --usd-per-kwh 0.21 --pue 1.3 --gco2e-per-kwh 250
    """

    from wattledger.analytics.prices import set_tariff

    engine = _engine(ctx)
    try:
        set_tariff(
            engine,
            site=site,
            usd_per_kwh=_money(usd_per_kwh, "--usd-per-kwh") or Decimal(0),
            pue=pue,
            grid_gco2e_per_kwh=grid,
            valid_from=parse_utc(valid_from, "--from") or dt.datetime.now(dt.UTC),
            valid_to=parse_utc(valid_to, "--to"),
        )
    finally:
        engine.dispose()
    err_console.print(f"Tariff for site {site} recorded.")


@prices_app.command()
def hardware(
    ctx: typer.Context,
    hardware_model: Annotated[str, typer.Option("--hardware", help="e.g. H100-SXM, MI300X.")],
    usd_per_hour: Annotated[str, typer.Option("--usd-per-hour", help="$ per device-hour.")],
    site: Annotated[str, typer.Option(help="Site key; * for all.")] = "*",
    valid_from: Annotated[str | None, typer.Option("--from", help="Valid from (UTC).")] = None,
    valid_to: Annotated[str | None, typer.Option("--to", help="Valid until (UTC).")] = None,
) -> None:
    """Record what one device-hour of a hardware model costs.

    \b
    Example:
      wattledger prices hardware --hardware H100-SXM --usd-per-hour 2.49
    """

    from wattledger.analytics.prices import set_hardware_rate

    engine = _engine(ctx)
    try:
        set_hardware_rate(
            engine,
            hardware_model=hardware_model,
            usd_per_device_hour=_money(usd_per_hour, "--usd-per-hour") or Decimal(0),
            site=site,
            valid_from=parse_utc(valid_from, "--from") or dt.datetime.now(dt.UTC),
            valid_to=parse_utc(valid_to, "--to"),
        )
    finally:
        engine.dispose()
    err_console.print(f"Rate for {hardware_model} at site {site} recorded.")


def register(app: typer.Typer) -> None:
    """Add the ``prices`` group."""
    app.add_typer(prices_app, name="prices")


@prices_app.command()
def carbon(
    ctx: typer.Context,
    site: Annotated[str, typer.Option(help="Site key (devices' site); * for all.")],
    file: Annotated[
        Path,
        typer.Option(
            "--file", help="Electricity Maps hourly CSV or WattTime historical CSV (UTC)."
        ),
    ],
    signal: Annotated[
        str,
        typer.Option(help="Electricity Maps figure: lifecycle (default) or direct."),
    ] = "lifecycle",
    as_json: bool = json_option(),
) -> None:
    """Load hourly grid carbon intensity for a site, so CO2e follows when energy was drawn.

    Hours without a value keep the site tariff's constant (`prices tariff --gco2e-per-kwh`).
    Re-loading replaces the hours the file covers. Run `analytics run --since DATE` to
    re-derive CO2e of requests already costed.

    \b
    Examples:
      wattledger prices carbon --site eu-west --file DE_2026_hourly.csv
      wattledger prices carbon --site us-east --file watttime_PJM_DOM.csv
    """
    from wattledger.analytics.carbon import load

    if signal not in ("lifecycle", "direct"):
        raise WattledgerError(f"Unknown --signal {signal!r}.", hint="Use lifecycle or direct.")
    engine = _engine(ctx)
    try:
        result = load(engine, site, file, signal)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    if as_json:
        emit_json(result.__dict__)
        return
    err_console.print(
        f"Loaded {result.hours:,} hours of grid intensity for site {result.site} "
        f"({result.first_hour:%Y-%m-%d %H:%M}..{result.last_hour:%Y-%m-%d %H:%M} UTC, mean "
        f"{result.mean_gco2e_per_kwh:,.0f} gCO2e/kWh, {result.source}).",
        highlight=False,
    )
