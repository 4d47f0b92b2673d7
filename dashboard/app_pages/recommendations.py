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
    statuses = st.multiselect("Status", STATUSES, default=["open"], key="recs.status")
    recs = data.recommendations(tuple(statuses), f.tenants, f.workloads)
    confidence = data.settings().analytics.recommend.confidence
    st.caption(
        "Tenant and workload filters apply here; recommendations cover the "
        "lookback window of the last run, not the date range. Savings are per month, "
        f"with {confidence:.0%} bootstrap intervals. **measured** = from your fleet's "
        "data; **predicted** = from the what-if planner."
    )
    tenant = data.bound_tenant()
    if tenant is not None:
        st.caption(
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
    for i, card in enumerate(frames_ops.recommendation_cards(recs, confidence)):
        risks = "".join(f"\n- {ui.md_escape(r)}" for r in card.risks)
        with st.container(border=True, key=f"recs.card_{i}"):
            # One Markdown element per card: each element costs browser time.
            st.markdown(
                f"**{ui.md_escape(card.title)}**  \n"
                f"{ui.md_escape(card.saving)} · basis: **{card.basis}**\n\n"
                f"{ui.md_escape(card.explanation)}\n\n"
                + (f"Risks:{risks}\n\n" if risks else "")
                + f":gray[{ui.md_escape(' · '.join(card.facts))}]"
            )
    ui.table(frames_ops.recommendation_table(recs), "recs.table", "wattledger-recommendations.csv")


render()
