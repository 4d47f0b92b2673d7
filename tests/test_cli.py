"""The ``wattledger`` CLI: help everywhere, db commands on both backends, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from wattledger import __version__
from wattledger.cli import app, main


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "wattledger", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def _command_paths() -> Iterator[list[str]]:
    root = typer.main.get_command(app)

    def walk(cmd: object, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    yield from walk(root, [])


@pytest.mark.parametrize("path", list(_command_paths()), ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        app(args=[*path, "--help"], prog_name="wattledger")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "Usage:" in out
    with pytest.raises(SystemExit):
        app(args=[*path, "-h"], prog_name="wattledger")
    assert "Usage:" in capsys.readouterr().out


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"wattledger {__version__}"


def test_db_upgrade_current_check_on_both_backends(db_url: str) -> None:
    r = run("--database-url", db_url, "db", "current", "--json")
    if db_url.startswith("duckdb"):  # no file yet: said, and not created (issue 22)
        assert r.returncode == 1 and "There is no warehouse at" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["current"] is None
    r = run("--database-url", db_url, "db", "upgrade")
    assert r.returncode == 0, r.stderr
    assert "(newest)" in r.stderr
    r = run("--database-url", db_url, "db", "current", "--json")
    data = json.loads(r.stdout)
    assert data["is_current"] is True and data["current"] == data["head"]
    r = run("--database-url", db_url, "db", "check")
    assert r.returncode == 0, r.stderr
    assert "agree" in r.stderr
    r = run("--database-url", db_url, "db", "downgrade", "base", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["current"] is None


def test_database_url_from_environment(duckdb_url: str) -> None:
    r = run("db", "upgrade", "--json", env={"WATTLEDGER_DATABASE_URL": duckdb_url})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["database_url"] == duckdb_url


def test_check_fails_with_hint_when_not_migrated(duckdb_url: str) -> None:
    r = run("--database-url", duckdb_url, "db", "check")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: ")
    assert "Hint: Run `wattledger db upgrade` first." in r.stderr
    assert "Traceback" not in r.stderr


def test_downgrade_needs_confirmation_when_not_interactive(duckdb_url: str) -> None:
    run("--database-url", duckdb_url, "db", "upgrade")
    r = run("--database-url", duckdb_url, "db", "downgrade", "base")
    assert r.returncode == 1
    assert "--yes" in r.stderr
    r = run("--database-url", duckdb_url, "db", "current", "--json")
    assert json.loads(r.stdout)["is_current"] is True  # nothing was dropped


def test_errors_are_one_line_plus_hint_and_verbose_shows_traceback() -> None:
    bad = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    r = run("--database-url", bad, "db", "current")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("Error: Cannot connect to PostgreSQL")
    assert lines[1].startswith("Hint: ")
    r = run("--verbose", "--database-url", bad, "db", "current")
    assert r.returncode == 1
    assert "Traceback" in r.stderr


def test_unsupported_backend_is_a_clear_error() -> None:
    r = run("--database-url", "sqlite:///x.db", "db", "upgrade")
    assert r.returncode == 1
    assert "Database backend 'sqlite' is not supported" in r.stderr


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text("[ingest]\nportt = 1\n")
    r = run("--config", str(cfg), "db", "current")
    assert r.returncode == 1
    assert "Unknown config key 'ingest.portt'" in r.stderr
    assert str(cfg) in r.stderr


def test_unknown_revision_is_a_clear_error(duckdb_url: str) -> None:
    r = run("--database-url", duckdb_url, "db", "upgrade", "nope")
    assert r.returncode == 1
    assert "Can't locate revision" in r.stderr
    assert "db history" in r.stderr


def test_usage_errors_exit_2() -> None:
    r = run("db", "frobnicate")
    assert r.returncode == 2
    r = run("db", "downgrade")  # missing REVISION
    assert r.returncode == 2


def test_main_in_process(duckdb_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--database-url", duckdb_url, "db", "upgrade", "--json"])
    assert e.value.code in (0, None)
    assert json.loads(capsys.readouterr().out)["is_current"] is True


def test_history_lists_the_initial_revision() -> None:
    r = run("db", "history", "--json")
    assert r.returncode == 0
    revs = json.loads(r.stdout)
    assert revs[-1]["down_revision"] is None
    assert revs[-1]["revision"] == "0001"
