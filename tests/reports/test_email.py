"""The weekly email through a real SMTP server (aiosmtpd): MIME structure, figures, idempotency,
retries, STARTTLS/TLS with login, and a password that never shows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from PIL import Image

from tests.reports import dataset
from tests.reports.conftest import CERT, SMTP_PASSWORD, SMTP_USER, Fleet, SmtpServer, free_port
from wattledger.analytics.reports.job import run_weekly_reports
from wattledger.analytics.reports.schedule import JOB_ID, add_report_job, report_trigger
from wattledger.analytics.reports.send import recipients_key
from wattledger.analytics.reports.settings import ReportSettings
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.models import ReportRun, make_engine

NOW = dataset.NOW


def settings_for(server: SmtpServer | None, **extra: object) -> ReportSettings:
    base: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port if server else free_port(),
        "security": "none",
        "from_address": "wattledger <reports@example.com>",
        "recipients": {"*": ["finops@example.com", "cfo@example.com"]},
        "backoff_s": 10.0,
    }
    return ReportSettings(**{**base, **extra})  # type: ignore[arg-type]


def run_rows(url: str) -> list[dict[str, object]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*ReportRun.__table__.columns)).mappings().all()
    engine.dispose()
    return [dict(r) for r in rows]


def test_received_email_has_html_text_inline_charts_csv_and_right_figures(
    fleet: Fleet, smtp: SmtpServer
) -> None:
    settings = settings_for(smtp, recipients={"acme": ["acme-finance@example.com"]})
    engine = make_engine(fleet.url)
    (outcome,) = run_weekly_reports(
        engine, settings, now=NOW, slos=dataset.SETTINGS.slos, force=True
    )
    engine.dispose()
    assert outcome.status == "sent" and outcome.iso_week == "2026-W47"
    (msg,) = smtp.inbox.messages
    assert smtp.inbox.envelopes[0].rcpt_tos == ["acme-finance@example.com"]
    assert msg["Subject"].startswith("wattledger weekly report 2026-W47 (acme): $")
    assert msg.get_content_type() == "multipart/mixed"

    # Structure: alternative(text, related(html, png, png)), then the CSV attachment.
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, related = alternative.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html" and len(images) == 2
    html, text = html_part.get_content(), text_part.get_content()
    assert "<script" not in html.lower() and "<style" not in html.lower()
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    assert cids == {img["Content-ID"].strip("<>") for img in images}
    for img in images:
        assert img.get_content_type() == "image/png"
        assert img.get_content_disposition() == "inline"
        png = Image.open(io.BytesIO(img.get_content()))
        assert png.format == "PNG" and png.size == (1200, 560)

    # Figures for tenant acme: OpenAI $0.36 this week vs $0.18, slowco $0.0045, GPU measured.
    for body in (html, text):
        assert "openai/hosted/m" in body and "$0.3600" in body and "+100.0%" in body
        assert "slowco/hosted/m" in body and "$0.0045" in body
        # The fleet-wide recommendation (toward beta's Groq route) is not acme's: not listed.
        assert "groq" not in body and "computed over the whole fleet" in body
        assert "BREACH" in body and "measured" in body
    assert "[measured]" in text and "Energy basis: 100% measured, 0% modeled" in text
    energy_kwh = fleet.gpu_j / 3.6e6
    assert f"{energy_kwh:,.3f} kWh" in text

    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_filename() == "wattledger-rollup-2026-W47-acme.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert {r["tenant"] for r in rows} == {"acme"}
    openai = [r for r in rows if r["provider"] == "openai"]
    assert sum(Decimal(r["cost_total_usd"]) for r in openai) == Decimal("0.36")
    assert sum(int(r["requests"]) for r in openai) == 400
    measured = sum(float(r["energy_measured_j"]) + float(r["idle_energy_j"]) for r in rows)
    assert measured == pytest.approx(fleet.gpu_j, rel=1e-6)


def test_second_scheduled_run_in_the_same_week_sends_nothing(
    migrated_url: str, smtp: SmtpServer
) -> None:
    engine = make_engine(migrated_url)
    settings = settings_for(smtp)
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    clock = iter([NOW, NOW + dt.timedelta(hours=1), NOW + dt.timedelta(days=7)])
    job = add_report_job(scheduler, engine, settings, clock=lambda: next(clock))
    assert job is not None and scheduler.get_job(JOB_ID) is job
    first, second = job.func(), job.func()
    assert [o.status for o in first] == ["sent"] and [o.status for o in second] == ["skipped"]
    assert len(smtp.inbox.messages) == 1
    (row,) = run_rows(migrated_url)
    assert row["iso_week"] == "2026-W47" and row["status"] == "sent" and row["attempts"] == 1
    assert row["recipients_key"] == recipients_key(["cfo@example.com", "FinOps@example.com"])
    assert row["message_id"] == smtp.inbox.messages[0]["Message-ID"]
    assert row["sent_at"] == NOW
    # Next week is a new report; --force resends this one.
    assert [o.status for o in job.func()] == ["sent"]
    forced = run_weekly_reports(
        engine, settings, now=NOW, week=dataset.WEEK, force=True, sleep=lambda s: None
    )
    assert [o.status for o in forced] == ["sent"] and len(smtp.inbox.messages) == 3
    assert {r["iso_week"]: r["attempts"] for r in run_rows(migrated_url)} == {
        "2026-W47": 2,
        "2026-W48": 1,
    }
    engine.dispose()


def test_transient_smtp_failure_is_retried_with_backoff_and_recorded(
    migrated_url: str, smtp: SmtpServer
) -> None:
    smtp.inbox.refuse_next = 2  # 451: try again later
    engine = make_engine(migrated_url)
    delays: list[float] = []
    (outcome,) = run_weekly_reports(engine, settings_for(smtp), now=NOW, sleep=delays.append)
    engine.dispose()
    assert outcome.status == "sent" and outcome.attempts == 3
    assert delays == [10.0, 20.0]
    assert len(smtp.inbox.messages) == 1
    (row,) = run_rows(migrated_url)
    assert row["status"] == "sent" and row["attempts"] == 3 and row["last_error"] is None


def test_server_down_is_recorded_as_failed_and_the_next_run_retries(
    migrated_url: str, smtp: SmtpServer
) -> None:
    engine = make_engine(migrated_url)
    down = settings_for(None, retries=2)
    delays: list[float] = []
    (outcome,) = run_weekly_reports(engine, down, now=NOW, sleep=delays.append)
    assert outcome.status == "failed" and outcome.attempts == 3 and delays == [10.0, 20.0]
    (row,) = run_rows(migrated_url)
    assert row["status"] == "failed" and row["attempts"] == 3
    assert "Connection refused" in str(row["last_error"])
    # The server is back: the next (hourly) run sends, and the history is kept.
    (again,) = run_weekly_reports(engine, settings_for(smtp), now=NOW, sleep=delays.append)
    engine.dispose()
    assert again.status == "sent"
    (row,) = run_rows(migrated_url)
    assert row["status"] == "sent" and row["attempts"] == 4


def test_permanent_refusal_is_not_retried(migrated_url: str, smtp: SmtpServer) -> None:
    smtp.inbox.refuse_next, smtp.inbox.refusal = 5, "554 5.7.1 Message rejected"
    engine = make_engine(migrated_url)
    delays: list[float] = []
    (outcome,) = run_weekly_reports(engine, settings_for(smtp), now=NOW, sleep=delays.append)
    engine.dispose()
    assert outcome.status == "failed" and outcome.attempts == 1 and delays == []
    (row,) = run_rows(migrated_url)
    assert "554" in str(row["last_error"]) and row["status"] == "failed"


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_login_with_a_password_that_is_never_shown(
    security: str,
    duckdb_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from wattledger.migrations import runner

    runner.upgrade(duckdb_url)
    server: SmtpServer = request.getfixturevalue(
        "smtp_starttls" if security == "starttls" else "smtp_tls"
    )
    monkeypatch.setenv("WATTLEDGER_SMTP_PASSWORD", SMTP_PASSWORD)
    settings = settings_for(server, security=security, username=SMTP_USER, ca_file=CERT)
    caplog.set_level(logging.DEBUG)
    engine = make_engine(duckdb_url)
    (outcome,) = run_weekly_reports(engine, settings, now=NOW)
    assert outcome.status == "sent" and server.logins == [SMTP_USER]
    assert len(server.inbox.messages) == 1
    # A wrong password is a permanent failure: one attempt, recorded, password scrubbed.
    monkeypatch.setenv("WATTLEDGER_SMTP_PASSWORD", "wrong-" + SMTP_PASSWORD)
    (bad,) = run_weekly_reports(engine, settings, now=NOW, force=True)
    engine.dispose()
    assert bad.status == "failed" and bad.attempts == 1 and "535" in str(bad.error)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("wattledger"))
    assert "attempt 1 failed" in ours
    shown = ours + repr(settings) + str(run_rows(duckdb_url)) + repr(bad)
    assert SMTP_PASSWORD not in shown
    assert "**********" in repr(settings.password())


def test_untrusted_certificate_fails_without_retry(duckdb_url: str, smtp_starttls) -> None:
    from wattledger.migrations import runner

    runner.upgrade(duckdb_url)
    engine = make_engine(duckdb_url)
    settings = settings_for(smtp_starttls, security="starttls")  # system CAs: not ours
    (outcome,) = run_weekly_reports(engine, settings, now=NOW, sleep=lambda s: None)
    engine.dispose()
    assert outcome.status == "failed" and outcome.attempts == 1
    assert "CERTIFICATE_VERIFY_FAILED" in str(outcome.error)


def test_schedule_fires_monday_07_in_the_configured_zone_then_hourly() -> None:
    settings = ReportSettings(timezone="Europe/Berlin", recipients={"*": ["a@example.com"]})
    trigger = report_trigger(settings)
    after = dt.datetime(2026, 11, 18, 12, tzinfo=dt.UTC)  # a Wednesday
    first = trigger.get_next_fire_time(None, after)
    assert first is not None
    assert (first.isoweekday(), first.hour, first.minute) == (1, 7, 0)
    assert first.astimezone(dt.UTC) == dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)
    second = trigger.get_next_fire_time(first, first + dt.timedelta(seconds=1))
    assert second - first == dt.timedelta(hours=1)
    scheduler = BackgroundScheduler()
    assert add_report_job(scheduler, None, ReportSettings()) is None  # type: ignore[arg-type]
    assert add_report_job(scheduler, None, settings) is None  # type: ignore[arg-type] # no host
    assert scheduler.get_jobs() == []


def test_root_settings_are_accepted(migrated_url: str, smtp: SmtpServer) -> None:
    class Root:
        report = settings_for(smtp)
        analytics = AnalyticsSettings()

    engine = make_engine(migrated_url)
    job = add_report_job(BackgroundScheduler(), engine, Root(), clock=lambda: NOW)
    assert job is not None and [o.status for o in job.func()] == ["sent"]
    engine.dispose()
