"""What every command shares: settings from the global options, output, and errors."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from wattledger.config import Settings, load_settings
from wattledger.errors import WattledgerError

#: Logs, progress and errors go to stderr; data goes to stdout.
err_console = Console(stderr=True, soft_wrap=True)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@dataclass
class CliState:
    """The global options, and the settings built from them on first use."""

    config_path: Path | None = None
    database_url: str | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Load settings once: flags > ``WATTLEDGER_*`` env > config file > defaults."""
        if self._settings is None:
            self._settings = load_settings(self.config_path, database_url=self.database_url)
            setup_logging("DEBUG" if self.verbose else self._settings.log_level)
        return self._settings


#: The state of the running command; reset by the root callback on every invocation.
STATE = CliState()


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` of the running command."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else STATE


def setup_logging(level: str) -> None:
    """Send wattledger's logs to stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("wattledger")
    root.handlers[:] = [handler]
    root.setLevel(level)


def existing_warehouse(url: str) -> str:
    """``url`` once a DuckDB file is known to exist: a mistyped path must not create an empty
    warehouse (and its directories) and answer from it. Other backends pass unchanged.

    Raises:
        WattledgerError: the DuckDB file does not exist.
    """
    if url.startswith("duckdb"):
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if database and database != ":memory:" and not Path(database).expanduser().exists():
            raise WattledgerError(
                f"There is no warehouse at {database}.",
                hint="Check --database-url, $WATTLEDGER_DATABASE_URL or $WATTLEDGER_DATA_DIR; "
                "`wattledger db upgrade` creates a new warehouse there.",
            )
    return url


def output_file(path: Path) -> Path:
    """``path`` once its directory is known to exist (an output option must not create one).

    Raises:
        WattledgerError: the directory does not exist, or ``path`` is a directory.
    """
    if path.is_dir():
        raise WattledgerError(f"{path} is a directory.", hint="Give a file name to write.")
    if not path.parent.exists():
        raise WattledgerError(
            f"The directory {path.parent} does not exist.",
            hint="Create it first, or write somewhere that exists.",
        )
    return path


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (datetimes and decimals as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def json_option() -> Any:
    """The ``--json`` flag for commands whose output is data."""
    return typer.Option(False, "--json", help="Print machine-readable JSON to stdout.")


def parse_utc(value: str | None, option: str) -> Any:
    """Parse an ISO date or datetime option; naive values are taken as UTC.

    Raises:
        WattledgerError: the value is not ISO 8601, naming the option.
    """
    import datetime as dt

    from wattledger.errors import WattledgerError

    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise WattledgerError(
            f"{option} {value!r} is not an ISO 8601 date or time.",
            hint=f"Use e.g. {option} 2026-11-16 or {option} 2026-11-16T08:00:00Z.",
        ) from e
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def progress_bar() -> Any:
    """A rich progress bar on stderr (hidden when stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
