"""FOCUS 1.3 split cost allocation: a self-hosted route's cost split among what consumed it.

FOCUS 1.3 lets a data generator take a charge (the *origin charge*) and split it into
*allocated charges* by a method it documents ("Data Generator-Calculated Split Cost Allocation
Handling" attribute; columns ``AllocatedMethodId``, ``AllocatedMethodDetails``,
``AllocatedResourceId``, ``AllocatedResourceName`` and ``AllocatedTags``). That is what
wattledger's attribution does to self-hosted inference, so the 1.3 export says so:

- **Origin charge**: one tenant's fully-loaded cost of one self-hosted route on one UTC day,
  the row the 1.2 export writes. It is not written in 1.3; the sum of its allocated charges is
  it (the attribute's rule: summable metrics add up, unit prices and dimensions are the
  origin's). The origin is per tenant, not per device pool, so no tenant's export says
  anything about another tenant's volume (docs/security.md "Tenants").
- **Allocated charges**: the origin split by service × workload (``AllocatedResourceId``
  ``tenant/service/workload``; their tags in ``AllocatedTags``).
- **Method** :data:`ALLOCATED_METHOD_ID` (docs/focus.md "Allocation method"): device energy from
  the energy counter, else integrated power, above the idle baseline, split among concurrent
  requests by token work (roofline prefill/decode weights, the prefill placed inside the
  measured time to first token); device time split the same way; each hour's idle energy and
  idle time spread over the requests that started in it in proportion to their direct energy.
  Cost parts: hardware (device-time share × $/device-hour), energy (J × $/kWh × PUE), idle.
- **AllocatedMethodDetails**: one ``Elements`` entry per cost part (``x_CostPart``
  ``Hardware``, ``Energy``, ``Idle``) whose ``AllocatedRatio`` is that part of this charge over
  the origin's total, with the quantity that decided it (``Joules``; device time is not kept in
  the rollups, so the hardware part names its unit, ``Device-Seconds``, without a quantity).
  The ratios of all allocated charges of one origin sum to exactly 1. An origin that cost
  nothing (no hardware rate or tariff) is split by energy instead, then by requests
  (``x_RatioBasis`` says which).

Hosted APIs are priced per token by their provider: not a split, so every Allocated* column is
null there (AllocatedMethodId: "MUST be null when a charge is not related to a data
generator-calculated split cost allocation").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

#: FOCUS 1.3 AllocatedMethodId of wattledger's energy attribution (docs/focus.md documents it
#: under this one value, as the column requires).
ALLOCATED_METHOD_ID = "wattledger/energy-attribution/v1"
#: Places of an AllocatedRatio; the last place is corrected so an origin's ratios sum to 1.
RATIO_PLACES = Decimal("1e-12")
#: Places of a UsageQuantity in joules (a microjoule).
JOULE_PLACES = Decimal("1e-6")
#: Written for a service or workload the producer did not report.
UNSPECIFIED = "-"
TAG_PREFIX = "wattledger/"
COST_PARTS = (
    ("Hardware", "Device-Seconds", "cost_hardware_usd"),
    ("Energy", "Joules", "cost_energy_usd"),
    ("Idle", "Joules", "cost_idle_usd"),
)


def _dec(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def _quantities(row: Mapping[Any, Any]) -> tuple[Decimal | None, Decimal, Decimal]:
    """UsageQuantity per cost part: none for device time, joules for direct and idle energy."""
    direct = _dec(row["energy_measured_j"]) + _dec(row["energy_modeled_j"])
    return None, direct.quantize(JOULE_PLACES), _dec(row["idle_energy_j"]).quantize(JOULE_PLACES)


def _weights(rows: Sequence[Mapping[Any, Any]]) -> tuple[str, list[list[Decimal]]]:
    """The basis of the split and each row's weight per cost part."""
    bases = (
        ("Cost", [[_dec(r[col]) for _, _, col in COST_PARTS] for r in rows]),
        ("Energy", [[Decimal(0), *_quantities(r)[1:]] for r in rows]),
        ("Requests", [[Decimal(int(r["requests"])), Decimal(0), Decimal(0)] for r in rows]),
    )
    for name, weights in bases:
        if sum(map(sum, weights)) > 0:
            return name, weights
    return "Equal", [[Decimal(1), Decimal(0), Decimal(0)] for _ in rows]


def allocated_ratios(rows: Sequence[Mapping[Any, Any]]) -> tuple[str, list[list[Decimal]]]:
    """AllocatedRatio of each cost part of each allocated charge of one origin charge.

    FOCUS 1.3 AllocatedMethodDetails, "AllocatedRatio": the allocated charge's share of the
    origin charge; all of them across the allocated charges of one origin MUST sum to 1. Each
    ratio is rounded to :data:`RATIO_PLACES` and the largest absorbs the rounding, so the sum
    is exactly 1.

    Args:
        rows: The allocated charges of one origin (:func:`daily_route_charges` rows with
            ``by_consumer=True``), each with the cost parts in USD and energy in joules.

    Returns:
        The basis (``Cost``, ``Energy``, ``Requests`` or ``Equal``) and, per row, one ratio
        per :data:`COST_PARTS` entry.
    """
    basis, weights = _weights(rows)
    total = sum(map(sum, weights))
    ratios = [[(w / total).quantize(RATIO_PLACES, ROUND_HALF_EVEN) for w in ws] for ws in weights]
    i, j = max(
        ((i, j) for i in range(len(ratios)) for j in range(len(COST_PARTS))),
        key=lambda ij: ratios[ij[0]][ij[1]],
    )
    ratios[i][j] += Decimal(1) - sum(map(sum, ratios))
    return basis, ratios


def _number(value: Decimal) -> str:
    """A JSON number in plain decimal notation (FOCUS NumericFormat: no exponent needed)."""
    text = format(value.normalize(), "f")
    return "0" if value == 0 else text


def _json(value: Any) -> str:
    """Serialize dicts, lists, strings and Decimals; Decimals as exact JSON numbers."""
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(k)}: {_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    return json.dumps(value)


def method_details(rows: Sequence[Mapping[Any, Any]]) -> list[str]:
    """AllocatedMethodDetails (JSON object, as a string) of each allocated charge of one origin.

    FOCUS 1.3 AllocatedMethodDetails: a JSON object with a top-level ``Elements`` array of
    objects, each with ``AllocatedRatio`` (required), ``UsageUnit`` (present when
    ``UsageQuantity`` is) and ``UsageQuantity``; custom keys start with ``x_``.
    """
    basis, ratios = allocated_ratios(rows)
    out = []
    for row, row_ratios in zip(rows, ratios, strict=True):
        elements: list[dict[str, Any]] = []
        for (part, unit, _), ratio, quantity in zip(
            COST_PARTS, row_ratios, _quantities(row), strict=True
        ):
            element: dict[str, Any] = {"AllocatedRatio": ratio, "UsageUnit": unit}
            if quantity is not None:
                element["UsageQuantity"] = quantity
            element["x_CostPart"] = part
            elements.append(element)
        out.append(_json({"Elements": elements, "x_RatioBasis": basis}))
    return out


def consumer(row: Mapping[Any, Any]) -> tuple[str, str]:
    """The service and workload a charge was allocated to (``-`` when not reported)."""
    return row["service"] or UNSPECIFIED, row["workload"] or UNSPECIFIED


def allocated_columns(rows: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """The five FOCUS 1.3 Allocated* columns of each allocated charge of one origin charge.

    - AllocatedMethodId: :data:`ALLOCATED_METHOD_ID` (MUST NOT be null for an allocated charge).
    - AllocatedResourceId: ``tenant/service/workload``, unique within the charge's ResourceId
      and ChargePeriod across tenants (SHOULD be locally unique there); never null here, as
      every allocated portion is written (MUST be null only for an unallocated portion).
    - AllocatedResourceName: ``service/workload`` (MUST NOT be null when the id is not null).
    - AllocatedTags: the consumer's ``wattledger/service`` and ``wattledger/workload`` tags
      (MUST NOT repeat resource tags already in Tags; data-generator-defined keys carry the
      documented ``wattledger/`` prefix); null when the producer reported neither (MAY be null).
    - AllocatedMethodDetails: :func:`method_details`.
    """
    details = method_details(rows)
    out = []
    for row, detail in zip(rows, details, strict=True):
        service, workload = consumer(row)
        tags = {
            f"{TAG_PREFIX}service": row["service"],
            f"{TAG_PREFIX}workload": row["workload"],
        }
        tags = {k: v for k, v in tags.items() if v}
        out.append(
            {
                "AllocatedMethodDetails": detail,
                "AllocatedMethodId": ALLOCATED_METHOD_ID,
                "AllocatedResourceId": f"{row['tenant']}/{service}/{workload}",
                "AllocatedResourceName": f"{service}/{workload}",
                "AllocatedTags": json.dumps(tags, sort_keys=True) if tags else None,
            }
        )
    return out


#: The Allocated* columns of a charge that no split produced (a hosted API's).
NOT_ALLOCATED: dict[str, Any] = {
    "AllocatedMethodDetails": None,
    "AllocatedMethodId": None,
    "AllocatedResourceId": None,
    "AllocatedResourceName": None,
    "AllocatedTags": None,
}
