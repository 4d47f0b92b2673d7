"""The weekly report while the SMTP server is down: each failed attempt is recorded in
``report_runs`` and retried with backoff; when the server (aiosmtpd) comes back the retry
succeeds, and neither that run nor the next scheduled one sends a second email.

(tests/reports/test_email.py covers a server down for a whole run, in-process; here a real
``wattledger report send`` process on PostgreSQL sees the server come back mid-run.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from tests.hardening.support import fresh_pg_database
from tests.pipeline.support import free_port, subprocess_env, wattledger
from tests.reports import dataset
from tests.reports.conftest import Inbox
from wattledger.migrations import runner
from wattledger.models import ReportRun, make_engine

pytestmark = pytest.mark.postgres


def _runs(url: str) -> list[dict[str, object]]:
    engine = make_engine(url)
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(sa.select(*ReportRun.__table__.columns)).mappings()]
    engine.dispose()
    return rows


def test_smtp_back_during_backoff_sends_exactly_once(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet
    with fresh_pg_database() as url:
        runner.upgrade(url)
        engine = make_engine(url)
        dataset.build(engine)
        engine.dispose()
        env = subprocess_env(
            tmp_path,
            WATTLEDGER_DATABASE_URL=url,
            WATTLEDGER_REPORT__SMTP_HOST="127.0.0.1",
            WATTLEDGER_REPORT__SMTP_PORT=str(port),
            WATTLEDGER_REPORT__SECURITY="none",
            WATTLEDGER_REPORT__FROM_ADDRESS="wattledger <reports@example.com>",
            WATTLEDGER_REPORT__RECIPIENTS=json.dumps({"*": ["finops@example.com"]}),
            WATTLEDGER_REPORT__RETRIES="6",
            WATTLEDGER_REPORT__BACKOFF_S="0.5",
        )
        args = [sys.executable, "-m", "wattledger", "report", "send", "--week", dataset.WEEK.iso]
        with (tmp_path / "send.log").open("wb") as log:
            proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        try:
            # Wait until a failed attempt is on record, then bring the server up.
            deadline = time.monotonic() + 60
            while not any(r["status"] == "failed" for r in _runs(url)):
                assert proc.poll() is None, (tmp_path / "send.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "no failed attempt was recorded"
                time.sleep(0.05)
            (failed,) = _runs(url)
            assert "refused" in str(failed["last_error"]).lower()
            controller.start()
            assert proc.wait(timeout=120) == 0, (tmp_path / "send.log").read_text()[-2000:]
            (sent,) = _runs(url)
            # The next scheduled run (hourly on report day) finds it sent and sends nothing.
            again = wattledger("report", "send", "--week", dataset.WEEK.iso, env=env)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            controller.stop()
        (final,) = _runs(url)
    log_text = (tmp_path / "send.log").read_text()
    assert sent["status"] == "sent" and sent["last_error"] is None
    assert int(sent["attempts"]) >= 2  # type: ignore[call-overload]  # failed ones, then the send
    assert "retrying" in log_text
    assert len(inbox.messages) == 1
    assert inbox.messages[0]["Message-ID"] == sent["message_id"]
    assert "skipped" in again.stderr
    assert final == sent  # untouched by the second run
