"""Overview: spend, tokens, energy, $/1M tokens and tokens per joule, week over week."""

from __future__ import annotations

import streamlit as st

from wattledger.dashboard import charts, data, filters, fmt, frames, ui


def render() -> None:
    """Draw the page."""
    st.title("Overview")
    f = ui.ready()
    if f is None:
        return
    cur, prev = data.period_totals(f), data.period_totals(filters.previous(f))
    if int(cur["requests"]) == 0:
        ui.nothing_matches("requests")
        return
    days = filters.days(f)
    st.caption(
        f"{f.start:%Y-%m-%d} to {f.end:%Y-%m-%d} (end exclusive), "
        f"{fmt.count(cur['requests'], 'requests')}; changes are against the previous "
        f"{days} days."
    )
    ui.kpis(frames.overview_kpis(cur, prev, days))
    if int(cur["unpriced_requests"]):
        st.warning(
            f"{fmt.count(cur['unpriced_requests'])} requests have no price, so spend is "
            "understated. Set a price with `wattledger prices set` (hosted APIs) or "
            "`[analytics] hardware_usd_per_hour` and `sites` (self-hosted).",
            icon=":material/warning:",
        )
    ui.provenance_note()
    daily = data.daily_totals(f)
    left, right = st.columns(2)
    with left:
        st.subheader("Spend per day (USD)")
        ui.chart(
            charts.stacked_daily(frames.daily_cost_parts(daily), "usd", "part", "Spend (USD)"),
            key="overview.spend_chart",
        )
        st.subheader("Cost per 1M tokens (USD, blended)")
        ui.chart(
            charts.daily_line(
                frames.money_columns(daily), "cost_per_mtok_blended_usd", "USD per 1M tokens"
            ),
            key="overview.cost_per_mtok_chart",
        )
    with right:
        st.subheader("Energy per day (kWh), by provenance")
        ui.chart(
            charts.stacked_daily(
                frames.daily_energy_parts(daily), "kwh", "provenance", "Energy (kWh)"
            ),
            key="overview.energy_chart",
        )
        st.subheader("Tokens per joule (tokens/J)")
        ui.chart(
            charts.daily_line(daily, "tokens_per_j", "Output tokens per joule"),
            key="overview.tokens_per_j_chart",
        )
    st.subheader("By day")
    ui.table(frames.daily_table(daily), "overview.daily", "wattledger-daily.csv")
    st.subheader("Spend by service, tenant, workload and model")
    ui.table(
        frames.service_table(data.spend_by_service(f)),
        "overview.services",
        "wattledger-spend-by-service.csv",
    )


render()
