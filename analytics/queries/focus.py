"""What the FOCUS export reads: one charge per UTC day × route × tenant from the daily rollups.

A route is provider × hardware model × LLM model × quantization; services and workloads are
summed within it, or kept apart (``by_consumer``) for the FOCUS 1.3 export's allocated charges.
Token sums are cast to BIGINT (PostgreSQL's ``sum(bigint)`` is NUMERIC).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from wattledger.models import ALL_TENANTS, RollupDaily

CHARGE_KEY = ("tenant", "provider", "hardware_model", "llm_model", "quantization")
#: What a route's cost is allocated to in FOCUS 1.3 (``AllocatedResourceId``).
CONSUMER_KEY = ("service", "workload")


def _int_sum(column: Any) -> sa.ColumnElement[int]:
    return sa.cast(sa.func.coalesce(sa.func.sum(column), 0), sa.BigInteger)


def daily_route_charges(
    start: dt.datetime,
    end: dt.datetime,
    tenant: str = ALL_TENANTS,
    *,
    by_consumer: bool = False,
) -> sa.Select[tuple]:
    """Per UTC day × tenant × route in ``[start, end)``: requests, tokens, energy (J), USD, g.

    Args:
        start: First day, UTC midnight.
        end: Day after the last (exclusive), UTC midnight.
        tenant: One tenant, or ``"*"`` for all.
        by_consumer: Also per service × workload (:data:`CONSUMER_KEY`); the rows of one
            day × tenant × route are then adjacent.
    """
    r = RollupDaily
    keys = [getattr(r, name) for name in CHARGE_KEY + (CONSUMER_KEY if by_consumer else ())]
    conds = [r.bucket_start >= start, r.bucket_start < end]
    if tenant != ALL_TENANTS:
        conds.append(r.tenant == tenant)

    def money(column: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(column), 0)

    def joules(column: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(column), 0.0)

    return (
        sa.select(
            r.bucket_start.label("day"),
            *(k.label(k.key) for k in keys),
            _int_sum(r.requests).label("requests"),
            _int_sum(r.unpriced_requests).label("unpriced_requests"),
            _int_sum(r.input_tokens).label("input_tokens"),
            _int_sum(r.cached_input_tokens).label("cached_input_tokens"),
            _int_sum(r.output_tokens).label("output_tokens"),
            joules(r.energy_measured_j).label("energy_measured_j"),
            joules(r.energy_modeled_j).label("energy_modeled_j"),
            joules(r.idle_energy_j).label("idle_energy_j"),
            money(r.cost_api_usd).label("cost_api_usd"),
            money(r.cost_hardware_usd).label("cost_hardware_usd"),
            money(r.cost_energy_usd).label("cost_energy_usd"),
            money(r.cost_idle_usd).label("cost_idle_usd"),
            money(r.cost_total_usd).label("cost_total_usd"),
            joules(r.co2e_g).label("co2e_g"),
        )
        .where(*conds)
        .group_by(r.bucket_start, *keys)
        .order_by(r.bucket_start, *keys)
    )
