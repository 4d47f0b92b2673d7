"""Workloads: SLO compliance and the distribution of TTFT and ITL per route."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from wattledger.dashboard import charts, data, fmt, frames, ui
from wattledger.dashboard.frames import Kpi

METRICS = {
    "p95 TTFT (ms)": ("ttft_p95_ms", "ttft_p95_s"),
    "p50 TTFT (ms)": ("ttft_p50_ms", None),
    "p95 ITL (ms)": ("itl_p95_ms", "itl_p95_s"),
    "p50 ITL (ms)": ("itl_p50_ms", None),
}


def render() -> None:
    """Draw the page."""
    st.title("Workloads")
    f = ui.ready()
    if f is None:
        return
    rows = data.workload_slo(f)
    if rows.empty:
        ui.nothing_matches("workloads")
        return
    slos = data.settings().analytics.slos
    table = frames.workload_table(rows, slos)
    judged, met = int(rows["slo_judged_requests"].sum()), int(rows["slo_met_requests"].sum())
    ui.kpis(
        [
            Kpi(
                "SLO compliance, all workloads with an SLO (%)",
                fmt.pct(met / judged if judged else None),
                help=f"{fmt.count(met)} of {fmt.count(judged)} requests met their workload's "
                "TTFT and ITL objectives (measured per request).",
                note="measured per request",
            )
        ]
    )
    if not slos:
        st.info(
            "No workload has an SLO. Add one under `[analytics.slos.<workload>]` "
            "(`ttft_p95_s`, `itl_p95_s`) in wattledger.toml to track compliance."
        )
    ui.table(
        table, "workloads.slo", "wattledger-workload-slo.csv", what="SLO compliance by workload"
    )
    ui.heading("Latency distribution")
    # Workloads with an SLO first, busiest first, so the default view shows an objective.
    busy = dict(zip(rows["workload"], rows["requests"], strict=True))
    options = sorted(busy, key=lambda w: (w not in slos, -int(busy[w]), w))
    workload = ui.picker(
        "Workload", options, "workloads.workload", options[0], format_func=lambda w: w or "(none)"
    )
    metric = ui.picker("Quantity", list(METRICS), "workloads.metric", next(iter(METRICS)))
    column, slo_attr = METRICS[metric]
    slo = slos.get(workload)
    target = getattr(slo, slo_attr) if slo is not None and slo_attr else None

    def for_workload() -> tuple[pd.DataFrame, bytes]:
        long = frames.latency_long(data.latency_hours(f))
        long = long[long["workload"] == workload]
        csv = long.rename(columns={"bucket_start": "Hour (UTC)"}).to_csv(index=False).encode()
        return long, csv

    hours, csv = data.derived("workloads.hours", for_workload, f, workload)
    slo_ms = target * 1000 if target else None
    daily = data.derived(
        "workloads.daily", lambda: frames.latency_daily_worst(hours, column), f, workload, column
    )
    # Both charts in one image: each image element costs browser time.
    ui.chart(
        lambda: charts.workload_panels(hours, daily, column, metric, slo_ms),
        key="workloads.charts",
        cache_key=(f, workload, metric, slo_ms),
        width_px=None,
        alt_text=f"{metric} per route for workload {workload or '(none)'}: hourly, and the "
        "worst hour of each day",
    )
    ui.download(
        csv,
        len(hours),
        "workloads.hours",
        "wattledger-latency-hourly.csv",
        "Hourly latency per route",
    )


render()
