"""Packaging: every architecture folder installs under the ``wattledger`` namespace.

Builds the real wheel, installs it (without dependencies) into a separate directory, and runs
``wattledger db upgrade`` from it, outside the source tree, so the migrations must come from
the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ["catalog", "collectors", "ingest", "models", "analytics", "dashboard", "migrations"]


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


def test_the_sdk_installs_light_and_instruments_the_real_openai_client(
    wheel: Path, tmp_path: Path
) -> None:
    """``pip install wattledger`` (no extras) into a fresh venv: the SDK imports, instruments
    the real ``openai`` client and exports spans over OTLP, and none of the server stack
    (DuckDB, pyarrow, psycopg, uvicorn, matplotlib, SQLAlchemy) is installed (issue 21)."""
    from tests.sdk.sdk_support import run_otlp_receiver, start_openai_server

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    r = subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(wheel),
            "openai",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    script = tmp_path / "host.py"
    script.write_text(
        "import importlib.util, json, sys\n"
        "SERVER = ('duckdb', 'pyarrow', 'psycopg', 'uvicorn', 'matplotlib', 'sqlalchemy')\n"
        "installed = [m for m in SERVER if importlib.util.find_spec(m) is not None]\n"
        "import openai, wattledger\n"
        "wattledger.init('light-svc', endpoint=sys.argv[1])\n"
        "client = wattledger.instrument_openai(openai.OpenAI(base_url=sys.argv[2], api_key='k'))\n"
        "client.chat.completions.create(\n"
        "    model='llama-3.1-8b', messages=[{'role': 'user', 'content': 'hi'}]\n"
        ")\n"
        "wattledger.shutdown()\n"
        "print(json.dumps({'installed': installed, 'version': wattledger.__version__}))\n"
    )
    with run_otlp_receiver() as receiver, start_openai_server() as openai_server:
        run = subprocess.run(
            [str(py), str(script), receiver.url, openai_server.base_url],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        receiver.wait_for_spans(1)
        spans = receiver.spans()
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["installed"] == [], out
    (_, attrs, _) = spans[0]
    assert attrs["gen_ai.request.model"] == "llama-3.1-8b"
    # The command needs the server extra and says so in one line, no traceback.
    cli = subprocess.run(
        [str(venv / "bin" / "wattledger"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert cli.returncode == 1
    assert "pip install 'wattledger[server]'" in cli.stderr and "Traceback" not in cli.stderr
