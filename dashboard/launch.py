"""Start the dashboard as a Streamlit subprocess: for ``wattledger dashboard`` and ``serve``.

``start_dashboard(settings)`` returns a :class:`DashboardProcess` handle; ``stop()`` ends it.
The child gets the settings it needs through ``WATTLEDGER_*`` variables, so it reads the same
warehouse and snapshot, with the same sign-ins and tenant binding, as the parent whatever flags
the parent was given.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from wattledger.config import Settings
from wattledger.errors import WattledgerError

log = logging.getLogger(__name__)

APP_PATH = Path(__file__).with_name("streamlit_app.py")
#: What ``streamlit run`` is given: ``APP_PATH`` wrapped as an ASGI app (see ``asgi.py``).
ASGI_PATH = Path(__file__).with_name("asgi.py")


def streamlit_is_available() -> bool:
    """Whether the ``dashboard`` extra (Streamlit) is installed."""
    return importlib.util.find_spec("streamlit") is not None


def dashboard_env(settings: Settings, config_path: Path | None = None) -> dict[str, str]:
    """The environment for the dashboard process: this one plus the resolved settings."""
    env = dict(os.environ)
    env["WATTLEDGER_DATABASE_URL"] = settings.url
    env["WATTLEDGER_DATA_DIR"] = str(settings.data_dir)
    env["WATTLEDGER_LOG_LEVEL"] = settings.log_level
    env["WATTLEDGER_DASHBOARD__MARTS_PATH"] = str(
        settings.dashboard.snapshot_path(settings.data_dir)
    )
    env["WATTLEDGER_DASHBOARD__CACHE_TTL_S"] = str(settings.dashboard.cache_ttl_s)
    if settings.dashboard.password_hash:
        env["WATTLEDGER_DASHBOARD__PASSWORD_HASH"] = settings.dashboard.password_hash
    if settings.dashboard.tenant is not None:
        env["WATTLEDGER_DASHBOARD__TENANT"] = settings.dashboard.tenant
    if settings.dashboard.users:
        env["WATTLEDGER_DASHBOARD__USERS"] = json.dumps(
            {name: user.model_dump() for name, user in settings.dashboard.users.items()}
        )
    if config_path is not None:
        env["WATTLEDGER_CONFIG"] = str(Path(config_path).resolve())
    return env


def streamlit_command(host: str, port: int) -> list[str]:
    """``python -m streamlit run`` for the app: headless, no telemetry, no file watching.

    Two runner defaults cost every page view time in this process, which holds pandas, Altair
    and the query caches: ``postScriptGC`` runs a full garbage collection after each script run
    *before* the browser hears that the run finished (~50-100 ms here), and "magic" rewrites
    each page's syntax tree (our pages write every element explicitly). Both are off; Python's
    own generational collection still runs.
    """
    return [
        sys.executable, "-m", "streamlit", "run", str(ASGI_PATH),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--runner.magicEnabled", "false",
        "--runner.postScriptGC", "false",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
        "--global.developmentMode", "false",
        "--theme.base", "light",
    ]  # fmt: skip


@dataclass
class DashboardProcess:
    """A running dashboard. ``url`` is where to open it."""

    process: subprocess.Popen[bytes]
    url: str

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the server answers its health check.

        Raises:
            WattledgerError: it exited (e.g. the port is taken) or did not answer in time.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WattledgerError(
                    f"The dashboard exited with code {self.process.returncode} while starting.",
                    hint="Its messages are above. If the port is taken, pass e.g. --port 8502.",
                )
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise WattledgerError(f"The dashboard did not answer at {self.url} within {timeout_s} s.")

    def stop(self, timeout_s: float = 10.0) -> int:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``); return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def wait(self) -> int:
        """Wait for the server to exit; return its exit code."""
        return self.process.wait()


def start_dashboard(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    config_path: Path | None = None,
    output: IO[bytes] | None = None,
) -> DashboardProcess:
    """Start the dashboard in a subprocess and return a handle to stop it.

    Args:
        settings: The resolved settings; ``settings.dashboard`` gives the defaults.
        host: Interface to bind (default ``[dashboard] host``).
        port: TCP port (default ``[dashboard] port``).
        config_path: The config file the parent used, passed on as ``WATTLEDGER_CONFIG``.
        output: Where the server's stdout and stderr go (default: inherited).

    Raises:
        WattledgerError: Streamlit is not installed.
    """
    if not streamlit_is_available():
        raise WattledgerError(
            "The dashboard needs Streamlit, which is not installed.",
            hint="Install the extra: pip install 'wattledger[dashboard]'.",
        )
    host = host or settings.dashboard.host
    port = port or settings.dashboard.port
    process = subprocess.Popen(
        streamlit_command(host, port),
        env=dashboard_env(settings, config_path),
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    log.info("dashboard starting on http://%s:%d (pid %d)", shown, port, process.pid)
    return DashboardProcess(process, f"http://{shown}:{port}")
