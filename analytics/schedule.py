"""The scheduler: runs analytics jobs periodically inside ``wattledger serve``.

The only module that touches APScheduler (pinned < 4: 4.x changes the API). Jobs are plain
functions; each runs at most once at a time (``max_instances=1``) and missed runs coalesce.
Across processes, the jobs themselves take a database lock on PostgreSQL, so two schedulers
never process the same window at once (the second one skips).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.settings import AnalyticsSettings

log = logging.getLogger(__name__)


def _safe(name: str, job: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            result = job()
            log.debug("job %s finished: %s", name, result)
        except Exception:  # a failed run is logged and retried at the next interval
            log.exception("job %s failed; it will run again at its next interval", name)

    return run


def build_scheduler(engine: Engine, settings: AnalyticsSettings) -> BackgroundScheduler:
    """A background scheduler with the analytics job every ``settings.interval_s`` seconds.

    Call ``.start()`` to begin (the first run is immediate) and ``.shutdown()`` to stop.
    Other jobs (recommendations, reports) are added by their owners with ``add_job``.
    """
    scheduler = BackgroundScheduler(timezone=dt.UTC)

    def analytics() -> object:
        return run_analytics(engine, settings, now=dt.datetime.now(dt.UTC))

    scheduler.add_job(
        _safe("analytics", analytics),
        "interval",
        seconds=settings.interval_s,
        id="analytics",
        max_instances=1,
        coalesce=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    return scheduler
