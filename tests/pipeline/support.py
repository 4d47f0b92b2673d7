"""Helpers for end-to-end tests: real wattledger processes on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for a wattledger subprocess with its own data directory."""
    return {
        **os.environ,
        "WATTLEDGER_DATA_DIR": str(tmp_path / "data"),
        "WATTLEDGER_INGEST__STATS_LOG_INTERVAL_S": "0",
        **extra,
    }


@contextlib.contextmanager
def wattledger_server(
    url: str,
    args: list[str],
    port: int,
    env: dict[str, str],
    log_path: Path,
    open_files: int | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``wattledger --database-url URL <args> --port PORT``, ready on /readyz; SIGTERM at exit.

    ``open_files`` sets the server's descriptor limit (``ulimit -n``)."""

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wattledger", "--database-url", url, *args, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
            preexec_fn=limit if open_files is not None else None,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            assert proc.poll() is None, log_path.read_text()[-3000:]
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)  # graceful: queued rows are written first
            proc.wait(timeout=60)


def wattledger(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a wattledger command to completion; fails the test on a non-zero exit."""
    r = subprocess.run(
        [sys.executable, "-m", "wattledger", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def wait_until_written(port: int, timeout_s: float = 180.0) -> None:
    """Wait until the ingest server's writer queue is empty (everything acknowledged is in the
    warehouse), read from its Prometheus ``/metrics``; a slow machine must not race shutdown."""
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        queued = [
            s.value
            for fam in text_string_to_metric_families(text)
            if fam.name == "wattledger_ingest_queue_rows"
            for s in fam.samples
        ]
        if queued and sum(queued) == 0:
            return
        time.sleep(0.5)
    raise AssertionError("the ingest writer did not drain its queue")


@contextlib.contextmanager
def fresh_warehouse(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty warehouse URL on ``backend`` (``duckdb`` or ``postgres``) for a module-scoped
    fixture: a DuckDB file in ``tmp_path``, or a new PostgreSQL database dropped at the end."""
    if backend == "duckdb":
        yield f"duckdb:///{tmp_path}/warehouse.duckdb"
        return
    from tests.conftest import fresh_pg_database

    with fresh_pg_database() as url:
        yield url
