"""From attributed energy to money: the cost of each request, in portable SQL.

The winning price, tariff and hardware rate at each moment are resolved beforehand into
non-overlapping intervals (:mod:`wattledger.analytics.rates`) and staged in temporary tables;
requests join them by key and start time. Token × price arithmetic is exact NUMERIC;
energy-derived amounts start from measured joules.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from wattledger.analytics.sqlfuncs import PER_MILLION, trunc
from wattledger.models import (
    Device,
    GridIntensityHourly,
    InferenceRequest,
    Money,
    PricePerMTok,
    bounds,
)

J_PER_KWH = 3.6e6
S_PER_HOUR = 3600.0

_META = sa.MetaData()


def _temp(name: str, *columns: sa.Column) -> sa.Table:
    return sa.Table(name, _META, *columns, prefixes=["TEMPORARY"])


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.TIMESTAMP(timezone=True))


#: Attribution output for the window, one row per request.
STAGE = _temp(
    "wl_stage_attribution",
    sa.Column("trace_id", sa.String(32)),
    sa.Column("span_id", sa.String(16)),
    sa.Column("energy_j", sa.Double),
    sa.Column("energy_source", sa.String(10)),
    sa.Column("energy_j_low", sa.Double),
    sa.Column("energy_j_high", sa.Double),
    sa.Column("idle_share_j", sa.Double),
    sa.Column("device_time_s", sa.Double),
    sa.Column("idle_time_share_s", sa.Double),
)
EFFECTIVE_PRICES = _temp(
    "wl_eff_prices",
    sa.Column("provider", sa.String(100)),
    sa.Column("llm_model", sa.String(200)),
    sa.Column("tenant", sa.String(100)),
    _ts("valid_from"),
    _ts("valid_to"),
    sa.Column("input_per_mtok_usd", PricePerMTok),
    sa.Column("output_per_mtok_usd", PricePerMTok),
    sa.Column("cached_input_per_mtok_usd", PricePerMTok),
    sa.Column("cache_write_per_mtok_usd", PricePerMTok),
)
EFFECTIVE_TARIFFS = _temp(
    "wl_eff_tariffs",
    sa.Column("site", sa.String(100)),
    _ts("valid_from"),
    _ts("valid_to"),
    sa.Column("usd_per_kwh", PricePerMTok),
    sa.Column("pue", sa.Double),
    sa.Column("grid_gco2e_per_kwh", sa.Double),
)
EFFECTIVE_RATES = _temp(
    "wl_eff_rates",
    sa.Column("hardware_model", sa.String(100)),
    sa.Column("site", sa.String(100)),
    _ts("valid_from"),
    _ts("valid_to"),
    sa.Column("usd_per_device_hour", PricePerMTok),
)
TEMP_TABLES = (STAGE, EFFECTIVE_PRICES, EFFECTIVE_TARIFFS, EFFECTIVE_RATES)


def _during(table: sa.Table, ts: sa.ColumnElement) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.valid_from <= ts, table.c.valid_to > ts)


def request_cost_rows() -> sa.Select[tuple]:
    """One ``request_costs`` row per staged request (see the module docstring)."""
    stage, r, d = STAGE, InferenceRequest, Device
    own = EFFECTIVE_PRICES.alias("own_price")
    anyone = EFFECTIVE_PRICES.alias("all_price")
    tariff, rate = EFFECTIVE_TARIFFS, EFFECTIVE_RATES
    site = sa.func.coalesce(d.site, "*")
    hosted = r.device_id.is_(None)

    def price_join(p: sa.Alias, tenant: sa.ColumnElement) -> sa.ColumnElement[bool]:
        return sa.and_(
            hosted,
            p.c.provider == r.provider,
            p.c.llm_model == r.llm_model,
            p.c.tenant == tenant,
            _during(p, r.start_ts),
        )

    def price(col: str) -> sa.ColumnElement:
        return sa.case((own.c.provider.is_not(None), own.c[col]), else_=anyone.c[col])

    has_price = sa.or_(own.c.provider.is_not(None), anyone.c.provider.is_not(None))
    # Cache reads and writes are counted within the input tokens; a producer that said
    # otherwise (rows stored before ingest checked it) must not get a negative cost. A cache
    # write costs the provider's cache-write rate (Anthropic: 1.25x input), else the input rate.
    cached = sa.func.least(r.cached_input_tokens, r.input_tokens)
    written = sa.func.least(
        sa.func.coalesce(r.cache_write_input_tokens, 0), r.input_tokens - cached
    )
    uncached = r.input_tokens - cached - written
    in_price = price("input_per_mtok_usd")
    api = (
        uncached * in_price * PER_MILLION
        + cached * sa.func.coalesce(price("cached_input_per_mtok_usd"), in_price) * PER_MILLION
        + written * sa.func.coalesce(price("cache_write_per_mtok_usd"), in_price) * PER_MILLION
        + r.output_tokens * price("output_per_mtok_usd") * PER_MILLION
    )
    usd_per_hour = sa.func.coalesce(d.hourly_cost_usd, rate.c.usd_per_device_hour)
    kwh_price = tariff.c.usd_per_kwh * tariff.c.pue / J_PER_KWH
    has_tariff = tariff.c.site.is_not(None)
    zero = sa.literal(Decimal(0), Money)
    cost_api = sa.case((sa.and_(hosted, has_price), api), else_=zero)
    cost_hw = sa.case(
        (
            sa.and_(~hosted, usd_per_hour.is_not(None)),
            stage.c.device_time_s * usd_per_hour / S_PER_HOUR,
        ),
        else_=zero,
    )
    cost_energy = sa.case(
        (sa.and_(~hosted, has_tariff), sa.func.coalesce(stage.c.energy_j, 0.0) * kwh_price),
        else_=zero,
    )
    cost_idle = sa.case(
        (
            ~hosted,
            sa.func.coalesce(stage.c.idle_share_j * kwh_price, 0.0)
            + sa.func.coalesce(stage.c.idle_time_share_s * usd_per_hour / S_PER_HOUR, 0.0),
        ),
        else_=zero,
    )
    priced = sa.case((hosted, has_price), else_=sa.and_(usd_per_hour.is_not(None), has_tariff))
    # The hour's grid intensity for the device's site when one was loaded, else the tariff's.
    grid = GridIntensityHourly.__table__
    intensity = sa.func.coalesce(grid.c.gco2e_per_kwh, tariff.c.grid_gco2e_per_kwh)
    co2e = (
        (sa.func.coalesce(stage.c.energy_j, 0.0) + stage.c.idle_share_j)
        * tariff.c.pue
        * intensity
        / J_PER_KWH
    )
    co2e_source = sa.case(
        (sa.and_(tariff.c.site.is_not(None), grid.c.gco2e_per_kwh.is_not(None)), "hourly"),
        (tariff.c.grid_gco2e_per_kwh.is_not(None), "constant"),
        else_=sa.null(),
    )
    joined = (
        stage.join(r, sa.and_(r.trace_id == stage.c.trace_id, r.span_id == stage.c.span_id))
        .outerjoin(d, d.device_id == r.device_id)
        .outerjoin(own, price_join(own, r.tenant))
        .outerjoin(anyone, price_join(anyone, sa.literal("*")))
        .outerjoin(tariff, sa.and_(tariff.c.site == site, _during(tariff, r.start_ts)))
        .outerjoin(
            grid,
            sa.and_(
                ~hosted,
                grid.c.site == site,
                grid.c.hour_start == trunc("hour", r.start_ts),
            ),
        )
        .outerjoin(
            rate,
            sa.and_(
                rate.c.hardware_model == d.hardware_model,
                rate.c.site == site,
                _during(rate, r.start_ts),
            ),
        )
    )
    return (
        sa.select(
            stage.c.trace_id,
            stage.c.span_id,
            r.start_ts,
            stage.c.energy_j,
            stage.c.energy_source,
            stage.c.energy_j_low,
            stage.c.energy_j_high,
            stage.c.idle_share_j,
            stage.c.device_time_s,
            sa.cast(cost_api, Money).label("cost_api_usd"),
            sa.cast(cost_hw, Money).label("cost_hardware_usd"),
            sa.cast(cost_energy, Money).label("cost_energy_usd"),
            sa.cast(cost_idle, Money).label("cost_idle_usd"),
            sa.cast(cost_api + cost_hw + cost_energy + cost_idle, Money).label("cost_total_usd"),
            sa.case((priced, "priced"), else_="unpriced").label("price_status"),
            sa.cast(co2e, sa.Double).label("co2e_g"),
            co2e_source.label("co2e_source"),
        )
        .select_from(joined)
        .where(within_bounds())
    )


#: ``quarantine_hourly.reason`` of a request whose token counts are outside the ingest bounds.
QUARANTINE_TOKENS = "tokens_out_of_bounds"


def within_bounds() -> sa.ColumnElement[bool]:
    """Requests whose numbers can be costed: those outside the ingest bounds (stored before
    ingest checked them) are quarantined instead, so one cannot overflow the cost columns
    and stop the run for everyone."""
    r = InferenceRequest
    return sa.and_(
        *(col <= bounds.MAX_TOKENS for col in (r.input_tokens, r.output_tokens)),
        r.cached_input_tokens <= bounds.MAX_TOKENS,
    )
