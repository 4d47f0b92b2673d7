"""Reports: past weekly reports, a preview of the next one, and send now."""

from __future__ import annotations

import streamlit as st
import streamlit.components.v1 as components

from wattledger.dashboard import data, frames_ops, reports, ui


def render() -> None:
    """Draw the page."""
    st.title("Reports")
    src = data.source()
    if src.url is None:
        ui.empty_state(src.problem)
        return
    runs = data.report_runs()
    if runs.empty:
        ui.heading("Past weekly reports")
        st.info(
            "No weekly report has been sent yet. `wattledger serve` sends one every "
            "Monday once `[report]` recipients and SMTP are configured.",
            icon=":material/mail:",
        )
    else:
        ui.table(
            frames_ops.report_table(runs),
            "reports.runs",
            "wattledger-reports.csv",
            title="Past weekly reports",
        )
    ui.heading("This week's report")
    if not reports.report_command_available():
        st.info(
            "This installation has no `wattledger report` command yet, so reports cannot "
            "be previewed or sent from here."
        )
        return
    tenant = data.bound_tenant()
    # A tenant-bound dashboard previews and sends only that tenant's report.
    scope = ("--tenant", tenant) if tenant is not None else ()
    if st.button("Preview", key="reports.preview", icon=":material/visibility:"):
        result = reports.run_report("preview", *scope)
        if not result.ok:
            st.error(result.stderr or "`wattledger report preview` failed.")
        elif result.stdout.lstrip().startswith("<"):
            components.html(result.stdout, height=700, scrolling=True)
        else:
            st.code(result.stdout, language=None)
    # Sending asks for confirmation in a popover, drawn only when opened.
    with st.popover(
        "Send now…", icon=":material/send:", key="reports.send_open", on_change="rerun"
    ) as send:
        if send.open:
            confirm = st.checkbox(
                "Yes, email the report to its recipients now", key="reports.confirm_send"
            )
            if st.button("Send now", key="reports.send_now", disabled=not confirm):
                result = reports.run_report("send", *scope)
                if result.ok:
                    st.success("Sent. " + (result.stderr or result.stdout).strip())
                else:
                    st.error(result.stderr or "`wattledger report send` failed.")


render()
