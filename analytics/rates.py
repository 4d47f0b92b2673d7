"""Resolve prices, tariffs and hardware rates into non-overlapping effective intervals.

The tables hold overlapping rows (list and contract prices, tenant-specific and catch-all,
site-specific and catch-all, each with a validity range). Which row applies to a request depends
on its time. Since these tables are small, the precedence is resolved here once per run into
intervals where exactly one row wins, and the cost query joins requests to them by time range
(fast on both backends), instead of ranking candidate rows per request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from wattledger.models import ALL_SITES, ALL_TENANTS, Device, EnergyTariff, HardwareRate, Price

FAR_FUTURE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)


def effective(
    rows: Sequence[dict[str, Any]], rank: Callable[[dict[str, Any]], tuple[Any, ...]]
) -> list[tuple[dt.datetime, dt.datetime, dict[str, Any]]]:
    """Split time at every row boundary and keep, on each piece, the valid row ranking highest.

    Adjacent pieces won by the same row are merged. ``valid_to`` None means open-ended.
    """
    bounds = sorted({r["valid_from"] for r in rows} | {r["valid_to"] or FAR_FUTURE for r in rows})
    out: list[tuple[dt.datetime, dt.datetime, dict[str, Any]]] = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        valid = [r for r in rows if r["valid_from"] <= lo and (r["valid_to"] or FAR_FUTURE) >= hi]
        if not valid:
            continue
        best = max(valid, key=rank)
        if out and out[-1][2] is best and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi, best)
        else:
            out.append((lo, hi, best))
    return out


def _rows(conn: Connection, model: type) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(model.__table__)).mappings()]


def _group(rows: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict:
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def effective_prices(conn: Connection) -> list[dict[str, Any]]:
    """Per (provider, model, tenant or ``*``): the winning price over time.

    Precedence: contract over list, the tenant's own over ``*``, then the newest valid_from.
    """
    out = []
    for (provider, model), rows in _group(
        _rows(conn, Price), lambda r: (r["provider"], r["llm_model"])
    ).items():
        for tenant in {r["tenant"] for r in rows} | {ALL_TENANTS}:
            mine = [r for r in rows if r["tenant"] in (tenant, ALL_TENANTS)]
            rank = _price_rank(tenant)
            for lo, hi, r in effective(mine, rank):
                out.append(
                    dict(
                        provider=provider,
                        llm_model=model,
                        tenant=tenant,
                        valid_from=lo,
                        valid_to=hi,
                        input_per_mtok_usd=r["input_per_mtok_usd"],
                        output_per_mtok_usd=r["output_per_mtok_usd"],
                        cached_input_per_mtok_usd=r["cached_input_per_mtok_usd"],
                        cache_write_per_mtok_usd=r.get("cache_write_per_mtok_usd"),
                    )
                )
    return out


def _price_rank(tenant: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def rank(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["origin"] == "contract", r["tenant"] == tenant, r["valid_from"])

    return rank


def _device_sites(conn: Connection) -> set[tuple[str, str]]:
    rows = conn.execute(
        sa.select(Device.hardware_model, sa.func.coalesce(Device.site, ALL_SITES)).distinct()
    ).all()
    return {(h, s) for h, s in rows}


def effective_tariffs(conn: Connection) -> list[dict[str, Any]]:
    """Per site key (devices' sites and ``*``): the winning tariff over time."""
    rows = _rows(conn, EnergyTariff)
    out = []
    for site in {s for _, s in _device_sites(conn)} | {ALL_SITES}:
        mine = [r for r in rows if r["site"] in (site, ALL_SITES)]
        for lo, hi, r in effective(mine, lambda r, s=site: (r["site"] == s, r["valid_from"])):
            out.append(
                dict(
                    site=site,
                    valid_from=lo,
                    valid_to=hi,
                    usd_per_kwh=r["usd_per_kwh"],
                    pue=r["pue"],
                    grid_gco2e_per_kwh=r["grid_gco2e_per_kwh"],
                )
            )
    return out


def effective_hardware_rates(conn: Connection) -> list[dict[str, Any]]:
    """Per (hardware model, site key) in use: the winning $/device-hour over time."""
    rows = _rows(conn, HardwareRate)
    out = []
    for hardware, site in _device_sites(conn):
        mine = [
            r for r in rows if r["hardware_model"] == hardware and r["site"] in (site, ALL_SITES)
        ]
        for lo, hi, r in effective(mine, lambda r, s=site: (r["site"] == s, r["valid_from"])):
            out.append(
                dict(
                    hardware_model=hardware,
                    site=site,
                    valid_from=lo,
                    valid_to=hi,
                    usd_per_device_hour=r["usd_per_device_hour"],
                )
            )
    return out
