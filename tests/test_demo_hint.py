"""The demo's "Next" hint works in a fresh shell, as a new user follows it (issue 22).

Seen: it exported only WATTLEDGER_CONFIG, so `wattledger recommend` in a new shell opened the
default data directory and suggested `db upgrade` (an empty warehouse); its commands were
joined with " | ", which reads as a pipe.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_following_the_demo_hint_reaches_the_demo_warehouse(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTLEDGER_")}
    env["WATTLEDGER_DATA_DIR"] = str(tmp_path / "demo")
    env["HOME"] = str(tmp_path / "home")
    r = subprocess.run(
        [sys.executable, "-m", "wattledger", "demo", "--no-dashboard", "--days", "0.1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert " INFO " not in r.stderr  # no raw log line cuts into the summary
    hint = r.stderr[r.stderr.index("Next") :]
    assert " | wattledger" not in hint
    exports = dict(re.findall(r"(WATTLEDGER_[A-Z_]+)=(\S+)", hint))
    assert set(exports) == {"WATTLEDGER_DATA_DIR", "WATTLEDGER_CONFIG"}
    # A fresh shell: only what the hint exports, from another directory.
    fresh = {k: v for k, v in env.items() if not k.startswith("WATTLEDGER_")} | exports
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rec = subprocess.run(
        [sys.executable, "-m", "wattledger", "recommend", "--json"],
        capture_output=True,
        text=True,
        env=fresh,
        cwd=elsewhere,
        timeout=300,
    )
    assert rec.returncode == 0, rec.stderr[-2000:]
    assert "db upgrade" not in rec.stderr
    assert rec.stdout.strip().startswith(("{", "["))
    # Every command the hint shows runs as shown.
    for line in hint.splitlines():
        command = line.strip()
        if not command.startswith("wattledger "):
            continue
        out = subprocess.run(
            [sys.executable, "-m", "wattledger", *command.split()[1:]],
            capture_output=True,
            text=True,
            env=fresh,
            cwd=elsewhere,
            timeout=300,
        )
        assert out.returncode == 0, (command, out.stderr[-2000:])
