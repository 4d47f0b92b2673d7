"""Fleet: device power and utilization over time, and idle waste."""

from __future__ import annotations

import streamlit as st

from wattledger.dashboard import charts, data, frames_ops, ui

MAX_DEFAULT_DEVICES = 12


def render() -> None:
    """Draw the page."""
    st.title("Fleet")
    f = ui.ready()
    if f is None:
        return
    st.caption("Date, tenant and hardware filters apply; hosted APIs have no devices here.")
    summary = data.device_summary(f)
    if summary.empty:
        st.info(
            "No self-hosted devices reported power in this period. Run `wattledger "
            "collect` on each GPU node (see docs/collector.md) to measure them.",
            icon=":material/dns:",
        )
        return
    ui.kpis(frames_ops.fleet_kpis(summary))
    ui.provenance_note()
    devices = summary["device_id"].tolist()
    shown = st.multiselect(
        "Devices",
        devices,
        default=devices[:MAX_DEFAULT_DEVICES],
        key="fleet.devices",
        help="Largest idle energy first.",
    )
    series = frames_ops.device_series(data.device_hours(f))
    series = series[series["device"].isin(shown)]
    left, right = st.columns(2)
    with left:
        st.subheader("Mean power per hour (W)")
        ui.chart(charts.device_lines(series, "power_w", "Power (W)"), key="fleet.power")
    with right:
        st.subheader("Mean utilization per hour (%)")
        ui.chart(
            charts.device_lines(series, "utilization_pct", "Utilization (%)"),
            key="fleet.utilization",
        )
    st.subheader("Idle waste by device")
    ui.table(frames_ops.device_table(summary), "fleet.devices_table", "wattledger-devices.csv")
    st.subheader("Idle cost by hardware (USD)")
    ui.table(
        frames_ops.idle_cost_by_hardware(data.hardware_efficiency(f)),
        "fleet.idle_cost",
        "wattledger-idle-cost.csv",
    )


render()
