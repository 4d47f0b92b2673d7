"""The weekly report job: for each configured tenant, gather, render and send once.

``run_weekly_reports(engine, settings, *, now)`` is what ``wattledger serve`` runs on its
schedule and ``wattledger report send`` runs by hand. A recipient list whose report already went
out this week is skipped before anything is read or drawn, so repeated runs are cheap.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Mapping
from email.message import EmailMessage

from sqlalchemy import Engine

from wattledger.analytics.reports.render import RenderedReport, render
from wattledger.analytics.reports.send import SendOutcome, send_report
from wattledger.analytics.reports.settings import ReportSettings
from wattledger.analytics.reports.weekly import Week, gather_weekly
from wattledger.analytics.settings import SloSettings
from wattledger.errors import WattledgerError


def build_report(
    engine: Engine,
    week: Week,
    tenant: str,
    *,
    slos: Mapping[str, SloSettings] | None = None,
    top_n: int = 5,
) -> RenderedReport:
    """Gather and render one tenant's (or ``"*"``'s) report for ``week``."""
    with engine.connect() as conn:
        report = gather_weekly(conn, week, tenant, slos=slos, top_n=top_n)
    return render(report)


def targets(
    settings: ReportSettings, tenants: Collection[str] | None = None
) -> list[tuple[str, list[str]]]:
    """The (tenant, recipients) pairs to send to, optionally only ``tenants``.

    Raises:
        WattledgerError: no recipients are configured, or a named tenant has none.
    """
    if not settings.recipients:
        raise WattledgerError(
            "No report recipients are configured.",
            hint='Add them per tenant, e.g. [report.recipients] "*" = ["finops@example.com"]; '
            "or pass --to ADDRESS.",
        )
    if tenants:
        unknown = sorted(set(tenants) - set(settings.recipients))
        if unknown:
            raise WattledgerError(
                f"Tenant(s) {', '.join(unknown)} have no recipients in [report.recipients].",
                hint=f"Configured tenants: {', '.join(sorted(settings.recipients))}.",
            )
    return [(t, r) for t, r in sorted(settings.recipients.items()) if not tenants or t in tenants]


def run_weekly_reports(
    engine: Engine,
    settings: ReportSettings,
    *,
    now: dt.datetime,
    slos: Mapping[str, SloSettings] | None = None,
    week: Week | None = None,
    tenants: Collection[str] | None = None,
    recipients: list[str] | None = None,
    force: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> list[SendOutcome]:
    """Send the weekly report to every configured tenant's recipients, once per week.

    Args:
        engine: The warehouse (the writer: ``report_runs`` is updated).
        settings: The ``[report]`` settings.
        now: The current time; the report covers the last ISO week complete by then unless
            ``week`` is given.
        slos: Workload objectives, shown beside each SLO result.
        week: The week to report.
        tenants: Only these configured tenants.
        recipients: Send to these addresses instead of the configured ones (one report, for
            the single tenant in ``tenants`` or ``"*"``).
        force: Send again even if already sent.
        sleep: Backoff sleeper, seconds.
    """
    week = week or Week.last_complete(now)
    if recipients:
        tenant = next(iter(tenants)) if tenants else "*"
        pairs = [(tenant, recipients)]
    else:
        pairs = targets(settings, tenants)
    outcomes = []
    for tenant, addrs in pairs:

        def build(tenant: str = tenant, addrs: list[str] = addrs) -> EmailMessage:
            rendered = build_report(engine, week, tenant, slos=slos, top_n=settings.top_n)
            return rendered.to_message(settings.from_address, addrs)

        outcomes.append(
            send_report(
                engine,
                build,
                iso_week=week.iso,
                tenant=tenant,
                recipients=addrs,
                settings=settings,
                now=now,
                force=force,
                sleep=sleep,
            )
        )
    return outcomes
