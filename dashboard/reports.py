"""The Reports page's actions, run as ``wattledger report …`` in a subprocess.

The dashboard's own database access is read-only; sending a report (which records the run)
is the report command's job, with the same settings as the dashboard.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    """Exit code and output of one ``wattledger`` command."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the command succeeded."""
        return self.returncode == 0


def report_command_available() -> bool:
    """Whether this installation has the ``wattledger report`` commands."""
    return importlib.util.find_spec("wattledger.cli.report") is not None


def run_report(*args: str, timeout_s: float = 120.0) -> CommandResult:
    """Run ``wattledger report <args>`` with this process's environment."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "wattledger", "report", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CommandResult(
            124,
            "",
            f"`wattledger report {' '.join(args)}` took over {timeout_s:.0f} s and was stopped.",
        )
    return CommandResult(done.returncode, done.stdout, done.stderr)
