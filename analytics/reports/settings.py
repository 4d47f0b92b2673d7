"""``[report]`` settings: the weekly email's SMTP server, recipients and schedule.

Environment variables are ``WATTLEDGER_REPORT__<FIELD>``. The SMTP password is never a setting:
it is read at send time from the environment variable named by ``password_env`` (default
``WATTLEDGER_SMTP_PASSWORD``), wrapped in a :class:`pydantic.SecretStr` and never logged or
printed.
"""

from __future__ import annotations

import os
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

#: The recipients key that receives the report over every tenant.
ALL_TENANTS = "*"
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _check_address(value: str) -> str:
    _, addr = parseaddr(value)
    if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
        raise ValueError(f"{value!r} is not an email address (expected name@example.com)")
    return value


class ReportSettings(BaseModel):
    """How and when the weekly cost report is emailed.

    Attributes:
        smtp_host: SMTP server host name; reports cannot be sent until it is set.
        smtp_port: SMTP port; default 587 for ``starttls``, 465 for ``tls``, 25 for ``none``.
        security: ``starttls`` (upgrade a plain connection), ``tls`` (implicit TLS) or
            ``none`` (plain text: only for a relay on the same host or network).
        username: SMTP user; no login when unset.
        password_env: Name of the environment variable holding the SMTP password.
        ca_file: PEM file of certificate authorities to trust instead of the system's.
        timeout_s: Seconds to wait for the SMTP server on each operation.
        from_address: The ``From`` address, e.g. ``"FinOps <finops@example.com>"``.
        recipients: Addresses per tenant; the tenant ``"*"`` gets the report over all tenants.
        schedule_day: Weekday ``wattledger serve`` sends on (``mon`` … ``sun``).
        schedule_hour: Hour (0–23) in ``timezone`` the send starts; until it succeeds the job
            tries again every hour for the rest of that day.
        timezone: IANA time zone of the schedule, e.g. ``Europe/Berlin``.
        retries: Extra attempts after a failed send, within one run.
        backoff_s: Wait before the first retry, seconds; doubles on each further retry.
        top_n: Rows in each "top" table (cost drivers, recommendations).
    """

    model_config = ConfigDict(extra="forbid")

    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str = "WATTLEDGER_SMTP_PASSWORD"
    ca_file: Path | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    from_address: str = "wattledger@localhost"
    recipients: dict[str, list[str]] = Field(default_factory=dict)
    schedule_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    schedule_hour: int = Field(default=7, ge=0, le=23)
    timezone: str = "UTC"
    retries: int = Field(default=3, ge=0, le=20)
    backoff_s: float = Field(default=30.0, ge=0)
    top_n: int = Field(default=5, ge=1, le=50)

    @field_validator("from_address")
    @classmethod
    def _from_is_address(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("recipients")
    @classmethod
    def _recipients_are_addresses(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for tenant, addresses in value.items():
            if not addresses:
                raise ValueError(f"tenant {tenant!r} has an empty recipient list")
            for address in addresses:
                _check_address(address)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: e.g. a name too long
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like UTC)") from e
        return value

    @property
    def port(self) -> int:
        """The SMTP port: configured, else the default for ``security``."""
        return self.smtp_port or DEFAULT_PORTS[self.security]

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)

    def password(self) -> SecretStr | None:
        """The SMTP password from ``$<password_env>``, or None when unset or empty."""
        value = os.environ.get(self.password_env)
        return SecretStr(value) if value else None
