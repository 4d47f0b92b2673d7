"""Stand-ins for vendor monitoring CLIs (``tpu-info``, ``neuron-monitor``), for tests and demos.

The TPU and Neuron sources talk to their hardware only through a command's output, so the fake
is a real executable at that boundary: :class:`FakeTool` writes a small Python script that
prints what the real tool would print. Tests point the source at it
(``TpuInfoSource(command=str(tool.path))``) and the whole path (finding the executable,
running it, reading its pipes, parsing) runs as in production.

* ``FakeTool.printing(dir, name, text, returncode=0)``: prints ``text`` (what the real tool
  printed once) and exits; :meth:`FakeTool.set_output` changes it for the next run.
* ``FakeTool.streaming(dir, name)``: prints each line appended with :meth:`FakeTool.emit` as
  it arrives (``neuron-monitor`` writes one JSON report per line, for ever);
  :meth:`FakeTool.exit` makes it exit with a status.
* A tool that is not installed is simply a path that does not exist.

Each run's command line is appended to ``<name>.argv`` so tests can check how it was called.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

_PRINTING = """\
import json, pathlib, sys
here = pathlib.Path(__file__)
with open(str(here) + ".argv", "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
sys.stdout.write(pathlib.Path(str(here) + ".out").read_text())
sys.stderr.write(pathlib.Path(str(here) + ".err").read_text())
sys.exit(int(pathlib.Path(str(here) + ".rc").read_text() or 0))
"""

_STREAMING = """\
import json, pathlib, sys, time
here = pathlib.Path(__file__)
with open(str(here) + ".argv", "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
feed = pathlib.Path(str(here) + ".feed")
offset = 0
while True:
    data = feed.read_text()
    end = data.rfind("\\n") + 1  # whole lines only
    if end > offset:
        chunk, offset = data[offset:end], end
        for line in chunk.splitlines():
            if line.startswith("\\x00EXIT "):
                code, _, message = line[6:].partition(" ")
                sys.stderr.write(message + "\\n")
                sys.exit(int(code))
            sys.stdout.write(line + "\\n")
        sys.stdout.flush()
    time.sleep(0.02)
"""


class FakeTool:
    """An executable script standing in for a vendor CLI (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def _write(cls, directory: Path, name: str, body: str) -> FakeTool:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return cls(path)

    @classmethod
    def printing(
        cls, directory: Path, name: str, text: str, *, returncode: int = 0, stderr: str = ""
    ) -> FakeTool:
        """A tool that prints ``text`` and exits with ``returncode``."""
        tool = cls._write(directory, name, _PRINTING)
        tool.set_output(text, returncode=returncode, stderr=stderr)
        return tool

    @classmethod
    def streaming(cls, directory: Path, name: str) -> FakeTool:
        """A tool that prints what :meth:`emit` feeds it, line by line, until :meth:`exit`."""
        tool = cls._write(directory, name, _STREAMING)
        tool._file(".feed").write_text("")
        return tool

    def _file(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def set_output(self, text: str, *, returncode: int = 0, stderr: str = "") -> None:
        """What the next run of a printing tool prints, and its exit status."""
        self._file(".out").write_text(text)
        self._file(".err").write_text(stderr)
        self._file(".rc").write_text(str(returncode))

    def emit(self, line: str | dict[str, object]) -> None:
        """Have a streaming tool print one line (a dict is written as one line of JSON)."""
        text = json.dumps(line) if isinstance(line, dict) else line
        with self._file(".feed").open("a") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def exit(self, returncode: int, stderr: str = "") -> None:
        """Have a streaming tool write ``stderr`` and exit with ``returncode``."""
        self.emit(f"\x00EXIT {returncode} {stderr}")

    def calls(self) -> list[list[str]]:
        """The argument lists the tool was run with, oldest first."""
        path = self._file(".argv")
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


__all__ = ["FakeTool"]
