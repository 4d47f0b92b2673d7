"""Vendors & hardware: cost against latency per route, and tokens per joule per device type."""

from __future__ import annotations

import streamlit as st

from wattledger.dashboard import charts, data, frames, ui

LATENCY = {"p95 TTFT (ms)": "ttft_p95_s", "p95 ITL (ms)": "itl_p95_s"}


def render() -> None:
    """Draw the page."""
    st.title("Vendors & hardware")
    f = ui.ready()
    if f is None:
        return
    routes = data.route_summary(f)
    if routes.empty:
        ui.nothing_matches("routes")
        return
    ui.note(
        "A route is provider × hardware × model × quantization. Cost is fully loaded "
        "(API price, hardware time, energy and idle share); latency is the "
        "request-weighted mean of hourly p95s."
    )
    metric = ui.picker("Latency", list(LATENCY), "vendors.latency", "p95 TTFT (ms)")
    points = frames.route_points(routes, LATENCY[metric or "p95 TTFT (ms)"])
    hardware = frames.hardware_table(data.hardware_efficiency(f))
    if points.empty:
        st.info("No route has both a cost per token and a latency in this period.")
    # Both charts in one image: each image element costs browser time.
    ui.chart(
        lambda: charts.vendor_panels(points, metric or "p95 TTFT (ms)", hardware),
        key="vendors.charts",
        cache_key=(f, metric),
        width_px=None,
        alt_text="Cost per 1M tokens against latency per route, and tokens per joule by hardware",
    )
    ui.table(frames.route_table(routes), "vendors.routes", "wattledger-routes.csv", title="Routes")
    ui.table(
        hardware,
        "vendors.hardware",
        "wattledger-tokens-per-joule.csv",
        title="Tokens per joule by hardware",
        legend=True,
    )
    _utilisation(routes)


def _utilisation(routes: object) -> None:
    table = frames.utilisation_table(routes)  # type: ignore[arg-type]
    if table.empty:
        return
    ui.note(
        "How full the truck leaves: the share of peak memory bandwidth the measured decode "
        "steps use (bytes read per step at the mean batch / p50 ITL) and of peak FLOP/s the "
        "prefills use (a lower bound: TTFT includes queueing), against the catalog's roofline; "
        "beside it the what-if planner's prediction for the same route at batch 32."
    )
    ui.table(table, "vendors.utilisation", "wattledger-utilisation.csv", title="Roofline use")


render()
