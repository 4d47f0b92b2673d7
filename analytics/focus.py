"""FinOps FOCUS export: AI inference cost as FOCUS charges, beside cloud bills.

Two versions (``version=``; :data:`FOCUS_VERSIONS`), FOCUS 1.3 by default:

- **FOCUS 1.3** (FOCUS_Spec ``specification/datasets/cost_and_usage``): every mandatory column,
  the provider columns as 1.3 defines them (``ServiceProviderName``, ``HostProviderName``; the
  deprecated ``ProviderName`` and ``PublisherName`` are still Mandatory and kept), and the
  allocation columns describing wattledger's attribution (:mod:`.focus_allocation`): a
  self-hosted route's cost for one tenant and day (the *origin charge*) is split by service ×
  workload into *allocated charges*, so one row is a UTC day × tenant × route × service ×
  workload.
- **FOCUS 1.2** (FOCUS_Spec tag v1.2, 2025-05-29), unchanged: all 21 mandatory columns, plus
  the 1.3 provider columns as additive extras; one row per UTC day × tenant × route (provider
  × hardware × LLM model × quantization).

In both, tokens (input + output) are the consumed quantity (``ConsumedUnit`` ``Tokens``) and,
in millions, the pricing quantity (``PricingUnit`` ``1000000 Tokens``). The unit price is the
fully-loaded cost per one million tokens of the day × tenant × route rounded to 10 decimals,
and ``ListCost = ContractedCost = ListUnitPrice × PricingQuantity`` exactly (as the spec
requires); ``BilledCost = EffectiveCost`` is the exact fully-loaded cost. Money is Decimal in
US dollars; times are UTC (ISO 8601 ``YYYY-MM-DDTHH:MM:SSZ`` in CSV, ``timestamp[s, UTC]`` in
Parquet). Custom columns start with ``x_`` and follow the FOCUS columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection

from wattledger.analytics.focus_allocation import NOT_ALLOCATED, allocated_columns
from wattledger.analytics.queries.focus import ALL_TENANTS, CHARGE_KEY, daily_route_charges
from wattledger.analytics.recommend.routes import RouteKey
from wattledger.analytics.reports.weekly import energy_basis
from wattledger.errors import WattledgerError

FocusVersion = Literal["1.3", "1.2"]
#: The versions written, newest first; the first is the default.
FOCUS_VERSIONS: tuple[FocusVersion, ...] = ("1.3", "1.2")
DEFAULT_FOCUS_VERSION: FocusVersion = FOCUS_VERSIONS[0]
SELF_HOSTED = "Self-hosted"
MTOK = Decimal(1_000_000)
UNIT_PRICE_PLACES = Decimal("1e-10")

_TS = pa.timestamp("s", tz="UTC")
_COST = pa.decimal128(38, 16)
_PRICE = pa.decimal128(38, 10)
_STR = pa.string()

#: Arrow type of every column either version writes.
TYPES: dict[str, pa.DataType] = {
    "BilledCost": _COST,
    "ContractedCost": _COST,
    "EffectiveCost": _COST,
    "ListCost": _COST,
    "PricingQuantity": pa.decimal128(38, 6),
    "ConsumedQuantity": pa.decimal128(38, 0),
    "ContractedUnitPrice": _PRICE,
    "ListUnitPrice": _PRICE,
    **{name: _TS for name in ("BillingPeriodEnd", "BillingPeriodStart")},
    **{name: _TS for name in ("ChargePeriodEnd", "ChargePeriodStart")},
    **{
        name: pa.int64()
        for name in (
            "x_Requests",
            "x_UnpricedRequests",
            "x_InputTokens",
            "x_CachedInputTokens",
            "x_OutputTokens",
        )
    },
    **{
        name: pa.float64()
        for name in (
            "x_EnergyJoules",
            "x_EnergyMeasuredJoules",
            "x_EnergyModeledJoules",
            "x_IdleEnergyJoules",
            "x_TokensPerJoule",
            "x_Co2eGrams",
        )
    },
    **{name: _PRICE for name in ("x_ApiCost", "x_HardwareCost", "x_EnergyCost", "x_IdleCost")},
}
_X_COLUMNS = (
    "x_Requests",
    "x_UnpricedRequests",
    "x_InputTokens",
    "x_CachedInputTokens",
    "x_OutputTokens",
    "x_LlmModel",
    "x_HardwareModel",
    "x_Quantization",
    "x_EnergyJoules",
    "x_EnergyMeasuredJoules",
    "x_EnergyModeledJoules",
    "x_IdleEnergyJoules",
    "x_EnergyBasis",
    "x_TokensPerJoule",
    "x_Co2eGrams",
    "x_ApiCost",
    "x_HardwareCost",
    "x_EnergyCost",
    "x_IdleCost",
)
#: Conditional and recommended columns both versions write.
_CONDITIONAL = (
    "ChargeFrequency",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedUnitPrice",
    "ListUnitPrice",
    "PricingCategory",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceId",
    "Tags",
)
COLUMNS: dict[FocusVersion, tuple[str, ...]] = {
    "1.2": (
        # FOCUS 1.2 mandatory
        "BilledCost",
        "BillingAccountId",
        "BillingAccountName",
        "BillingCurrency",
        "BillingPeriodEnd",
        "BillingPeriodStart",
        "ChargeCategory",
        "ChargeClass",
        "ChargeDescription",
        "ChargePeriodEnd",
        "ChargePeriodStart",
        "ContractedCost",
        "EffectiveCost",
        "InvoiceIssuerName",
        "ListCost",
        "PricingQuantity",
        "PricingUnit",
        "ProviderName",
        "PublisherName",
        "ServiceCategory",
        "ServiceName",
        *_CONDITIONAL,
        # FOCUS 1.3 additions (additive columns are allowed in 1.2)
        "ServiceProviderName",
        "HostProviderName",
        *_X_COLUMNS,
    ),
    "1.3": (
        # FOCUS 1.3 mandatory (ProviderName and PublisherName: deprecated, still Mandatory)
        "BilledCost",
        "BillingAccountId",
        "BillingAccountName",
        "BillingCurrency",
        "BillingPeriodEnd",
        "BillingPeriodStart",
        "ChargeCategory",
        "ChargeClass",
        "ChargeDescription",
        "ChargePeriodEnd",
        "ChargePeriodStart",
        "ContractedCost",
        "EffectiveCost",
        "HostProviderName",
        "InvoiceIssuerName",
        "ListCost",
        "PricingQuantity",
        "PricingUnit",
        "ProviderName",
        "PublisherName",
        "ServiceCategory",
        "ServiceName",
        "ServiceProviderName",
        # FOCUS 1.3 conditional and recommended
        "AllocatedMethodDetails",
        "AllocatedMethodId",
        "AllocatedResourceId",
        "AllocatedResourceName",
        "AllocatedTags",
        *_CONDITIONAL,
        *_X_COLUMNS,
        "x_Service",
        "x_Workload",
    ),
}
#: The columns written, in order, with their Arrow types, per version.
SCHEMAS: dict[FocusVersion, pa.Schema] = {
    version: pa.schema([(name, TYPES.get(name, _STR)) for name in names])
    for version, names in COLUMNS.items()
}
#: The FOCUS 1.2 schema (kept under its old name).
SCHEMA = SCHEMAS["1.2"]


def check_version(version: str) -> FocusVersion:
    """``version`` if it is one of :data:`FOCUS_VERSIONS`.

    Raises:
        WattledgerError: it is not, naming the versions there are.
    """
    for known in FOCUS_VERSIONS:
        if version == known:
            return known
    raise WattledgerError(
        f"--focus-version {version!r} is not a FOCUS version this export writes.",
        hint=f"Use {' or '.join(FOCUS_VERSIONS)} (the default is {DEFAULT_FOCUS_VERSION}).",
    )


def _month(day: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = day.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _tokens(row: Mapping[Any, Any]) -> int:
    return int(row["input_tokens"]) + int(row["output_tokens"])


def unit_price(cost_usd: Decimal, tokens: int) -> Decimal:
    """Cost per one million tokens, rounded to :data:`UNIT_PRICE_PLACES` (0 without tokens)."""
    return (cost_usd * MTOK / tokens).quantize(UNIT_PRICE_PLACES) if tokens else Decimal(0)


def charge(
    row: Mapping[Any, Any],
    self_hosted_name: str = SELF_HOSTED,
    host_provider_name: str | None = None,
    *,
    unit: Decimal | None = None,
) -> dict[str, Any]:
    """One FOCUS 1.2 row from one :func:`daily_route_charges` row.

    Args:
        row: A day × tenant × route row.
        self_hosted_name: Who provides inference on your own hardware (ProviderName,
            InvoiceIssuerName, ServiceProviderName of those charges).
        host_provider_name: HostProviderName of those charges; default ``self_hosted_name``.
        unit: The unit price (USD per 1M tokens) to use instead of the row's own: an allocated
            charge's is its origin charge's.
    """
    provider, hardware = row["provider"], row["hardware_model"]
    model, quant = row["llm_model"], row["quantization"]
    hosted = not hardware
    route = RouteKey("", provider, hardware, model, quant).label
    tokens = _tokens(row)
    cost = _dec(row["cost_total_usd"])
    quantity = Decimal(tokens) / MTOK
    unit = unit_price(cost, tokens) if unit is None else unit
    day = row["day"].astimezone(dt.UTC)
    period_start, period_end = _month(day)
    measured, modeled = float(row["energy_measured_j"]), float(row["energy_modeled_j"])
    idle = float(row["idle_energy_j"])
    energy = measured + modeled + idle
    owner = provider if hosted else self_hosted_name
    host = provider if hosted else (host_provider_name or self_hosted_name)
    where = " (hosted API)" if hosted else f" on {hardware}"
    tags = {
        "wattledger/llm_model": model,
        "wattledger/hardware_model": hardware,
        "wattledger/quantization": quant,
    }
    return {
        "BilledCost": cost,
        "BillingAccountId": row["tenant"],
        "BillingAccountName": row["tenant"],
        "BillingCurrency": "USD",
        "BillingPeriodEnd": period_end,
        "BillingPeriodStart": period_start,
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeDescription": f"LLM inference tokens: {model}{f' ({quant})' if quant else ''} "
        f"via {provider}{where}",
        "ChargePeriodEnd": day + dt.timedelta(days=1),
        "ChargePeriodStart": day,
        "ContractedCost": unit * quantity,
        "EffectiveCost": cost,
        "InvoiceIssuerName": owner,
        "ListCost": unit * quantity,
        "PricingQuantity": quantity,
        "PricingUnit": "1000000 Tokens",
        "ProviderName": owner,
        "PublisherName": provider,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": f"{provider} API" if hosted else f"{provider} self-hosted",
        "ChargeFrequency": "Usage-Based",
        "ConsumedQuantity": Decimal(tokens),
        "ConsumedUnit": "Tokens",
        "ContractedUnitPrice": unit,
        "ListUnitPrice": unit,
        "PricingCategory": "Standard" if hosted else "Other",
        "ResourceId": route,
        "ResourceName": route,
        "ResourceType": "Hosted LLM API" if hosted else "Self-hosted LLM",
        "ServiceSubcategory": "Generative AI",
        "SkuId": f"{provider}/{model}",
        "SkuMeter": "Tokens",
        "SkuPriceId": route,
        "Tags": json.dumps({k: v for k, v in tags.items() if v}, sort_keys=True),
        "ServiceProviderName": owner,
        "HostProviderName": host,
        "x_Requests": int(row["requests"]),
        "x_UnpricedRequests": int(row["unpriced_requests"]),
        "x_InputTokens": int(row["input_tokens"]),
        "x_CachedInputTokens": int(row["cached_input_tokens"]),
        "x_OutputTokens": int(row["output_tokens"]),
        "x_LlmModel": model,
        "x_HardwareModel": hardware or None,
        "x_Quantization": quant or None,
        "x_EnergyJoules": energy,
        "x_EnergyMeasuredJoules": measured,
        "x_EnergyModeledJoules": modeled,
        "x_IdleEnergyJoules": idle,
        "x_EnergyBasis": energy_basis(measured, modeled, idle),
        "x_TokensPerJoule": int(row["output_tokens"]) / energy if energy > 0 else None,
        "x_Co2eGrams": float(row["co2e_g"]),
        "x_ApiCost": _dec(row["cost_api_usd"]),
        "x_HardwareCost": _dec(row["cost_hardware_usd"]),
        "x_EnergyCost": _dec(row["cost_energy_usd"]),
        "x_IdleCost": _dec(row["cost_idle_usd"]),
    }


def resource_name(row: Mapping[Any, Any]) -> str:
    """A route's display name, e.g. ``llama-3.1-8b (fp8) via vllm on H100-SXM``."""
    quant, hardware = row["quantization"], row["hardware_model"]
    where = f" on {hardware}" if hardware else " API"
    return f"{row['llm_model']}{f' ({quant})' if quant else ''} via {row['provider']}{where}"


def _origin_key(row: Mapping[Any, Any]) -> tuple[Any, ...]:
    return (row["day"], *(row[name] for name in CHARGE_KEY))


def charges_1_3(
    rows: Sequence[Mapping[Any, Any]],
    self_hosted_name: str = SELF_HOSTED,
    host_provider_name: str | None = None,
) -> list[dict[str, Any]]:
    """FOCUS 1.3 rows from :func:`daily_route_charges` rows taken ``by_consumer``.

    The rows of one day × tenant × route are the *allocated charges* of one *origin charge*
    when the route is self-hosted (FOCUS 1.3 "Data Generator-Calculated Split Cost Allocation
    Handling": their costs and quantities sum to the origin's, and unit prices and dimensions
    are the origin's, so each carries the origin's unit price). Hosted rows are charges of
    their own, priced per token by the provider, with null Allocated* columns.

    Provider columns (FOCUS 1.3 ServiceProviderName, HostProviderName; Appendix
    "Participating Entity Identification", scenario 4.2 for a hosted API and 5.1 for an
    internal service): a hosted API's provider serves, hosts and invoices it; for your own
    hardware ``self_hosted_name`` serves and invoices, and HostProviderName is
    ``host_provider_name`` when you run on someone else's infrastructure (MUST reflect a host
    provider the customer selected), else equal to ServiceProviderName (MUST, in all other
    cases). ProviderName (deprecated in 1.3, "Replaced by ServiceProviderName") has the
    ServiceProviderName; PublisherName (deprecated) keeps its 1.2 value.

    ResourceName is a display name (:func:`resource_name`), not the ResourceId again: FOCUS
    1.3 ResourceName "MUST NOT duplicate ResourceId when the resource ... only has a
    system-generated ResourceId", and a route id is generated.
    """
    groups: dict[tuple[Any, ...], list[Mapping[Any, Any]]] = {}
    for row in rows:
        groups.setdefault(_origin_key(row), []).append(row)
    out = []
    for group in groups.values():
        hosted = not group[0]["hardware_model"]
        unit = None
        allocated = [NOT_ALLOCATED] * len(group)
        if not hosted:
            cost = sum((_dec(r["cost_total_usd"]) for r in group), Decimal(0))
            unit = unit_price(cost, sum(map(_tokens, group)))
            allocated = allocated_columns(group)
        for row, allocation in zip(group, allocated, strict=True):
            base = charge(row, self_hosted_name, host_provider_name, unit=unit)
            out.append(
                {
                    **base,
                    **allocation,
                    "ProviderName": base["ServiceProviderName"],
                    "ResourceName": resource_name(row),
                    "x_Service": row["service"] or None,
                    "x_Workload": row["workload"] or None,
                }
            )
    return out


def focus_table(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    *,
    version: str = DEFAULT_FOCUS_VERSION,
    tenant: str = ALL_TENANTS,
    self_hosted_name: str = SELF_HOSTED,
    host_provider_name: str | None = None,
) -> pa.Table:
    """FOCUS charges for the UTC days in ``[start, end)`` as an Arrow table (:data:`SCHEMAS`).

    Args:
        conn: The warehouse (or a mart snapshot).
        start: First day, UTC midnight.
        end: Day after the last, UTC midnight (exclusive).
        version: ``1.3`` (default: day × tenant × route × service × workload, with the
            allocation columns) or ``1.2`` (day × tenant × route, as before).
        tenant: One tenant, or ``"*"`` for all. A tenant's rows are the same either way.
        self_hosted_name: ServiceProviderName (and ProviderName, InvoiceIssuerName) of
            charges on your own hardware: your organisation.
        host_provider_name: HostProviderName of those charges when your hardware is someone
            else's (e.g. your cloud); default ``self_hosted_name``.

    Raises:
        WattledgerError: ``version`` is not one of :data:`FOCUS_VERSIONS`.
    """
    focus_version = check_version(version)
    query = daily_route_charges(start, end, tenant, by_consumer=focus_version == "1.3")
    rows = list(conn.execute(query).mappings())
    if focus_version == "1.3":
        charges = charges_1_3(rows, self_hosted_name, host_provider_name)
    else:
        charges = [charge(r, self_hosted_name, host_provider_name) for r in rows]
    return pa.Table.from_pylist(charges, schema=SCHEMAS[focus_version])


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    return value


def write_focus(table: pa.Table, path: Path, fmt: Literal["csv", "parquet"]) -> Path:
    """Write ``table`` to ``path`` atomically: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                write_focus_csv(table, fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_focus_csv(table: pa.Table, fh: Any) -> None:
    """Write ``table`` as CSV to a text stream: plain decimals, ISO 8601 UTC, empty for null."""
    writer = csv.writer(fh, lineterminator="\r\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow([_csv_value(v) for v in row.values()])
