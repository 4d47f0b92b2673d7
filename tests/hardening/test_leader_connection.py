"""The scheduler leader's lock connection: a second election waits while the first leads and
takes over when it stops; a leader whose database restarts steps down (jobs paused) and leads
again once it can. On the test's own cluster, which it restarts."""

from __future__ import annotations

import datetime as dt
import time

import psycopg
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING

from tests.hardening.conftest import Cluster
from wattledger.analytics.schedule import LeaderElection
from wattledger.models import make_engine


def _until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _election(url: str, runs: list[str], name: str, changes: list[bool]) -> LeaderElection:
    scheduler = BackgroundScheduler()
    scheduler.add_job(
        lambda: runs.append(name),
        "interval",
        hours=1,
        id="analytics",
        next_run_time=dt.datetime.now(dt.UTC),  # as the pipeline does: first run at once
    )
    return LeaderElection(make_engine(url), scheduler, check_s=0.2, on_change=changes.append)


@pytest.mark.postgres
def test_follower_waits_and_a_restarted_database_re_elects(pg_cluster: Cluster) -> None:
    with psycopg.connect(pg_cluster.admin_conninfo, autocommit=True) as conn:
        conn.execute("CREATE DATABASE wl")
    url = pg_cluster.url("wl")
    runs: list[str] = []
    changes_a: list[bool] = []
    changes_b: list[bool] = []
    a = _election(url, runs, "a", changes_a)
    b = _election(url, runs, "b", changes_b)
    a.start()
    try:
        _until(lambda: a.is_leader and runs == ["a"], "a to lead and run its job")
        b.start()
        _until(lambda: b._waiting_logged, "b to find a leading")  # noqa: SLF001
        assert not b.is_leader and b.scheduler.state == STATE_PAUSED

        pg_cluster.stop("immediate")  # both sessions die with the server
        _until(lambda: not a.is_leader, "a to step down")
        assert a.scheduler.state == STATE_PAUSED
        pg_cluster.start()
        _until(lambda: a.is_leader != b.is_leader, "one of them to lead again")
        leader, follower = (a, b) if a.is_leader else (b, a)
        assert leader.scheduler.state == STATE_RUNNING
        name = "a" if leader is a else "b"
        _until(lambda: runs[-1:] == [name] and len(runs) == 2, "the new term's first run")

        leader.stop()  # graceful: closes the lock connection, the other takes over at once
        _until(lambda: follower.is_leader, "the follower to take over")
        _until(lambda: len(runs) == 3, "the follower's first run")
        assert runs[-1] != name
    finally:
        for e in (a, b):
            if e.scheduler.running:
                e.stop()
            e.engine.dispose()
    assert changes_a[:3] == [False, True, False]  # led, lost it with the server
    assert True in changes_b and changes_a[-1] is False and changes_b[-1] is False


def test_duckdb_process_leads_at_once(duckdb_url: str) -> None:
    """One process owns a DuckDB file, so there is nothing to elect: it leads and runs."""
    runs: list[str] = []
    changes: list[bool] = []
    election = _election(duckdb_url, runs, "only", changes)
    election.start()
    try:
        assert election.is_leader and election.role == "leader"
        _until(lambda: runs == ["only"], "the first run")
    finally:
        election.stop()
        election.engine.dispose()
    assert changes == [False, True, False]
