"""Schedule the weekly report in ``wattledger serve``'s APScheduler 3 ``BackgroundScheduler``.

The job fires at ``schedule_hour`` on ``schedule_day`` in ``timezone`` and then every hour for
the rest of that day. Each run sends only what has not been sent this week (``report_runs``), so
the later runs do nothing after a success and retry after an outage.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Protocol

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from wattledger.analytics.reports.job import run_weekly_reports
from wattledger.analytics.reports.send import SendOutcome
from wattledger.analytics.reports.settings import ReportSettings
from wattledger.analytics.settings import AnalyticsSettings

log = logging.getLogger(__name__)
JOB_ID = "weekly-report"


class _RootSettings(Protocol):
    report: ReportSettings
    analytics: AnalyticsSettings


def report_trigger(settings: ReportSettings) -> CronTrigger:
    """Every hour from ``schedule_hour`` to 23:00 on ``schedule_day``, in ``timezone``."""
    return CronTrigger(
        day_of_week=settings.schedule_day,
        hour=f"{settings.schedule_hour}-23",
        minute=0,
        timezone=settings.zone,
    )


def report_job(
    engine: Engine,
    settings: ReportSettings,
    analytics: AnalyticsSettings | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Callable[[], list[SendOutcome]]:
    """The function the scheduler calls: send last week's reports, never raising."""

    def run() -> list[SendOutcome]:
        now = clock() if clock else dt.datetime.now(dt.UTC)
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep else {}
        try:
            outcomes = run_weekly_reports(
                engine,
                settings,
                now=now,
                slos=analytics.slos if analytics else None,
                **kwargs,
            )
        except Exception:  # the scheduler must keep running; the next hourly run retries
            log.exception("weekly report job failed; it runs again within the hour")
            return []
        for o in outcomes:
            log.info("weekly report %s for %s: %s", o.iso_week, o.tenant, o.status)
        return outcomes

    return run


def add_report_job(
    scheduler: BaseScheduler,
    engine: Engine,
    settings: _RootSettings | ReportSettings,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Job | None:
    """Add the weekly report job to ``scheduler``; None without recipients or an SMTP host.

    Args:
        scheduler: An APScheduler 3 scheduler (``wattledger serve``'s ``BackgroundScheduler``).
        engine: The warehouse writer engine (``report_runs`` is updated).
        settings: The root settings (``.report`` and ``.analytics`` are used), or just the
            :class:`ReportSettings`.
        clock: Returns the current time (tests pass a fixed one).
        sleep: Backoff sleeper (tests pass a recorder).
    """
    report = settings if isinstance(settings, ReportSettings) else settings.report
    analytics = None if isinstance(settings, ReportSettings) else settings.analytics
    if not report.recipients:
        log.info("weekly report not scheduled: no [report.recipients] configured")
        return None
    if not report.smtp_host:
        log.warning("weekly report not scheduled: [report] smtp_host is not set")
        return None
    trigger = report_trigger(report)
    job = scheduler.add_job(
        report_job(engine, report, analytics, clock=clock, sleep=sleep),
        trigger,
        id=JOB_ID,
        name="weekly cost report",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
        replace_existing=True,
    )
    log.info(
        "weekly report scheduled %s from %02d:00 %s",
        report.schedule_day,
        report.schedule_hour,
        report.timezone,
    )
    return job
