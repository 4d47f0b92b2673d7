"""Display data for the operations pages: recommendations, fleet and reports.

Pure pandas, like :mod:`wattledger.dashboard.frames`; units in every header.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from wattledger.dashboard import fmt
from wattledger.dashboard.frames import Kpi, money_columns


def _dec(value: Any) -> Decimal:
    return Decimal(0) if value is None or pd.isna(value) else Decimal(value)


def recommendation_kpis(recs: pd.DataFrame, confidence: float) -> list[Kpi]:
    """Monthly savings (with summed interval bounds), energy and CO2e of ``recs``."""
    usd = sum((_dec(v) for v in recs["savings_usd_month"]), Decimal(0))
    low = sum((_dec(v) for v in recs["savings_usd_month_low"]), Decimal(0))
    high = sum((_dec(v) for v in recs["savings_usd_month_high"]), Decimal(0))
    basis = recs["basis"].value_counts()
    mix = ", ".join(f"{n} {b}" for b, n in basis.items()) or "none"
    return [
        Kpi("Recommendations", fmt.count(len(recs)), help=f"Basis: {mix}."),
        Kpi(
            "Savings (USD/month)",
            fmt.usd(usd),
            note=f"basis: {mix}",
            help=f"Sum of the recommendations shown. Summed {confidence:.0%} interval bounds: "
            f"{fmt.usd(low)} – {fmt.usd(high)}.",
        ),
        Kpi(
            "Energy saved (kWh/month)",
            f"{pd.to_numeric(recs['savings_kwh_month']).fillna(0).sum():,.1f}",
            note=f"basis: {mix}",
        ),
        Kpi(
            "CO2e avoided (kg/month)",
            f"{pd.to_numeric(recs['savings_kg_co2e_month']).fillna(0).sum():,.1f}",
            note=f"basis: {mix}",
        ),
    ]


@dataclass(frozen=True)
class RecommendationCard:
    """One recommendation as a page shows it."""

    title: str
    saving: str
    basis: str
    explanation: str
    risks: list[str]
    facts: list[str]


def recommendation_cards(recs: pd.DataFrame, confidence: float) -> list[RecommendationCard]:
    """Title, saving with its interval, basis, explanation, risks and the evidence."""
    cards = []
    for r in recs.to_dict("records"):
        to = f" → {r['to_route']}" if r["to_route"] else ""
        if r["savings_usd_month"] is not None and not pd.isna(r["savings_usd_month"]):
            saving = (
                f"{fmt.usd(r['savings_usd_month'])}/month "
                f"({confidence:.0%} interval {fmt.usd(r['savings_usd_month_low'])} – "
                f"{fmt.usd(r['savings_usd_month_high'])})"
            )
        else:
            saving = "latency improvement (no cost saving claimed)"
        facts = []
        if r["share_to_move"] is not None and not pd.isna(r["share_to_move"]):
            facts.append(f"share of traffic to move: {fmt.pct(r['share_to_move'], 0)}")
        for name, before, after in (
            ("p95 TTFT", r["ttft_p95_before_s"], r["ttft_p95_after_s"]),
            ("p95 ITL", r["itl_p95_before_s"], r["itl_p95_after_s"]),
        ):
            if before is not None and not pd.isna(before):
                facts.append(f"{name}: {fmt.ms(before)} → {fmt.ms(after)}")
        if r["savings_kwh_month"] is not None and not pd.isna(r["savings_kwh_month"]):
            facts.append(f"energy: {r['savings_kwh_month']:,.1f} kWh/month")
        if r["savings_kg_co2e_month"] is not None and not pd.isna(r["savings_kg_co2e_month"]):
            facts.append(f"CO2e: {r['savings_kg_co2e_month']:,.1f} kg/month")
        if r["samples_from"] is not None and not pd.isna(r["samples_from"]):
            facts.append(
                f"samples: {int(r['samples_from']):,} from, {int(r['samples_to'] or 0):,} to"
            )
        facts.append(f"status: {r['status']}")
        cards.append(
            RecommendationCard(
                title=f"[{r['kind']}] {r['workload']}: {r['from_route']}{to}",
                saving=saving,
                basis=r["basis"],
                explanation=r["explanation"] or "",
                risks=[x for x in (r["risks"] or "").splitlines() if x.strip()],
                facts=facts,
            )
        )
    return cards


def recommendation_table(recs: pd.DataFrame) -> pd.DataFrame:
    """All recommendation fields, units in the headers, for the table and CSV."""
    df = money_columns(recs)
    return pd.DataFrame(
        {
            "Kind": df["kind"],
            "Workload": df["workload"],
            "From route": df["from_route"],
            "To route": df["to_route"],
            "Share to move (%)": df["share_to_move"] * 100,
            "Savings (USD/month)": df["savings_usd_month"],
            "Savings low (USD/month)": df["savings_usd_month_low"],
            "Savings high (USD/month)": df["savings_usd_month_high"],
            "Energy saved (kWh/month)": df["savings_kwh_month"],
            "CO2e avoided (kg/month)": df["savings_kg_co2e_month"],
            "p95 TTFT before (ms)": df["ttft_p95_before_s"] * 1000,
            "p95 TTFT after (ms)": df["ttft_p95_after_s"] * 1000,
            "p95 ITL before (ms)": df["itl_p95_before_s"] * 1000,
            "p95 ITL after (ms)": df["itl_p95_after_s"] * 1000,
            "Basis": df["basis"],
            "Status": df["status"],
            "Risks": df["risks"].fillna("").str.replace("\n", "; "),
            "Explanation": df["explanation"],
            "Updated (UTC)": df["updated_at"],
            "Id": df["recommendation_id"],
        }
    )


def _method_mix(row: dict[str, Any]) -> str:
    parts = [
        (int(row["counter_hours"]), "counter"),
        (int(row["power_hours"]), "power samples"),
        (int(row["modeled_hours"]), "modeled"),
    ]
    used = [(n, name) for n, name in parts if n]
    if len(used) == 1:
        kind = "modeled" if used[0][1] == "modeled" else "measured"
        return f"{kind} ({used[0][1]})"
    return "mixed: " + ", ".join(f"{name} {n} h" for n, name in used)


def fleet_kpis(devices: pd.DataFrame) -> list[Kpi]:
    """Device count, device energy by provenance, idle energy and pure idle waste."""
    measured = float(devices["device_energy_measured_j"].sum())
    modeled = float(devices["device_energy_modeled_j"].sum())
    total = measured + modeled
    idle = float(devices["idle_j"].sum())
    waste = float(devices["unallocated_idle_j"].sum())
    hours = float(devices["hours"].sum())
    busy = float(devices["active_s"].sum()) / 3600
    source = fmt.provenance(measured, modeled)
    return [
        Kpi("Devices", fmt.count(len(devices))),
        Kpi(
            "Device energy (kWh)",
            f"{total / fmt.J_PER_KWH:,.2f}",
            help=f"measured {fmt.energy(measured)}, modeled {fmt.energy(modeled)}",
            note=f"energy: {source}",
        ),
        Kpi(
            "Idle energy (kWh)",
            f"{idle / fmt.J_PER_KWH:,.2f}",
            help=f"{fmt.pct(idle / total if total else None)} of device energy: the baseline "
            "under requests plus everything while no request ran.",
        ),
        Kpi(
            "Idle waste (kWh)",
            f"{waste / fmt.J_PER_KWH:,.2f}",
            help="Idle energy in hours when no request started on the device, so it could not "
            "be charged to any request.",
        ),
        Kpi(
            "Busy share (%)",
            fmt.pct(busy / hours if hours else None),
            help="Hours with at least one request active ÷ device-hours.",
        ),
    ]


def _identity(reported: object) -> str:
    """The part a reported hardware name resolves to, or ``unknown`` (never a near match)."""
    from wattledger.hardware import resolve

    identity = resolve(str(reported) if reported is not None else None)
    if not identity.known:
        return "unknown"
    return identity.key + ("" if identity.in_catalog else " (not in catalog)")


def _idle_baseline(row: dict[str, object]) -> str:
    """The idle baseline used for a device and its evidence, e.g. ``62 W (counter)``."""
    low, high, watts = (
        row.get("idle_source_min"),
        row.get("idle_source_max"),
        row.get("idle_power_w"),
    )
    if low is None or (isinstance(low, float) and pd.isna(low)):
        return "not recorded"
    if low == "none" and high == "none":
        return "none: 0 W assumed"
    source = str(low) if low == high else "mixed"
    return (
        f"{float(watts):,.0f} W ({source})" if watts is not None and not pd.isna(watts) else source
    )


def device_table(devices: pd.DataFrame) -> pd.DataFrame:
    """Per device: energy ledger, idle waste, power and utilization."""
    df = devices.copy()
    energy = df["device_energy_measured_j"] + df["device_energy_modeled_j"]
    return pd.DataFrame(
        {
            "Device": df["device_id"],
            "Hardware": df["hardware_model"],
            "Identified as": [_identity(m) for m in df["hardware_model"]],
            "Node": df["node"],
            "Energy source": [_method_mix(r) for r in df.to_dict("records")],
            "Device energy (kWh)": energy / fmt.J_PER_KWH,
            "Attributed to requests (kWh)": df["attributed_j"] / fmt.J_PER_KWH,
            "Idle (kWh)": df["idle_j"] / fmt.J_PER_KWH,
            "Idle waste (kWh)": df["unallocated_idle_j"] / fmt.J_PER_KWH,
            "Idle share (%)": (df["idle_j"] / energy.where(energy > 0)) * 100,
            "Busy (h)": df["active_s"] / 3600,
            "Idle baseline": [_idle_baseline(r) for r in df.to_dict("records")],
            "Mean power (W)": df["mean_power_w"],
            "Mean utilization (%)": df["mean_utilization_ratio"] * 100,
            "Requests": df["requests"],
        }
    )


def device_series(hours: pd.DataFrame) -> pd.DataFrame:
    """Per device-hour: power (W), utilization (%) and energy source for line charts."""
    df = hours.copy()
    return pd.DataFrame(
        {
            "bucket_start": df["bucket_start"],
            "device": df["device_id"],
            "power_w": df["mean_power_w"],
            "utilization_pct": df["mean_utilization_ratio"] * 100,
            "source": df["method"].map(
                {"counter": "measured", "power": "measured", "modeled": "modeled"}
            ),
        }
    )


def idle_cost_by_hardware(hardware: pd.DataFrame) -> pd.DataFrame:
    """Idle cost per self-hosted hardware model from the rollups (USD)."""
    df = money_columns(hardware)
    df = df[df["hardware_model"] != ""]
    return pd.DataFrame(
        {
            "Hardware": df["hardware_model"],
            "Provider": df["provider"],
            "Idle cost (USD)": df["cost_idle_usd"],
            "Hardware time cost (USD)": df["cost_hardware_usd"],
            "Energy cost (USD)": df["cost_energy_usd"],
            "Idle share of spend (%)": df["cost_idle_usd"]
            / df["cost_total_usd"].where(df["cost_total_usd"] > 0)
            * 100,
        }
    )


def report_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Past weekly reports: week, status, recipients, attempts, when sent, last error."""
    df = runs.copy()
    return pd.DataFrame(
        {
            "ISO week": df["iso_week"],
            "Status": df["status"],
            "Recipients": df["recipients"],
            "Attempts": df["attempts"],
            "Sent (UTC)": df["sent_at"],
            "Last error": df["last_error"],
            "Tenant": df["tenant"],
        }
    )
