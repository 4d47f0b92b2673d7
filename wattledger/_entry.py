"""The ``wattledger`` console script: the CLI, or what to install when only the SDK is there.

``pip install wattledger`` gives the SDK alone (OpenTelemetry only); the command needs the
server extra. Without it, the command says so in one line instead of an ImportError traceback.
"""

from __future__ import annotations

import sys

#: A module only the server extra brings: its absence means "SDK-only install".
_SERVER_MODULES = ("typer", "sqlalchemy", "pydantic_settings", "duckdb", "uvicorn")


def main() -> None:
    """Run the CLI if the server extra is installed; otherwise name the missing install."""
    import importlib.util

    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        sys.stderr.write(
            f"Error: the wattledger command needs the server extra ({', '.join(missing)} "
            "not installed).\n"
            "Hint: pip install 'wattledger[server]' (the dashboard: 'wattledger[dashboard]'); "
            "`pip install wattledger` alone is the SDK for instrumenting a service.\n"
        )
        sys.exit(1)
    from wattledger.cli import main as cli_main

    cli_main()
