"""Packaging: every architecture folder installs under the ``wattledger`` namespace.

Builds the real wheel, installs it (without dependencies) into a separate directory, and runs
``wattledger db upgrade`` from it, outside the source tree, so the migrations must come from
the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ["collectors", "ingest", "models", "analytics", "dashboard", "migrations"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (whl,) = out.glob("wattledger-*.whl")
    return whl


def test_wheel_contains_every_subpackage_and_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for sub in SUBPACKAGES:
        assert f"wattledger/{sub}/__init__.py" in names, sub
    assert "wattledger/migrations/env.py" in names
    assert "wattledger/migrations/script.py.mako" in names
    assert any(n.startswith("wattledger/migrations/versions/0001") for n in names)
    assert "wattledger/py.typed" in names
    assert not any(n.startswith(("models/", "collectors/", "tests/")) for n in names)


def test_installed_wheel_runs_db_upgrade(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import wattledger, " + ", ".join(f"wattledger.{s}" for s in SUBPACKAGES) + "; "
            "import wattledger.migrations.runner as r; print(r.SCRIPT_LOCATION)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(target))
    url = f"duckdb:///{tmp_path}/w.duckdb"
    r = subprocess.run(
        [sys.executable, "-m", "wattledger", "--database-url", url, "db", "upgrade"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "(newest)" in r.stderr


def test_a_host_application_keeps_its_own_models_module(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text("MINE = True\n")
    r = subprocess.run(
        [sys.executable, "-c", "import wattledger.models, models; print(models.MINE)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
