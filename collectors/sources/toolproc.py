"""Vendor monitoring tools run as subprocesses: a command run periodically, or one that streams.

TPU and Neuron hosts have no power library to bind to; their own CLIs are the boundary
(``tpu-info`` prints tables, ``neuron-monitor`` streams one JSON report per period). Both run
off the sampling thread, so a tool that takes seconds never stalls the 0.5 s sampling loop:
:class:`PeriodicCommand` reruns a command every ``interval_s`` in a daemon thread and keeps
the latest parsed result; :class:`StreamingCommand` keeps a long-running tool alive and hands
each stdout line to a callback. Neither raises into the collector once started: failures are
logged once and the last good result ages until the source stops reporting it.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

from wattledger.collectors.sources.base import (
    OnceLogger,
    SourceError,
    SourcePermissionError,
    SourceUnavailable,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def find_tool(command: str, fallbacks: Sequence[str] = ()) -> str | None:
    """The executable ``command`` names: a path, a name on ``PATH``, else the first fallback
    path that exists and is executable; None when there is none."""
    found = shutil.which(command)
    if found:
        return found
    for path in fallbacks:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def run_tool(
    argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a tool once and return its result; failures to start map onto the taxonomy.

    Raises:
        SourceUnavailable: the executable does not exist.
        SourcePermissionError: it may not be executed by this user.
        SourceError: it ran past ``timeout_s``.
    """
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except FileNotFoundError as e:
        raise SourceUnavailable(f"{argv[0]} is not installed ({e}).") from e
    except PermissionError as e:
        raise SourcePermissionError(f"{argv[0]} may not be run by this user ({e}).") from e
    except subprocess.TimeoutExpired as e:
        raise SourceError(f"{argv[0]} did not finish within {timeout_s:g} s.") from e


class PeriodicCommand(Generic[T]):
    """Runs a command every ``interval_s`` in a daemon thread; keeps the latest parse.

    Args:
        argv: The command line.
        parse: ``stdout -> T``; raising ``ValueError`` marks the output unusable (logged once).
        interval_s: Seconds from the start of one run to the start of the next.
        timeout_s: Longest a run may take.
        clock_ns: Monotonic clock stamped on each result.
        env: Extra environment variables.
    """

    def __init__(
        self,
        argv: Sequence[str],
        parse: Callable[[str], T],
        *,
        interval_s: float,
        timeout_s: float,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._parse = parse
        self._clock_ns = clock_ns
        self._env = dict(env or {})
        self._lock = threading.Lock()
        self._latest: tuple[T, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._once = OnceLogger(logger)
        #: Runs whose output could not be used (failed, timed out, unparsable).
        self.failed_runs = 0

    def run_once(self) -> T:
        """Run the command now and return its parsed output (also kept as the latest).

        Raises:
            SourceError: it could not run (see :func:`run_tool`).
            ValueError: its output is not what ``parse`` understands.
        """
        done = run_tool(self.argv, self.timeout_s, self._env)
        value = self._parse(done.stdout)
        with self._lock:
            self._latest = (value, self._clock_ns())
        return value

    def latest(self) -> tuple[T, int] | None:
        """The latest parsed output and the monotonic time it was taken, or None."""
        with self._lock:
            return self._latest

    def start(self) -> None:
        """Start rerunning the command in the background (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"wattledger-{os.path.basename(self.argv[0])}", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except (SourceError, ValueError) as e:
                self.failed_runs += 1
                self._once.log(
                    logging.WARNING,
                    (type(e),),
                    "%s failed (%s); keeping its last good output until it works again.",
                    self.argv[0],
                    e,
                )
            except Exception:  # the thread must survive anything the parser does
                self.failed_runs += 1
                logger.exception("Running %s failed unexpectedly", self.argv[0])

    def close(self) -> None:
        """Stop the background thread (a run in progress finishes or times out)."""
        self._stop.set()


class StreamingCommand:
    """Keeps a long-running tool alive and hands each stdout line to ``on_line``.

    Args:
        argv: The command line.
        on_line: Called from the reader thread with each line (without its newline).
        env: Extra environment variables.
    """

    def __init__(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self._on_line = on_line
        self._env = dict(env or {})
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the tool.

        Raises:
            SourceUnavailable: the executable does not exist.
            SourcePermissionError: it may not be executed by this user.
        """
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                env={**os.environ, **self._env},
            )
        except FileNotFoundError as e:
            raise SourceUnavailable(f"{self.argv[0]} is not installed ({e}).") from e
        except PermissionError as e:
            raise SourcePermissionError(f"{self.argv[0]} may not be run by this user ({e}).") from e
        proc = self._proc
        self._stderr.clear()
        self._threads = [
            threading.Thread(target=self._pump, args=(proc.stdout, self._line), daemon=True),
            threading.Thread(
                target=self._pump, args=(proc.stderr, self._stderr.append), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _line(self, line: str) -> None:
        try:
            self._on_line(line)
        except Exception:  # a bad line must not kill the reader
            logger.exception("Handling a line of %s failed", self.argv[0])

    @staticmethod
    def _pump(stream: object, sink: Callable[[str], None]) -> None:
        try:
            for line in stream:  # type: ignore[attr-defined]
                sink(line.rstrip("\n"))
        except (OSError, ValueError):
            pass  # the pipe closed under us (the tool was stopped)

    def alive(self) -> bool:
        """Whether the tool is running."""
        return self._proc is not None and self._proc.poll() is None

    def returncode(self) -> int | None:
        """The tool's exit status once it has exited, else None."""
        return None if self._proc is None else self._proc.poll()

    def stderr_tail(self) -> str:
        """The last lines the tool wrote to stderr, joined (for error messages)."""
        return " | ".join(line for line in self._stderr if line.strip())[-500:]

    def close(self) -> None:
        """Stop the tool: SIGTERM, then SIGKILL after 2 s (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2.0)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        for thread in self._threads:
            thread.join(timeout=1.0)


__all__ = ["PeriodicCommand", "StreamingCommand", "find_tool", "run_tool"]
