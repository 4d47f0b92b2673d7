"""The FOCUS export against the FOCUS 1.2 column list, on DuckDB and PostgreSQL.

The column list below is copied from the specification (FOCUS_Spec tag v1.2, 2025-05-29;
summarised in shared/REFERENCE.md §5.1), independently of the exporter's own schema.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tests.reports import dataset
from tests.reports.conftest import Fleet
from wattledger.analytics.focus import SCHEMA, SCHEMAS, focus_table, write_focus
from wattledger.models import RollupDaily, make_engine

# FOCUS 1.2: column → data type ("decimal", "datetime", "string", "json").
MANDATORY = {
    "BilledCost": "decimal",
    "BillingAccountId": "string",
    "BillingAccountName": "string",
    "BillingCurrency": "string",
    "BillingPeriodEnd": "datetime",
    "BillingPeriodStart": "datetime",
    "ChargeCategory": "string",
    "ChargeClass": "string",
    "ChargeDescription": "string",
    "ChargePeriodEnd": "datetime",
    "ChargePeriodStart": "datetime",
    "ContractedCost": "decimal",
    "EffectiveCost": "decimal",
    "InvoiceIssuerName": "string",
    "ListCost": "decimal",
    "PricingQuantity": "decimal",
    "PricingUnit": "string",
    "ProviderName": "string",
    "PublisherName": "string",
    "ServiceCategory": "string",
    "ServiceName": "string",
}
#: Mandatory columns that may hold nulls (ChargeClass is null unless "Correction").
NULLABLE_MANDATORY = {"BillingAccountName", "ChargeClass"}
CONDITIONAL_AND_RECOMMENDED = {
    "AvailabilityZone": "string",
    "BillingAccountType": "string",
    "CapacityReservationId": "string",
    "CapacityReservationStatus": "string",
    "ChargeFrequency": "string",
    "CommitmentDiscountCategory": "string",
    "CommitmentDiscountId": "string",
    "CommitmentDiscountName": "string",
    "CommitmentDiscountQuantity": "decimal",
    "CommitmentDiscountStatus": "string",
    "CommitmentDiscountType": "string",
    "CommitmentDiscountUnit": "string",
    "ConsumedQuantity": "decimal",
    "ConsumedUnit": "string",
    "ContractedUnitPrice": "decimal",
    "InvoiceId": "string",
    "ListUnitPrice": "decimal",
    "PricingCategory": "string",
    "PricingCurrency": "string",
    "PricingCurrencyContractedUnitPrice": "decimal",
    "PricingCurrencyEffectiveCost": "decimal",
    "PricingCurrencyListUnitPrice": "decimal",
    "RegionId": "string",
    "RegionName": "string",
    "ResourceId": "string",
    "ResourceName": "string",
    "ResourceType": "string",
    "ServiceSubcategory": "string",
    "SkuId": "string",
    "SkuMeter": "string",
    "SkuPriceDetails": "json",
    "SkuPriceId": "string",
    "SubAccountId": "string",
    "SubAccountName": "string",
    "SubAccountType": "string",
    "Tags": "json",
}
#: Introduced in 1.3 as replacements for ProviderName/PublisherName; additive in 1.2.
FOCUS_1_3_ADDITIONS = {"ServiceProviderName": "string", "HostProviderName": "string"}
SPEC = {**MANDATORY, **CONDITIONAL_AND_RECOMMENDED, **FOCUS_1_3_ADDITIONS}

CHARGE_CATEGORIES = {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
PRICING_CATEGORIES = {"Standard", "Dynamic", "Committed", "Other"}
CHARGE_FREQUENCIES = {"One-Time", "Recurring", "Usage-Based"}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
WEEKS = (dataset.WEEK.previous.start, dataset.WEEK.end)


def export(fleet: Fleet) -> pa.Table:
    engine = make_engine(fleet.url)
    with engine.connect() as conn:
        table = focus_table(conn, *WEEKS, version="1.2")
        keys = conn.execute(
            sa.select(
                sa.func.count(
                    sa.distinct(
                        sa.tuple_(
                            RollupDaily.bucket_start,
                            RollupDaily.tenant,
                            RollupDaily.provider,
                            RollupDaily.hardware_model,
                            RollupDaily.llm_model,
                            RollupDaily.quantization,
                        )
                    )
                )
            ).where(RollupDaily.bucket_start >= WEEKS[0], RollupDaily.bucket_start < WEEKS[1])
        ).scalar()
    engine.dispose()
    assert table.num_rows == keys > 0  # one row per day × route × tenant
    return table


def check_rows(rows: list[dict]) -> None:
    """Row-level rules of FOCUS 1.2 for Usage charges that are not corrections."""
    for r in rows:
        for name in set(MANDATORY) - NULLABLE_MANDATORY:
            assert r[name] is not None, name
        assert r["ChargeCategory"] in CHARGE_CATEGORIES and r["ChargeCategory"] == "Usage"
        assert r["ChargeClass"] is None
        assert r["BillingCurrency"] == "USD"
        assert r["ServiceCategory"] == "AI and Machine Learning"
        assert r["ServiceSubcategory"] == "Generative AI"
        assert r["PricingCategory"] in PRICING_CATEGORIES
        assert r["ChargeFrequency"] in CHARGE_FREQUENCIES
        for price in ("ListUnitPrice", "ContractedUnitPrice", "SkuId", "SkuPriceId"):
            assert r[price] is not None, price  # not null for Usage, non-correction
        assert r["ListCost"] == r["ListUnitPrice"] * r["PricingQuantity"]
        assert r["ContractedCost"] == r["ContractedUnitPrice"] * r["PricingQuantity"]
        assert r["BilledCost"] == r["EffectiveCost"] >= 0
        assert abs(r["ListCost"] - r["BilledCost"]) <= r["PricingQuantity"] * Decimal("1e-10")
        assert (r["PricingUnit"] is None) == (r["PricingQuantity"] is None)
        assert (r["ConsumedUnit"] is None) == (r["ConsumedQuantity"] is None)
        assert r["ConsumedUnit"] == "Tokens" and r["PricingUnit"] == "1000000 Tokens"
        assert r["PricingQuantity"] * 1_000_000 == r["ConsumedQuantity"]
        assert r["ChargePeriodEnd"] - r["ChargePeriodStart"] == dt.timedelta(days=1)
        assert r["BillingPeriodStart"] <= r["ChargePeriodStart"]
        assert r["ChargePeriodEnd"] <= r["BillingPeriodEnd"]
        assert r["BillingPeriodStart"].day == 1 and r["BillingPeriodEnd"].day == 1
        assert isinstance(json.loads(r["Tags"]), dict)
    parents: dict[str, set[str]] = {}
    for r in rows:
        parents.setdefault(r["SkuPriceId"], set()).add(r["SkuId"])
    assert all(len(p) == 1 for p in parents.values())  # one parent SkuId each


def test_focus_parquet_columns_types_and_values(fleet: Fleet, tmp_path: Path) -> None:
    assert SCHEMAS["1.2"] is SCHEMA
    path = write_focus(export(fleet), tmp_path / "charges.parquet", "parquet")
    table = pq.read_table(path)
    names = set(table.column_names)
    assert set(MANDATORY) <= names
    assert all(n in SPEC or n.startswith("x_") for n in names), names - set(SPEC)
    for name in names & set(SPEC):
        kind, typ = SPEC[name], table.schema.field(name).type
        if kind == "decimal":
            assert pa.types.is_decimal(typ), (name, typ)
        elif kind == "datetime":
            assert pa.types.is_timestamp(typ) and typ.tz == "UTC", (name, typ)
        else:
            assert pa.types.is_string(typ), (name, typ)
    rows = table.to_pylist()
    check_rows(rows)

    # Known figures: OpenAI this week is 400 × $0.0009 for 400 × 700 tokens.
    week = [r for r in rows if r["ChargePeriodStart"] >= dataset.WEEK.start]
    openai = [r for r in week if r["ResourceId"] == "openai/hosted/m"]
    assert sum(r["BilledCost"] for r in openai) == Decimal("0.36")
    assert sum(r["ConsumedQuantity"] for r in openai) == 400 * 700
    assert {r["BillingAccountId"] for r in openai} == {"acme"}
    assert {(r["ProviderName"], r["ServiceName"]) for r in openai} == {("openai", "openai API")}
    gpu = [r for r in week if r["x_HardwareModel"] == "H100-SXM"]
    assert {(r["ProviderName"], r["PublisherName"]) for r in gpu} == {("Self-hosted", "vllm")}
    assert {r["x_EnergyBasis"] for r in gpu} == {"measured"}
    total_j = sum(r["x_EnergyMeasuredJoules"] + r["x_IdleEnergyJoules"] for r in gpu)
    assert total_j == pytest.approx(fleet.gpu_j, rel=1e-6)
    groq = [r for r in week if r["SkuId"] == "groq/m"]
    assert {r["x_EnergyBasis"] for r in groq} == {"modeled"}
    assert sum(r["x_EnergyModeledJoules"] for r in groq) == pytest.approx(30_000)
    before = [r for r in rows if r["ChargePeriodStart"] < dataset.WEEK.start]
    assert sum(r["BilledCost"] for r in before) == Decimal("0.18")


def test_focus_csv_formats(fleet: Fleet, tmp_path: Path) -> None:
    table = export(fleet)
    path = write_focus(table, tmp_path / "charges.csv", "csv")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == table.column_names and len(rows) == table.num_rows
    for r in rows:
        for name, kind in SPEC.items():
            value = r.get(name)
            if not value:
                continue
            if kind == "datetime":
                assert DATETIME.match(value), (name, value)
            elif kind == "decimal":
                assert NUMERIC.match(value), (name, value)
    typed = [
        {
            **r,
            **{
                n: Decimal(r[n])
                for n in ("ListCost", "ListUnitPrice", "PricingQuantity", "BilledCost")
            },
        }
        for r in rows
    ]
    assert all(r["ListCost"] == r["ListUnitPrice"] * r["PricingQuantity"] for r in typed)
    assert sum(r["BilledCost"] for r in typed) == sum(table.column("BilledCost").to_pylist())


def test_tenant_filter_and_empty_range(fleet: Fleet) -> None:
    engine = make_engine(fleet.url)
    with engine.connect() as conn:
        beta = focus_table(conn, *WEEKS, version="1.2", tenant="beta")
        empty = focus_table(
            conn,
            dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2030, 2, 1, tzinfo=dt.UTC),
            version="1.2",
        )
    engine.dispose()
    assert set(beta.column("BillingAccountId").to_pylist()) == {"beta"}
    assert sum(beta.column("BilledCost").to_pylist()) == Decimal("0.054")
    assert empty.num_rows == 0 and empty.schema.names[0] == "BilledCost"
