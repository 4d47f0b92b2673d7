"""Send a report email over SMTP: once per ISO week and recipient list, retried with backoff.

Idempotency lives in ``report_runs`` (key: ISO week × hash of the sorted recipient list). A run
that finds its row ``sent`` does nothing unless forced; otherwise it marks the row ``pending``
and tries up to ``1 + retries`` times, waiting ``backoff_s``, then twice that, and so on.
Every attempt is recorded (``attempts``, ``last_error``); the row ends ``sent`` (with the
``Message-ID`` and ``sent_at``) or ``failed``.

Transient failures (connection errors, timeouts, 4xx replies) are retried; permanent ones
(5xx replies such as a rejected login, an untrusted certificate, a server without STARTTLS) stop
at once, since retrying cannot fix them. The SMTP password is never logged, printed or stored:
it is scrubbed from any recorded error text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses

import sqlalchemy as sa
from sqlalchemy import Engine

from wattledger.analytics.reports.settings import ReportSettings
from wattledger.errors import WattledgerError
from wattledger.models import ReportRun

log = logging.getLogger(__name__)


def normalize_recipients(recipients: Iterable[str]) -> list[str]:
    """Recipients deduplicated by address (case-insensitive) and sorted."""
    seen: dict[str, str] = {}
    for raw in recipients:
        for _, addr in getaddresses([raw]):
            seen.setdefault(addr.lower(), raw.strip())
    return [seen[k] for k in sorted(seen)]


def recipients_key(recipients: Iterable[str]) -> str:
    """SHA-256 (hex) of the sorted, lower-cased addresses: the same list in any order matches."""
    addrs = sorted({addr.lower() for _, addr in getaddresses(list(recipients))})
    return hashlib.sha256("\n".join(addrs).encode()).hexdigest()


@dataclass
class SendOutcome:
    """What happened to one report for one recipient list.

    ``status`` is ``sent``, ``skipped`` (already sent this week), ``failed`` or ``dry-run``;
    ``attempts`` counts this run's SMTP attempts.
    """

    iso_week: str
    tenant: str
    recipients: list[str]
    status: str
    attempts: int = 0
    message_id: str | None = None
    error: str | None = None
    delays_s: list[float] = field(default_factory=list)


def _permanent(error: BaseException) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return isinstance(error, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError)


def _describe(error: BaseException, settings: ReportSettings) -> str:
    text = f"{type(error).__name__}: {error}"
    password = settings.password()
    if password is not None:
        text = text.replace(password.get_secret_value(), "**********")
    return text[:2000]


def check_smtp_settings(settings: ReportSettings) -> None:
    """Fail early, with the fix, when the SMTP settings cannot work.

    Raises:
        WattledgerError: no host, or a user without a password in the environment.
    """
    if not settings.smtp_host:
        raise WattledgerError(
            "No SMTP server is configured for reports.",
            hint="Set [report] smtp_host (or WATTLEDGER_REPORT__SMTP_HOST); "
            "`wattledger report send --dry-run` writes the email without sending.",
        )
    if settings.username and settings.password() is None:
        raise WattledgerError(
            f"SMTP user {settings.username!r} is set but ${settings.password_env} is empty.",
            hint=f"Export the password as {settings.password_env}, or unset [report] username.",
        )


def deliver(message: EmailMessage, settings: ReportSettings) -> dict[str, tuple[int, bytes]]:
    """One SMTP attempt: connect, secure, log in, send. Returns the refused recipients.

    Raises:
        smtplib.SMTPException, OSError: the attempt failed.
    """
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    host, port, timeout = settings.smtp_host or "", settings.port, settings.timeout_s
    client: smtplib.SMTP
    if settings.security == "tls":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        password = settings.password()
        if settings.username and password is not None:
            client.login(settings.username, password.get_secret_value())
        return client.send_message(message)


def already_sent(engine: Engine, iso_week: str, key: str) -> bool:
    """True when ``report_runs`` says this week's report went to this recipient list."""
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(ReportRun.status).where(
                ReportRun.iso_week == iso_week, ReportRun.recipients_key == key
            )
        ).scalar()
    return status == "sent"


def _claim(
    engine: Engine, iso_week: str, key: str, tenant: str, recipients: list[str], force: bool
) -> bool:
    """Mark the run ``pending``; False when it was already sent and not forced."""
    where = (ReportRun.iso_week == iso_week, ReportRun.recipients_key == key)
    with engine.begin() as conn:
        status = conn.execute(sa.select(ReportRun.status).where(*where)).scalar()
        if status == "sent" and not force:
            return False
        if status is None:
            conn.execute(
                sa.insert(ReportRun).values(
                    iso_week=iso_week,
                    recipients_key=key,
                    tenant=tenant,
                    recipients=", ".join(recipients),
                    status="pending",
                    attempts=0,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
        else:
            conn.execute(sa.update(ReportRun).where(*where).values(status="pending"))
    return True


def _record(engine: Engine, iso_week: str, key: str, **values: object) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(ReportRun)
            .where(ReportRun.iso_week == iso_week, ReportRun.recipients_key == key)
            .values(attempts=ReportRun.attempts + 1, **values)
        )


def send_report(
    engine: Engine,
    message: EmailMessage | Callable[[], EmailMessage],
    *,
    iso_week: str,
    tenant: str,
    recipients: list[str],
    settings: ReportSettings,
    now: dt.datetime,
    force: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> SendOutcome:
    """Send ``message`` unless this week's report already went to ``recipients``.

    Args:
        engine: The warehouse holding ``report_runs`` (the writer, not a snapshot).
        message: The email, or a function building it (called only when a send is due).
        iso_week: The report's ISO week, e.g. ``2026-W46``.
        tenant: The tenant the report covers (``"*"`` for all), recorded with the run.
        recipients: The addresses; their sorted hash keys the run.
        settings: SMTP server, retries and backoff.
        now: Recorded as ``sent_at``.
        force: Send even if already sent.
        sleep: Called with each backoff delay, seconds (tests pass a recorder).
    """
    recipients = normalize_recipients(recipients)
    key = recipients_key(recipients)
    outcome = SendOutcome(iso_week, tenant, recipients, "skipped")
    if not force and already_sent(engine, iso_week, key):
        log.info("report %s for %s already sent; skipping", iso_week, tenant)
        return outcome
    check_smtp_settings(settings)
    if not _claim(engine, iso_week, key, tenant, recipients, force):
        return outcome
    msg = message() if callable(message) else message
    outcome.message_id = str(msg["Message-ID"])
    for attempt in range(settings.retries + 1):
        outcome.attempts += 1
        try:
            refused = deliver(msg, settings)
        except (smtplib.SMTPException, OSError) as e:
            outcome.error = _describe(e, settings)
            _record(engine, iso_week, key, status="failed", last_error=outcome.error)
            final = _permanent(e) or attempt == settings.retries
            log.warning(
                "report %s for %s: attempt %d failed (%s)%s",
                iso_week,
                tenant,
                outcome.attempts,
                outcome.error,
                "; giving up" if final else "; retrying",
            )
            if final:
                outcome.status = "failed"
                return outcome
            delay = settings.backoff_s * 2**attempt
            outcome.delays_s.append(delay)
            sleep(delay)
            continue
        outcome.status, outcome.error = "sent", None
        note = f"refused by the server: {', '.join(sorted(refused))}" if refused else None
        _record(
            engine,
            iso_week,
            key,
            status="sent",
            last_error=note,
            message_id=outcome.message_id,
            sent_at=now,
        )
        log.info("report %s for %s sent to %d recipients", iso_week, tenant, len(recipients))
        return outcome
    raise AssertionError("unreachable")  # pragma: no cover
