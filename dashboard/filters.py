"""The filters shared by every page: dates, tenant, service, workload, provider, hardware and model.

They live in one **Filters** popover in the sidebar, drawn only while it is open (the widgets
cost more to render in the browser than most pages' content), with a one-line summary of what
is active under it. The chosen values are kept in session state outside the widgets, so they
survive closing the popover and switching pages.

A dashboard bound to a tenant (``[dashboard] tenant`` or a signed-in user's tenant) offers only
that tenant, and :func:`active` always restricts to it whatever the session state says.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from wattledger.analytics.queries.dashboard import FILTER_DIMENSIONS, RollupFilter
from wattledger.dashboard import data

DEFAULT_DAYS = 7
LABELS = {
    "tenants": "Tenant / team",
    "services": "Service",
    "workloads": "Workload",
    "providers": "Provider",
    "hardware": "Hardware",
    "llm_models": "Model",
}
#: The popover's key: ``st.session_state[OPEN] = True`` opens it (tests do).
OPEN = "filters.open"
INTERACTIVE = "ui.interactive"
_ACTIVE = "filters.active"
_SAVED = "filters.saved."  # + field name, or "dates", or INTERACTIVE: values kept while closed


def _show(value: str, field: str) -> str:
    if value == "":
        return {"hardware": "(hosted API)", "workloads": "(none)"}.get(field, "(none)")
    return value


def _day(value: object) -> dt.date:
    return pd.Timestamp(value).date()  # type: ignore[arg-type]


def _restore(key: str, default: Any) -> None:
    """Give a widget about to be drawn its kept value (widget state is dropped while closed)."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(_SAVED + key, default)


def _keep(key: str, value: Any) -> None:
    st.session_state[_SAVED + key] = value


def _changed(key: str) -> None:
    """Widget callback: keep the new value before the script runs, so the popover's label and
    every query of this run use it."""
    value = st.session_state[key]
    _keep(key, tuple(value) if isinstance(value, (tuple, list)) else value)


def _widgets(first: dt.date, last: dt.date, default: tuple[dt.date, dt.date]) -> None:
    """The filter widgets, inside the open popover; their values are kept on every run."""
    tenant = data.bound_tenant()
    _restore("filters.dates", default)
    picked = st.date_input(
        "Dates (UTC)",
        min_value=first,
        max_value=last,
        key="filters.dates",
        on_change=_changed,
        args=("filters.dates",),
        help=f"Data covers {first} to {last}. Changes are compared with the same number of "
        "days just before.",
    )
    _keep("filters.dates", tuple(picked) if isinstance(picked, (tuple, list)) else (picked,))
    options = data.filter_options()
    for field, column in FILTER_DIMENSIONS:
        key = f"filters.{field}"
        values = sorted(options[column].unique().tolist())
        if field == "tenants" and tenant is not None:
            values = [tenant]
        _restore(key, [])
        st.session_state[key] = [v for v in st.session_state[key] if v in values]

        def show(value: str, field: str = field) -> str:
            return _show(value, field)

        chosen = st.multiselect(
            LABELS[field],
            values,
            key=key,
            on_change=_changed,
            args=(key,),
            format_func=show,
            placeholder="All" if field != "tenants" or tenant is None else tenant,
            disabled=field == "tenants" and tenant is not None,
        )
        _keep(key, list(chosen))
    _restore(INTERACTIVE, False)
    on = st.toggle(
        "Interactive charts and tables",
        key=INTERACTIVE,
        on_change=_changed,
        args=(INTERACTIVE,),
        help="Tooltips, zoom and sortable tables; pages load more slowly.",
    )
    _keep(INTERACTIVE, on)


def _dates_label(f: RollupFilter, default: bool) -> str:
    shown = f"{f.start:%b %d} – {(f.end - dt.timedelta(days=1)):%b %d}"
    return f"last {DEFAULT_DAYS} days, {shown}" if default else shown


def _summary(f: RollupFilter) -> str:
    """The active dimension filters in one line ("" when none)."""
    parts = []
    for field, _ in FILTER_DIMENSIONS:
        values = getattr(f, field)
        if values:
            shown = ", ".join(_show(v, field) for v in values[:3])
            more = f" +{len(values) - 3}" if len(values) > 3 else ""
            parts.append(f"{LABELS[field].lower()}: {shown}{more}")
    return " · ".join(parts)


def sidebar() -> None:
    """Draw the Filters popover and its summary, and remember the active :class:`RollupFilter`."""
    extent = data.extent()
    if int(extent["rollup_rows"]) == 0:
        st.session_state.pop(_ACTIVE, None)
        return
    first, last = _day(extent["first_day"]), _day(extent["last_day"])
    default = (max(first, last - dt.timedelta(days=DEFAULT_DAYS - 1)), last)
    dates = st.session_state.get(_SAVED + "filters.dates") or default
    start = min(max(dates[0], first), last)
    end = min(max(dates[-1], start), last)
    # Kept values (widget callbacks update them before the run), never the widgets' own state:
    # widgets exist only while the popover is open.
    chosen = {
        field: tuple(st.session_state.get(f"{_SAVED}filters.{field}", ()))
        for field, _ in FILTER_DIMENSIONS
    }
    tenant = data.bound_tenant()
    if tenant is not None:
        chosen["tenants"] = (tenant,)
    f = RollupFilter(
        dt.datetime.combine(start, dt.time(), dt.UTC),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
        **chosen,
    )
    st.session_state[_ACTIVE] = f
    label = f"Filters: {_dates_label(f, (start, end) == default)} (UTC)"
    with st.sidebar.popover(
        label, icon=":material/filter_list:", key=OPEN, on_change="rerun", width="stretch"
    ) as popover:
        if popover.open:
            _widgets(first, last, default)
    summary = _summary(f)
    if summary:
        st.sidebar.caption(summary)


def interactive() -> bool:
    """Whether the user chose interactive charts and tables (slower pages)."""
    return bool(st.session_state.get(_SAVED + INTERACTIVE, False))


def active() -> RollupFilter:
    """The filter set on this run, always restricted to the bound tenant if there is one."""
    f: RollupFilter = st.session_state[_ACTIVE]
    return data.scoped(f)


def days(f: RollupFilter) -> int:
    """Whole days the filter spans."""
    return max(1, round((f.end - f.start).total_seconds() / 86400))


def previous(f: RollupFilter) -> RollupFilter:
    """The same filter over the equally long period just before it (week over week by default)."""
    return f.shifted(-(f.end - f.start))
