"""The scheduled pipeline of ``wattledger serve``: analytics, snapshot, recommendations.

Each scheduled analytics run is followed, on DuckDB, by a fresh read-only mart snapshot for the
dashboard and other readers (see :mod:`wattledger.analytics.marts`).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from wattledger.analytics.jobs.analytics import AnalyticsResult, run_analytics
from wattledger.analytics.jobs.recommend import run_recommendations
from wattledger.analytics.marts import publish_snapshot
from wattledger.analytics.schedule import build_scheduler
from wattledger.analytics.settings import AnalyticsSettings

log = logging.getLogger(__name__)


def analytics_and_snapshot(
    engine: Engine, settings: AnalyticsSettings, snapshot: Path | None, *, now: dt.datetime
) -> AnalyticsResult:
    """One analytics run, then (DuckDB) a new mart snapshot at ``snapshot``."""
    result = run_analytics(engine, settings, now=now)
    if snapshot is not None and engine.dialect.name == "duckdb" and result.skipped is None:
        publish_snapshot(engine, snapshot)
    return result


def build_pipeline(
    engine: Engine, settings: AnalyticsSettings, snapshot: Path | None
) -> BackgroundScheduler:
    """The scheduler with analytics (+ snapshot) every interval and recommendations hourly."""
    scheduler = build_scheduler(engine, settings)
    scheduler.remove_job("analytics")

    def analytics() -> None:
        try:
            analytics_and_snapshot(engine, settings, snapshot, now=dt.datetime.now(dt.UTC))
        except Exception:
            log.exception("analytics run failed; it will run again at the next interval")

    def recommendations() -> None:
        try:
            run_recommendations(engine, settings, now=dt.datetime.now(dt.UTC))
        except Exception:
            log.exception("recommendations failed; they will run again in an hour")

    now = dt.datetime.now(dt.UTC)
    scheduler.add_job(
        analytics,
        "interval",
        seconds=settings.interval_s,
        id="analytics",
        max_instances=1,
        coalesce=True,
        next_run_time=now,
    )
    scheduler.add_job(
        recommendations,
        "interval",
        hours=1,
        id="recommendations",
        max_instances=1,
        coalesce=True,
        next_run_time=now + dt.timedelta(seconds=min(settings.interval_s, 60) * 2),
    )
    return scheduler
