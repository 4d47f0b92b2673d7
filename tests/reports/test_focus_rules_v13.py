"""Every FOCUS 1.3 rule that applies to the columns the 1.3 export writes: one test each.

The FinOps Foundation's validator (PyPI ``focus-validator``) ships no FOCUS 1.3 rules: 2.2.1
holds the 1.2 model only and downloads others from GitHub at run time, and it needs Python
3.12 (docs/focus.md "Validation"). So this is the project's own check. Each rule quotes its
normative statement from FOCUS 1.3, Cost and Usage dataset: the column's "Requirements"
(FOCUS_Spec ``specification/datasets/cost_and_usage/columns/<column>.md``) or the attribute
named in the reference (``specification/attributes/…``). Rules on things the export never
writes (taxes, purchases, corrections, commitment discounts, invoices, marketplaces) hold
trivially and are left out, except where they constrain a column that is written.

The data: the known fleet of :mod:`tests.reports.dataset` (hosted and self-hosted charges) on
DuckDB and PostgreSQL, exported to Parquet (typed values) and CSV (formats); the 1.2 export
of the same warehouse gives the origin charges of the split cost allocation.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.reports import dataset
from tests.reports.conftest import Fleet
from wattledger.analytics.focus import COLUMNS, focus_table, write_focus
from wattledger.analytics.focus_allocation import ALLOCATED_METHOD_ID
from wattledger.models import make_engine

DOCS = Path(__file__).parents[2] / "docs" / "focus.md"
RANGE = (dataset.WEEK.previous.start, dataset.WEEK.end)
HOST = "Example Cloud"

MANDATORY = {
    "BilledCost": "Decimal",
    "BillingAccountId": "String",
    "BillingAccountName": "String",
    "BillingCurrency": "String",
    "BillingPeriodEnd": "Date/Time",
    "BillingPeriodStart": "Date/Time",
    "ChargeCategory": "String",
    "ChargeClass": "String",
    "ChargeDescription": "String",
    "ChargePeriodEnd": "Date/Time",
    "ChargePeriodStart": "Date/Time",
    "ContractedCost": "Decimal",
    "EffectiveCost": "Decimal",
    "HostProviderName": "String",
    "InvoiceIssuerName": "String",
    "ListCost": "Decimal",
    "PricingQuantity": "Decimal",
    "PricingUnit": "String",
    "ProviderName": "String",
    "PublisherName": "String",
    "ServiceCategory": "String",
    "ServiceName": "String",
    "ServiceProviderName": "String",
}
#: Conditional and recommended columns written, and why they must (or should) be present.
CONDITIONAL = {
    "AllocatedMethodDetails": ("JSON", "SHOULD be present … when the data generator supports "
                               "Data Generator-Calculated Split Cost Allocation"),
    "AllocatedMethodId": ("String", "MUST be present … when the data generator supports "
                          "data generator-calculated split cost allocation"),
    "AllocatedResourceId": ("String", "MUST be present … when the service provider supports "
                            "data generator-calculated split cost allocation"),
    "AllocatedResourceName": ("String", "MUST be present … when the service provider "
                              "supports data generator-calculated split cost allocation"),
    "AllocatedTags": ("JSON", "MUST be present … when the service provider supports Data "
                      "Generator-Calculated Split Cost Allocation"),
    "ChargeFrequency": ("String", "is RECOMMENDED to be present"),
    "ConsumedQuantity": ("Decimal", "MUST be present … when the service provider supports "
                         "the measurement of usage"),
    "ConsumedUnit": ("String", "MUST be present … when the service provider supports the "
                     "measurement of usage"),
    "ContractedUnitPrice": ("Decimal", "MUST be present … when the service provider "
                            "supports negotiated pricing concepts"),
    "ListUnitPrice": ("Decimal", "MUST be present … when the service provider publishes "
                      "unit prices exclusive of discounts"),
    "PricingCategory": ("String", "MUST be present … when the service provider supports "
                        "more than one pricing category across all SKUs"),
    "ResourceId": ("String", "MUST be present … when the service provider supports billing "
                   "based on provisioned resources"),
    "ResourceName": ("String", "MUST be present … when the service provider supports "
                     "billing based on provisioned resources"),
    "ResourceType": ("String", "MUST be present … when the service provider supports "
                     "billing based on provisioned resources and supports assigning types"),
    "ServiceSubcategory": ("String", "is RECOMMENDED to be present"),
    "SkuId": ("String", "MUST be present … when the service provider supports unit pricing "
              "concepts and publishes price lists"),
    "SkuMeter": ("String", "MUST be present … when the service provider supports unit "
                 "pricing concepts and publishes price lists"),
    "SkuPriceId": ("String", "MUST be present … when the service provider supports unit "
                   "pricing concepts and publishes price lists"),
    "Tags": ("JSON", "MUST be present … when the data generator supports setting user or "
             "provider-defined tags"),
}  # fmt: skip
CHARGE_CATEGORIES = {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
CHARGE_FREQUENCIES = {"One-Time", "Recurring", "Usage-Based"}
PRICING_CATEGORIES = {"Standard", "Dynamic", "Committed", "Other"}
SERVICE_CATEGORIES = {
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
    "Storage", "Web", "Other",
}  # fmt: skip
AI_SUBCATEGORIES = {
    "AI Platforms", "Bots", "Generative AI", "Machine Learning", "Natural Language Processing",
    "Other (AI and Machine Learning)",
}  # fmt: skip
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
NUMERIC = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
#: Unit Format: "<unit-quantity> <plural-units>", simple, compound ("GB-Hours") or ratio units.
UNIT = re.compile(r"^(\d+ )?[A-Z][A-Za-z]*(-[A-Z][A-Za-z]*)?(/(\d+ )?[A-Z][A-Za-z]*)?$")
ORIGIN = ("ChargePeriodStart", "BillingAccountId", "ResourceId")
PERIODS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
SUMMABLE = (
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "PricingQuantity",
    "ConsumedQuantity",
)
NON_SUMMABLE = ("ListUnitPrice", "ContractedUnitPrice")
DIMENSIONS = (
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ConsumedUnit",
    "HostProviderName",
    "InvoiceIssuerName",
    "PricingCategory",
    "PricingUnit",
    "PublisherName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceId",
)


@dataclass
class Export:
    """A FOCUS 1.3 export read back, the 1.2 export beside it, and one with a rented host."""

    schema: pa.Schema
    rows: list[dict[str, Any]]
    text: list[dict[str, str]]
    origins: list[dict[str, Any]]
    rented: list[dict[str, Any]]

    def allocated(self) -> list[dict[str, Any]]:
        """Charges produced by the split (self-hosted)."""
        return [r for r in self.rows if r["x_HardwareModel"]]

    def hosted(self) -> list[dict[str, Any]]:
        """Charges no split produced (hosted APIs)."""
        return [r for r in self.rows if not r["x_HardwareModel"]]

    def select(self, which: str) -> list[dict[str, Any]]:
        """``rows``, ``text`` (CSV strings), ``rented``, ``allocated`` or ``hosted``."""
        value = getattr(self, which)
        return value() if callable(value) else value

    def by_origin(self) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in self.allocated():
            groups[tuple(r[k] for k in ORIGIN)].append(r)
        return groups

    def origin(self, key: tuple[Any, ...]) -> dict[str, Any]:
        (row,) = [r for r in self.origins if tuple(r[k] for k in ORIGIN) == key]
        return row


@pytest.fixture(scope="module")
def focus(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Export]:
    out = tmp_path_factory.mktemp("focus13")
    engine = make_engine(fleet.url)
    with engine.connect() as conn:
        table = focus_table(conn, *RANGE)
        origins = focus_table(conn, *RANGE, version="1.2").to_pylist()
        rented = focus_table(conn, *RANGE, host_provider_name=HOST).to_pylist()
    engine.dispose()
    parquet = pq.read_table(write_focus(table, out / "c.parquet", "parquet"))
    with write_focus(table, out / "c.csv", "csv").open(newline="", encoding="utf-8") as fh:
        text = list(csv.DictReader(fh))
    export = Export(parquet.schema, parquet.to_pylist(), text, origins, rented)
    assert export.allocated() and export.hosted() and len(text) == len(export.rows)
    yield export


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value, parse_float=Decimal)


def elements(row: dict[str, Any]) -> list[dict[str, Any]]:
    return loads(row["AllocatedMethodDetails"])["Elements"]


def is_json_object(value: str | None) -> bool:
    try:
        return isinstance(json.loads(value or ""), dict)
    except ValueError:
        return False


def flat(obj: dict[str, Any]) -> bool:
    """Key-Value Format: values are numbers, strings, booleans or null, never objects/arrays."""
    return all(isinstance(v, str | int | float | bool | Decimal) or v is None for v in obj.values())


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def arrow_kind(typ: pa.DataType) -> str:
    if pa.types.is_decimal(typ):
        return "Decimal"
    if pa.types.is_timestamp(typ):
        return "Date/Time" if typ.tz == "UTC" else "timestamp without UTC"
    return "String" if pa.types.is_string(typ) else str(typ)


def strings(f: Export) -> Iterator[tuple[str, Any]]:
    for r in f.rows:
        for name, value in r.items():
            if not name.startswith("x_") and isinstance(value, str):
                yield name, value


@dataclass(frozen=True)
class Rule:
    """One normative statement of FOCUS 1.3 and how the export is checked against it."""

    ref: str
    text: str
    check: Callable[[Export], bool]


def presence_and_type_rules() -> Iterator[Rule]:
    for name in MANDATORY:
        text = f"{name} MUST be present in a Cost and Usage FOCUS dataset."
        yield Rule(f"{name} presence", text, lambda f, n=name: n in f.schema.names)
    for name, (_, why) in CONDITIONAL.items():
        yield Rule(f"{name} presence", f"{name} {why}.", lambda f, n=name: n in f.schema.names)
    for name, kind in {**MANDATORY, **{n: k for n, (k, _) in CONDITIONAL.items()}}.items():
        yield Rule(f"{name} type", f"{name} MUST be of type {kind}.", type_check(name, kind))


def type_check(name: str, kind: str) -> Callable[[Export], bool]:
    """JSON columns are serialized JSON objects in a string column (JsonObjectFormat,
    KeyValueFormat); the others have the Arrow type of their FOCUS data type."""

    def check(f: Export) -> bool:
        written = arrow_kind(f.schema.field(name).type)
        if kind != "JSON":
            return written == kind
        return written == "String" and all(is_json_object(x[name]) for x in f.rows if x[name])

    return check


Row = dict[str, Any]
Check = Callable[[Export], bool]


def every(pred: Callable[[Row], object], which: str = "rows") -> Check:
    """``pred`` holds for every row of ``which`` (see :meth:`Export.select`)."""
    return lambda f: all(pred(x) for x in f.select(which))


def every_element(pred: Callable[[Row], object]) -> Check:
    """``pred`` holds for every AllocatedMethodDetails element of every allocated charge."""
    return lambda f: all(pred(e) for x in f.allocated() for e in elements(x))


def every_origin(pred: Callable[[list[Row], Row], object]) -> Check:
    """``pred(allocated charges, origin charge)`` holds for every origin charge."""
    return lambda f: all(pred(rows, f.origin(key)) for key, rows in f.by_origin().items())


def one_per(key: str, value: Callable[[Row], object]) -> Check:
    """Every value of column ``key`` has one ``value(row)`` across the export."""

    def check(f: Export) -> bool:
        seen: dict[Any, set[Any]] = defaultdict(set)
        for x in f.rows:
            seen[x[key]].add(value(x))
        return all(len(v) == 1 for v in seen.values())

    return check


def documented(*words: str) -> Check:
    return lambda f: all(w in DOCS.read_text(encoding="utf-8") for w in words)


def both(*checks: Check) -> Check:
    return lambda f: all(c(f) for c in checks)


def null_iff(column: str, other: str) -> Callable[[Row], bool]:
    return lambda x: (x[column] is None) == (x[other] is None)


def flat_or_null(column: str) -> Callable[[Row], bool]:
    return lambda x: x[column] is None or flat(loads(x[column]))


def ratios_of(rows: list[Row]) -> list[Decimal]:
    return [e["AllocatedRatio"] for x in rows for e in elements(x)]


def quantities(x: Row) -> dict[str, Any]:
    return {e["x_CostPart"]: e.get("UsageQuantity") for e in elements(x)}


def same_energy(x: Row) -> bool:
    q = quantities(x)
    direct = x["x_EnergyMeasuredJoules"] + x["x_EnergyModeledJoules"]
    return (
        abs(float(q["Energy"]) - direct) < 1e-5
        and abs(float(q["Idle"]) - x["x_IdleEnergyJoules"]) < 1e-5
    )


def unique_elements(x: Row) -> bool:
    keys = [json.dumps(e, sort_keys=True, default=str) for e in elements(x)]
    return len(set(keys)) == len(keys)


def own_tags(x: Row) -> bool:
    expected = {"wattledger/service": x["x_Service"], "wattledger/workload": x["x_Workload"]}
    return loads(x["AllocatedTags"]) == expected


def focus_columns_first(f: Export) -> bool:
    names = f.schema.names
    focus = [n for n in names if not n.startswith("x_")]
    pascal = all(re.fullmatch(r"(?:[A-Z][a-z]+)+", n) for n in focus)
    return names[: len(focus)] == focus and pascal


PLACEHOLDERS = {"", "null", "none", "n/a", "na", "not applicable", "-", "unknown"}
DETAILS_KEYS = ("AllocatedRatio", "UsageUnit", "UsageQuantity")


def details_keys(x: Row) -> bool:
    doc = loads(x["AllocatedMethodDetails"])
    inner = all(k in DETAILS_KEYS or k.startswith("x_") for e in doc["Elements"] for k in e)
    return inner and all(k == "Elements" or k.startswith("x_") for k in doc)


M = "MUST"
RULES: list[Rule] = [
    *presence_and_type_rules(),
    # Allocated Method ID
    Rule("AllocatedMethodId 4a", "AllocatedMethodId MUST be null when a charge is not related "
         "to a data generator-calculated split cost allocation.",
         every(lambda x: x["AllocatedMethodId"] is None, "hosted")),
    Rule("AllocatedMethodId 4b", "AllocatedMethodId MUST NOT be null when a charge is related "
         "to a data generator-calculated split cost allocation.",
         every(lambda x: x["AllocatedMethodId"] is not None, "allocated")),
    Rule("AllocatedMethodId 5", "Data generator documentation of a split cost allocation "
         "method MUST make reference to a single AllocatedMethodId value.",
         both(every(lambda x: x["AllocatedMethodId"] == ALLOCATED_METHOD_ID, "allocated"),
              documented(f"AllocatedMethodId `{ALLOCATED_METHOD_ID}`"))),
    # Allocated Method Details
    Rule("AllocatedMethodDetails 4", "AllocatedMethodDetails MUST conform to JsonObjectFormat "
         "requirements (a serialized JSON string, consistent with the ECMA 404 definition of "
         "an object).", every(lambda x: is_json_object(x["AllocatedMethodDetails"]), "allocated")),
    Rule("AllocatedMethodDetails 5a", "AllocatedMethodDetails MUST be null when a charge is not "
         "related to a data generator-calculated split cost allocation.",
         every(lambda x: x["AllocatedMethodDetails"] is None, "hosted")),
    Rule("AllocatedMethodDetails 5b", "AllocatedMethodDetails SHOULD NOT be null when a charge "
         "is related to a data generator-calculated split cost allocation.",
         every(lambda x: x["AllocatedMethodDetails"] is not None, "allocated")),
    Rule("AllocatedMethodDetails object 1", 'AllocatedMethodDetails MUST have a top-level key '
         '"Elements" which contains an array.',
         every(lambda x: isinstance(loads(x["AllocatedMethodDetails"]).get("Elements"), list)
               and elements(x), "allocated")),
    Rule("AllocatedMethodDetails object 2", 'Each item in "Elements" MUST be an object, and '
         'objects inside "Elements" MUST conform to KeyValueFormat requirements.',
         every_element(lambda e: isinstance(e, dict) and flat(e))),
    Rule("AllocatedMethodDetails object 3", 'Allocation property keys MUST begin with the '
         'string "x_" unless it is a FOCUS-defined allocation property.',
         every(details_keys, "allocated")),
    Rule("AllocatedMethodDetails AllocatedRatio 1", '"AllocatedRatio" MUST be included inside '
         'each "Elements" object.', every_element(lambda e: "AllocatedRatio" in e)),
    Rule("AllocatedMethodDetails AllocatedRatio 2", 'Values for "AllocatedRatio" MUST be a '
         "decimal value compatible with NumericFormat representing the allocated charge's "
         "percentage of the origin charge.",
         every_element(lambda e: isinstance(e["AllocatedRatio"], Decimal | int)
                       and 0 <= e["AllocatedRatio"] <= 1
                       and NUMERIC.match(str(e["AllocatedRatio"])))),
    Rule("AllocatedMethodDetails AllocatedRatio 3", 'Values for all "AllocatedRatio" '
         "properties across all allocated charges related to a single origin charge MUST sum "
         "up to 1 (100%).", every_origin(lambda rows, _: sum(ratios_of(rows)) == 1)),
    Rule("AllocatedMethodDetails UsageUnit 1", '"UsageUnit" MUST be included inside an '
         '"Elements" object if "UsageQuantity" allocation property is included in it.',
         every_element(lambda e: "UsageUnit" in e or "UsageQuantity" not in e)),
    Rule("AllocatedMethodDetails UsageUnit 2", 'Values for "UsageUnit" MUST capture the unit '
         "or component of data generator's documented AllocationMethod that was used to "
         'determine the "AllocatedRatio" value.',
         both(every_element(lambda e: e["UsageUnit"] in ("Device-Seconds", "Joules")),
              documented("`Device-Seconds`", "`Joules`"))),
    Rule("AllocatedMethodDetails UsageUnit 3", 'Values for "UsageUnit" SHOULD conform to '
         "UnitFormat requirements.", every_element(lambda e: UNIT.match(e["UsageUnit"]))),
    Rule("AllocatedMethodDetails UsageQuantity 1", 'Values for "UsageQuantity" MUST be '
         "compatible with NumericFormat.",
         every_element(lambda e: NUMERIC.match(str(e.get("UsageQuantity", 0))))),
    Rule("AllocatedMethodDetails UsageQuantity 2", 'Values for "UsageQuantity" SHOULD capture '
         'the quantity or volume of the "UsageUnit" measured by the data generator that was '
         'used to determine the "AllocatedRatio" value.', every(same_energy, "allocated")),
    Rule("JsonObjectFormat 3", "Object in FOCUS column SHOULD NOT exceed 3 levels of nesting.",
         every(lambda x: depth(loads(x["AllocatedMethodDetails"])) <= 3, "allocated")),
    Rule("JsonObjectFormat 6", "Object in array in FOCUS column MUST be of a consistent type, "
         "MUST NOT be repeated and MUST NOT be null.", every(unique_elements, "allocated")),
    # Allocated Resource ID and Name
    Rule("AllocatedResourceId 4a", "AllocatedResourceId MUST be null when a charge is not "
         "related to a data generator-calculated split cost allocation.",
         every(lambda x: x["AllocatedResourceId"] is None, "hosted")),
    Rule("AllocatedResourceId 4c", "AllocatedResourceId MUST NOT be null when a charge "
         "represents the allocated portion of the origin charge.",
         every(lambda x: x["AllocatedResourceId"], "allocated")),
    Rule("AllocatedResourceId 5", "AllocatedResourceId SHOULD be a locally unique identifier "
         "within the associated ResourceId and ChargePeriod.",
         lambda f: len({(x["ResourceId"], x["ChargePeriodStart"], x["AllocatedResourceId"])
                        for x in f.allocated()}) == len(f.allocated())),
    Rule("AllocatedResourceName 4", "AllocatedResourceName MUST be null when "
         "AllocatedResourceId is null, and MUST NOT be null when AllocatedResourceId is not "
         "null.", every(null_iff("AllocatedResourceName", "AllocatedResourceId"))),
    # Allocated Tags
    Rule("AllocatedTags 2", "AllocatedTags MUST conform to KeyValueFormat requirements.",
         every(flat_or_null("AllocatedTags"))),
    Rule("AllocatedTags 3a", "AllocatedTags MUST be null when a charge is not related to a "
         "data generator-calculated split cost allocation.",
         every(lambda x: x["AllocatedTags"] is None, "hosted")),
    Rule("AllocatedTags 4a", "AllocatedTags MUST NOT include resource tags already present in "
         "Tags.", every(lambda x: not set(loads(x["AllocatedTags"]) or {})
                        & set(loads(x["Tags"]) or {}), "allocated")),
    Rule("AllocatedTags 4b", "AllocatedTags MUST include all applicable user-defined and data "
         "generator-defined tags for the AllocatedResourceId.", every(own_tags, "allocated")),
    Rule("AllocatedTags 5", "Data generator-defined tag keys MUST be prefixed with a "
         "predetermined, data generator-specified tag key prefix (SHOULD be published).",
         both(every(lambda x: all(k.startswith("wattledger/")
                                  for k in loads(x["AllocatedTags"]) or {}), "allocated"),
              documented("`wattledger/`"))),
    # Data Generator-Calculated Split Cost Allocation Handling (attribute)
    Rule("SplitCostAllocation 1", "The sum of FOCUS column values in allocated charges MUST "
         "match the corresponding value in the origin charge when the FOCUS column represents "
         "a summable metric (e.g., costs and quantities).",
         every_origin(lambda rows, o: all(sum(x[n] for x in rows) == o[n] for n in SUMMABLE))),
    Rule("SplitCostAllocation 2", "FOCUS column values in allocated charges MUST match the "
         "corresponding value in the origin charge when the FOCUS column represents a "
         "non-summable metric (e.g., unit prices).",
         every_origin(lambda rows, o: all(x[n] == o[n] for x in rows for n in NON_SUMMABLE))),
    Rule("SplitCostAllocation 3", "FOCUS column values in allocated charges MUST match the "
         "corresponding value in the origin charge when the FOCUS column represents a "
         "dimension (1.3's ResourceName, a display name, is one per origin).",
         every_origin(lambda rows, o: all(x[n] == o[n] for x in rows for n in DIMENSIONS)
                      and len({(x["ResourceId"], x["ResourceName"]) for x in rows}) == 1)),
    Rule("SplitCostAllocation 4", "FOCUS column values in allocated charges MUST include the "
         "same keys and values present in the CostAndUsage.Tags in the origin charge.",
         every_origin(lambda rows, o: all(loads(x["Tags"]).items() >= loads(o["Tags"]).items()
                                          for x in rows))),
    # Costs
    *(Rule(f"{n} 4", f"{n} MUST NOT be null.", every(lambda x, n=n: x[n] is not None))
      for n in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")),
    *(Rule(f"{n} 5", f"{n} MUST be a valid decimal value.",
           every(lambda x, n=n: x[n].is_finite()))
      for n in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")),
    *(Rule(f"{n} 6", f"{n} MUST be denominated in the BillingCurrency.",
           every(lambda x: x["BillingCurrency"] == "USD"))
      for n in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")),
    Rule("BilledCost 7", "BilledCost MUST be 0 for charges where payments are received by a "
         "third party (none: the invoice issuer is the service provider).",
         every(lambda x: x["InvoiceIssuerName"] == x["ServiceProviderName"])),
    Rule("ListCost 7", "ListCost MUST equal the product of ListUnitPrice and PricingQuantity "
         "when ListUnitPrice is not null and PricingQuantity is not null.",
         every(lambda x: x["ListCost"] == x["ListUnitPrice"] * x["PricingQuantity"])),
    Rule("ContractedCost 7", "ContractedCost MUST equal the product of ContractedUnitPrice and "
         "PricingQuantity when both are not null.",
         every(lambda x: x["ContractedCost"] == x["ContractedUnitPrice"] * x["PricingQuantity"])),
    Rule("EffectiveCost 8", "EffectiveCost of a charge unrelated to other charges MUST match "
         "the BilledCost (no prepaid purchase covers these charges).",
         every(lambda x: x["EffectiveCost"] == x["BilledCost"])),
    # Billing account, currency and periods
    Rule("BillingAccountId 4", "BillingAccountId MUST NOT be null.",
         every(lambda x: x["BillingAccountId"])),
    Rule("BillingAccountId 5", "BillingAccountId MUST be a unique identifier within an invoice "
         "issuer.", one_per("BillingAccountId", lambda x: x["BillingAccountName"])),
    Rule("BillingAccountName 4", "BillingAccountName MUST NOT be null when the invoice issuer "
         "supports assigning a display name for the billing account.",
         every(lambda x: x["BillingAccountName"])),
    Rule("BillingCurrency 4-7", "BillingCurrency MUST conform to CurrencyFormat requirements, "
         "MUST NOT be null and MUST be expressed in national currency (e.g., USD, EUR).",
         every(lambda x: re.fullmatch(r"[A-Z]{3}", x["BillingCurrency"] or ""))),
    *(Rule(f"{n} 4", f"{n} MUST NOT be null.", every(lambda x, n=n: x[n] is not None))
      for n in PERIODS),
    *(Rule(f"{n} 3", f"{n} MUST conform to DateTimeFormat requirements (YYYY-MM-DDTHH:mm:ssZ).",
           every(lambda x, n=n: DATETIME.match(x[n]), "text"))
      for n in PERIODS),
    Rule("BillingPeriodStart/End 5", "BillingPeriodStart MUST be the inclusive start bound "
         "and BillingPeriodEnd the exclusive end bound of the billing period (a UTC month).",
         every(lambda x: x["BillingPeriodStart"] <= x["ChargePeriodStart"]
               < x["ChargePeriodEnd"] <= x["BillingPeriodEnd"]
               and x["BillingPeriodStart"].day == x["BillingPeriodEnd"].day == 1)),
    Rule("ChargePeriodStart/End 5", "ChargePeriodStart MUST be the inclusive start bound and "
         "ChargePeriodEnd the exclusive end bound of the effective period of the charge.",
         every(lambda x: (x["ChargePeriodEnd"] - x["ChargePeriodStart"]).days == 1)),
    # Charge category, class, description, frequency
    Rule("ChargeCategory 3-4", "ChargeCategory MUST NOT be null and MUST be one of the "
         "allowed values.", every(lambda x: x["ChargeCategory"] in CHARGE_CATEGORIES)),
    Rule("ChargeClass 3", "ChargeClass MUST be null when the row does not represent a "
         "correction or when it represents a correction within the current billing period.",
         every(lambda x: x["ChargeClass"] is None)),
    Rule("ChargeClass 4", 'ChargeClass MUST be "Correction" when ChargeClass is not null.',
         every(lambda x: x["ChargeClass"] in (None, "Correction"))),
    Rule("ChargeDescription 4", "ChargeDescription SHOULD NOT be null.",
         every(lambda x: x["ChargeDescription"])),
    Rule("ChargeFrequency 3-4", "ChargeFrequency MUST NOT be null and MUST be one of the "
         "allowed values.", every(lambda x: x["ChargeFrequency"] in CHARGE_FREQUENCIES)),
    Rule("ChargeFrequency 5", 'ChargeFrequency MUST NOT be "Usage-Based" when ChargeCategory '
         'is "Purchase".',
         every(lambda x: x["ChargeCategory"] != "Purchase"
               or x["ChargeFrequency"] != "Usage-Based")),
    # Consumed quantity and unit
    Rule("ConsumedQuantity 4a", "ConsumedQuantity MUST be null when SkuPriceId is null.",
         every(lambda x: x["SkuPriceId"] is not None or x["ConsumedQuantity"] is None)),
    Rule("ConsumedQuantity 4b", 'ConsumedQuantity MUST be null when ChargeCategory is not '
         '"Usage".',
         every(lambda x: x["ChargeCategory"] == "Usage" or x["ConsumedQuantity"] is None)),
    Rule("ConsumedQuantity 4c", 'ConsumedQuantity MUST NOT be null when ChargeCategory is '
         '"Usage" and ChargeClass is not "Correction".',
         every(lambda x: x["ChargeClass"] is not None or x["ConsumedQuantity"] is not None)),
    Rule("ConsumedQuantity 5", "ConsumedQuantity MUST be a valid decimal value when not null.",
         every(lambda x: x["ConsumedQuantity"].is_finite())),
    Rule("ConsumedUnit 4", "ConsumedUnit SHOULD conform to UnitFormat requirements.",
         every(lambda x: UNIT.match(x["ConsumedUnit"]))),
    Rule("ConsumedUnit 5", "ConsumedUnit MUST be null when ConsumedQuantity is null, and MUST "
         "NOT be null when ConsumedQuantity is not null.",
         every(null_iff("ConsumedUnit", "ConsumedQuantity"))),
    # Unit prices, pricing quantity, unit and category
    *(Rule(f"{n} 4a", f"{n} MUST be null when SkuPriceId is null, and MUST NOT be null when "
           "SkuPriceId is not null.", every(null_iff(n, "SkuPriceId")))
      for n in ("ListUnitPrice", "ContractedUnitPrice")),
    *(Rule(f"{n} 4b", f'{n} MUST NOT be null when ChargeCategory is "Usage" or "Purchase" and '
           'ChargeClass is not "Correction".',
           every(lambda x, n=n: x["ChargeClass"] is not None or x[n] is not None))
      for n in ("ListUnitPrice", "ContractedUnitPrice")),
    *(Rule(f"{n} 5", f"{n} MUST be a non-negative decimal value.",
           every(lambda x, n=n: x[n] >= 0))
      for n in ("ListUnitPrice", "ContractedUnitPrice")),
    Rule("PricingQuantity 4", 'PricingQuantity MUST NOT be null when ChargeCategory is "Usage" '
         'or "Purchase" and ChargeClass is not "Correction".',
         every(lambda x: x["PricingQuantity"] is not None)),
    Rule("PricingQuantity 5", "PricingQuantity MUST be a valid decimal value when not null.",
         every(lambda x: x["PricingQuantity"].is_finite())),
    Rule("PricingQuantity 6", "Cost metric MUST equal the product of the corresponding unit "
         "price and PricingQuantity (here: tokens ÷ 1,000,000 priced per 1M tokens).",
         every(lambda x: x["PricingQuantity"] * 1_000_000 == x["ConsumedQuantity"])),
    Rule("PricingUnit 4", "PricingUnit SHOULD conform to UnitFormat requirements.",
         every(lambda x: UNIT.match(x["PricingUnit"]))),
    Rule("PricingUnit 5", "PricingUnit MUST be null when PricingQuantity is null, and MUST NOT "
         "be null when PricingQuantity is not null.",
         every(null_iff("PricingUnit", "PricingQuantity"))),
    Rule("PricingCategory 3", 'PricingCategory MUST NOT be null when ChargeCategory is "Usage" '
         'and ChargeClass is not "Correction".', every(lambda x: x["PricingCategory"])),
    Rule("PricingCategory 4a", "PricingCategory MUST be one of the allowed values.",
         every(lambda x: x["PricingCategory"] in PRICING_CATEGORIES)),
    Rule("PricingCategory 4b", 'PricingCategory MUST be "Standard" when pricing is '
         "predetermined at the agreed upon rate for the billing account (a hosted API's price).",
         every(lambda x: x["PricingCategory"] == "Standard", "hosted")),
    Rule("PricingCategory 4e", 'PricingCategory MUST be "Other" when there is a pricing model '
         "but none of the allowed values apply (the cost of your own hardware).",
         every(lambda x: x["PricingCategory"] == "Other", "allocated")),
    # Providers
    Rule("ServiceProviderName 4", "ServiceProviderName MUST NOT be null.",
         every(lambda x: x["ServiceProviderName"])),
    Rule("HostProviderName 4", "HostProviderName MUST NOT be null in all other cases (a service "
         "deployed on infrastructure whose host is known).",
         every(lambda x: x["HostProviderName"])),
    Rule("HostProviderName 5a", "HostProviderName MUST reflect the name of the host provider "
         "when explicitly selected by the customer.",
         every(lambda x: x["HostProviderName"] == HOST or not x["x_HardwareModel"], "rented")),
    Rule("HostProviderName 5c", "HostProviderName MUST equal ServiceProviderName in all other "
         "cases.", both(every(lambda x: x["HostProviderName"] == x["ServiceProviderName"]),
                        every(lambda x: x["HostProviderName"] == x["ServiceProviderName"]
                              or x["x_HardwareModel"], "rented"))),
    Rule("ProviderName 4", "ProviderName (deprecated in 1.3, replaced by ServiceProviderName) "
         "MUST NOT be null.",
         every(lambda x: x["ProviderName"] and x["ProviderName"] == x["ServiceProviderName"])),
    Rule("PublisherName 4", "PublisherName (deprecated in 1.3) MUST NOT be null.",
         every(lambda x: x["PublisherName"])),
    Rule("InvoiceIssuerName 4", "InvoiceIssuerName MUST NOT be null.",
         every(lambda x: x["InvoiceIssuerName"])),
    # Resources
    Rule("ResourceId 4b", "ResourceId MUST NOT be null when a charge is related to a resource.",
         every(lambda x: x["ResourceId"])),
    Rule("ResourceId 5", "ResourceId MUST be a unique identifier within the service provider.",
         one_per("ResourceId", lambda x: (x["PublisherName"], x["x_HardwareModel"],
                                          x["x_LlmModel"], x["x_Quantization"]))),
    Rule("ResourceName 4", "ResourceName MUST be null when ResourceId is null, and MUST NOT be "
         "null when ResourceId is not null and the resource has an assigned display name.",
         every(null_iff("ResourceName", "ResourceId"))),
    Rule("ResourceName 5", "ResourceName MUST NOT duplicate ResourceId when the resource is not "
         "provisioned interactively or only has a system-generated ResourceId.",
         every(lambda x: x["ResourceName"] != x["ResourceId"])),
    Rule("ResourceType 4", "ResourceType MUST be null when ResourceId is null, and MUST NOT be "
         "null when ResourceId is not null.", every(null_iff("ResourceType", "ResourceId"))),
    # Services
    Rule("ServiceCategory 3-4", "ServiceCategory MUST NOT be null and MUST be one of the "
         "allowed values.", every(lambda x: x["ServiceCategory"] in SERVICE_CATEGORIES)),
    Rule("ServiceName 4", "ServiceName MUST NOT be null.", every(lambda x: x["ServiceName"])),
    Rule("ServiceName 5", "ServiceName MUST have one and only one ServiceCategory, and SHOULD "
         "have one and only one ServiceSubcategory.",
         one_per("ServiceName", lambda x: (x["ServiceCategory"], x["ServiceSubcategory"]))),
    Rule("ServiceSubcategory 3-5", "ServiceSubcategory MUST NOT be null, MUST be one of the "
         "allowed values and MUST have one and only one parent ServiceCategory.",
         every(lambda x: x["ServiceSubcategory"] in AI_SUBCATEGORIES
               and x["ServiceCategory"] == "AI and Machine Learning")),
    # SKUs
    Rule("SkuId 4", 'SkuId MUST NOT be null when ChargeCategory is "Usage" or "Purchase" and '
         'ChargeClass is not "Correction".', every(lambda x: x["SkuId"])),
    Rule("SkuId 5", "SkuId MUST remain consistent across billing accounts or contracts and "
         "across PricingCategory values.",
         every(lambda x: x["SkuId"] == f"{x['PublisherName']}/{x['x_LlmModel']}")),
    Rule("SkuMeter 4", "SkuMeter MUST be null when SkuId is null; it SHOULD NOT be null when "
         "SkuId is not null.", every(null_iff("SkuMeter", "SkuId"))),
    Rule("SkuMeter 5", "SkuMeter SHOULD remain consistent over time for a given SkuId.",
         one_per("SkuId", lambda x: x["SkuMeter"])),
    Rule("SkuPriceId 4", 'SkuPriceId MUST NOT be null when ChargeCategory is "Usage" or '
         '"Purchase" and ChargeClass is not "Correction".', every(lambda x: x["SkuPriceId"])),
    Rule("SkuPriceId 5a", "SkuPriceId MUST have one and only one parent SkuId.",
         one_per("SkuPriceId", lambda x: x["SkuId"])),
    Rule("SkuPriceId 5c", "SkuPriceId MUST remain consistent across billing accounts or "
         "contracts.", one_per("SkuPriceId", lambda x: x["ResourceId"])),
    # Tags
    Rule("Tags 2", "Tags MUST conform to KeyValueFormat requirements.",
         every(flat_or_null("Tags"))),
    Rule("Tags 4e", "Tag keys that do not support corresponding values MUST have a "
         "corresponding true (boolean) value set.",
         every(lambda x: all(v is True or (isinstance(v, str) and v)
                             for v in (loads(x["Tags"]) or {}).values()))),
    Rule("Tags 5", "Provider-defined tag keys MUST be prefixed with a predetermined, "
         "provider-specified tag key prefix.",
         every(lambda x: all(k.startswith("wattledger/") for k in loads(x["Tags"]) or {}))),
    # Attributes
    Rule("StringHandling 6", "A FOCUS column with not-nullable string values SHOULD NOT "
         "contain empty strings or strings consisting solely of whitespace characters.",
         lambda f: all(v.strip() for _, v in strings(f))),
    Rule("NullHandling 1", "FOCUS column MUST NOT contain empty strings or placeholder strings "
         '(e.g., "Not Applicable") for absent values.',
         lambda f: not {v.lower() for _, v in strings(f)} & PLACEHOLDERS),
    Rule("NumericFormat", "Numeric values MUST be plain integers, decimals or scientific "
         "notation, without currency symbols, thousands separators or units.",
         every(lambda x: all(NUMERIC.match(x[n]) for n in DECIMALS if x[n]), "text")),
    Rule("ColumnNamingAndOrdering 2", "All custom columns MUST be prefixed with a consistent "
         "x_ prefix.", lambda f: all(n in MANDATORY or n in CONDITIONAL or n.startswith("x_")
                                     for n in f.schema.names)),
    Rule("ColumnNamingAndOrdering 3", "FOCUS columns MUST be listed before custom columns "
         "(column IDs in PascalCase).", focus_columns_first),
]  # fmt: skip
DECIMALS = [n for n, k in MANDATORY.items() if k == "Decimal"] + [
    n for n, (k, _) in CONDITIONAL.items() if k == "Decimal"
]


@pytest.mark.parametrize("spec_rule", RULES, ids=[x.ref for x in RULES])
def test_focus_1_3_rule(focus: Export, spec_rule: Rule) -> None:
    assert spec_rule.check(focus), spec_rule.text


def test_every_written_column_has_its_rules() -> None:
    """A column added to the 1.3 export without its rules here fails this test."""
    focus_columns = [n for n in COLUMNS["1.3"] if not n.startswith("x_")]
    assert set(focus_columns) == set(MANDATORY) | set(CONDITIONAL)
    refs = " ".join(x.ref for x in RULES)
    assert all(f"{n} presence" in refs and f"{n} type" in refs for n in focus_columns)
