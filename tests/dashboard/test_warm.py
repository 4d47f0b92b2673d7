"""The dashboard keeps its caches warm: every page is opened once at start and after each new
snapshot, by a headless session speaking Streamlit's websocket protocol."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.dashboard.conftest import running_dashboard
from wattledger.dashboard import warm


def _warm_ups(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "dashboard warm-up: " in line]


def _wait_for(log: Path, count: int, timeout_s: float = 120.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = _warm_ups(log)
        if len(lines) >= count:
            return lines
        time.sleep(0.2)
    raise AssertionError(f"expected {count} warm-ups in {timeout_s:.0f} s:\n{log.read_text()}")


def test_the_dashboard_opens_every_page_at_start_and_after_each_new_snapshot(
    demo_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    log = tmp_path / "dashboard.log"
    with running_dashboard(data, tmp_path) as url:
        first = _wait_for(log, 1)
        assert "6 pages" in first[0] and "WARNING" not in log.read_text()
        # The pages answer a headless session too (what the warmer does), every one of them.
        for page in warm.PAGES:
            assert warm.open_page(url, page) > 0
        # A newly published snapshot (a new version) is warmed again, once.
        snap = data / "marts.duckdb"
        stat = snap.stat()
        os.utime(snap, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        _wait_for(log, 2)
        time.sleep(3)  # > the warmer's 2 s poll: an unchanged version is not warmed again
        assert len(_warm_ups(log)) == 2


def test_open_page_explains_a_server_that_is_not_there() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(warm.WarmError, match="could not open page /vendors"):
        warm.open_page(f"http://127.0.0.1:{port}", "vendors", timeout_s=5)


def test_the_warmer_warms_once_per_version_and_survives_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[str] = []
    fail = threading.Event()

    def fake_open(base_url: str, page: str, timeout_s: float = 120.0) -> float:
        if fail.is_set():
            raise warm.WarmError("server gone")
        opened.append(page)
        return 0.01

    monkeypatch.setattr(warm, "open_page", fake_open)
    versions = iter(["v1", "v1", None, "v1", "v2", "v2", "v3", "v3", "v3"])
    current = {"v": "v1"}

    def version() -> str | None:
        v = next(versions, current["v"])
        current["v"] = v or current["v"]
        return v

    w = warm.Warmer("http://x", version, ready=lambda: True, pages=("", "fleet"), poll_s=0.01)
    w.start()
    assert w.done.wait(5)
    deadline = time.monotonic() + 5
    while w.warmed != "v3" and time.monotonic() < deadline:
        time.sleep(0.01)
    fail.set()  # a failing warm-up is logged; the thread lives on
    time.sleep(0.1)
    w.stop()
    w.join(5)
    assert not w.is_alive()
    assert opened == ["", "fleet"] * 3  # v1, v2 and v3 once each; None (nothing to warm) skipped
