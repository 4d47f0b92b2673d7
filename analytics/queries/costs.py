"""From attributed energy to money: the cost of each request, in portable SQL.

Prices are looked up at each request's start time. The best price for a hosted request is a
contract rate over a list price, a tenant's own rate over one for all tenants, and the newest
valid one; tariffs and hardware rates prefer the device's site over the catch-all ``*``.
Token × price arithmetic is exact NUMERIC; energy-derived amounts start from measured joules.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from wattledger.analytics.sqlfuncs import PER_MILLION
from wattledger.models import Device, EnergyTariff, HardwareRate, InferenceRequest, Money, Price

J_PER_KWH = 3.6e6
S_PER_HOUR = 3600.0


def _valid_at(model: type, ts: sa.ColumnElement) -> sa.ColumnElement[bool]:
    return sa.and_(model.valid_from <= ts, sa.or_(model.valid_to.is_(None), model.valid_to > ts))


def request_cost_rows(stage: sa.Table) -> sa.Select[tuple]:
    """One ``request_costs`` row per staged request.

    ``stage`` holds ``trace_id``, ``span_id``, ``energy_j``, ``energy_source``,
    ``idle_share_j``, ``device_time_s`` and ``idle_time_share_s`` from attribution.
    """
    r, d, p, t, h = InferenceRequest, Device, Price, EnergyTariff, HardwareRate
    key = (stage.c.trace_id, stage.c.span_id)
    joined = stage.join(r, sa.and_(r.trace_id == stage.c.trace_id, r.span_id == stage.c.span_id))
    site = sa.func.coalesce(d.site, "*")

    price = (
        sa.select(
            *key,
            p.input_per_mtok_usd,
            p.output_per_mtok_usd,
            p.cached_input_per_mtok_usd,
            sa.func.row_number()
            .over(
                partition_by=key,
                order_by=(
                    sa.case((p.origin == "contract", 0), else_=1),
                    sa.case((p.tenant == "*", 1), else_=0),
                    p.valid_from.desc(),
                ),
            )
            .label("rn"),
        )
        .select_from(
            joined.join(
                p,
                sa.and_(
                    p.provider == r.provider,
                    p.llm_model == r.llm_model,
                    sa.or_(p.tenant == r.tenant, p.tenant == "*"),
                    _valid_at(p, r.start_ts),
                ),
            )
        )
        .where(r.device_id.is_(None))
        .cte("best_price")
    )
    tariff = (
        sa.select(
            *key,
            t.usd_per_kwh,
            t.pue,
            t.grid_gco2e_per_kwh,
            sa.func.row_number()
            .over(
                partition_by=key,
                order_by=(sa.case((t.site == "*", 1), else_=0), t.valid_from.desc()),
            )
            .label("rn"),
        )
        .select_from(
            joined.outerjoin(d, d.device_id == r.device_id).join(
                t, sa.and_(sa.or_(t.site == site, t.site == "*"), _valid_at(t, r.start_ts))
            )
        )
        .cte("best_tariff")
    )
    rate = (
        sa.select(
            *key,
            h.usd_per_device_hour,
            sa.func.row_number()
            .over(
                partition_by=key,
                order_by=(sa.case((h.site == "*", 1), else_=0), h.valid_from.desc()),
            )
            .label("rn"),
        )
        .select_from(
            joined.join(d, d.device_id == r.device_id).join(
                h,
                sa.and_(
                    h.hardware_model == d.hardware_model,
                    sa.or_(h.site == site, h.site == "*"),
                    _valid_at(h, r.start_ts),
                ),
            )
        )
        .cte("best_rate")
    )

    def best(cte: sa.CTE) -> sa.ColumnElement[bool]:
        return sa.and_(
            cte.c.trace_id == stage.c.trace_id, cte.c.span_id == stage.c.span_id, cte.c.rn == 1
        )

    hosted = r.device_id.is_(None)
    uncached = r.input_tokens - r.cached_input_tokens
    api = (
        uncached * price.c.input_per_mtok_usd * PER_MILLION
        + r.cached_input_tokens
        * sa.func.coalesce(price.c.cached_input_per_mtok_usd, price.c.input_per_mtok_usd)
        * PER_MILLION
        + r.output_tokens * price.c.output_per_mtok_usd * PER_MILLION
    )
    usd_per_hour = sa.func.coalesce(d.hourly_cost_usd, rate.c.usd_per_device_hour)
    kwh_price = tariff.c.usd_per_kwh * tariff.c.pue / J_PER_KWH
    zero = sa.literal(Decimal(0), Money)
    cost_api = sa.case((sa.and_(hosted, price.c.rn.is_not(None)), api), else_=zero)
    cost_hw = sa.case(
        (
            sa.and_(~hosted, usd_per_hour.is_not(None)),
            stage.c.device_time_s * usd_per_hour / S_PER_HOUR,
        ),
        else_=zero,
    )
    cost_energy = sa.case(
        (
            sa.and_(~hosted, tariff.c.rn.is_not(None)),
            sa.func.coalesce(stage.c.energy_j, 0.0) * kwh_price,
        ),
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
    priced = sa.case(
        (hosted, price.c.rn.is_not(None)),
        else_=sa.and_(usd_per_hour.is_not(None), tariff.c.rn.is_not(None)),
    )
    co2e = (
        (sa.func.coalesce(stage.c.energy_j, 0.0) + stage.c.idle_share_j)
        * tariff.c.pue
        * tariff.c.grid_gco2e_per_kwh
        / J_PER_KWH
    )
    return sa.select(
        stage.c.trace_id,
        stage.c.span_id,
        r.start_ts,
        stage.c.energy_j,
        stage.c.energy_source,
        stage.c.idle_share_j,
        stage.c.device_time_s,
        sa.cast(cost_api, Money).label("cost_api_usd"),
        sa.cast(cost_hw, Money).label("cost_hardware_usd"),
        sa.cast(cost_energy, Money).label("cost_energy_usd"),
        sa.cast(cost_idle, Money).label("cost_idle_usd"),
        sa.cast(cost_api + cost_hw + cost_energy + cost_idle, Money).label("cost_total_usd"),
        sa.case((priced, "priced"), else_="unpriced").label("price_status"),
        sa.cast(co2e, sa.Double).label("co2e_g"),
    ).select_from(
        joined.outerjoin(d, d.device_id == r.device_id)
        .outerjoin(price, best(price))
        .outerjoin(tariff, best(tariff))
        .outerjoin(rate, best(rate))
    )
