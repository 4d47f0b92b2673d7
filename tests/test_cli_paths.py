"""Mistyped paths get a clear error and create nothing (issue 22).

Seen: `wattledger --database-url duckdb:////nonexistent/dir/x.duckdb db current` created the
directories and an empty warehouse and exited 0, for read-only commands too; `export focus
--out /nonexistent/x.csv` created directories; a directory given as --config was reported as
"does not exist".
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

READERS = [
    ("db", "current"),
    ("keys", "list"),
    ("recommend",),
    ("prices", "list"),
    ("analytics", "run"),
    ("report", "preview", "--format", "text"),
    ("export", "focus", "--from", "2026-11-01", "--to", "2026-11-02"),
]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTLEDGER_")}
    env["WATTLEDGER_DATA_DIR"] = str(cwd / "data")
    return subprocess.run(
        [sys.executable, "-m", "wattledger", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize("command", READERS, ids=lambda c: " ".join(c[:2]))
def test_a_mistyped_duckdb_path_is_an_error_and_creates_nothing(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.duckdb"
    r = cli("--database-url", f"duckdb:///{missing}", *command, cwd=tmp_path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"There is no warehouse at {missing}" in r.stderr
    assert "db upgrade" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_export_into_a_missing_directory_is_an_error(duckdb_url: str, tmp_path: Path) -> None:
    from wattledger.migrations import runner

    runner.upgrade(duckdb_url)
    today = dt.date.today().isoformat()
    out = tmp_path / "nonexistent" / "x.csv"
    r = cli(
        "--database-url", duckdb_url, "export", "focus", "--from", "2026-11-01", "--to", today,
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 1 and f"The directory {out.parent} does not exist" in r.stderr
    assert not out.parent.exists()


def test_a_directory_given_as_config_is_named_as_such(tmp_path: Path) -> None:
    r = cli("--config", str(tmp_path), "db", "current", cwd=tmp_path)
    assert r.returncode == 1
    assert "is a directory, not a TOML file" in r.stderr
