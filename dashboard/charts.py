"""Altair charts for the pages. Axis titles carry units; time axes are UTC."""

from __future__ import annotations

import altair as alt
import numpy as np
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


#: Size of the cost-vs-latency plot (its labels are placed for it) and of its label text.
SCATTER_WIDTH, SCATTER_HEIGHT = 1000, 380
_LABEL_PX, _CHAR_PX, _LINE_PX = 11, 6.2, 13


def scatter_domains(points: pd.DataFrame) -> tuple[tuple[float, float], tuple[float, float]]:
    """The x (latency, linear) and y (cost, log) domains of the scatter, with room around the
    points; fixed, so label positions can be computed in pixels before Vega draws them."""
    x, y = points["latency_ms"].astype(float), points["cost_per_mtok_usd"].astype(float)
    pad = max((x.max() - x.min()) * 0.08, 1.0)
    y_low = max(float(y[y > 0].min()) if (y > 0).any() else 1e-6, 1e-9)
    y_high = max(float(y.max()), y_low)
    return (float(x.min() - pad), float(x.max() + pad)), (y_low / 1.6, y_high * 1.6)


def place_labels(points: pd.DataFrame) -> pd.DataFrame:
    """``points`` with where each route's label goes: ``label_y`` (in cost units) and ``side``
    (``right`` or ``left`` of the dot). Labels are placed top to bottom, each on its dot's line
    if that is free on either side, else moved up or down a line at a time (a leader line then
    joins it to its dot); one with no free place within three lines is left out (``side``
    empty; the Routes table has every route)."""
    out = points.copy()
    out["label_y"], out["side"] = out["cost_per_mtok_usd"].astype(float), ""
    if out.empty:
        return out
    (x0, x1), (y0, y1) = scatter_domains(out)
    ly0, ly1 = np.log10(y0), np.log10(y1)

    def x_px(v: float) -> float:
        return (v - x0) / (x1 - x0) * SCATTER_WIDTH

    def y_px(v: float) -> float:
        return SCATTER_HEIGHT - (np.log10(max(v, y0)) - ly0) / (ly1 - ly0) * SCATTER_HEIGHT

    placed: list[tuple[float, float, float, float]] = []
    order = sorted(out.index, key=lambda i: (y_px(out.at[i, "cost_per_mtok_usd"]), i))
    for i in order:
        px, py = x_px(out.at[i, "latency_ms"]), y_px(out.at[i, "cost_per_mtok_usd"])
        width = len(str(out.at[i, "route"])) * _CHAR_PX
        for step in (0, 1, -1, 2, -2, 3, -3):
            top = py + step * _LINE_PX - _LINE_PX / 2
            found = None
            for side, left in (("right", px + 9), ("left", px - 9 - width)):
                box = (left, top, left + width, top + _LINE_PX)
                inside = left >= 0 and box[2] <= SCATTER_WIDTH
                inside = inside and top >= 0 and box[3] <= SCATTER_HEIGHT
                if inside and not any(_overlap(box, other) for other in placed):
                    found = side, box
                    break
            if found is not None:
                side, box = found
                placed.append(box)
                if step:  # on its own line the label keeps the dot's exact value
                    share = (SCATTER_HEIGHT - top - _LINE_PX / 2) / SCATTER_HEIGHT
                    out.at[i, "label_y"] = 10 ** (ly0 + share * (ly1 - ly0))
                out.at[i, "side"] = side
                break
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def route_scatter(points: pd.DataFrame, latency_title: str) -> alt.LayerChart | alt.FacetChart:
    """Cost per 1M tokens vs latency per route, with the Pareto front drawn as a step line and
    each route's label placed clear of the others (:func:`place_labels`)."""
    (x0, x1), (y0, y1) = scatter_domains(points)
    x_scale = alt.Scale(domain=[x0, x1], nice=False, zero=False)
    y_scale = alt.Scale(type="log", domain=[y0, y1], nice=False)
    base = alt.Chart(points, width=SCATTER_WIDTH, height=SCATTER_HEIGHT)
    dots = base.mark_circle(size=140, opacity=0.85).encode(
        x=alt.X("latency_ms:Q", title=latency_title, scale=x_scale),
        y=alt.Y(
            "cost_per_mtok_usd:Q",
            title="Cost per 1M tokens (USD, fully loaded, log scale)",
            scale=y_scale,
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
        .encode(
            x=alt.X("latency_ms:Q", scale=x_scale), y=alt.Y("cost_per_mtok_usd:Q", scale=y_scale)
        )
    )
    labelled = place_labels(points)[["route", "latency_ms", "cost_per_mtok_usd", "label_y", "side"]]
    moved = labelled[
        (labelled["side"] != "") & (labelled["label_y"] != labelled["cost_per_mtok_usd"])
    ]
    leaders = (
        alt.Chart(moved)
        .mark_rule(color="gray", strokeWidth=0.8, opacity=0.7)
        .encode(
            x=alt.X("latency_ms:Q", scale=x_scale),
            y=alt.Y("cost_per_mtok_usd:Q", scale=y_scale),
            y2="label_y:Q",
        )
    )
    layers = [front, leaders, dots]
    for side, align, dx in (("right", "left", 9), ("left", "right", -9)):
        rows = labelled[labelled["side"] == side]
        if not rows.empty:
            layers.append(
                alt.Chart(rows)
                .mark_text(align=align, dx=dx, fontSize=_LABEL_PX)
                .encode(
                    x=alt.X("latency_ms:Q", scale=x_scale),
                    y=alt.Y("label_y:Q", scale=y_scale),
                    text="route:N",
                )
            )
    return alt.layer(*layers)


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
