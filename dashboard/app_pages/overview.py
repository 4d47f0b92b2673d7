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
    ui.note(
        f"{f.start:%Y-%m-%d} to {f.end:%Y-%m-%d} (end exclusive), "
        f"{fmt.count(cur['requests'], 'requests')}; changes are against the previous "
        f"{days} days."
    )
    ui.kpis(frames.overview_kpis(cur, prev, days), legend=True)
    if int(cur["unpriced_requests"]):
        st.warning(
            f"{fmt.count(cur['unpriced_requests'])} requests have no price, so spend is "
            "understated. Set a price with `wattledger prices set` (hosted APIs) or "
            "`[analytics] hardware_usd_per_hour` and `sites` (self-hosted).",
            icon=":material/warning:",
        )
    daily = data.daily_totals(f)
    ui.chart(
        lambda: charts.overview_panels(daily),
        key="overview.charts",
        cache_key=(f,),
        width_px=None,
        alt_text="Per day: spend, tokens, energy and efficiency",
    )
    ui.table(frames.daily_table(daily), "overview.daily", "wattledger-daily.csv", title="By day")
    ui.table(
        frames.service_table(data.spend_by_service(f)),
        "overview.services",
        "wattledger-spend-by-service.csv",
        title="Spend by service, tenant, workload and model",
    )


render()
