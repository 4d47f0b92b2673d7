"""The recommendation job: compare routes, write ``recommendations``, track applied ones.

Ids are a hash of kind, workload and routes, so a re-run on the same data updates the same
rows (stable). A recommendation no longer supported by the data becomes ``stale``; one whose
traffic has visibly moved (the from-route lost at least half the traffic it was asked to move
and the to-route gained) becomes ``applied``, with its realised monthly saving.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from wattledger.analytics.rates import effective_hardware_rates, effective_tariffs
from wattledger.analytics.recommend.routes import RouteStats, load_routes
from wattledger.analytics.recommend.rules import (
    Candidate,
    PoolStats,
    Rejection,
    consolidations,
    reroutes,
    splits,
)
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.models import Device, DeviceEnergyHourly, Recommendation
from wattledger.models.bulk import to_decimal


@dataclass
class RecommendResult:
    """Recommendations made this run and candidates rejected (for ``--explain``)."""

    recommendations: list[Recommendation]
    rejected: list[Rejection]
    applied: int = 0


def recommendation_id(c: Candidate) -> str:
    """Stable id: the same move on the same workload keeps its id across runs."""
    key = "\x1f".join((c.kind, c.workload, c.from_route, c.to_route or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _pools(conn: Connection, start: dt.datetime, end: dt.datetime, days: float) -> list[PoolStats]:
    e, d = DeviceEnergyHourly, Device
    rows = conn.execute(
        sa.select(
            d.hardware_model,
            sa.func.count(sa.distinct(e.device_id)),
            sa.func.count(),
            sa.func.sum(e.active_s),
            sa.func.sum(e.idle_j),
            sa.func.sum(e.idle_s),
        )
        .select_from(e.__table__.join(d, d.device_id == e.device_id))
        .where(e.bucket_start >= start, e.bucket_start < end, d.power_source != "modeled")
        .group_by(d.hardware_model)
    ).all()
    tariffs = [
        t
        for t in effective_tariffs(conn)
        if t["site"] == "*" and t["valid_from"] <= end < t["valid_to"]
    ]
    rates = {
        r["hardware_model"]: r
        for r in effective_hardware_rates(conn)
        if r["site"] == "*" and r["valid_from"] <= end < r["valid_to"]
    }
    out = []
    for hardware, devices, hours, active_s, idle_j, idle_s in rows:
        cost = 0.0
        if tariffs:
            t = tariffs[0]
            cost += float(idle_j or 0) * float(t["usd_per_kwh"]) * t["pue"] / 3.6e6
        if hardware in rates:
            cost += float(idle_s or 0) * float(rates[hardware]["usd_per_device_hour"]) / 3600
        out.append(
            PoolStats(
                hardware,
                int(devices),
                float(hours),
                float(active_s or 0),
                cost,
                float(idle_j or 0),
                days,
            )
        )
    return out


def _row(c: Candidate, now: dt.datetime) -> dict[str, object]:
    sv = c.savings_usd_month
    return dict(
        recommendation_id=recommendation_id(c),
        kind=c.kind,
        workload=c.workload,
        from_route=c.from_route,
        to_route=c.to_route,
        share_to_move=c.share_to_move,
        savings_usd_month=to_decimal(sv.value, 2) if sv else None,
        savings_usd_month_low=to_decimal(sv.low, 2) if sv else None,
        savings_usd_month_high=to_decimal(sv.high, 2) if sv else None,
        savings_kwh_month=c.savings_kwh_month,
        savings_kg_co2e_month=c.savings_kg_co2e_month,
        ttft_p95_before_s=c.ttft_p95_before_s,
        ttft_p95_after_s=c.ttft_p95_after_s,
        itl_p95_before_s=c.itl_p95_before_s,
        itl_p95_after_s=c.itl_p95_after_s,
        samples_from=c.samples_from,
        samples_to=c.samples_to,
        basis=c.basis,
        risks="\n".join(c.risks) or None,
        explanation=c.explanation,
        updated_at=now,
    )


def _applied(
    rec: Recommendation, routes: dict[str, RouteStats], before: dict[str, RouteStats]
) -> Decimal | None:
    """Realised monthly saving if the traffic of ``rec`` has visibly moved, else None.

    ``routes`` is the evidence now, ``before`` the evidence when ``rec`` was made: the saving is
    the from-route's cost then minus the to-route's cost now, on the tokens the to-route gained.
    """
    if rec.kind not in ("reroute", "right-size") or not rec.share_to_move or not rec.to_route:
        return None
    a, b = routes.get(rec.from_route), routes.get(rec.to_route)
    a_then = before.get(rec.from_route)
    if b is None or not rec.samples_from or not rec.samples_to:
        return None
    moved = rec.samples_from - (a.requests if a else 0)
    if moved < 0.5 * rec.share_to_move * rec.samples_from or b.requests <= rec.samples_to:
        return None
    if not (a_then and a_then.cost_per_mtok and b.cost_per_mtok):
        return Decimal(0)
    per_mtok = a_then.cost_per_mtok.value - b.cost_per_mtok.value
    gained = b.tokens_per_month * (1 - rec.samples_to / max(b.requests, 1))
    return to_decimal(per_mtok * gained / 1e6, 2)


def run_recommendations(
    engine: Engine, settings: AnalyticsSettings, *, now: dt.datetime
) -> RecommendResult:
    """Compare routes over the lookback window before ``now`` and store recommendations."""
    days = settings.recommend.lookback_days
    start = now - dt.timedelta(days=days)
    with engine.begin() as conn:
        routes = load_routes(conn, settings.recommend, now)
        moves, rejected = reroutes(routes, settings)
        candidates = moves + consolidations(_pools(conn, start, now, days), settings)
        candidates += splits(routes, settings)
        by_label = {s.key.label: s for s in routes.values()}
        existing = {row.recommendation_id: row for row in _existing(conn)}
        kept: set[str] = set()
        applied = 0
        for c in candidates:
            row = _row(c, now)
            rid = str(row["recommendation_id"])
            kept.add(rid)
            old = existing.get(rid)
            if old is None:
                conn.execute(sa.insert(Recommendation).values(**row, status="open", created_at=now))
            else:
                status = old.status if old.status in ("applied", "dismissed") else "open"
                conn.execute(
                    sa.update(Recommendation)
                    .where(Recommendation.recommendation_id == rid)
                    .values(**row, status=status)
                )
        history: dict[dt.datetime, dict[str, RouteStats]] = {}
        for rid, old in existing.items():
            if rid in kept or old.status != "open":
                continue
            if old.created_at not in history:
                then = load_routes(conn, settings.recommend, old.created_at)
                history[old.created_at] = {s.key.label: s for s in then.values()}
            realised = _applied(old, by_label, history[old.created_at])
            values: dict[str, object] = {"updated_at": now}
            if realised is not None:
                values.update(status="applied", realised_savings_usd_month=realised)
                applied += 1
            else:
                values["status"] = "stale"
            conn.execute(
                sa.update(Recommendation)
                .where(Recommendation.recommendation_id == rid)
                .values(**values)
            )
        recs = [r for r in _existing(conn) if r.recommendation_id in kept]
    recs.sort(key=lambda r: -(r.savings_usd_month or Decimal(0)))
    return RecommendResult(recs, rejected, applied)


def _existing(conn: Connection) -> list[Recommendation]:
    return [
        Recommendation(**dict(r._mapping))
        for r in conn.execute(sa.select(*Recommendation.__table__.columns))
    ]
