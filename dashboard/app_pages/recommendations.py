"""Recommendations: savings with confidence, explanation and risks."""

from __future__ import annotations

import streamlit as st

from wattledger.dashboard import data, frames_ops, ui

STATUSES = ["open", "applied", "stale", "dismissed"]


def render() -> None:
    """Draw the page."""
    st.title("Recommendations")
    f = ui.ready()
    if f is None:
        return
    statuses = ui.picker("Status", STATUSES, "recs.status", ["open"], multi=True)
    recs = data.recommendations(tuple(statuses), f.tenants, f.workloads)
    confidence = data.settings().analytics.recommend.confidence
    ui.note(
        "Tenant and workload filters apply here; recommendations cover the "
        "lookback window of the last run, not the date range. Savings are per month, "
        f"with {confidence:.0%} bootstrap intervals. **measured** = from your fleet's "
        "data; **predicted** = from the what-if planner."
    )
    tenant = data.bound_tenant()
    if tenant is not None:
        ui.note(
            f"Only recommendations recorded for tenant {ui.md_escape(tenant)} are shown; "
            "recommendations computed over the whole fleet are not, because they mix tenants."
        )
    if recs.empty:
        st.info(
            "No recommendations with these statuses. They are refreshed by "
            "`wattledger serve` (hourly) or `wattledger recommend`; `wattledger recommend "
            "--explain` lists every candidate that was rejected and why.",
            icon=":material/check_circle:",
        )
        return
    ui.kpis(frames_ops.recommendation_kpis(recs, confidence))
    st.html(ui.cards_html(frames_ops.recommendation_cards(recs, confidence)))
    ui.table(
        frames_ops.recommendation_table(recs),
        "recs.table",
        "wattledger-recommendations.csv",
        what="Recommendations",
    )


render()
