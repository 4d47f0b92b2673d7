"""No secret in output: database URL passwords, SMTP passwords and dashboard password hashes
never appear in what the CLI prints, even with ``--verbose`` (debug logs and tracebacks).

The ingest server's logs and HTTP answers are checked in test_ingest_isolation_and_secrets.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, remember_secret
from tests.pipeline.support import free_port
from tests.reports import dataset
from tests.reports.conftest import CERT, SMTP_PASSWORD, SMTP_USER, Fleet, SmtpServer
from tests.security.cli_support import run_cli
from wattledger.dashboard.passwords import hash_password
from wattledger.models import make_engine

PW = remember_secret("Pw-S3cret-db-5150")
remember_secret(SMTP_PASSWORD)


def pg(password: str = PW, **parts: object) -> str:
    return make_url(PG_URL).set(password=password, **parts).render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "url",
    [
        pytest.param(lambda: pg(), id="reachable"),
        pytest.param(lambda: pg(port=free_port()), id="refused"),
        pytest.param(lambda: pg(database="wl_does_not_exist"), id="no-database"),
        pytest.param(
            lambda: pg().replace(":5432/", ":notaport/").replace("@127.0.0.1/", "@127.0.0.1:x/"),
            id="bad-port",
        ),
        pytest.param(lambda: f"mysql://root:{PW}@localhost/db", id="unsupported"),
        # libpq takes the password (and a client key's passphrase) as query parameters too.
        pytest.param(lambda: f"{PG_URL}?password={PW}", id="query-reachable"),
        pytest.param(
            lambda: (
                make_url(PG_URL).set(port=free_port()).render_as_string()
                + f"?sslmode=disable&password={PW}"
            ),
            id="query-refused",
        ),
        pytest.param(
            lambda: (
                make_url(PG_URL).set(database="wl_does_not_exist").render_as_string()
                + f"?application_name=wl&password={PW}&sslpassword={PW}x"
            ),
            id="query-no-database",
        ),
    ],
)
@pytest.mark.parametrize(
    "args",
    [["db", "current", "--json"], ["keys", "list"], ["ingest", "serve", "--check", "--json"]],
    ids=["db-current", "keys-list", "ingest-check"],
)
def test_database_passwords_are_masked(
    capsys: pytest.CaptureFixture[str], url: object, args: list[str]
) -> None:
    u = url()  # type: ignore[operator]
    r = run_cli(capsys, u, "--verbose", *args)
    shown = r.stdout + r.stderr
    assert PW not in shown, shown[-2000:]
    assert r.stdout or "Error:" in r.stderr  # it did say something
    # Wherever a URL with credentials is shown, its password is masked.
    assert not re.search(r"://(postgres|root):(?!\*\*\*@)[^@\s]*@", shown), shown[-2000:]


def test_config_errors_do_not_echo_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plain password pasted where its hash belongs is refused without being echoed.
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__PASSWORD_HASH", "my-Plain-dashboard-pw")
    r = run_cli(capsys, f"duckdb:///{tmp_path}/w.duckdb", "db", "current")
    assert r.returncode == 1 and "dashboard.password_hash" in r.stderr
    assert "my-Plain-dashboard-pw" not in r.stdout + r.stderr
    # A valid hash is accepted and never printed either.
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__PASSWORD_HASH", hash_password("dash-pw"))
    good = os.environ["WATTLEDGER_DASHBOARD__PASSWORD_HASH"]
    r = run_cli(capsys, f"duckdb:///{tmp_path}/w.duckdb", "--verbose", "db", "upgrade", "--json")
    assert r.returncode == 0, r.stderr
    assert good.rsplit("$", 1)[1] not in r.stdout + r.stderr


@pytest.mark.parametrize("fleet", ["duckdb"], indirect=True)
def test_smtp_password_is_never_printed_or_stored(
    fleet: Fleet, smtp_starttls: SmtpServer, tmp_path: Path
) -> None:
    cfg = tmp_path / "wattledger.toml"
    cfg.write_text(
        "\n".join(
            [
                "[report]",
                f'smtp_host = "{smtp_starttls.host}"',
                f"smtp_port = {smtp_starttls.port}",
                'security = "starttls"',
                f'username = "{SMTP_USER}"',
                f'ca_file = "{CERT}"',
                "retries = 0",
                'from_address = "reports@example.com"',
                "[report.recipients]",
                'beta = ["beta@example.com"]',
            ]
        )
        + "\n"
    )
    week = "2026-W40"  # a week of its own: other tests' sends are not disturbed
    shown = ""
    for password, status in (("wrong-" + SMTP_PASSWORD, 1), (SMTP_PASSWORD, 0)):
        r = subprocess.run(
            [sys.executable, "-m", "wattledger", "--verbose", "--database-url", fleet.url]
            + ["--config", str(cfg), "report", "send", "--week", week, "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "WATTLEDGER_SMTP_PASSWORD": password},
            timeout=300,
        )
        assert r.returncode == status, r.stderr[-2000:]
        shown += r.stdout + r.stderr
    assert json.loads(r.stdout)[0]["status"] == "sent" and smtp_starttls.logins == [SMTP_USER]
    engine = make_engine(fleet.url)
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                sa.text("SELECT * FROM report_runs WHERE iso_week = :w"), {"w": week}
            ).all()
    finally:
        engine.dispose()
    assert runs and "535" in shown  # the refusal was reported
    assert SMTP_PASSWORD not in shown + repr(runs)
    assert dataset.WEEK.iso != week


@pytest.mark.parametrize(
    ("url", "secrets", "kept"),
    [
        ("postgresql+psycopg://app:pa%40ss@db:5432/w", ["pa%40ss", "pa@ss"], ["app", "db:5432/w"]),
        (
            "postgresql+psycopg://app@db/w?password=Q-pass&sslmode=require&sslpassword=K-pass",
            ["Q-pass", "K-pass"],
            ["sslmode=require", "app@db/w"],
        ),
        ("postgresql://db/w?Password=Cased-pw", ["Cased-pw"], ["db/w"]),
        ("host=db port=5432 user=app password=Kw-pass dbname=w", ["Kw-pass"], ["host=db"]),
        ("host=db password='sp ace pw' dbname=w", ["sp ace pw"], ["dbname=w"]),
        ("postgresql://db/w?token=Tk-123&api_key=Ak-456", ["Tk-123", "Ak-456"], ["db/w"]),
        ("duckdb:////var/lib/wattledger/warehouse.duckdb", [], ["warehouse.duckdb"]),
    ],
)
def test_one_redaction_for_every_url_form(url: str, secrets: list[str], kept: list[str]) -> None:
    from wattledger.models.engine import redact
    from wattledger.redact import redact_url, scrub

    for shown in (redact_url(url), redact(url)):
        for secret in secrets:
            assert secret not in shown, shown
        for part in kept:
            assert part in shown, shown
    # A driver message that echoes the secret (or the whole string) is scrubbed too.
    for secret in secrets:
        message = f'invalid connection option near "{secret}" in {url}'
        assert secret not in scrub(message, url)


@pytest.mark.postgres
def test_connection_error_detail_never_carries_the_password() -> None:
    from wattledger.models.engine import explain_connection_error

    url = f"{PG_URL}?password={PW}"

    class Orig(Exception):
        pass

    err = sa.exc.OperationalError("connect", {}, Orig(f"bad option password={PW} ({url})"))
    shown = str(explain_connection_error(url, err))
    assert PW not in shown and "Cannot connect to PostgreSQL" in shown


def test_a_test_whose_logs_carry_a_secret_fails(tmp_path) -> None:
    """The suite-wide check (tests/conftest.py): a secret a test used, in its captured log,
    fails that test, however the test itself ends."""
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    probe = Path(__file__).with_name(f"test_zz_leak_probe_{uuid.uuid4().hex[:8]}.py")
    probe.write_text(
        "import logging\n"
        "from tests.conftest import remember_secret\n\n"
        "def test_leaks():\n"
        "    secret = remember_secret('probe-Secret-7f3a9c')\n"
        "    logging.getLogger('wattledger.probe').warning('connecting with %s', secret)\n\n"
        "def test_keeps_quiet():\n"
        "    remember_secret('probe-Secret-other1')\n"
        "    logging.getLogger('wattledger.probe').warning('connecting with ***')\n"
    )
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", str(probe), "-q", "-p", "no:cacheprovider"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).parents[2],
        )
    finally:
        probe.unlink()
    assert run.returncode == 1, run.stdout[-2000:]
    assert "1 failed, 1 passed" in run.stdout
    assert "secret(s) this suite used appear in the captured log" in run.stdout
    assert "probe-Secret-7f3a9c" not in run.stdout.split("short test summary")[-1]
