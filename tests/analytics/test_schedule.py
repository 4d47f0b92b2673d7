"""Scheduling: one runner at a time across processes, and the scheduler runs the job."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_EXECUTED

from tests.analytics.fleet import T0, Req, add_requests
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.jobs.analytics import LOCK_KEY
from wattledger.analytics.schedule import build_scheduler
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.models import RequestCost, Watermark, make_engine


@pytest.mark.postgres
def test_second_runner_skips_while_first_holds_the_lock(pg_url: str) -> None:
    from wattledger.migrations import runner

    runner.upgrade(pg_url)
    engine = make_engine(pg_url)
    add_requests(engine, [Req(1, 10, 1, 20, 10, 10, device_id=None, provider="p")])
    other = make_engine(pg_url)
    with other.connect() as holder:
        assert holder.execute(sa.select(sa.func.pg_try_advisory_lock(LOCK_KEY))).scalar()
        holder.commit()
        result = run_analytics(engine, AnalyticsSettings(), now=T0 + dt.timedelta(hours=1))
        assert result.skipped == "another scheduler holds the lock"
        with engine.connect() as c:
            assert c.execute(sa.select(sa.func.count()).select_from(RequestCost)).scalar() == 0
        holder.execute(sa.select(sa.func.pg_advisory_unlock(LOCK_KEY)))
        holder.commit()
    result = run_analytics(engine, AnalyticsSettings(), now=T0 + dt.timedelta(hours=1))
    assert result.skipped is None and result.requests == 1
    engine.dispose()
    other.dispose()


def test_scheduler_runs_analytics(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    add_requests(engine, [Req(1, 10, 1, 20, 10, 10, device_id=None, provider="p")])
    scheduler = build_scheduler(engine, AnalyticsSettings(interval_s=3600))
    done = threading.Event()
    scheduler.add_listener(lambda event: done.set(), mask=EVENT_JOB_EXECUTED)
    scheduler.start()
    try:
        assert done.wait(30), "the first analytics run should start immediately"
    finally:
        scheduler.shutdown(wait=True)
    with engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(RequestCost)).scalar() == 1
        assert c.execute(sa.select(Watermark.name)).scalar() == "analytics"
    engine.dispose()
