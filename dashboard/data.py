"""Cached reads for the pages: the queries of ``analytics/queries/dashboard.py`` as DataFrames.

- Settings are loaded once per process (``st.cache_resource``); so is each read-only engine.
- Every result is cached in the process (``st.cache_resource``: shared by all sessions, no
  copy made on a hit; :func:`_frame` hands each caller its own copy). The cache key includes
  the source's version (a new snapshot is read at once) and, for PostgreSQL, the current
  ``cache_ttl_s`` window (it is read again at most every ``cache_ttl_s`` seconds; a snapshot
  file never changes, so its results stay until it is replaced or evicted). Arguments are
  keyed by their ``repr`` (filters are frozen dataclasses of dates and tuples), which Streamlit
  hashes faster than the objects themselves: a warm page run spends little time on its cache.
- Only rollups and marts are read, through read-only connections; a DuckDB warehouse is read
  through its published snapshot, so the dashboard never takes the writer's lock.
- A dashboard bound to a tenant (:func:`bound_tenant`) restricts **every** query to it here,
  whatever filter a page passes; filter values reach the database as bound parameters only.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pandas as pd
import sqlalchemy as sa
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from wattledger.analytics.queries import dashboard as queries
from wattledger.analytics.queries.dashboard import RollupFilter
from wattledger.config import Settings, load_settings
from wattledger.dashboard import auth
from wattledger.dashboard.source import Source, resolve_source
from wattledger.models import ReportRun, RollupDaily, explain_connection_error

#: Upper bound on how long any entry stays cached; the effective TTL is ``cache_ttl_s``.
_MAX_TTL_S = 3600
_Key = tuple[str, str, int]


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    """The settings, from ``WATTLEDGER_*`` variables and the config file, loaded once."""
    return load_settings()


def source() -> Source:
    """Where the data comes from right now (a snapshot's version changes when republished)."""
    return resolve_source(settings())


def bound_tenant() -> str | None:
    """The one tenant this session may read (settings or signed-in user), else ``None``."""
    return auth.bound_tenant(settings().dashboard)


def scoped(f: RollupFilter) -> RollupFilter:
    """``f`` restricted to the bound tenant, if there is one (an unbound ``f`` is unchanged)."""
    tenant = bound_tenant()
    if tenant is None:
        return f
    return dataclasses.replace(f, tenants=(tenant,))


def _tenants(tenants: tuple[str, ...]) -> tuple[str, ...]:
    tenant = bound_tenant()
    return tenants if tenant is None else (tenant,)


#: Queries without a tenant parameter, and how to restrict them to one tenant.
_TENANT_COLUMN = {
    "data_extent": RollupDaily.tenant,
    "filter_options": RollupDaily.tenant,
    "report_runs": ReportRun.tenant,
}


def _dispose(engine: Engine) -> None:
    engine.dispose()


@st.cache_resource(show_spinner=False, on_release=_dispose)
def _engine(url: str) -> Engine:
    from wattledger.analytics.marts import snapshot_engine
    from wattledger.models import make_engine

    if url.startswith("duckdb"):
        return snapshot_engine(make_url(url).database)  # type: ignore[arg-type]
    return make_engine(url, read_only=True, pool_pre_ping=True, pool_size=2)


def cache_key() -> _Key:
    """What cached results depend on: the source, its version and the TTL window."""
    return _key()


def _key() -> _Key:
    src = source()
    if src.url is None:
        raise RuntimeError("no data source; pages check data.source() first")
    if src.kind == "snapshot":  # a snapshot never changes; a new one has a new version
        return src.url, src.version, 0
    epoch = int(time.time() // settings().dashboard.cache_ttl_s)
    return src.url, src.version, epoch


@st.cache_resource(ttl=_MAX_TTL_S, max_entries=512, show_spinner=False)
def _cached(
    key: _Key, query: str, ident: str, tenant: str | None, _args: tuple[Any, ...]
) -> pd.DataFrame:
    url = key[0]
    select: sa.Select[Any] = getattr(queries, query)(*_args)
    if tenant is not None and query in _TENANT_COLUMN:
        select = select.where(_TENANT_COLUMN[query] == tenant)
    try:
        with _engine(url).connect() as conn:
            result = conn.execute(select)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    except DBAPIError as e:
        raise explain_connection_error(url, e) from e


def _frame(query: str, *args: Any) -> pd.DataFrame:
    args = tuple(scoped(a) if isinstance(a, RollupFilter) else a for a in args)
    return _cached(_key(), query, repr(args), bound_tenant(), args).copy()


@st.cache_resource(ttl=_MAX_TTL_S, max_entries=128, show_spinner=False)
def _derived(key: _Key, name: str, ident: str, tenant: str | None, _fn: Any) -> Any:
    return _fn()


def derived(name: str, fn: Any, *args: Any) -> Any:
    """``fn()`` — a computation on query results — cached like the queries themselves.

    ``name`` and ``args`` (hashable: filters, choices) identify the result; ``fn`` runs only
    on a miss. Callers must not modify the returned object.
    """
    return _derived(_key(), name, repr(args), bound_tenant(), fn)


def extent() -> pd.Series:
    """First/last rollup day, newest computation, row count and the analytics watermark."""
    return _frame("data_extent").iloc[0]


def filter_options() -> pd.DataFrame:
    """Every combination of tenant, service, workload, provider, hardware and model."""
    return _frame("filter_options")


def period_totals(f: RollupFilter) -> pd.Series:
    """Totals and ratios over the filtered period (one row)."""
    return _frame("period_totals", f).iloc[0]


def daily_totals(f: RollupFilter) -> pd.DataFrame:
    """Per-day totals for trend charts."""
    return _frame("daily_totals", f)


def spend_by_service(f: RollupFilter) -> pd.DataFrame:
    """Spend per service × tenant × workload × model."""
    return _frame("spend_by_service", f)


def route_summary(f: RollupFilter) -> pd.DataFrame:
    """Cost, efficiency and latency per route."""
    return _frame("route_summary", f)


def hardware_efficiency(f: RollupFilter) -> pd.DataFrame:
    """Tokens per joule per provider × hardware."""
    return _frame("hardware_efficiency", f)


def workload_slo(f: RollupFilter) -> pd.DataFrame:
    """SLO compliance and latency per workload."""
    return _frame("workload_slo", f)


def latency_hours(f: RollupFilter) -> pd.DataFrame:
    """Hourly latency quantiles per workload × route."""
    return _frame("latency_hours", f)


def recommendations(
    statuses: tuple[str, ...], tenants: tuple[str, ...], workloads: tuple[str, ...]
) -> pd.DataFrame:
    """Recommendations with the given statuses (all when empty)."""
    return _frame("recommendations", statuses, _tenants(tenants), workloads)


def device_hours(f: RollupFilter) -> pd.DataFrame:
    """Per device-hour ledger in the filtered period (tenant and hardware filters apply)."""
    f = scoped(f)
    return _frame("device_hours", f.start, f.end, f.tenants, f.hardware)


def device_summary(f: RollupFilter) -> pd.DataFrame:
    """Per device totals in the filtered period (tenant and hardware filters apply)."""
    f = scoped(f)
    return _frame("device_summary", f.start, f.end, f.tenants, f.hardware)


def quarantined_requests(f: RollupFilter) -> int:
    """Requests in the filtered period (and tenants) that analytics quarantined."""
    f = scoped(f)
    return int(_frame("quarantined_requests", f.start, f.end, f.tenants).iloc[0, 0])


def report_runs() -> pd.DataFrame:
    """Past weekly report runs."""
    return _frame("report_runs")
