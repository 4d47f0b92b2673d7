"""Run the ``wattledger`` CLI in this process, as the console script does, capturing output."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from wattledger.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> Result:
    """``wattledger --database-url URL ARGS…``; the exit code, stdout and stderr."""
    capsys.readouterr()
    try:
        main(["--database-url", url, *args])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return Result(code, out, err)
