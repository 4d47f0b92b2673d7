"""Building blocks every page shares: KPI rows, downloadable tables, empty and error states.

Every widget gets a namespaced key (``<page>.<name>``) so tests find it by key.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


KPI_CSS = (
    "<style>.wl-kpis{display:flex;flex-wrap:wrap;gap:1rem 2rem;margin:.25rem 0 .5rem}"
    ".wl-kpi{flex:1 1 10rem;min-width:9rem}.wl-kpi .l{font-size:.875rem;color:rgba(49,51,63,.75)}"
    ".wl-kpi .v{font-size:2rem;line-height:1.25;color:rgb(49,51,63)}"
    ".wl-kpi .d{font-size:.875rem;font-weight:600}.wl-kpi .d.good{color:rgb(9,171,59)}"
    ".wl-kpi .d.bad{color:rgb(255,43,43)}.wl-kpi .d.off{color:rgba(49,51,63,.6)}"
    ".wl-kpi .n{font-size:.8rem;color:rgba(49,51,63,.6)}"
    ".wl-kpi .l abbr{text-decoration:underline dotted;cursor:help}"
    ".wl-legend{font-size:.8rem;color:rgba(49,51,63,.6);margin:0}</style>"
)


def _delta_class(k: Kpi) -> str:
    if k.delta is None or k.delta_color == "off":
        return "off"
    up = not k.delta.startswith("-")
    return "good" if up == (k.delta_color == "normal") else "bad"


def kpi_html(items: Sequence[Kpi]) -> str:
    """One row of headline numbers as HTML: label (its unit), value, change, note.

    The explanation is the label's tooltip. Each figure carries ``data-label``, ``data-value``,
    ``data-delta`` and ``data-note`` so tests read exactly what is shown.
    """
    cards = []
    for k in items:
        e = html.escape
        delta = k.delta or ""
        arrow = "" if not delta else ("▼ " if delta.startswith("-") else "▲ ")
        cards.append(
            f'<div class="wl-kpi" data-testid="wlKpi" data-label="{e(k.label)}" '
            f'data-value="{e(k.value)}" data-delta="{e(delta)}" data-note="{e(k.note or "")}">'
            + (
                f'<div class="l"><abbr title="{e(k.help)}">{e(k.label)}</abbr></div>'
                if k.help
                else f'<div class="l">{e(k.label)}</div>'
            )
            + f'<div class="v">{e(k.value)}</div>'
            + (f'<div class="d {_delta_class(k)}">{arrow}{e(delta)}</div>' if delta else "")
            + (f'<div class="n">{e(k.note)}</div>' if k.note else "")
            + "</div>"
        )
    return f'{KPI_CSS}<div class="wl-kpis">{"".join(cards)}</div>'


def kpis(items: Sequence[Kpi], *, legend: bool = False) -> None:
    """One row of headline metrics (one HTML element: cheaper in the browser than st.metric).

    ``legend`` adds the measured / modeled / predicted legend under the row.
    """
    note = f'<p class="wl-legend">{_md_to_html(PROVENANCE_NOTE)}</p>' if legend else ""
    st.html(kpi_html(items) + note)


def _md_to_html(text: str) -> str:
    """``**bold**`` and ```code``` of our own notes as HTML; everything else escaped.

    Data inside a note must not carry ``**`` or backticks (escape it with :func:`md_escape`,
    whose backslashes are dropped here)."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\\(.)", r"\1", out)


def note(text: str) -> None:
    """A short explanatory line under a heading, as plain HTML (cheaper than ``st.caption``)."""
    st.html(
        '<div style="font-size:.875rem;color:rgba(49,51,63,.6);margin:0" data-testid="wlNote">'
        f"{_md_to_html(text)}</div>"
    )


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+-!|$~"})


def md_escape(text: str) -> str:
    """Text shown literally by ``st.markdown`` (no emphasis, links or LaTeX from ``$``)."""
    return text.translate(_MARKDOWN_SPECIAL)


#: Rows a static table shows; the CSV always has them all.
MAX_TABLE_ROWS = 25


def interactive() -> bool:
    """Whether the user chose interactive charts and tables (slower pages)."""
    return filters.interactive()


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


def _formatter(name: str) -> Any:
    kind = _kind(name)
    if kind == "usd_mtok":
        return fmt.usd_mtok
    if kind == "usd":
        return fmt.usd
    if kind in _FORMATS:
        return _FORMATS[kind][0].format
    return str


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


#: Static tables are plain HTML: ``st.table`` renders every cell as Markdown, which costs more
#: browser time than the rest of a page. Numbers align right; ``–`` marks a missing value.
TABLE_CSS = (
    "<style>.wl-table{border-collapse:collapse;font-size:0.85rem;margin-bottom:0.5rem}"
    ".wl-table th,.wl-table td{border-bottom:1px solid rgba(49,51,63,.1);padding:.25rem .5rem;"
    "white-space:nowrap}.wl-table th{text-align:left;font-weight:600;color:rgba(49,51,63,.7)}"
    ".wl-table td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".wl-scroll{overflow-x:auto}.wl-title{font-size:1.25rem;font-weight:600;"
    "margin:1rem 0 .5rem;color:rgb(49,51,63)}.wl-note{font-size:.8rem;color:rgba(49,51,63,.6)}"
    "</style>"
)


def html_table(df: pd.DataFrame, title: str = "", note: str = "") -> str:
    """``df`` as an escaped HTML table, each column formatted by the unit in its header.

    ``title`` is drawn above it as a heading and ``note`` under it, in the same element.
    """
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    numeric = {c: pd.api.types.is_numeric_dtype(df[c]) or _kind(str(c)) is not None for c in df}
    formats = {c: _formatter(str(c)) for c in df.columns}
    rows = []
    for record in df.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(df.columns, record, strict=True):
            text = "–" if _missing(value) else formats[column](value)
            css = ' class="n"' if numeric[column] and not isinstance(value, bool) else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    heading = f'<div class="wl-title">{html.escape(title)}</div>' if title else ""
    below = f'<div class="wl-note">{note}</div>' if note else ""
    return (
        f'{TABLE_CSS}{heading}<div class="wl-scroll"><table class="wl-table"><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{below}"
    )


def table(
    df: pd.DataFrame,
    key: str,
    filename: str,
    *,
    title: str = "",
    legend: bool = False,
    what: str = "",
) -> None:
    """A table with units in its headers, offered as CSV (all rows, full precision) in the
    page's **Download CSV** popover (:func:`downloads`).

    Static (fast) by default, the first :data:`MAX_TABLE_ROWS` rows; interactive (sortable,
    scrollable) when the sidebar toggle is on. The container has ``key`` (tests find the table
    by it); its download button has ``<key>.csv`` and reads ``what`` (default the title).
    """
    more = (
        f"First {MAX_TABLE_ROWS} of {len(df):,} rows; the CSV has them all."
        if len(df) > MAX_TABLE_ROWS
        else ""
    )
    legend_html = _md_to_html(PROVENANCE_NOTE) if legend else ""
    with st.container(key=key):
        if interactive():
            if title:
                st.subheader(title)
            if legend:
                provenance_note()
            st.dataframe(df, hide_index=True, column_config=_column_config(df))
        else:
            # Title, table and notes in one element: each element costs browser time.
            note = " ".join(x for x in (html.escape(more), legend_html) if x)
            st.html(html_table(df.head(MAX_TABLE_ROWS), title, note))
    label = what or title or filename
    offer_csv(key, filename, label, len(df), lambda: df.to_csv(index=False).encode())


@st.cache_resource(max_entries=256, show_spinner=False)
def _svg(spec_json: str) -> str:
    import vl_convert

    return str(vl_convert.vegalite_to_svg(json.loads(spec_json)))


def svg_img(svg: str, alt: str) -> str:
    """An ``<img>`` holding ``svg`` as a data URI, for ``st.html``.

    ``st.html`` sanitises with DOMPurify's HTML profile, which drops inline ``<svg>`` but keeps
    an image's ``data:`` source. In the page's own HTML the chart costs the browser less than
    an ``st.image`` element (no media-file request, no image component code to load).
    """
    data = base64.b64encode(svg.encode()).decode("ascii")
    return (
        f'<img data-testid="wlChart" alt="{html.escape(alt)}" style="max-width:100%" '
        f'src="data:image/svg+xml;base64,{data}">'
    )


@st.cache_resource(ttl=3600, max_entries=256, show_spinner=False)
def _chart_html(ident: str, _build: Callable[[], Any], width_px: int | None, alt_text: str) -> str:
    with alt.data_transformers.disable_max_rows():
        c = _build()
        spec = (c.properties(width=width_px) if width_px else c).to_json(validate=False)
    return svg_img(_svg(spec), alt_text)


@dataclass(frozen=True)
class Download:
    """A table offered as CSV in the page's Download CSV popover."""

    key: str
    filename: str
    what: str
    rows: int
    csv: Callable[[], bytes]


_DOWNLOADS = "ui.downloads"


def begin_page() -> None:
    """Start a script run: forget the previous run's downloads (the router calls this)."""
    st.session_state[_DOWNLOADS] = []


def offer_csv(key: str, filename: str, what: str, rows: int, csv: Callable[[], bytes]) -> None:
    """Offer ``csv()`` (made only when the popover is open) as ``filename`` in :func:`downloads`;
    the button's key is ``<key>.csv``."""
    st.session_state.setdefault(_DOWNLOADS, []).append(Download(key, filename, what, rows, csv))


def download(csv: bytes, rows: int, key: str, filename: str, what: str) -> None:
    """Offer a CSV that no table shows (``rows`` rows), e.g. data too long to read on screen."""
    offer_csv(key, filename, what, rows, lambda: csv)


def downloads(page: str) -> None:
    """One **Download CSV** popover holding a button per table of the page.

    The buttons are drawn only while it is open: one popover button costs the browser less than
    a download button per table, and no CSV is made until someone asks. The popover's key is
    ``<page>.downloads``.
    """
    offered: list[Download] = st.session_state.get(_DOWNLOADS, [])
    if not offered:
        return
    with st.popover(
        "Download CSV",
        icon=":material/download:",
        key=f"{page}.downloads",
        on_change="rerun",
        help="Every table of this page as CSV: all rows, full precision.",
    ) as pop:
        if pop.open:
            for d in offered:
                st.download_button(
                    f"{d.what} ({d.rows:,} rows)",
                    data=d.csv(),
                    file_name=d.filename,
                    mime="text/csv",
                    key=f"{d.key}.csv",
                    on_click="ignore",
                    icon=":material/download:",
                )


def chart(
    build: Callable[[], alt.Chart | alt.LayerChart | alt.FacetChart | alt.ConcatChart],
    key: str,
    *,
    cache_key: tuple[Any, ...],
    width_px: int | None = 560,
    alt_text: str = "chart",
) -> None:
    """An Altair chart drawn to SVG on the server (fast), or interactive when toggled on.

    ``build`` makes the chart; it runs only when the image for ``cache_key`` (the data it shows:
    the source version, filter and choices) is not cached, so a warm page skips Altair.
    ``width_px=None`` keeps the widths the chart sets itself (concatenated charts).
    """
    if interactive():
        st.altair_chart(build(), key=key, width="stretch")
        return
    with st.container(key=key):
        ident = repr((data.cache_key(), data.bound_tenant(), key, *cache_key))
        st.html(_chart_html(ident, build, width_px, alt_text))


def picker(
    label: str,
    options: Sequence[Any],
    key: str,
    default: Any,
    *,
    multi: bool = False,
    format_func: Callable[[Any], str] = str,
    help: str | None = None,
) -> Any:
    """A choice shown as a button reading ``label: value`` that opens a popover to change it.

    The select widget (``key``) is drawn only while the popover (``<key>.open``) is open; the
    choice is kept in session state meanwhile. Returns the chosen option (a list if ``multi``).
    """
    saved = f"{key}.saved"
    current = st.session_state.get(key, st.session_state.get(saved, default))
    if multi:
        current = [v for v in current if v in options]
        shown = ", ".join(format_func(v) for v in current) or "all"
    else:
        current = current if current in options else default
        shown = format_func(current)
    with st.popover(f"{label}: {md_escape(shown)}", key=f"{key}.open", on_change="rerun") as pop:
        if pop.open:
            if key not in st.session_state:
                st.session_state[key] = current
            widget = st.multiselect if multi else st.selectbox
            current = widget(label, options, key=key, format_func=format_func, help=help)
    st.session_state[saved] = current
    return current


def cards_html(cards: Sequence[Any]) -> str:
    """Recommendation cards as one HTML element: title, saving, basis, explanation, risks, facts.

    One element for all cards: each Markdown element costs browser time.
    """
    e = html.escape
    out = []
    for i, c in enumerate(cards):
        risks = "".join(f"<li>{e(r)}</li>" for r in c.risks)
        out.append(
            f'<div class="wl-card" data-testid="wlCard" id="recs-card-{i}">'
            f"<p><b>{e(c.title)}</b><br>{e(c.saving)} · basis: <b>{e(c.basis)}</b></p>"
            f"<p>{e(c.explanation)}</p>"
            + (f"<p>Risks:</p><ul>{risks}</ul>" if risks else "")
            + f'<p class="f">{e(" · ".join(c.facts))}</p></div>'
        )
    css = (
        "<style>.wl-card{border:1px solid rgba(49,51,63,.2);border-radius:.5rem;"
        "padding:.75rem 1rem;margin-bottom:.75rem}.wl-card p{margin:0 0 .4rem}"
        ".wl-card ul{margin:0 0 .4rem 1.2rem}.wl-card .f{font-size:.85rem;"
        "color:rgba(49,51,63,.6);margin:0}</style>"
    )
    return css + "".join(out)


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


def heading(text: str) -> None:
    """A section heading, as plain HTML (``st.subheader`` renders Markdown with an anchor link,
    which costs more browser time)."""
    st.html(
        '<div style="font-size:1.5rem;font-weight:600;line-height:1.2;margin:1rem 0 .25rem;'
        f'color:rgb(49,51,63)" data-testid="wlHeading">{html.escape(text)}</div>'
    )


def provenance_note() -> None:
    """The legend for measured / modeled / predicted."""
    st.caption(PROVENANCE_NOTE)


def footer(src: Source) -> None:
    """Where the data came from; the last element of every page."""
    st.caption(f"Data: {src.label}. Times in UTC. wattledger {__version__}.")
