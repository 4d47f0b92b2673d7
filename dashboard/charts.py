"""Altair charts for the pages. Axis titles carry units; time axes are UTC."""

from __future__ import annotations

import altair as alt
import pandas as pd

from wattledger.dashboard import frames

_DAY = alt.X("day:T", title="Day (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%b %d"))
_DAY_BAND = alt.X(
    "utcyearmonthdate(day):O", title="Day (UTC)", axis=alt.Axis(format="%b %d", labelAngle=0)
)
_HOUR = alt.X("bucket_start:T", title="Hour (UTC)", scale=alt.Scale(type="utc"))
_HEIGHT = 260


def stacked_daily(long: pd.DataFrame, value: str, color: str, title: str) -> alt.Chart:
    """Stacked daily bars of ``value`` split by ``color``."""
    return (
        alt.Chart(long, height=_HEIGHT)
        .mark_bar()
        .encode(
            x=_DAY_BAND,
            y=alt.Y(f"{value}:Q", title=title, stack=True),
            color=alt.Color(f"{color}:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d"),
                alt.Tooltip(f"{color}:N"),
                alt.Tooltip(f"{value}:Q", format=",.4f"),
            ],
        )
    )


def daily_line(df: pd.DataFrame, value: str, title: str, fmt: str = ",.4f") -> alt.Chart:
    """One daily series as a line with points."""
    return (
        alt.Chart(frames.money_columns(df[["day", value]]), height=_HEIGHT)
        .mark_line(point=True)
        .encode(
            x=_DAY,
            y=alt.Y(f"{value}:Q", title=title),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d"),
                alt.Tooltip(f"{value}:Q", format=fmt),
            ],
        )
    )


def route_scatter(points: pd.DataFrame, latency_title: str) -> alt.LayerChart | alt.FacetChart:
    """Cost per 1M tokens vs latency per route, with the Pareto front drawn as a step line."""
    base = alt.Chart(points, height=380)
    dots = base.mark_circle(size=140, opacity=0.85).encode(
        x=alt.X("latency_ms:Q", title=latency_title, scale=alt.Scale(zero=False)),
        y=alt.Y(
            "cost_per_mtok_usd:Q",
            title="Cost per 1M tokens (USD, fully loaded, log scale)",
            scale=alt.Scale(type="log"),
        ),
        color=alt.Color("provider:N", title="Provider"),
        shape=alt.Shape("energy_source:N", title="Energy source"),
        tooltip=[
            alt.Tooltip("route:N"),
            alt.Tooltip("latency_ms:Q", title=latency_title, format=",.0f"),
            alt.Tooltip("cost_per_mtok_usd:Q", title="USD per 1M tokens", format="$,.4f"),
            alt.Tooltip("requests:Q", format=","),
            alt.Tooltip("energy_source:N"),
            alt.Tooltip("pareto:N"),
        ],
    )
    front = (
        alt.Chart(points[points["pareto"]].sort_values("latency_ms"))
        .mark_line(interpolate="step-after", strokeDash=[4, 3], color="gray")
        .encode(x="latency_ms:Q", y="cost_per_mtok_usd:Q")
    )
    labels = base.mark_text(align="left", dx=9, fontSize=11).encode(
        x="latency_ms:Q", y="cost_per_mtok_usd:Q", text="route:N"
    )
    return alt.layer(front, dots, labels)


def hardware_bars(table: pd.DataFrame) -> alt.Chart:
    """Tokens per joule per hardware, coloured by energy provenance."""
    return (
        alt.Chart(table.dropna(subset=["Tokens per joule (tokens/J)"]), height=_HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X("Tokens per joule (tokens/J):Q"),
            y=alt.Y("Hardware:N", sort="-x", title=None),
            color=alt.Color("Energy source:N"),
            tooltip=[
                alt.Tooltip("Hardware:N"),
                alt.Tooltip("Provider:N"),
                alt.Tooltip("Tokens per joule (tokens/J):Q"),
                alt.Tooltip("Energy source:N"),
            ],
        )
    )


def latency_box(long: pd.DataFrame, metric: str, title: str, slo_ms: float | None) -> alt.Chart:
    """Distribution of hourly latency quantiles per route, with the SLO as a rule."""
    box = (
        alt.Chart(long.dropna(subset=[metric]), height=_HEIGHT)
        .mark_boxplot(extent="min-max")
        .encode(x=alt.X(f"{metric}:Q", title=title), y=alt.Y("route:N", title=None))
    )
    if slo_ms is None:
        return box
    rule = alt.Chart(pd.DataFrame({"slo": [slo_ms]})).mark_rule(color="red").encode(x="slo:Q")
    return box + rule


def latency_lines(daily: pd.DataFrame, metric: str, title: str, slo_ms: float | None) -> alt.Chart:
    """Worst hourly latency quantile per day and route, with the SLO as a rule."""
    lines = (
        alt.Chart(daily, height=_HEIGHT)
        .mark_line(point=True, opacity=0.8)
        .encode(
            x=_DAY,
            y=alt.Y(f"{metric}:Q", title=title),
            color=alt.Color("route:N", title="Route", legend=alt.Legend(orient="bottom")),
        )
    )
    if slo_ms is None:
        return lines
    rule = alt.Chart(pd.DataFrame({"slo": [slo_ms]})).mark_rule(color="red").encode(y="slo:Q")
    return lines + rule


def device_lines(series: pd.DataFrame, value: str, title: str, legend: str = "bottom") -> alt.Chart:
    """One hourly line per device; ``legend`` is where the device legend goes."""
    return (
        alt.Chart(series.dropna(subset=[value]), height=_HEIGHT)
        .mark_line(opacity=0.85)
        .encode(
            x=_HOUR,
            y=alt.Y(f"{value}:Q", title=title),
            color=alt.Color(
                "device:N", title="Device", legend=alt.Legend(orient=legend, labelLimit=320)
            ),
            strokeDash=alt.StrokeDash("source:N", title="Energy source"),
            tooltip=[
                alt.Tooltip("device:N"),
                alt.Tooltip("source:N"),
                alt.Tooltip(f"{value}:Q", format=",.1f"),
            ],
        )
    )


def overview_panels(daily: pd.DataFrame) -> alt.VConcatChart:
    """The Overview's four daily charts in one figure, each titled with its unit."""
    w = 500
    spend = stacked_daily(frames.daily_cost_parts(daily), "usd", "part", "Spend (USD)")
    energy = stacked_daily(frames.daily_energy_parts(daily), "kwh", "provenance", "Energy (kWh)")
    cost = daily_line(frames.money_columns(daily), "cost_per_mtok_blended_usd", "USD per 1M tokens")
    tpj = daily_line(daily, "tokens_per_j", "Output tokens per joule")
    return alt.vconcat(
        alt.hconcat(
            spend.properties(title="Spend per day (USD)", width=w),
            energy.properties(title="Energy per day (kWh), by provenance", width=w),
        ).resolve_scale(color="independent"),
        alt.hconcat(
            cost.properties(title="Cost per 1M tokens (USD, blended)", width=w),
            tpj.properties(title="Tokens per joule (tokens/J)", width=w),
        ),
    ).configure_title(anchor="start", fontSize=15)


def fleet_panels(series: pd.DataFrame) -> alt.VConcatChart:
    """Mean power (W) over mean utilization (%) per device-hour, one legend on the right."""
    w = 760
    return alt.vconcat(
        device_lines(series, "power_w", "Power (W)", "right").properties(
            title="Mean power per hour (W)", width=w, height=220
        ),
        device_lines(series, "utilization_pct", "Utilization (%)", "right").properties(
            title="Mean utilization per hour (%)", width=w, height=220
        ),
    ).configure_title(anchor="start", fontSize=15)


def _titled(
    chart: alt.TopLevelMixin, title: str, subtitle: str = "", width: int = 1000
) -> alt.Chart:
    return chart.properties(  # type: ignore[attr-defined,no-any-return]
        title=alt.TitleParams(title, subtitle=subtitle or alt.Undefined), width=width
    )


def vendor_panels(
    points: pd.DataFrame, latency_title: str, hardware: pd.DataFrame
) -> alt.VConcatChart:
    """Cost vs latency with the Pareto front, over tokens per joule by hardware: one figure."""
    parts = []
    if not points.empty:
        parts.append(
            _titled(
                route_scatter(points, latency_title),
                "Cost vs latency, with the Pareto front",
                "Routes on the dashed line are not beaten on both cost and latency by any "
                "other route.",
            )
        )
    parts.append(_titled(hardware_bars(hardware), "Tokens per joule by hardware"))
    return (
        alt.vconcat(*parts, spacing=30)
        .resolve_scale(color="independent", shape="independent")
        .configure_title(anchor="start", fontSize=15)
    )


def workload_panels(
    hours: pd.DataFrame, daily: pd.DataFrame, metric: str, title: str, slo_ms: float | None
) -> alt.VConcatChart:
    """Distribution of hourly values per route over the worst hour of each day: one figure."""
    slo = " The red line is the workload's SLO." if slo_ms else ""
    return alt.vconcat(
        _titled(
            latency_box(hours, metric, title, slo_ms),
            f"Distribution of hourly {title} per route",
            "Each value is one hour of one route (rollups keep hourly quantiles, not single "
            "requests)." + slo,
        ),
        _titled(latency_lines(daily, metric, title, slo_ms), "Worst hour of each day, per route"),
        spacing=30,
    ).configure_title(anchor="start", fontSize=15)
