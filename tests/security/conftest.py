"""Fixtures: the two-tenant fleet of tests/reports (acme and beta, distinct data), and its SMTP
server that requires STARTTLS and a login."""

from tests.reports.conftest import fleet, smtp_starttls  # noqa: F401 - the fixtures, reused
