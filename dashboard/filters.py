"""The filters shared by every page, in the sidebar: dates, tenant, service, workload, provider,
hardware and model. Widgets live in the router, so a choice survives a page switch.
"""

from __future__ import annotations

import datetime as dt

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
_ACTIVE = "filters.active"


def _show(value: str, field: str) -> str:
    if value == "":
        return {"hardware": "(hosted API)", "workloads": "(none)"}.get(field, "(none)")
    return value


def _day(value: object) -> dt.date:
    return pd.Timestamp(value).date()  # type: ignore[arg-type]


def sidebar() -> None:
    """Draw the filter widgets and remember the resulting :class:`RollupFilter`."""
    extent = data.extent()
    if int(extent["rollup_rows"]) == 0:
        st.session_state.pop(_ACTIVE, None)
        return
    first, last = _day(extent["first_day"]), _day(extent["last_day"])
    default = (max(first, last - dt.timedelta(days=DEFAULT_DAYS - 1)), last)
    st.sidebar.header("Filters")
    picked = st.sidebar.date_input(
        "Dates (UTC)",
        value=default,
        min_value=first,
        max_value=last,
        key="filters.dates",
        help=f"Data covers {first} to {last}. Changes are compared with the same number of "
        "days just before.",
    )
    dates = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,)
    start = dates[0] if dates else default[0]
    end = dates[-1] if dates else default[1]
    options = data.filter_options()
    chosen: dict[str, tuple[str, ...]] = {}
    for field, column in FILTER_DIMENSIONS:
        values = sorted(options[column].unique().tolist())

        def show(value: str, field: str = field) -> str:
            return _show(value, field)

        chosen[field] = tuple(
            st.sidebar.multiselect(
                LABELS[field],
                values,
                key=f"filters.{field}",
                format_func=show,
                placeholder="All",
            )
        )
    st.session_state[_ACTIVE] = RollupFilter(
        dt.datetime.combine(start, dt.time(), dt.UTC),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
        **chosen,
    )


def active() -> RollupFilter:
    """The filter the sidebar set on this run."""
    return st.session_state[_ACTIVE]


def days(f: RollupFilter) -> int:
    """Whole days the filter spans."""
    return max(1, round((f.end - f.start).total_seconds() / 86400))


def previous(f: RollupFilter) -> RollupFilter:
    """The same filter over the equally long period just before it (week over week by default)."""
    return f.shifted(-(f.end - f.start))
