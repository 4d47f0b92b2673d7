"""``[report]`` settings: validation names the key; the password only comes from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattledger.analytics.reports.settings import ReportSettings
from wattledger.config import load_settings
from wattledger.errors import ConfigError


def test_defaults_and_ports() -> None:
    s = ReportSettings()
    assert (s.security, s.port, s.schedule_day, s.schedule_hour, s.timezone) == (
        "starttls",
        587,
        "mon",
        7,
        "UTC",
    )
    assert ReportSettings(security="tls").port == 465
    assert ReportSettings(security="none", smtp_port=2525).port == 2525


def test_file_and_env_feed_the_report_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        '[report]\nsmtp_host = "mail.example.com"\ntimezone = "Europe/Berlin"\n'
        '[report.recipients]\n"*" = ["finops@example.com"]\n'
    )
    monkeypatch.setenv("WATTLEDGER_REPORT__SCHEDULE_HOUR", "6")
    monkeypatch.setenv("WATTLEDGER_SMTP_PASSWORD", "hunter2-secret")
    s = load_settings(cfg).report
    assert s.smtp_host == "mail.example.com" and s.schedule_hour == 6
    assert s.recipients == {"*": ["finops@example.com"]}
    assert s.password() is not None and s.password().get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(s) + str(s.password()) + s.model_dump_json()


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('timezone = "Mars/Olympus"', "report.timezone"),
        ("schedule_hour = 24", "report.schedule_hour"),
        ('security = "ssl"', "report.security"),
        ('from_address = "not-an-address"', "report.from_address"),
        ("[report.recipients]\nacme = []", "report.recipients"),
        ('[report.recipients]\nacme = ["nobody"]', "report.recipients"),
        ('passwd = "x"', "report.passwd"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text(f"[report]\n{toml}\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(cfg)
