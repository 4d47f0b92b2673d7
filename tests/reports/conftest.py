"""Fixtures: the known fleet on both backends, and a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, _admin_conninfo
from tests.reports import dataset
from wattledger.migrations import runner
from wattledger.models import make_engine

DATA = Path(__file__).parent / "data"
CERT, KEY = DATA / "cert.pem", DATA / "key.pem"
SMTP_USER, SMTP_PASSWORD = "reports", "s3cret-Pa55word-never-shown"


@dataclass
class Fleet:
    """The known dataset in a migrated warehouse."""

    url: str
    gpu_j: float


@pytest.fixture(
    scope="session", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """The fleet of :mod:`tests.reports.dataset`, built once per test session and backend.

    Tests only read it, or record sends under recipient lists and weeks of their own.
    """
    name = None
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path_factory.mktemp('fleet')}/warehouse.duckdb"
    else:
        name = f"wl_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        runner.upgrade(url)
        engine = make_engine(url)
        gpu_j = dataset.build(engine)
        engine.dispose()
        yield Fleet(url, gpu_j)
    finally:
        if name:
            with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it receives and can refuse the next messages."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    refuse_next: int = 0
    refusal: str = "451 4.3.0 Mailbox busy, try again later"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return self.refusal
        self.envelopes.append(envelope)
        self.messages.append(
            message_from_bytes(envelope.original_content, policy=policy.default)  # type: ignore[arg-type]
        )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """A running SMTP server and what it received."""

    host: str
    port: int
    inbox: Inbox
    logins: list[str] = field(default_factory=list)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CERT, KEY)
    return ctx


def _start(**kwargs: Any) -> tuple[Controller, SmtpServer]:
    inbox = Inbox()
    server = SmtpServer("127.0.0.1", free_port(), inbox)

    def authenticator(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode(),
            data.password.decode(),
        ) == (SMTP_USER, SMTP_PASSWORD)
        if ok:
            server.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        inbox, hostname=server.host, port=server.port, authenticator=authenticator, **kwargs
    )
    controller.start()
    return controller, server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A plain SMTP server (no TLS, no login)."""
    controller, server = _start()
    yield server
    controller.stop()


@pytest.fixture
def smtp_starttls() -> Iterator[SmtpServer]:
    """An SMTP server that requires STARTTLS and a login (user/password above)."""
    controller, server = _start(
        tls_context=_server_tls(), require_starttls=True, auth_required=True
    )
    yield server
    controller.stop()


@pytest.fixture
def smtp_tls() -> Iterator[SmtpServer]:
    """An SMTP server behind implicit TLS (SMTPS) that offers login.

    aiosmtpd counts only STARTTLS as TLS for ``auth_require_tls``, so on an implicit-TLS
    listener it would never offer AUTH; the whole connection is encrypted here, so allow it
    (``auth_required`` stays off: aiosmtpd warns about it without STARTTLS). Tests check
    ``logins`` instead.
    """
    controller, server = _start(ssl_context=_server_tls(), auth_require_tls=False)
    yield server
    controller.stop()
