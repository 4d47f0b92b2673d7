"""From query results to what a page shows: KPIs, display tables and chart data.

Pure pandas (no Streamlit): every number a page prints is computed here, so tests can check
it. Display tables name their unit in every header; energy columns sit beside the column that
says whether they are measured or modeled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from wattledger.dashboard import fmt

COST_PARTS = {
    "cost_api_usd": "hosted API",
    "cost_hardware_usd": "hardware time",
    "cost_energy_usd": "energy",
    "cost_idle_usd": "idle (hardware + energy)",
}


@dataclass(frozen=True)
class Kpi:
    """One headline number: label with unit, formatted value, change and explanation."""

    label: str
    value: str
    delta: str | None = None
    help: str | None = None
    delta_color: str = "normal"
    """``normal`` (up is good), ``inverse`` (up is bad, e.g. spend) or ``off``."""
    note: str | None = None
    """A short line under the number, e.g. its provenance (``measured``, ``modeled``…)."""


def _f(value: Any) -> float:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return 0.0
    return float(value)


def total_energy_j(row: Mapping[str, Any]) -> float:
    """Direct (measured + modeled) plus idle energy of a totals row, joules."""
    return _f(row["energy_measured_j"]) + _f(row["energy_modeled_j"]) + _f(row["idle_energy_j"])


#: A range is shown beside a figure when it is wider than this, relative, either way.
SHOWN_RANGE = 0.05


def energy_range_j(row: Mapping[str, Any]) -> tuple[float, float] | None:
    """(low, high) of a totals row's direct + idle energy when wider than ±5 %, else None.

    Direct energy without bounds (none recorded) counts at its value at both ends.
    """
    total = total_energy_j(row)
    low, high = row.get("energy_j_low"), row.get("energy_j_high")
    if total <= 0 or low is None or high is None or pd.isna(low) or pd.isna(high):
        return None
    direct = _f(row["energy_measured_j"]) + _f(row["energy_modeled_j"])
    lo = total - direct + min(float(low), direct)
    hi = total - direct + max(float(high), direct)
    if lo >= total * (1 - SHOWN_RANGE) and hi <= total * (1 + SHOWN_RANGE):
        return None
    return lo, hi


def overview_kpis(cur: Mapping[str, Any], prev: Mapping[str, Any], days: int) -> list[Kpi]:
    """Spend, tokens, energy, blended $/1M tokens and tokens/J, with change vs the prior period."""
    vs = f"vs the previous {days} days"
    source = fmt.provenance(cur["energy_measured_j"], cur["energy_modeled_j"])
    tokens = int(cur["input_tokens"]) + int(cur["output_tokens"])
    prev_tokens = int(prev["input_tokens"]) + int(prev["output_tokens"])
    span = energy_range_j(cur)
    energy_note = tpj_note = f"energy: {source}"
    if span is not None:
        energy_note += f"; range {fmt.kwh(span[0]):,.2f}–{fmt.kwh(span[1]):,.2f}"
        out = _f(cur["output_tokens"])
        tpj_note += f"; range {fmt.sig(out / span[1])}–{fmt.sig(out / span[0]) if span[0] else '∞'}"
    return [
        Kpi(
            "Spend, fully loaded (USD)",
            fmt.usd(cur["cost_total_usd"]),
            fmt.delta_pct(cur["cost_total_usd"], prev["cost_total_usd"]),
            f"Hosted API list/contract prices + hardware time + energy + idle share; {vs}.",
            "inverse",
        ),
        Kpi(
            "Tokens (input + output)",
            fmt.count(tokens),
            fmt.delta_pct(tokens, prev_tokens),
            f"{fmt.count(cur['input_tokens'])} input, {fmt.count(cur['output_tokens'])} output; "
            f"{vs}.",
        ),
        Kpi(
            "Energy (kWh)",
            f"{fmt.kwh(total_energy_j(cur)):,.2f}",
            fmt.delta_pct(total_energy_j(cur), total_energy_j(prev)),
            f"measured {fmt.energy(cur['energy_measured_j'])}, modeled "
            f"{fmt.energy(cur['energy_modeled_j'])}, idle share {fmt.energy(cur['idle_energy_j'])}"
            f"; {vs}.",
            "inverse",
            note=energy_note,
        ),
        Kpi(
            "Blended USD per 1M tokens",
            fmt.usd_mtok(cur["cost_per_mtok_blended_usd"]),
            fmt.delta_pct(cur["cost_per_mtok_blended_usd"], prev["cost_per_mtok_blended_usd"]),
            f"Fully-loaded spend ÷ (input + output tokens) × 1,000,000; {vs}.",
            "inverse",
            note=f"energy part: {source}",
        ),
        Kpi(
            "Output tokens per J",
            fmt.sig(cur["tokens_per_j"]),
            fmt.delta_pct(cur["tokens_per_j"], prev["tokens_per_j"]),
            f"Output tokens ÷ (direct + idle energy); {vs}. A range is shown where the "
            "sampling leaves the energy uncertain by more than ±5 %.",
            note=tpj_note,
        ),
    ]


def money_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with Decimal columns as floats (charts and number columns need floats)."""
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object and values.map(lambda v: isinstance(v, Decimal)).any():
            out[column] = values.map(lambda v: None if v is None else float(v)).astype(float)
    return out


def daily_cost_parts(daily: pd.DataFrame) -> pd.DataFrame:
    """Long form (day, part, usd) for a stacked spend chart."""
    df = money_columns(daily)
    long = df.melt("day", list(COST_PARTS), var_name="part", value_name="usd")
    long["part"] = long["part"].map(COST_PARTS)
    return long


def daily_energy_parts(daily: pd.DataFrame) -> pd.DataFrame:
    """Long form (day, provenance, kwh) for a stacked energy chart."""
    names = {
        "energy_measured_j": "measured (direct)",
        "energy_modeled_j": "modeled (direct)",
        "idle_energy_j": "idle share",
    }
    long = daily.melt("day", list(names), var_name="provenance", value_name="energy_j")
    long["provenance"] = long["provenance"].map(names)
    long["kwh"] = long["energy_j"] / fmt.J_PER_KWH
    return long.drop(columns="energy_j")


def daily_table(daily: pd.DataFrame) -> pd.DataFrame:
    """Per-day table with units in the headers."""
    df = money_columns(daily)
    return pd.DataFrame(
        {
            "Day (UTC)": df["day"].dt.date if len(df) else [],
            "Requests": df["requests"],
            "Tokens": df["input_tokens"] + df["output_tokens"],
            "Spend (USD)": df["cost_total_usd"],
            "Cost per 1M tokens (USD)": df["cost_per_mtok_blended_usd"],
            "Energy measured (kWh)": df["energy_measured_j"] / fmt.J_PER_KWH,
            "Energy modeled (kWh)": df["energy_modeled_j"] / fmt.J_PER_KWH,
            "Idle energy (kWh)": df["idle_energy_j"] / fmt.J_PER_KWH,
            "Tokens per joule (tokens/J)": df["tokens_per_j"],
            "CO2e (kg)": df["co2e_g"] / 1000,
        }
    )


def _energy_columns(df: pd.DataFrame) -> dict[str, Any]:
    return {
        "Energy measured (kWh)": df["energy_measured_j"] / fmt.J_PER_KWH,
        "Energy modeled (kWh)": df["energy_modeled_j"] / fmt.J_PER_KWH,
        "Idle energy (kWh)": df["idle_energy_j"] / fmt.J_PER_KWH,
        "Energy source": [
            fmt.provenance(a, b)
            for a, b in zip(df["energy_measured_j"], df["energy_modeled_j"], strict=True)
        ],
    }


def service_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Spend per service × tenant × workload × model."""
    df = money_columns(rows)
    return pd.DataFrame(
        {
            "Service": df["service"],
            "Tenant": df["tenant"],
            "Workload": df["workload"].replace("", "(none)"),
            "Model": df["llm_model"],
            "Requests": df["requests"],
            "Tokens": df["input_tokens"] + df["output_tokens"],
            "Spend (USD)": df["cost_total_usd"],
            "Cost per 1M tokens (USD)": df["cost_per_mtok_blended_usd"],
            **_energy_columns(df),
        }
    )


def with_route(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with a ``route`` label column (``provider/hardware/model[@quant]``)."""
    out = df.copy()
    out["route"] = [
        fmt.route_label(p, h, m, q)
        for p, h, m, q in zip(
            out["provider"],
            out["hardware_model"],
            out["llm_model"],
            out["quantization"],
            strict=True,
        )
    ]
    return out


def pareto_front(df: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Rows no other row beats on both ``x`` and ``y`` (lower is better on both)."""
    valid = df[x].notna() & df[y].notna()
    on_front = pd.Series(False, index=df.index)
    points = df.loc[valid, [x, y]].astype(float)
    for i, (xi, yi) in points.iterrows():
        dominated = (points[x] <= xi) & (points[y] <= yi) & ((points[x] < xi) | (points[y] < yi))
        on_front[i] = not dominated.any()
    return on_front


def route_table(routes: pd.DataFrame) -> pd.DataFrame:
    """Routes with cost, efficiency, latency and whether they are on the cost/latency front."""
    df = with_route(money_columns(routes))
    front = pareto_front(df, "ttft_p95_s", "cost_per_mtok_blended_usd")
    return pd.DataFrame(
        {
            "Route": df["route"],
            "Requests": df["requests"],
            "Tokens": df["input_tokens"] + df["output_tokens"],
            "Spend (USD)": df["cost_total_usd"],
            "Cost per 1M tokens (USD)": df["cost_per_mtok_blended_usd"],
            "Tokens per joule (tokens/J)": df["tokens_per_j"],
            "p95 TTFT (ms)": df["ttft_p95_s"] * 1000,
            "p95 ITL (ms)": df["itl_p95_s"] * 1000,
            "On cost/TTFT front": front,
            **_energy_columns(df),
        }
    )


def utilisation_table(routes: pd.DataFrame) -> pd.DataFrame:
    """How full the truck leaves: per self-hosted route, the share of peak memory bandwidth its
    decode steps and of peak FLOP/s its prefills achieve (measured ITL, TTFT and batch against
    the catalog's roofline), and the planner's figures for the same route at batch 32."""
    from wattledger.analytics.whatif import route_use

    rows = []
    for r in with_route(routes).to_dict("records"):
        r = {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in r.items()}
        got = route_use(r)
        if got is None:
            continue
        at32 = got["at_batch_32"] or {}
        rows.append(
            {
                "Route": r["route"],
                "Devices (assumed)": got["gpus"],
                "Mean batch": got["batch"],
                "Batch source": got["batch_source"],
                "Decode bandwidth used (%)": 100 * got["decode_bandwidth_utilisation"],
                "Prefill compute used (%)": (
                    None
                    if got["prefill_compute_utilisation"] is None
                    else 100 * got["prefill_compute_utilisation"]
                ),
                "Measured p50 ITL (ms)": (got["itl_p50_s"] or 0.0) * 1000,
                "Predicted ITL at batch 32 (ms)": (
                    at32["time_per_output_token_s"] * 1000 if at32 else None
                ),
                "Predicted bandwidth used at batch 32 (%)": (
                    100 * at32["decode_bandwidth_utilisation"] if at32 else None
                ),
            }
        )
    return pd.DataFrame(rows)


def route_points(routes: pd.DataFrame, latency: str) -> pd.DataFrame:
    """Chart data: route, provider, latency (ms), cost per 1M tokens, and front membership."""
    df = with_route(money_columns(routes))
    df = df[df[latency].notna() & df["cost_per_mtok_blended_usd"].notna()].copy()
    df["latency_ms"] = df[latency] * 1000
    df["cost_per_mtok_usd"] = df["cost_per_mtok_blended_usd"]
    df["pareto"] = pareto_front(df, "latency_ms", "cost_per_mtok_usd")
    df["energy_source"] = [
        fmt.provenance(a, b)
        for a, b in zip(df["energy_measured_j"], df["energy_modeled_j"], strict=True)
    ]
    return df[
        [
            "route",
            "provider",
            "latency_ms",
            "cost_per_mtok_usd",
            "requests",
            "pareto",
            "energy_source",
        ]
    ]


def hardware_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Tokens per joule per hardware (hosted APIs as ``hosted · provider``)."""
    df = money_columns(rows)
    names = [
        h if h else f"hosted · {p}"
        for p, h in zip(df["provider"], df["hardware_model"], strict=True)
    ]
    return pd.DataFrame(
        {
            "Hardware": names,
            "Provider": df["provider"],
            "Output tokens": df["output_tokens"],
            "Tokens per joule (tokens/J)": df["tokens_per_j"],
            **_energy_columns(df),
        }
    )


def workload_table(rows: pd.DataFrame, slos: Mapping[str, Any]) -> pd.DataFrame:
    """SLO compliance and latency per workload, with the configured targets."""
    df = rows.copy()
    judged = df["slo_judged_requests"].astype(float)
    compliance = (df["slo_met_requests"].astype(float) / judged.where(judged > 0)).astype(float)

    def target(workload: str, attr: str) -> float | None:
        slo = slos.get(workload)
        value = getattr(slo, attr, None) if slo is not None else None
        return value * 1000 if value is not None else None

    return pd.DataFrame(
        {
            "Workload": df["workload"].replace("", "(none)"),
            "Requests": df["requests"],
            "SLO p95 TTFT (ms)": [target(w, "ttft_p95_s") for w in df["workload"]],
            "SLO p95 ITL (ms)": [target(w, "itl_p95_s") for w in df["workload"]],
            "Requests judged": df["slo_judged_requests"],
            "Requests within SLO": df["slo_met_requests"],
            "SLO compliance (%)": compliance * 100,
            "p50 TTFT (ms)": df["ttft_p50_s"] * 1000,
            "p95 TTFT (ms)": df["ttft_p95_s"] * 1000,
            "p99 TTFT (ms)": df["ttft_p99_s"] * 1000,
            "p50 ITL (ms)": df["itl_p50_s"] * 1000,
            "p95 ITL (ms)": df["itl_p95_s"] * 1000,
            "p99 ITL (ms)": df["itl_p99_s"] * 1000,
        }
    )


def latency_long(hours: pd.DataFrame) -> pd.DataFrame:
    """Hourly latency per route in milliseconds (bucket, route, requests, *_ms)."""
    df = with_route(hours)
    out = df[["bucket_start", "workload", "route", "requests"]].copy()
    for q in ("ttft_p50", "ttft_p95", "ttft_p99", "itl_p50", "itl_p95", "itl_p99"):
        out[f"{q}_ms"] = df[f"{q}_s"].astype(float) * 1000
    return out


def latency_daily_worst(hourly: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per day and route: the worst hourly value of ``metric`` (a ``*_ms`` column)."""
    df = hourly.dropna(subset=[metric]).copy()
    df["day"] = df["bucket_start"].dt.floor("D")
    return df.groupby(["day", "route"], as_index=False)[metric].max()
