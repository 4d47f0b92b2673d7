"""Fleet: device power and utilization over time, and idle waste."""

from __future__ import annotations

import streamlit as st

from wattledger.dashboard import charts, data, frames, frames_ops, ui

MAX_DEFAULT_DEVICES = 12
#: Session key of the devices chosen for the charts (kept while the chooser is closed).
_CHOSEN = "fleet.devices.saved"


def _devices(devices: list[str]) -> list[str]:
    """The devices drawn: the top ones by idle energy, or those picked in the chooser.

    The chooser is a popover drawn only while open (a multiselect of many devices costs more
    in the browser than the charts).
    """
    default = devices[:MAX_DEFAULT_DEVICES]
    kept = [d for d in st.session_state.get(_CHOSEN, default) if d in devices] or default
    label = f"Devices: {len(kept)} of {len(devices)} shown"
    with st.popover(label, icon=":material/dns:", key="fleet.pick", on_change="rerun") as pop:
        if pop.open:
            if "fleet.devices" not in st.session_state:
                st.session_state["fleet.devices"] = kept
            kept = st.multiselect(
                "Devices", devices, key="fleet.devices", help="Largest idle energy first."
            )
            st.session_state[_CHOSEN] = kept
    return kept


def render() -> None:
    """Draw the page."""
    st.title("Fleet")
    f = ui.ready()
    if f is None:
        return
    tenant = data.bound_tenant()
    ui.note(
        "Date, tenant and hardware filters apply; hosted APIs have no devices here."
        + (
            f" Only devices registered by tenant {ui.md_escape(tenant)}'s collectors are shown."
            if tenant is not None
            else ""
        )
    )
    quarantined = data.quarantined_requests(f)
    if quarantined:
        st.warning(
            f"{quarantined:,} requests in this period are quarantined: their token counts lie "
            "outside the bounds ingest accepts (docs/security.md), so they carry no cost or "
            "energy here. `wattledger analytics run` and `wattledger doctor` count them too.",
            icon=":material/report:",
        )
    summary = data.device_summary(f)
    if summary.empty:
        st.info(
            "No self-hosted devices reported power in this period. Run `wattledger "
            "collect` on each GPU node (see docs/collector.md) to measure them.",
            icon=":material/dns:",
        )
        return
    no_idle = summary[summary["no_idle_hours"] > 0]["device_id"].tolist()
    if no_idle:
        named = ", ".join(ui.md_escape(str(d)) for d in no_idle[:5])
        st.warning(
            f"{len(no_idle)} devices have no idle baseline ({named}"
            f"{' …' if len(no_idle) > 5 else ''}): they were never seen idle, send no power "
            "gauge and have no configured or catalog idle figure, so all their energy is "
            "charged to their requests. Send `wattledger.device.idle_power_w` for them "
            "(docs/semantic-conventions.md).",
            icon=":material/warning:",
        )
    ui.kpis(frames_ops.fleet_kpis(summary), legend=True)
    shown = _devices(summary["device_id"].tolist())

    def build() -> object:
        series = frames_ops.device_series(data.device_hours(f))
        return charts.fleet_panels(series[series["device"].isin(shown)])

    ui.chart(
        build,  # type: ignore[arg-type]
        key="fleet.charts",
        cache_key=(f, tuple(shown)),
        width_px=None,
        alt_text="Power and utilization over time of the chosen devices",
    )
    ui.table(
        frames_ops.device_table(summary),
        "fleet.devices_table",
        "wattledger-devices.csv",
        title="Idle waste by device",
    )
    ui.table(
        frames_ops.idle_cost_by_hardware(data.hardware_efficiency(f)),
        "fleet.idle_cost",
        "wattledger-idle-cost.csv",
        title="Idle cost by hardware (USD)",
    )
    usage = frames.utilisation_table(data.route_summary(f))
    if not usage.empty:
        ui.table(
            usage,
            "fleet.utilisation",
            "wattledger-utilisation.csv",
            title="Roofline use by route (bandwidth and compute against peak)",
        )


render()
