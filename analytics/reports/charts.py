"""The weekly report's charts as PNG bytes, drawn headless with matplotlib's Agg canvas.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``,
so there is no global figure state and charts can be drawn from the scheduler's threads.
Modeled energy is drawn hatched, so a modeled figure never looks like a measured one.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from wattledger.analytics.reports.weekly import Efficiency, Totals

#: Width × height of every chart, inches, at :data:`DPI` (1200 × 560 px; shown 600 px wide).
SIZE_IN = (6.0, 2.8)
DPI = 200
COST_PARTS = (
    ("cost_api_usd", "Hosted API", "#4C72B0"),
    ("cost_hardware_usd", "Hardware", "#DD8452"),
    ("cost_energy_usd", "Energy", "#55A868"),
    ("cost_idle_usd", "Idle", "#C44E52"),
)


def _figure() -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, color="#666666")
    ax.set_axis_off()


def daily_cost_png(days: Sequence[dt.datetime], daily: dict[dt.datetime, Totals]) -> bytes:
    """Stacked bars of each day's cost by part (hosted API, hardware, energy, idle), USD.

    Args:
        days: The seven UTC days of the week, in order.
        daily: Totals per day; days missing from it are drawn as zero.
    """
    fig = _figure()
    ax = fig.subplots()
    if not daily:
        _empty(ax, "No traffic this week")
        return _png(fig)
    labels = [d.strftime("%a %d") for d in days]
    bottom = [0.0] * len(days)
    for attr, name, color in COST_PARTS:
        values = [float(getattr(daily[d], attr)) if d in daily else 0.0 for d in days]
        if any(values):
            ax.bar(labels, values, bottom=bottom, label=name, color=color, width=0.6)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("USD per day", fontsize=8)
    ax.set_title("Daily spend by cost part", fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False, ncols=4, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylim(0, max(bottom) * 1.3 or 1)
    return _png(fig)


def efficiency_png(rows: Sequence[Efficiency]) -> bytes:
    """Horizontal bars of output tokens per joule per provider × hardware; modeled hatched."""
    fig = _figure()
    ax = fig.subplots()
    known = [r for r in rows if r.totals.tokens_per_j is not None]
    if not known:
        _empty(ax, "No energy figures this week")
        return _png(fig)
    known = list(reversed(known))  # best at the top
    values = [float(r.totals.tokens_per_j or 0) for r in known]
    bars = ax.barh([r.label for r in known], values, color="#4C72B0", height=0.6)
    for bar, row in zip(bars, known, strict=True):
        basis = row.totals.energy_basis
        if basis != "measured":
            bar.set_hatch("///")
            bar.set_facecolor("#A9BCE0")
        ax.annotate(
            f" {bar.get_width():.2f} ({basis})",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            va="center",
            fontsize=7,
        )
    ax.set_xlabel("output tokens per joule", fontsize=8)
    ax.set_title("Efficiency leaderboard (hatched: modeled energy)", fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    ax.set_xlim(0, max(values) * 1.35)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)
