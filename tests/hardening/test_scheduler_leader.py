"""One scheduler leader at a time across ``wattledger serve`` processes on one PostgreSQL
database; the other waits; after ``kill -9`` of the leader the follower takes over and runs the
analytics jobs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.analytics.fleet import Req, add_requests
from tests.hardening.support import fresh_pg_database
from tests.pipeline.support import free_port, subprocess_env, wattledger_server
from wattledger.analytics.schedule import LEADER_LOCK_KEY
from wattledger.migrations import runner
from wattledger.models import make_engine

pytestmark = pytest.mark.postgres
RUN_LINE = "wattledger.analytics.jobs.analytics: analytics "


def _role(port: int) -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json().get("scheduler")
    except httpx.HTTPError:
        return None


def _gauge(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    (value,) = [
        s.value
        for fam in text_string_to_metric_families(text)
        if fam.name == "wattledger_scheduler_leader"
        for s in fam.samples
    ]
    return value


def _wait(predicate, what: str, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _lock_holders(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as c:
        n = c.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = :hi AND objid::bigint = :lo"
            ),
            {"hi": LEADER_LOCK_KEY >> 32, "lo": LEADER_LOCK_KEY & 0xFFFFFFFF},
        ).scalar()
    engine.dispose()
    return int(n or 0)


def _watermark(url: str) -> object:
    engine = make_engine(url)
    with engine.connect() as c:
        value = c.execute(
            sa.text("SELECT updated_at FROM watermarks WHERE name = 'analytics'")
        ).scalar()
    engine.dispose()
    return value


def test_one_leader_and_failover_after_kill_9(tmp_path: Path) -> None:
    with fresh_pg_database() as url:
        runner.upgrade(url)
        engine = make_engine(url)
        add_requests(
            engine, [Req(i, 10 * i, 1, 10 * i + 5, 100, 50, device_id=None) for i in range(1, 6)]
        )
        engine.dispose()
        ports = [free_port(), free_port()]
        logs = [tmp_path / "serve-a.log", tmp_path / "serve-b.log"]
        args = ["serve", "--insecure-no-auth", "--no-migrate"]
        servers = []
        for i, port in enumerate(ports):
            (tmp_path / f"s{i}").mkdir()
            env = subprocess_env(
                tmp_path / f"s{i}",
                WATTLEDGER_ANALYTICS__INTERVAL_S="1",
                WATTLEDGER_ANALYTICS__LEADER_CHECK_S="0.5",
            )
            servers.append(wattledger_server(url, args, port, env, logs[i]))
        with servers[0] as proc_a, servers[1] as proc_b:
            procs = [proc_a, proc_b]
            _wait(lambda: {_role(p) for p in ports} == {"leader", "follower"}, "one leader")
            leader = [_role(p) for p in ports].index("leader")
            follower = 1 - leader
            # The leader runs the jobs (at least twice); the follower waits and runs nothing.
            _wait(lambda: logs[leader].read_text().count(RUN_LINE) >= 2, "analytics runs")
            assert [_gauge(p) for p in ports][leader] == 1
            assert [_gauge(p) for p in ports][follower] == 0
            assert _lock_holders(url) == 1
            assert "is the scheduler leader" in logs[follower].read_text()
            assert _role(ports[follower]) == "follower"
            assert RUN_LINE not in logs[follower].read_text()
            before = _watermark(url)
            assert before is not None

            os.kill(procs[leader].pid, signal.SIGKILL)
            procs[leader].wait()
            # Bounded take-over: PostgreSQL ends the dead session and drops its lock; the
            # follower's next try (every 0.5 s) wins.
            _wait(lambda: _role(ports[follower]) == "leader", "the follower to take over")
            assert _gauge(ports[follower]) == 1
            _wait(lambda: RUN_LINE in logs[follower].read_text(), "analytics on the new leader")
            _wait(lambda: _watermark(url) > before, "the watermark to move")  # type: ignore[operator]
            assert _lock_holders(url) == 1
        assert "scheduler leader:" in logs[follower].read_text()
