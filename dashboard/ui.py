"""Building blocks every page shares: KPI rows, downloadable tables, empty and error states.

Every widget gets a namespaced key (``<page>.<name>``) so tests find it by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from wattledger._version import __version__
from wattledger.analytics.queries.dashboard import RollupFilter
from wattledger.dashboard import data, filters
from wattledger.dashboard.frames import Kpi
from wattledger.dashboard.source import GET_DATA_HINT, Source
from wattledger.errors import WattledgerError

PROVENANCE_NOTE = (
    "**measured** = hardware energy counters or integrated power samples · **modeled** = an "
    "estimate (published energy per token, TDP × utilization) · **predicted** = the what-if "
    "planner. Measured and modeled energy are never added up without showing both."
)


def kpis(items: Sequence[Kpi]) -> None:
    """One row of headline metrics."""
    for column, k in zip(st.columns(len(items)), items, strict=True):
        column.metric(k.label, k.value, delta=k.delta, delta_color=k.delta_color, help=k.help)  # type: ignore[arg-type]
        if k.note:
            column.caption(k.note)


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+-!|$~"})


def md_escape(text: str) -> str:
    """Text shown literally by ``st.markdown`` (no emphasis, links or LaTeX from ``$``)."""
    return text.translate(_MARKDOWN_SPECIAL)


def _column_config(df: pd.DataFrame) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in df.columns:
        if "per 1M tokens (USD)" in name:
            config[name] = st.column_config.NumberColumn(format="$%.4f")
        elif "(USD" in name:
            config[name] = st.column_config.NumberColumn(format="dollar")
        elif "(kWh" in name or "(kg" in name:
            config[name] = st.column_config.NumberColumn(format="%.3f")
        elif "(tokens/J)" in name:
            config[name] = st.column_config.NumberColumn(format="%.4f")
        elif "(ms)" in name or "(W)" in name:
            config[name] = st.column_config.NumberColumn(format="%.0f")
        elif "(%)" in name or "(h)" in name:
            config[name] = st.column_config.NumberColumn(format="%.1f")
        elif name in (
            "Requests",
            "Tokens",
            "Output tokens",
            "Requests judged",
            "Requests within SLO",
            "Attempts",
        ):
            config[name] = st.column_config.NumberColumn(format="localized")
    return config


def table(df: pd.DataFrame, key: str, filename: str) -> None:
    """A table with units in its headers and a "Download CSV" button (full precision).

    The container has ``key`` (tests find the table by it); the button has ``<key>.csv``.
    """
    with st.container(key=key):
        st.dataframe(df, hide_index=True, column_config=_column_config(df))
        st.download_button(
            "Download CSV",
            data=df.to_csv(index=False).encode(),
            file_name=filename,
            mime="text/csv",
            key=f"{key}.csv",
            on_click="ignore",
            icon=":material/download:",
        )


def empty_state(problem: str = "") -> None:
    """No data yet: say why, and how to get some."""
    st.info(
        "**No data yet.** "
        + (problem + " " if problem else "")
        + "\n\nTo see this dashboard with data:\n\n"
        + "- demo: `wattledger simulate --backfill-days 14`, then `wattledger dashboard`\n"
        + "- your traffic: add `wattledger.init()` to a service (see docs/sdk.md), run "
        + "`wattledger serve`, and reload this page after the first analytics run.\n\n"
        + GET_DATA_HINT,
        icon=":material/hourglass_empty:",
    )


def nothing_matches(what: str) -> None:
    """The data exists but the filters leave nothing of this kind."""
    st.info(
        f"No {what} match the filters. Widen the date range or clear filters in the sidebar.",
        icon=":material/filter_alt_off:",
    )


def error_state(error: WattledgerError) -> None:
    """A database or configuration problem, with what to do about it."""
    st.error(f"**{error.message}**" + (f"\n\n{error.hint}" if error.hint else ""))


def ready() -> RollupFilter | None:
    """The active filter, or ``None`` after showing the empty state (no source, no rollups)."""
    src = data.source()
    if src.url is None:
        empty_state(src.problem)
        return None
    if int(data.extent()["rollup_rows"]) == 0:
        empty_state("The warehouse has no rollups yet.")
        return None
    return filters.active()


def provenance_note() -> None:
    """The legend for measured / modeled / predicted."""
    st.caption(PROVENANCE_NOTE)


def footer(src: Source) -> None:
    """Where the data came from; the last element of every page."""
    st.divider()
    st.caption(f"Data: {src.label}. Times in UTC. wattledger {__version__}.")
