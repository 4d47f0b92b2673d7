"""Gather the weekly report's figures from the daily rollups and the recommendations.

A report week is an ISO week of UTC days, Monday 00:00 to the next Monday 00:00 UTC (the
rollups' days are UTC days). Everything here is data; :mod:`.render` turns it into an email.

Energy is reported with its basis: ``measured`` (hardware counters or integrated power),
``modeled`` (configured per-token figures or modeled devices), ``mixed`` when a figure adds
both, or ``none`` when nothing is known. Idle energy takes the basis of its device.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from wattledger.analytics.queries import reports as q
from wattledger.analytics.recommend.routes import RouteKey
from wattledger.analytics.settings import SloSettings
from wattledger.errors import WattledgerError

#: A p95 objective is met when at least this share of requests meets the thresholds.
SLO_MET_SHARE = 0.95
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class Week:
    """An ISO week of UTC days."""

    iso: str
    start: dt.datetime

    @property
    def end(self) -> dt.datetime:
        """The next Monday 00:00 UTC (exclusive)."""
        return self.start + dt.timedelta(days=7)

    @property
    def previous(self) -> Week:
        """The week before."""
        return Week.containing(self.start - dt.timedelta(days=1))

    @classmethod
    def parse(cls, value: str) -> Week:
        """Parse ``YYYY-Www`` (e.g. ``2026-W46``).

        Raises:
            WattledgerError: the value is not an ISO week that exists.
        """
        m = _WEEK.match(value.strip())
        try:
            if not m:
                raise ValueError(value)
            day = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
        except ValueError as e:
            raise WattledgerError(
                f"Week {value!r} is not an ISO week.",
                hint="Use YYYY-Www with a week that exists in that year, e.g. --week 2026-W46.",
            ) from e
        return cls(value.strip(), dt.datetime.combine(day, dt.time(), dt.UTC))

    @classmethod
    def containing(cls, ts: dt.datetime) -> Week:
        """The ISO week of the UTC day of ``ts``."""
        day = ts.astimezone(dt.UTC).date()
        year, week, weekday = day.isocalendar()
        monday = day - dt.timedelta(days=weekday - 1)
        return cls(f"{year}-W{week:02d}", dt.datetime.combine(monday, dt.time(), dt.UTC))

    @classmethod
    def last_complete(cls, now: dt.datetime) -> Week:
        """The newest week that has ended by ``now``."""
        return cls.containing(now).previous


def energy_basis(measured_j: float, modeled_j: float, idle_j: float) -> str:
    """Where an energy figure comes from.

    ``measured`` or ``modeled`` when all direct energy is one kind, ``mixed`` when it adds both,
    ``unknown`` for idle energy alone, ``none`` when there is no energy figure at all.
    """
    measured, modeled = measured_j > 0, modeled_j > 0
    if measured and modeled:
        return "mixed"
    if measured or modeled:
        return "measured" if measured else "modeled"
    return "unknown" if idle_j > 0 else "none"


@dataclass
class Totals:
    """Sums over a period; energy in joules, money in US dollars, CO2e in grams."""

    requests: int = 0
    error_requests: int = 0
    unpriced_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    output_tokens_with_energy: int = 0
    energy_measured_j: float = 0.0
    energy_modeled_j: float = 0.0
    idle_energy_j: float = 0.0
    cost_api_usd: Decimal = Decimal(0)
    cost_hardware_usd: Decimal = Decimal(0)
    cost_energy_usd: Decimal = Decimal(0)
    cost_idle_usd: Decimal = Decimal(0)
    cost_total_usd: Decimal = Decimal(0)
    co2e_g: float = 0.0

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Totals:
        """Build from a query row with the columns of :func:`queries.reports.period_totals`."""
        values: dict[str, Any] = {}
        for name, default in cls().__dict__.items():
            raw = row.get(name)
            if isinstance(default, Decimal):
                values[name] = Decimal(str(raw)) if raw is not None else Decimal(0)
            elif isinstance(default, float):
                values[name] = float(raw or 0.0)
            else:
                values[name] = int(raw or 0)
        return cls(**values)

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def energy_j(self) -> float:
        """Direct (measured + modeled) plus idle energy, joules."""
        return self.energy_measured_j + self.energy_modeled_j + self.idle_energy_j

    @property
    def cost_per_mtok_usd(self) -> Decimal | None:
        """Blended fully-loaded cost per one million input + output tokens, US dollars."""
        return self.cost_total_usd * MTOK / self.tokens if self.tokens else None

    @property
    def tokens_per_j(self) -> float | None:
        """Output tokens per joule, over the rows whose energy is known."""
        return self.output_tokens_with_energy / self.energy_j if self.energy_j > 0 else None

    @property
    def energy_basis(self) -> str:
        """Where this energy comes from (see :func:`energy_basis`)."""
        return energy_basis(self.energy_measured_j, self.energy_modeled_j, self.idle_energy_j)

    @property
    def measured_share(self) -> float | None:
        """Share of direct energy that was measured, 0..1; None when there is none."""
        direct = self.energy_measured_j + self.energy_modeled_j
        return self.energy_measured_j / direct if direct > 0 else None


def change(
    current: Decimal | float | int | None, previous: Decimal | float | int | None
) -> float | None:
    """Relative change from ``previous`` to ``current`` (0.25 = +25 %); None when undefined."""
    if current is None or previous is None or previous == 0:
        return None
    return float((Decimal(str(current)) - Decimal(str(previous))) / Decimal(str(previous)))


@dataclass
class Driver:
    """One cost driver: a service, workload or route, with its share of the week's spend."""

    label: str
    cost_usd: Decimal
    cost_prev_usd: Decimal
    share: float
    requests: int
    tokens: int

    @property
    def change(self) -> float | None:
        """Week-over-week change of its cost."""
        return change(self.cost_usd, self.cost_prev_usd)


@dataclass
class Efficiency:
    """Efficiency of one provider × hardware model over the week."""

    provider: str
    hardware_model: str
    totals: Totals

    @property
    def label(self) -> str:
        """``provider on hardware``, or ``provider (hosted API)``."""
        return (
            f"{self.provider} on {self.hardware_model}"
            if self.hardware_model
            else (f"{self.provider} (hosted API)")
        )


@dataclass
class SloResult:
    """How one workload with an SLO did: requests judged and met, worst daily p95s (s)."""

    workload: str
    requests: int
    met: int
    worst_ttft_p95_s: float | None
    worst_itl_p95_s: float | None
    target: SloSettings | None

    @property
    def share_met(self) -> float | None:
        """Share of requests inside both thresholds."""
        return self.met / self.requests if self.requests else None

    @property
    def breached(self) -> bool:
        """True when fewer than 95 % of requests met the thresholds (a p95 objective)."""
        return self.share_met is not None and self.share_met < SLO_MET_SHARE


@dataclass
class WeeklyReport:
    """Everything the weekly email shows, for one tenant (or ``"*"``) and ISO week."""

    week: Week
    tenant: str
    this: Totals
    previous: Totals
    drivers: dict[str, list[Driver]]
    efficiency: list[Efficiency]
    slos: list[SloResult]
    recommendations: list[dict[str, Any]]
    daily: list[tuple[dt.datetime, Totals]]
    rollup_columns: list[str] = field(default_factory=list)
    rollup_rows: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def breaches(self) -> list[SloResult]:
        """Workloads that missed their SLO this week."""
        return [s for s in self.slos if s.breached]


def _route_label(row: Mapping[Any, Any]) -> str:
    return RouteKey(
        "", row["provider"], row["hardware_model"], row["llm_model"], row["quantization"]
    ).label


def gather_weekly(
    conn: Connection,
    week: Week,
    tenant: str = q.ALL_TENANTS,
    *,
    slos: Mapping[str, SloSettings] | None = None,
    top_n: int = 5,
) -> WeeklyReport:
    """Read the week's and the previous week's figures for ``tenant`` (``"*"`` = all).

    Args:
        conn: A connection to the warehouse (or a mart snapshot).
        week: The ISO week to report.
        tenant: A tenant name, or ``"*"`` for all tenants.
        slos: Workload objectives, to show each breach beside its target.
        top_n: Rows in each cost-driver table and in the recommendations.
    """
    prev = week.previous
    this = Totals.from_row(
        conn.execute(q.period_totals(week.start, week.end, tenant)).mappings().one()
    )
    before = Totals.from_row(
        conn.execute(q.period_totals(prev.start, prev.end, tenant)).mappings().one()
    )
    drivers: dict[str, list[Driver]] = {}
    for dim in q.DRIVER_DIMENSIONS:
        rows = conn.execute(
            q.cost_drivers(dim, week.start, week.end, prev.start, tenant, top_n)
        ).mappings()
        drivers[dim] = [
            Driver(
                label=_route_label(r) if dim == "route" else (r[dim] or "(not reported)"),
                cost_usd=Decimal(str(r["cost_usd"])),
                cost_prev_usd=Decimal(str(r["cost_prev_usd"])),
                share=float(Decimal(str(r["cost_usd"])) / this.cost_total_usd)
                if this.cost_total_usd
                else 0.0,
                requests=int(r["requests"]),
                tokens=int(r["tokens"]),
            )
            for r in rows
        ]
    efficiency = [
        Efficiency(r["provider"], r["hardware_model"], Totals.from_row(r))
        for r in conn.execute(
            q.efficiency_by_provider_hardware(week.start, week.end, tenant)
        ).mappings()
    ]
    efficiency.sort(key=lambda e: (e.totals.tokens_per_j is None, -(e.totals.tokens_per_j or 0)))
    slo_rows = [
        SloResult(
            workload=r["workload"],
            requests=int(r["requests"]),
            met=int(r["slo_met_requests"]),
            worst_ttft_p95_s=r["worst_ttft_p95_s"],
            worst_itl_p95_s=r["worst_itl_p95_s"],
            target=(slos or {}).get(r["workload"]),
        )
        for r in conn.execute(q.slo_by_workload(week.start, week.end, tenant)).mappings()
    ]
    # Recommendations are derived from every tenant's traffic (fleet-wide, docs/security.md):
    # only the all-tenants report lists them, never a tenant's as if they were its own.
    recs = (
        [dict(r) for r in conn.execute(q.top_open_recommendations(top_n)).mappings()]
        if tenant == q.ALL_TENANTS
        else []
    )
    daily = [
        (r["day"], Totals.from_row(r))
        for r in conn.execute(q.daily_series(week.start, week.end, tenant)).mappings()
    ]
    rollup = conn.execute(q.week_rollup_rows(week.start, week.end, tenant))
    return WeeklyReport(
        week=week,
        tenant=tenant,
        this=this,
        previous=before,
        drivers=drivers,
        efficiency=efficiency,
        slos=slo_rows,
        recommendations=recs,
        daily=daily,
        rollup_columns=list(rollup.keys()),
        rollup_rows=[tuple(row) for row in rollup],
    )
