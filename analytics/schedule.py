"""The scheduler: runs analytics jobs periodically inside ``wattledger serve``.

The only module that touches APScheduler (pinned < 4: 4.x changes the API). Jobs are plain
functions; each runs at most once at a time (``max_instances=1``) and missed runs coalesce.

Across processes on PostgreSQL, :class:`LeaderElection` lets one ``serve`` process at a time
run the jobs: the leader holds a session advisory lock on a connection of its own for as long
as it leads; the others (followers) keep their schedulers paused and try the lock every
``leader_check_s``. PostgreSQL drops the lock when the leader's session ends — process killed,
host gone (noticed through TCP keepalives on both ends) or connection lost — and the next
follower to try takes over. The analytics job additionally takes its own advisory lock, so even
a leader that lost its lock mid-run never processes a window at the same time as its successor.
On DuckDB one process owns the file, so that process always leads.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
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


#: Advisory-lock key of the scheduler leader on PostgreSQL ("wattlead" as an int64).
LEADER_LOCK_KEY = 0x77617474_6C656164
#: Interval jobs restarted when a process becomes leader, with the same delay they had from the
#: scheduler's start (analytics at once, recommendations after it); cron jobs keep their times.
_RUN_ON_ELECTION = ("analytics", "recommendations")
#: TCP keepalives of the lock connection, both ends: a dead peer is noticed in ~idle +
#: interval × count seconds (plus ``tcp_user_timeout`` for unacknowledged writes).
_KEEPALIVE_IDLE_S, _KEEPALIVE_INTERVAL_S, _KEEPALIVE_COUNT = 10, 5, 3


class LeaderElection:
    """Runs ``scheduler``'s jobs only while this process is the scheduler leader.

    Args:
        engine: The warehouse; on PostgreSQL its URL is used for the dedicated lock connection.
        scheduler: The jobs; started paused and resumed while leading.
        check_s: Seconds between attempts (followers) and liveness checks (leader).
        on_change: Called with ``True``/``False`` when leadership is gained or lost (e.g. a
            Prometheus gauge's ``set``).
    """

    def __init__(
        self,
        engine: Engine,
        scheduler: BaseScheduler,
        *,
        check_s: float = 5.0,
        on_change: Callable[[bool], Any] | None = None,
    ) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self.check_s = check_s
        self.on_change = on_change
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.is_leader = False
        self._postgres = engine.dialect.name == "postgresql"
        self._conn: Any = None  # psycopg.Connection holding the lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiting_logged = False
        self._unreachable_logged = False
        self._first_run_delay: dict[str, dt.timedelta] = {}

    @property
    def role(self) -> str:
        """``leader`` or ``follower`` (for /readyz)."""
        return "leader" if self.is_leader else "follower"

    def start(self) -> None:
        """Start the scheduler paused and begin the election (DuckDB: lead at once)."""
        self.scheduler.start(paused=True)
        now = dt.datetime.now(dt.UTC)
        for job in self.scheduler.get_jobs():
            if job.id in _RUN_ON_ELECTION and job.next_run_time is not None:
                self._first_run_delay[job.id] = max(job.next_run_time - now, dt.timedelta(0))
        if self.on_change:
            self.on_change(False)
        if not self._postgres:
            self._elected("DuckDB: this process owns the warehouse")
            return
        self._thread = threading.Thread(
            target=self._run, name="wattledger-scheduler-leader", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the jobs (waiting for a running one) and give up the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, self.check_s * 2))
        self.scheduler.shutdown(wait=True)
        if self.is_leader:
            self.is_leader = False
            if self.on_change:
                self.on_change(False)
            log.info("scheduler leader %s stepped down (shutting down)", self.identity)
        self._close()

    # -- election loop (PostgreSQL) -----------------------------------------------------------

    def _run(self) -> None:
        wait_s = 0.0
        while not self._stop.wait(wait_s):
            wait_s = self.check_s
            try:
                if self.is_leader:
                    self._conn.execute("SELECT 1")
                else:
                    self._try_lock()
            except Exception as e:  # noqa: BLE001 - the database or the connection is gone
                self._close()
                if self.is_leader:
                    self._lost(e)
                elif not self._unreachable_logged:
                    self._unreachable_logged = True
                    log.warning(
                        "scheduler election: cannot reach the database (%s); trying again "
                        "every %.3g s",
                        str(e).splitlines()[0] if str(e) else type(e).__name__,
                        self.check_s,
                    )

    def _try_lock(self) -> None:
        import psycopg

        if self._conn is None:
            url = self.engine.url.set(drivername="postgresql")
            self._conn = psycopg.connect(
                url.render_as_string(hide_password=False),
                autocommit=True,
                connect_timeout=10,
                application_name=f"wattledger scheduler {self.identity}"[:63],
                keepalives=1,
                keepalives_idle=_KEEPALIVE_IDLE_S,
                keepalives_interval=_KEEPALIVE_INTERVAL_S,
                keepalives_count=_KEEPALIVE_COUNT,
                tcp_user_timeout=30_000,
                # the server notices a vanished leader host the same way
                options=(
                    f"-c tcp_keepalives_idle={_KEEPALIVE_IDLE_S} "
                    f"-c tcp_keepalives_interval={_KEEPALIVE_INTERVAL_S} "
                    f"-c tcp_keepalives_count={_KEEPALIVE_COUNT}"
                ),
            )
        self._unreachable_logged = False
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK_KEY,)).fetchone()
        if row and row[0]:
            self._elected("holding the PostgreSQL advisory lock")
        elif not self._waiting_logged:
            self._waiting_logged = True
            log.info(
                "scheduler follower %s: %s is the scheduler leader; trying every %.3g s",
                self.identity,
                self._leader_name() or "another process",
                self.check_s,
            )

    def _leader_name(self) -> str | None:
        """The application name of the session holding the lock, when visible."""
        try:
            row = self._conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid::bigint = %s AND l.objid::bigint = %s",
                (LEADER_LOCK_KEY >> 32, LEADER_LOCK_KEY & 0xFFFFFFFF),
            ).fetchone()
        except Exception:  # noqa: BLE001 - only for the log line
            return None
        return str(row[0]) if row and row[0] else None

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # ends the session: PostgreSQL releases the lock
            except Exception:  # noqa: BLE001
                log.debug("closing the leader connection failed", exc_info=True)

    # -- transitions --------------------------------------------------------------------------

    def _elected(self, how: str) -> None:
        if self._stop.is_set():
            return  # shutting down: the connection closes and releases the lock
        now = dt.datetime.now(dt.UTC)
        for job in self.scheduler.get_jobs():
            if job.id in self._first_run_delay:
                job.modify(next_run_time=now + self._first_run_delay[job.id])
        self.is_leader = True
        self._waiting_logged = False
        if self.on_change:
            self.on_change(True)
        self.scheduler.resume()
        log.info("scheduler leader: %s runs the scheduled jobs (%s)", self.identity, how)

    def _lost(self, error: BaseException) -> None:
        self.is_leader = False
        if self.scheduler.running:
            self.scheduler.pause()
        if self.on_change:
            self.on_change(False)
        log.warning(
            "scheduler leader %s lost its database connection (%s); jobs paused, trying to "
            "lead again every %.3g s",
            self.identity,
            str(error).splitlines()[0] if str(error) else type(error).__name__,
            self.check_s,
        )
