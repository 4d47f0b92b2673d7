"""``wattledger keys`` and ``wattledger ingest serve`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wattledger.ingest.auth import AuthError, KeyVerifier
from wattledger.migrations import runner
from wattledger.models import make_engine


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattledger", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def _tenant(url: str, key: str) -> str:
    engine = make_engine(url)  # disposed at once: the CLI must be able to open a DuckDB file
    verifier = KeyVerifier(engine, ttl_s=0)
    try:
        return verifier.verify(key)
    finally:
        verifier.close()  # its last-use write runs in the background
        engine.dispose()


def test_keys_create_list_revoke(duckdb_url: str) -> None:
    db_url = duckdb_url  # the functions underneath run on both backends in test_ingest_spool_auth
    runner.upgrade(db_url)
    r = run(
        "--database-url", db_url, "keys", "create", "--tenant", "acme", "--label", "prod", "--json"
    )
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)
    assert created["key"].startswith(f"wlk_{created['key_id']}_")
    assert "cannot be shown again" in r.stderr
    listed = json.loads(run("--database-url", db_url, "keys", "list", "--json").stdout)
    assert [(k["key_id"], k["tenant"], k["label"], k["revoked_at"]) for k in listed] == [
        (created["key_id"], "acme", "prod", None)
    ]
    assert created["key"] not in json.dumps(listed)  # the secret is never shown again
    assert _tenant(db_url, created["key"]) == "acme"
    r = run("--database-url", db_url, "keys", "revoke", created["key_id"], "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["revoked_at"]
    with pytest.raises(AuthError):
        _tenant(db_url, created["key"])
    r = run("--database-url", db_url, "keys", "revoke", "000000000000")
    assert r.returncode == 1 and "No key with id" in r.stderr


def test_keys_need_a_migrated_warehouse_and_a_valid_tenant(duckdb_url: str) -> None:
    r = run("--database-url", duckdb_url, "keys", "list")
    assert r.returncode == 1 and "wattledger db upgrade" in r.stderr
    runner.upgrade(duckdb_url)
    r = run("--database-url", duckdb_url, "keys", "create", "--tenant", "no spaces!")
    assert r.returncode == 1 and "tenant 'no spaces!' is not valid" in r.stderr


def test_serve_check_boots_and_answers(duckdb_url: str) -> None:
    r = run("--database-url", duckdb_url, "ingest", "serve", "--check", "--json")
    assert r.returncode == 1 and "wattledger db upgrade" in r.stderr  # not migrated yet
    runner.upgrade(duckdb_url)
    r = run("--database-url", duckdb_url, "ingest", "serve", "--check", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status_code"] == 200 and out["body"]["database"] == "up"
