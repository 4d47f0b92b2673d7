"""Prices, tariffs and hardware rates: sync list prices from genai-prices, set contract rates.

List prices come from the installed ``genai-prices`` package's bundled snapshot (offline; its
own warning applies: list prices are not guaranteed accurate). ``sync`` replaces every
``origin='list'`` row in one transaction, so it is idempotent. Contract rates (``origin =
'contract'``) are never touched by ``sync`` and win over list prices valid at the same time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from wattledger.errors import WattledgerError
from wattledger.models import (
    ALL_SITES,
    ALL_TENANTS,
    EnergyTariff,
    HardwareRate,
    InferenceRequest,
    Price,
    session_factory,
)

log = logging.getLogger(__name__)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

#: genai-prices provider ids → the provider names wattledger stores (semconv well-known values).
GENAI_PRICES_PROVIDERS = {
    "x-ai": "x_ai",
    "mistral": "mistral_ai",
    "google": "gcp.gemini",
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "moonshotai": "moonshot_ai",
}
_OURS_TO_GENAI = {ours: theirs for theirs, ours in GENAI_PRICES_PROVIDERS.items()}


@dataclass
class SyncResult:
    """What a ``prices sync`` did."""

    providers: int
    prices: int
    aliases: int
    skipped: int


def _flat(price: Any) -> tuple[Decimal, Decimal, Decimal | None, Decimal | None] | None:
    """(input, output, cached input, cache write) per 1M tokens, or None when not token-priced."""
    values = []
    for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"):
        v = getattr(price, name, None)
        v = getattr(v, "base", v)  # tiered prices: the base tier
        values.append(Decimal(str(v)) if v is not None else None)
    if values[0] is None or values[1] is None:
        return None
    return values[0], values[1], values[2], values[3]


def _ranges(prices: Any) -> list[tuple[dt.datetime, dt.datetime | None, Any]]:
    """Validity ranges of a model's prices (start-date constraints; time-of-day ones skipped)."""
    if not isinstance(prices, list):
        return [(EPOCH, None, prices)]
    dated = []
    for cond in prices:
        constraint = cond.constraint
        if constraint is None:
            dated.append((EPOCH, cond.prices))
        elif hasattr(constraint, "start_date"):
            day = constraint.start_date
            dated.append((dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC), cond.prices))
    dated.sort(key=lambda x: x[0])
    out = []
    for i, (start, p) in enumerate(dated):
        end = dated[i + 1][0] if i + 1 < len(dated) else None
        if end is None or end > start:
            out.append((start, end, p))
    return out


def _source(provider: Any) -> str:
    """``genai-prices <version>: <pricing pages>`` for a genai-prices provider."""
    import genai_prices

    pages = ", ".join(getattr(provider, "pricing_urls", None) or []) or "no pricing page listed"
    return f"genai-prices {getattr(genai_prices, '__version__', '?')}: {pages}"[:300]


def _list_row(
    provider: str,
    llm_model: str,
    start: dt.datetime,
    end: dt.datetime | None,
    flat: tuple[Decimal, Decimal, Decimal | None, Decimal | None],
    now: dt.datetime,
    source: str | None = None,
) -> dict[str, Any]:
    return dict(
        provider=provider,
        llm_model=llm_model,
        origin="list",
        tenant=ALL_TENANTS,
        valid_from=start,
        valid_to=end,
        input_per_mtok_usd=flat[0],
        output_per_mtok_usd=flat[1],
        cached_input_per_mtok_usd=flat[2],
        cache_write_per_mtok_usd=flat[3],
        source=source,
        updated_at=now,
    )


def list_price_rows() -> tuple[list[dict[str, Any]], int]:
    """Every token-priced model in genai-prices as ``prices`` rows, and the count skipped."""
    from genai_prices import data

    rows: dict[tuple[str, str, dt.datetime], dict[str, Any]] = {}
    skipped = 0
    now = dt.datetime.now(dt.UTC)
    for provider in data.providers:
        ours = GENAI_PRICES_PROVIDERS.get(provider.id, provider.id)
        for model in provider.models:
            for start, end, price in _ranges(model.prices):
                flat = _flat(price)
                if flat is None:
                    skipped += 1
                    continue
                rows[(ours, model.id, start)] = _list_row(
                    ours, model.id, start, end, flat, now, _source(provider)
                )
    return list(rows.values()), skipped


def _aliases(engine: Engine, known: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """List prices for models seen in requests under a name genai-prices matches differently."""
    from genai_prices import data

    with engine.connect() as conn:
        seen = conn.execute(
            sa.select(InferenceRequest.provider, InferenceRequest.llm_model)
            .where(InferenceRequest.device_id.is_(None))
            .distinct()
        ).all()
    by_id = {p.id: p for p in data.providers}
    rows = []
    now = dt.datetime.now(dt.UTC)
    for provider_name, model_name in seen:
        if (provider_name, model_name) in known:
            continue
        provider = by_id.get(_OURS_TO_GENAI.get(provider_name, provider_name))
        model = provider.find_model(model_name, all_providers=data.providers) if provider else None
        if model is None:
            continue
        for start, end, price in _ranges(model.prices):
            if (flat := _flat(price)) is not None:
                rows.append(
                    _list_row(provider_name, model_name, start, end, flat, now, _source(provider))
                )
    return rows


def stale_contract_prices(
    engine: Engine, max_age_days: float, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Contract rates still in force that nobody has set for ``max_age_days`` or more."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=max_age_days)
    q = (
        sa.select(Price.provider, Price.llm_model, Price.tenant, Price.updated_at)
        .where(
            Price.origin == "contract",
            Price.updated_at < cutoff,
            sa.or_(Price.valid_to.is_(None), Price.valid_to > now),
        )
        .order_by(Price.updated_at)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def sync_list_prices(engine: Engine) -> SyncResult:
    """Replace all list prices with the genai-prices snapshot, plus aliases for seen models."""
    rows, skipped = list_price_rows()
    aliases = _aliases(engine, {(r["provider"], r["llm_model"]) for r in rows})
    with engine.begin() as conn:
        conn.execute(sa.delete(Price).where(Price.origin == "list"))
        for i in range(0, len(rows + aliases), 1000):
            conn.execute(sa.insert(Price), (rows + aliases)[i : i + 1000])
    return SyncResult(
        providers=len({r["provider"] for r in rows}),
        prices=len(rows),
        aliases=len(aliases),
        skipped=skipped,
    )


def _check_range(valid_from: dt.datetime, valid_to: dt.datetime | None) -> None:
    if valid_to is not None and valid_to <= valid_from:
        raise WattledgerError(
            f"--to {valid_to.isoformat()} is not after --from {valid_from.isoformat()}.",
            hint="Give a validity end after its start, or leave --to out for open-ended.",
        )


def set_contract_price(
    engine: Engine,
    *,
    provider: str,
    llm_model: str,
    input_per_mtok_usd: Decimal,
    output_per_mtok_usd: Decimal,
    cached_input_per_mtok_usd: Decimal | None = None,
    cache_write_per_mtok_usd: Decimal | None = None,
    tenant: str = ALL_TENANTS,
    valid_from: dt.datetime = EPOCH,
    valid_to: dt.datetime | None = None,
) -> None:
    """Record (or replace) a contract rate; it wins over list prices while valid."""
    _check_range(valid_from, valid_to)
    for name, v in (
        ("input", input_per_mtok_usd),
        ("output", output_per_mtok_usd),
        ("cached input", cached_input_per_mtok_usd),
        ("cache write", cache_write_per_mtok_usd),
    ):
        if v is not None and v < 0:
            raise WattledgerError(f"The {name} price {v} is negative.", hint="Prices are ≥ 0.")
    with session_factory(engine).begin() as s:
        s.merge(
            Price(
                provider=provider,
                llm_model=llm_model,
                origin="contract",
                tenant=tenant,
                valid_from=valid_from,
                valid_to=valid_to,
                input_per_mtok_usd=input_per_mtok_usd,
                output_per_mtok_usd=output_per_mtok_usd,
                cached_input_per_mtok_usd=cached_input_per_mtok_usd,
                cache_write_per_mtok_usd=cache_write_per_mtok_usd,
                source="contract (wattledger prices set)",
                updated_at=dt.datetime.now(dt.UTC),
            )
        )


def set_tariff(
    engine: Engine,
    *,
    site: str = ALL_SITES,
    usd_per_kwh: Decimal,
    pue: float = 1.0,
    grid_gco2e_per_kwh: float | None = None,
    valid_from: dt.datetime,
    valid_to: dt.datetime | None = None,
) -> None:
    """Record an energy tariff for a site from ``valid_from``."""
    _check_range(valid_from, valid_to)
    if pue < 1:
        raise WattledgerError(f"PUE {pue} is below 1.", hint="PUE is facility ÷ IT power, ≥ 1.")
    with session_factory(engine).begin() as s:
        s.merge(
            EnergyTariff(
                site=site,
                valid_from=valid_from,
                valid_to=valid_to,
                usd_per_kwh=usd_per_kwh,
                pue=pue,
                grid_gco2e_per_kwh=grid_gco2e_per_kwh,
            )
        )


def set_hardware_rate(
    engine: Engine,
    *,
    hardware_model: str,
    usd_per_device_hour: Decimal,
    site: str = ALL_SITES,
    valid_from: dt.datetime,
    valid_to: dt.datetime | None = None,
) -> None:
    """Record what a device-hour of ``hardware_model`` costs from ``valid_from``."""
    _check_range(valid_from, valid_to)
    with session_factory(engine).begin() as s:
        s.merge(
            HardwareRate(
                hardware_model=hardware_model,
                site=site,
                valid_from=valid_from,
                valid_to=valid_to,
                usd_per_device_hour=usd_per_device_hour,
            )
        )


def price_rows(
    engine: Engine, provider: str | None = None, model: str | None = None
) -> list[dict[str, Any]]:
    """Prices as dicts, filtered by provider and model substring."""
    q = sa.select(Price).order_by(Price.provider, Price.llm_model, Price.valid_from)
    if provider:
        q = q.where(Price.provider == provider)
    if model:
        q = q.where(Price.llm_model.contains(model, autoescape=True))
    with session_factory(engine)() as s:
        return [{c.name: getattr(p, c.key) for c in Price.__table__.columns} for p in s.scalars(q)]
