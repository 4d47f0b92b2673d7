"""FinOps FOCUS export: AI inference cost as FOCUS 1.2 charges, beside cloud bills.

Spec: FinOps Open Cost and Usage Specification **1.2** (FOCUS_Spec tag v1.2, 2025-05-29), all
21 mandatory columns filled, plus the 1.3 provider columns ``ServiceProviderName`` and
``HostProviderName`` (additive columns are allowed) and custom ``x_`` columns.

One row is one charge: a UTC day × tenant × route (provider × hardware × LLM model ×
quantization). Tokens (input + output) are the consumed quantity (``ConsumedUnit`` ``Tokens``)
and, in millions, the pricing quantity (``PricingUnit`` ``1000000 Tokens``). The unit price is
the fully-loaded cost per one million tokens rounded to 10 decimals, and
``ListCost = ContractedCost = ListUnitPrice × PricingQuantity`` exactly (as the spec requires);
``BilledCost = EffectiveCost`` is the exact fully-loaded cost. Money is Decimal in US dollars;
times are UTC (ISO 8601 ``YYYY-MM-DDTHH:MM:SSZ`` in CSV, ``timestamp[s, UTC]`` in Parquet).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection

from wattledger.analytics.queries.focus import ALL_TENANTS, daily_route_charges
from wattledger.analytics.recommend.routes import RouteKey
from wattledger.analytics.reports.weekly import energy_basis

FOCUS_VERSION = "1.2"
SELF_HOSTED = "Self-hosted"
MTOK = Decimal(1_000_000)
UNIT_PRICE_PLACES = Decimal("1e-10")

_TS = pa.timestamp("s", tz="UTC")
_COST = pa.decimal128(38, 16)
_PRICE = pa.decimal128(38, 10)
_STR = pa.string()

#: The columns written, in order, with their Arrow types.
SCHEMA = pa.schema(
    [
        # FOCUS 1.2 mandatory
        ("BilledCost", _COST),
        ("BillingAccountId", _STR),
        ("BillingAccountName", _STR),
        ("BillingCurrency", _STR),
        ("BillingPeriodEnd", _TS),
        ("BillingPeriodStart", _TS),
        ("ChargeCategory", _STR),
        ("ChargeClass", _STR),
        ("ChargeDescription", _STR),
        ("ChargePeriodEnd", _TS),
        ("ChargePeriodStart", _TS),
        ("ContractedCost", _COST),
        ("EffectiveCost", _COST),
        ("InvoiceIssuerName", _STR),
        ("ListCost", _COST),
        ("PricingQuantity", pa.decimal128(38, 6)),
        ("PricingUnit", _STR),
        ("ProviderName", _STR),
        ("PublisherName", _STR),
        ("ServiceCategory", _STR),
        ("ServiceName", _STR),
        # FOCUS 1.2 conditional and recommended
        ("ChargeFrequency", _STR),
        ("ConsumedQuantity", pa.decimal128(38, 0)),
        ("ConsumedUnit", _STR),
        ("ContractedUnitPrice", _PRICE),
        ("ListUnitPrice", _PRICE),
        ("PricingCategory", _STR),
        ("ResourceId", _STR),
        ("ResourceName", _STR),
        ("ResourceType", _STR),
        ("ServiceSubcategory", _STR),
        ("SkuId", _STR),
        ("SkuMeter", _STR),
        ("SkuPriceId", _STR),
        ("Tags", _STR),
        # FOCUS 1.3 additions
        ("ServiceProviderName", _STR),
        ("HostProviderName", _STR),
        # wattledger custom columns
        ("x_Requests", pa.int64()),
        ("x_UnpricedRequests", pa.int64()),
        ("x_InputTokens", pa.int64()),
        ("x_CachedInputTokens", pa.int64()),
        ("x_OutputTokens", pa.int64()),
        ("x_LlmModel", _STR),
        ("x_HardwareModel", _STR),
        ("x_Quantization", _STR),
        ("x_EnergyJoules", pa.float64()),
        ("x_EnergyMeasuredJoules", pa.float64()),
        ("x_EnergyModeledJoules", pa.float64()),
        ("x_IdleEnergyJoules", pa.float64()),
        ("x_EnergyBasis", _STR),
        ("x_TokensPerJoule", pa.float64()),
        ("x_Co2eGrams", pa.float64()),
        ("x_ApiCost", _PRICE),
        ("x_HardwareCost", _PRICE),
        ("x_EnergyCost", _PRICE),
        ("x_IdleCost", _PRICE),
    ]
)


def _month(day: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = day.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def charge(row: Mapping[Any, Any], self_hosted_name: str = SELF_HOSTED) -> dict[str, Any]:
    """One FOCUS row from one :func:`daily_route_charges` row."""
    provider, hardware = row["provider"], row["hardware_model"]
    model, quant = row["llm_model"], row["quantization"]
    hosted = not hardware
    route = RouteKey("", provider, hardware, model, quant).label
    tokens = int(row["input_tokens"]) + int(row["output_tokens"])
    cost = _dec(row["cost_total_usd"])
    quantity = Decimal(tokens) / MTOK
    unit = (cost * MTOK / tokens).quantize(UNIT_PRICE_PLACES) if tokens else Decimal(0)
    day = row["day"].astimezone(dt.UTC)
    period_start, period_end = _month(day)
    measured, modeled = float(row["energy_measured_j"]), float(row["energy_modeled_j"])
    idle = float(row["idle_energy_j"])
    energy = measured + modeled + idle
    owner = provider if hosted else self_hosted_name
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
        "HostProviderName": owner,
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


def focus_table(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    *,
    tenant: str = ALL_TENANTS,
    self_hosted_name: str = SELF_HOSTED,
) -> pa.Table:
    """FOCUS charges for the UTC days in ``[start, end)`` as an Arrow table with :data:`SCHEMA`.

    Args:
        conn: The warehouse (or a mart snapshot).
        start: First day, UTC midnight.
        end: Day after the last, UTC midnight (exclusive).
        tenant: One tenant, or ``"*"`` for all.
        self_hosted_name: ``ProviderName`` of charges on your own hardware.
    """
    rows = conn.execute(daily_route_charges(start, end, tenant)).mappings()
    return pa.Table.from_pylist([charge(r, self_hosted_name) for r in rows], schema=SCHEMA)


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
