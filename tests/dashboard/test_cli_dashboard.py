"""``wattledger dashboard`` and its launcher: start, health, stop, port clash, password hashes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wattledger.config import load_settings
from wattledger.dashboard.launch import dashboard_env, start_dashboard
from wattledger.dashboard.passwords import verify_password
from wattledger.errors import WattledgerError


def _cli(*args: str, stdin: str = "", env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "wattledger", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_hash_password_prints_a_hash_the_dashboard_accepts() -> None:
    r = _cli("dashboard", "hash-password", "--password-stdin", stdin="s3cret\n")
    assert r.returncode == 0, r.stderr
    hashed = r.stdout.strip()
    assert verify_password("s3cret", hashed) and "s3cret" not in hashed
    assert "password_hash" in r.stderr
    ok = _cli("db", "upgrade", "--json", env={"WATTLEDGER_DASHBOARD__PASSWORD_HASH": hashed})
    assert ok.returncode == 0, ok.stderr


def test_empty_password_is_refused() -> None:
    r = _cli("dashboard", "hash-password", "--password-stdin", stdin="\n")
    assert r.returncode == 1 and "The password is empty" in r.stderr


def test_launcher_passes_resolved_settings_to_the_child(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(tmp_path))
    settings = load_settings(database_url=f"duckdb:///{tmp_path / 'w.duckdb'}")
    env = dashboard_env(settings, config_path=Path("w.toml"))
    assert env["WATTLEDGER_DATABASE_URL"] == f"duckdb:///{tmp_path / 'w.duckdb'}"
    assert env["WATTLEDGER_DASHBOARD__MARTS_PATH"] == str(tmp_path / "marts.duckdb")
    assert env["WATTLEDGER_CONFIG"] == str(Path("w.toml").resolve())
    assert "WATTLEDGER_DASHBOARD__PASSWORD_HASH" not in env


def test_start_and_stop_a_dashboard(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "out.log").open("wb")
    handle = start_dashboard(load_settings(), port=port, output=log)
    try:
        handle.wait_ready(timeout_s=60)
        assert handle.url == f"http://127.0.0.1:{port}"
        assert httpx.get(handle.url, timeout=10).status_code == 200
    finally:
        code = handle.stop()
        log.close()
    assert handle.process.poll() is not None
    assert code in (0, -15)


def test_a_taken_port_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        log = (tmp_path / "out.log").open("wb")
        handle = start_dashboard(load_settings(), port=port, output=log)
        try:
            with pytest.raises(WattledgerError, match="exited with code"):
                handle.wait_ready(timeout_s=60)
        finally:
            handle.stop()
            log.close()
    assert f"Port {port} is not available" in (tmp_path / "out.log").read_text()


_STOPPED_SCRIPT = """
import sys, time
from pathlib import Path
from wattledger.cli.dashboard import run_until_stopped

class Handle:  # stands in for DashboardProcess: wait() blocks like a running Streamlit child
    def wait(self):
        while True:
            time.sleep(0.05)
    def stop(self):
        Path(sys.argv[1]).write_text("stopped")

Path(sys.argv[2]).write_text("waiting")
print("code", run_until_stopped(Handle()))
"""


def test_sigterm_stops_the_streamlit_child_of_dashboard_and_demo(tmp_path: Path) -> None:
    """`wattledger dashboard` and `wattledger demo` both wait through run_until_stopped: a
    SIGTERM stops the dashboard child (no orphaned Streamlit server) and ends cleanly."""
    stopped, waiting = tmp_path / "stopped", tmp_path / "waiting"
    proc = subprocess.Popen(
        [sys.executable, "-c", _STOPPED_SCRIPT, str(stopped), str(waiting)],
        stdout=subprocess.PIPE,
        text=True,
    )
    for _ in range(200):
        if waiting.exists():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "code None" in out
    assert stopped.read_text() == "stopped"
