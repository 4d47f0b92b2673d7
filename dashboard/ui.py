"""Building blocks every page shares: KPI rows, downloadable tables, empty and error states.

Every widget gets a namespaced key (``<page>.<name>``) so tests find it by key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from wattledger._version import __version__
from wattledger.analytics.queries.dashboard import RollupFilter
from wattledger.dashboard import data, filters, fmt
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


INTERACTIVE = "ui.interactive"
#: Rows a static table shows; the CSV always has them all.
MAX_TABLE_ROWS = 25


def interactive() -> bool:
    """Whether the user chose interactive charts and tables (slower pages)."""
    return bool(st.session_state.get(INTERACTIVE, False))


def _column_config(df: pd.DataFrame) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in df.columns:
        kind = _kind(name)
        if kind == "usd_mtok":
            config[name] = st.column_config.NumberColumn(format="$%.4f")
        elif kind == "usd":
            config[name] = st.column_config.NumberColumn(format="dollar")
        elif kind in _FORMATS:
            config[name] = st.column_config.NumberColumn(format=_FORMATS[kind][1])
    return config


_COUNTS = (
    "Requests",
    "Tokens",
    "Output tokens",
    "Requests judged",
    "Requests within SLO",
    "Attempts",
    "requests",
)
#: kind → (Python format for static tables, printf format for interactive ones)
_FORMATS = {
    "energy": ("{:,.3f}", "%.3f"),
    "ratio": ("{:,.4f}", "%.4f"),
    "whole": ("{:,.0f}", "%.0f"),
    "tenth": ("{:,.1f}", "%.1f"),
    "count": ("{:,.0f}", "localized"),
}


def _kind(name: str) -> str | None:
    if "per 1M tokens (USD)" in name:
        return "usd_mtok"
    if "(USD" in name:
        return "usd"
    if "(kWh" in name or "(kg" in name:
        return "energy"
    if "(tokens/J)" in name:
        return "ratio"
    if "(ms)" in name or "(W)" in name or name.endswith("_ms"):
        return "whole"
    if "(%)" in name or "(h)" in name:
        return "tenth"
    if name in _COUNTS:
        return "count"
    return None


def _static(df: pd.DataFrame) -> Any:
    formats: dict[str, Any] = {}
    for name in df.columns:
        kind = _kind(name)
        if kind == "usd_mtok":
            formats[name] = fmt.usd_mtok
        elif kind == "usd":
            formats[name] = fmt.usd
        elif kind in _FORMATS:
            formats[name] = _FORMATS[kind][0]
    return df.style.format(formats, na_rep="–").hide(axis="index")


def table(df: pd.DataFrame, key: str, filename: str) -> None:
    """A table with units in its headers and a "Download CSV" button (all rows, full precision).

    Static (fast) by default, the first :data:`MAX_TABLE_ROWS` rows; interactive (sortable,
    scrollable) when the sidebar toggle is on. The container has ``key`` (tests find the table
    by it); the button has ``<key>.csv``.
    """
    with st.container(key=key):
        if interactive():
            st.dataframe(df, hide_index=True, column_config=_column_config(df))
        else:
            st.table(_static(df.head(MAX_TABLE_ROWS)))
            if len(df) > MAX_TABLE_ROWS:
                st.caption(f"First {MAX_TABLE_ROWS} of {len(df):,} rows; the CSV has them all.")
        st.download_button(
            "Download CSV",
            data=df.to_csv(index=False).encode(),
            file_name=filename,
            mime="text/csv",
            key=f"{key}.csv",
            on_click="ignore",
            icon=":material/download:",
        )


@st.cache_data(max_entries=256, show_spinner=False)
def _svg(spec_json: str) -> str:
    import vl_convert

    return str(vl_convert.vegalite_to_svg(json.loads(spec_json)))


def download(df: pd.DataFrame, key: str, filename: str, what: str) -> None:
    """Only a CSV download, for tables too long to read on screen."""
    st.download_button(
        f"Download {what} as CSV ({len(df):,} rows)",
        data=df.to_csv(index=False).encode(),
        file_name=filename,
        mime="text/csv",
        key=f"{key}.csv",
        on_click="ignore",
        icon=":material/download:",
    )


def chart(c: alt.Chart | alt.LayerChart | alt.FacetChart, key: str, *, width_px: int = 560) -> None:
    """An Altair chart: drawn to SVG on the server (fast), or interactive when toggled on."""
    if interactive():
        st.altair_chart(c, key=key, width="stretch")
        return
    with alt.data_transformers.disable_max_rows():
        spec = c.properties(width=width_px).to_json(validate=False)
    with st.container(key=key):
        st.image(_svg(spec), width="content")


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
