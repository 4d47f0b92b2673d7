"""``wattledger report preview|send`` and ``wattledger export focus`` through the real CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.reports.conftest import Fleet, SmtpServer, free_port
from wattledger.cli import main

SECRET = "cli-Secret-password-42"
duckdb_only = pytest.mark.parametrize("fleet", ["duckdb"], indirect=True)
CAPTURE: ContextVar[Any] = ContextVar("capture")


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes


def run(fleet: Fleet, *args: str, config: Path | None = None) -> Result:
    """Run the CLI in this process (``main``, as the console script does), capturing output."""
    cmd = ["--database-url", fleet.url, *(["--config", str(config)] if config else []), *args]
    capture = CAPTURE.get()
    os.environ["WATTLEDGER_SMTP_PASSWORD"] = SECRET
    try:
        main(cmd)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        del os.environ["WATTLEDGER_SMTP_PASSWORD"]
    out, err = capture.readouterr()
    return Result(code, out, err)


@pytest.fixture(autouse=True)
def _capture(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    CAPTURE.set(capsysbinary)


def config(tmp_path: Path, port: int, **extra: str) -> Path:
    lines = [
        "[report]",
        'smtp_host = "127.0.0.1"',
        f"smtp_port = {port}",
        'security = "none"',
        "backoff_s = 0",
        "retries = 1",
        'from_address = "reports@example.com"',
        *(f"{k} = {v}" for k, v in extra.items()),
        "[report.recipients]",
        '"*" = ["finops@example.com"]',
        'beta = ["beta@example.com"]',
        "[analytics.slos.search]",
        "ttft_p95_s = 0.25",
    ]
    path = tmp_path / "wattledger.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@duckdb_only
def test_preview_html_and_text(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    r = run(fleet, "report", "preview", "--week", "2026-W47", "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert html.count('src="data:image/png;base64,') == 2 and "<script" not in html
    assert "$0.3600" in html and "2026-W47" in html
    r = run(
        fleet, "report", "preview", "--week", "2026-W47", "--tenant", "beta", "--format", "text"
    )
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    figures = text.split("TOP RECOMMENDATIONS")[0]  # recommendations are fleet-wide
    assert "Tenant beta" in text and "groq/hosted/m" in figures
    assert "openai/hosted/m" not in figures
    assert "[modeled]" in text


@duckdb_only
def test_send_dry_run_writes_the_email_and_never_the_password(fleet: Fleet, tmp_path: Path) -> None:
    cfg = config(tmp_path, free_port(), username='"reports"')
    out = tmp_path / "weekly.eml"
    r = run(
        fleet, "report", "send", "--week", "2026-W47", "--dry-run", "--out", str(out), config=cfg
    )
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in tmp_path.glob("weekly-*.eml"))
    assert files == ["weekly-all.eml", "weekly-beta.eml"]
    for name in files:
        raw = (tmp_path / name).read_bytes()
        assert SECRET.encode() not in raw
        msg = message_from_bytes(raw, policy=policy.default)
        assert msg.get_body(("html",)) is not None and msg.get_body(("plain",)) is not None
    beta = message_from_bytes((tmp_path / "weekly-beta.eml").read_bytes(), policy=policy.default)
    assert beta["To"] == "beta@example.com"
    assert SECRET.encode() not in r.stdout + r.stderr
    # The real console entry point, in its own process: the email goes to stdout.
    r2 = subprocess.run(
        [sys.executable, "-m", "wattledger", "--database-url", fleet.url, "--config", str(cfg)]
        + ["report", "send", "--week", "2026-W47", "--dry-run", "--to", "me@x.org"],
        capture_output=True,
        env={**os.environ, "WATTLEDGER_SMTP_PASSWORD": SECRET},
        timeout=120,
    )
    assert r2.returncode == 0, r2.stderr
    assert b"To: me@x.org" in r2.stdout and SECRET.encode() not in r2.stdout + r2.stderr


@duckdb_only
def test_send_over_smtp_once_per_week(fleet: Fleet, smtp: SmtpServer, tmp_path: Path) -> None:
    cfg = config(tmp_path, smtp.port)
    r = run(fleet, "report", "send", "--week", "2026-W47", "--json", config=cfg)
    assert r.returncode == 0, r.stderr
    outcomes = {o["tenant"]: o for o in json.loads(r.stdout)}
    assert {t: o["status"] for t, o in outcomes.items()} == {"*": "sent", "beta": "sent"}
    assert len(smtp.inbox.messages) == 2
    r = run(fleet, "report", "send", "--week", "2026-W47", config=cfg)
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode().count("already sent this week") == 2
    assert len(smtp.inbox.messages) == 2
    r = run(
        fleet, "report", "send", "--week", "2026-W47", "--tenant", "beta", "--force", config=cfg
    )
    assert r.returncode == 0 and len(smtp.inbox.messages) == 3


@duckdb_only
def test_send_failure_exits_1_with_a_hint(fleet: Fleet, tmp_path: Path) -> None:
    cfg = config(tmp_path, free_port())
    r = run(fleet, "report", "send", "--week", "2026-W46", "--tenant", "beta", config=cfg)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "failed after 2 attempt(s)" in err and "Hint:" in err and "Traceback" not in err


@duckdb_only
def test_export_focus_csv_and_parquet(fleet: Fleet, tmp_path: Path) -> None:
    r = run(fleet, "export", "focus", "--from", "2026-11-16", "--to", "2026-11-23")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout.decode())))
    assert rows and {row["ChargeCategory"] for row in rows} == {"Usage"}
    out = tmp_path / "nov.parquet"
    r = run(
        fleet, "export", "focus", "--from", "2026-11-16", "--to", "2026-11-23", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    assert pq.read_table(out).num_rows == len(rows)
    assert "FOCUS 1.3" in r.stderr.decode()  # the default version


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "focus", "--from", "2026-11-23", "--to", "2026-11-16"], "is not after"),
        (["export", "focus", "--from", "Nov 1", "--to", "2026-11-16"], "is not a date"),
        (
            [
                "export",
                "focus",
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-16",
                "--format",
                "parquet",
            ],
            "needs a file",
        ),
        (["report", "preview", "--week", "2026-W60"], "is not an ISO week"),
        (["report", "send", "--week", "2026-W46"], "No report recipients are configured"),
    ],
)
@duckdb_only
def test_bad_input_is_one_line_and_a_hint(fleet: Fleet, args: list[str], message: str) -> None:
    r = run(fleet, *args)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert message in err and "Hint:" in err and "Traceback" not in err
