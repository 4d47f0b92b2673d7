"""Tenant-scoped reads through the CLI: report, FOCUS export, keys; recommendations fleet-wide.

The fleet of tests/reports has two tenants with distinct data: ``acme`` (OpenAI, slowco and a
self-hosted H100) and ``beta`` (Groq only). A command run with ``--tenant X`` must return X's
rows and nothing of the other's.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.reports import dataset
from tests.reports.conftest import Fleet
from tests.security.cli_support import run_cli
from wattledger.ingest.auth import create_key
from wattledger.models import ALL_TENANTS, make_engine

WEEK = dataset.WEEK.iso
FROM, TO = "2026-11-09", "2026-11-23"


def focus_rows(capsys: pytest.CaptureFixture[str], fleet: Fleet, tenant: str) -> list[dict]:
    r = run_cli(
        capsys, fleet.url, "export", "focus", "--from", FROM, "--to", TO, "--tenant", tenant
    )
    assert r.returncode == 0, r.stderr
    return list(csv.DictReader(io.StringIO(r.stdout)))


def test_focus_export_returns_only_the_tenants_charges(
    capsys: pytest.CaptureFixture[str], fleet: Fleet
) -> None:
    everyone = focus_rows(capsys, fleet, "*")
    acme, beta = focus_rows(capsys, fleet, "acme"), focus_rows(capsys, fleet, "beta")
    assert acme and beta
    assert {r["BillingAccountId"] for r in acme} == {"acme"}
    assert {r["BillingAccountId"] for r in beta} == {"beta"}
    assert {r["ProviderName"].lower() for r in beta} == {"groq"}
    assert not any("openai" in json.dumps(r).lower() for r in beta)
    assert not any("groq" in json.dumps(r).lower() for r in acme)
    # Together the two tenants' exports are exactly the rows of theirs in the fleet's export.
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    theirs = [r for r in everyone if r["BillingAccountId"] in ("acme", "beta")]
    assert Counter(map(key, acme + beta)) == Counter(map(key, theirs))


def report_csv(capsys: pytest.CaptureFixture[str], fleet: Fleet, tenant: str) -> list[dict]:
    r = run_cli(
        capsys, fleet.url, "report", "preview", "--week", WEEK, "--tenant", tenant,
        "--format", "csv",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return list(csv.DictReader(io.StringIO(r.stdout)))


def test_weekly_report_of_a_tenant_holds_only_its_rows(
    capsys: pytest.CaptureFixture[str], fleet: Fleet
) -> None:
    acme, beta = report_csv(capsys, fleet, "acme"), report_csv(capsys, fleet, "beta")
    assert acme and beta
    assert {r["tenant"] for r in acme} == {"acme"} and {r["tenant"] for r in beta} == {"beta"}
    assert {r["provider"] for r in beta} == {"groq"}
    assert "groq" not in {r["provider"] for r in acme}

    r = run_cli(
        capsys, fleet.url, "report", "preview", "--week", WEEK, "--tenant", "beta",
        "--format", "text",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "Tenant beta" in text and "groq" in text
    assert "openai" not in text and "slowco" not in text and "H100" not in text
    # The fleet-wide recommendation (acme's OpenAI traffic → beta's Groq route) is not shown as
    # beta's (nor would acme's report reveal beta's route): it says where to find them.
    recs = text.split("TOP RECOMMENDATIONS")[1]
    assert "computed over the whole fleet" in recs and "→" not in recs

    r = run_cli(capsys, fleet.url, "report", "preview", "--week", WEEK, "--format", "text")
    assert r.returncode == 0, r.stderr
    recs = r.stdout.split("TOP RECOMMENDATIONS")[1]
    assert "openai/hosted/m → groq/hosted/m" in recs


def test_recommendations_are_fleet_wide_and_say_so(
    capsys: pytest.CaptureFixture[str], fleet: Fleet
) -> None:
    """``recommend`` has no --tenant: it reads every tenant's traffic (docs/security.md)."""
    engine = make_engine(fleet.url)
    try:
        with engine.connect() as conn:
            recs = conn.execute(
                sa.text("SELECT tenant, from_route, to_route FROM recommendations")
            ).all()
    finally:
        engine.dispose()
    # acme's OpenAI traffic → beta's Groq route: derived from both tenants, stamped the fleet's
    # marker, which no tenant can be named (docs/security.md).
    assert [tuple(x) for x in recs] == [(ALL_TENANTS, "openai/hosted/m", "groq/hosted/m")]
    r = run_cli(capsys, fleet.url, "recommend", "--tenant", "acme")
    assert r.returncode == 2  # no such option: nothing pretends to be tenant-scoped


def test_keys_list_of_a_tenant_shows_only_its_keys_and_never_a_hash(
    capsys: pytest.CaptureFixture[str], fleet: Fleet
) -> None:
    engine = make_engine(fleet.url)
    try:
        a, b = create_key(engine, "acme", "sec-a"), create_key(engine, "beta", "sec-b")
    finally:
        engine.dispose()
    r = run_cli(capsys, fleet.url, "keys", "list", "--tenant", "acme", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert a.key_id in {x["key_id"] for x in rows} and {x["tenant"] for x in rows} == {"acme"}
    assert b.key_id not in r.stdout
    assert "scrypt" not in r.stdout and a.key[17:] not in r.stdout
