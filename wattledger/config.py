"""Configuration: ``wattledger.toml`` overridden by ``WATTLEDGER_*`` environment variables.

Precedence, highest first: explicit arguments (CLI flags) > ``WATTLEDGER_*`` environment
variables > the TOML file > defaults. Nested sections use ``__`` in variable names, e.g.
``WATTLEDGER_INGEST__PORT=4318`` sets ``[ingest] port``.

The file is found via ``--config``, then ``$WATTLEDGER_CONFIG``, then ``./wattledger.toml``.
A file named explicitly must exist. A malformed file, an unknown key or a bad value is a
:class:`~wattledger.errors.ConfigError` that names the key, the value and where it came from.

Settings are built in ``main()`` and passed down, never at import time.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from wattledger.analytics.reports.settings import ReportSettings
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.collectors.settings import CollectorSettings
from wattledger.dashboard.settings import DashboardSettings
from wattledger.errors import ConfigError
from wattledger.ingest.settings import IngestSettings

ENV_PREFIX = "WATTLEDGER_"
ENV_CONFIG = "WATTLEDGER_CONFIG"
ENV_DATA_DIR = "WATTLEDGER_DATA_DIR"
CONFIG_FILENAME = "wattledger.toml"
DOCS_HINT = "See docs/configuration.md for every key and its default."


def default_data_dir() -> Path:
    """Where the embedded warehouse lives unless configured otherwise.

    ``$WATTLEDGER_DATA_DIR``, else ``$XDG_DATA_HOME/wattledger``, else
    ``~/.local/share/wattledger``.
    """
    if env := os.environ.get(ENV_DATA_DIR):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "wattledger"


class Settings(BaseSettings):
    """Every setting of every wattledger deployable, one typed tree.

    Attributes:
        database_url: SQLAlchemy URL of the warehouse. ``duckdb:///path`` (default: a file in
            ``data_dir``) or ``postgresql+psycopg://user@host:port/db``.
        data_dir: Directory for the embedded DuckDB file, spools and snapshots.
        log_level: Python logging level name for the CLI and services.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    database_url: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"duckdb:///{self.data_dir / 'wattledger.duckdb'}"
        return self

    @property
    def url(self) -> str:
        """The database URL, always set after validation."""
        assert self.database_url is not None
        return self.database_url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, _FILE_DATA.get() or {}))


# The TOML data for the settings being built; set by load_settings() around construction.
_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("wattledger_config_file", default=None)


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def find_config_file(explicit: Path | None = None) -> Path | None:
    """Return the config file to read, or None when there is none.

    Raises:
        ConfigError: a file named by ``--config`` or ``$WATTLEDGER_CONFIG`` does not exist.
    """
    for path, origin in ((explicit, "--config"), (os.environ.get(ENV_CONFIG), f"${ENV_CONFIG}")):
        if path:
            p = Path(path).expanduser()
            if p.is_dir():
                raise ConfigError(
                    f"Config file {p} (from {origin}) is a directory, not a TOML file.",
                    hint=f"Name the file itself, e.g. {p / CONFIG_FILENAME}.",
                )
            if not p.is_file():
                raise ConfigError(
                    f"Config file {p} (from {origin}) does not exist.",
                    hint="Fix the path, or remove the option to use defaults.",
                )
            return p
    local = Path.cwd() / CONFIG_FILENAME
    return local if local.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML config file, turning syntax errors into a :class:`ConfigError`."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"Config file {path} is not valid TOML: {e}.",
            hint="Fix the syntax at that line; see https://toml.io for the format.",
        ) from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text (byte {e.start} cannot be decoded).",
            hint="Save it as UTF-8; TOML files must be UTF-8.",
        ) from e
    except OSError as e:
        raise ConfigError(f"Cannot read config file {path}: {e.strerror}.") from e


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from arguments, environment and the config file.

    Args:
        config_path: An explicit config file (``--config``); must exist.
        **overrides: Values from CLI flags; ``None`` values are ignored.

    Raises:
        ConfigError: the file is malformed, has an unknown key, or a value is invalid.
    """
    path = find_config_file(config_path)
    data = read_config_file(path) if path else {}
    init = {k: v for k, v in overrides.items() if v is not None}
    token = _FILE_DATA.set(data)
    try:
        return Settings(**init)
    except ValidationError as e:
        raise _explain(e, path, data, init) from e
    except SettingsError as e:  # a WATTLEDGER_* variable holding a table or list is not JSON
        raise _explain_env(e) from e
    finally:
        _FILE_DATA.reset(token)


def _explain_env(error: SettingsError) -> ConfigError:
    m = re.search(r'field "([^"]+)"', str(error))
    field = m.group(1) if m else ""
    prefix = f"{ENV_PREFIX}{field.upper()}"
    names = sorted(n for n in os.environ if field and n.upper().startswith(prefix))
    cause = f": {error.__cause__}" if error.__cause__ else ""
    return ConfigError(
        f"Environment variable {' or '.join(names) or prefix + '*'} cannot be read as the "
        f"value of config key '{field}'{cause}.",
        hint="Tables and lists in environment variables are JSON, e.g. "
        'WATTLEDGER_INGEST__PROVIDER_HOSTS=\'{"llm.internal": "vllm"}\'; or use a "section__key" '
        f"variable per setting. {DOCS_HINT}",
    )


def _lookup(data: Mapping[str, Any], loc: tuple[Any, ...]) -> tuple[bool, Any]:
    node: Any = data
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


_SECRET_WORDS = ("password", "secret", "token")


def _shown(loc: tuple[str, ...], value: Any) -> str:
    """``value`` as an error message may show it: masked for password-like keys (a plain
    password pasted into ``password_hash`` must not be echoed), the password of a database
    URL hidden."""
    if any(word in part.lower() for part in loc for word in _SECRET_WORDS):
        return "'**********'"
    if loc and loc[-1] == "database_url" and isinstance(value, str):
        from wattledger.models.engine import redact

        return repr(redact(value))
    return repr(value)


def _explain(
    error: ValidationError, path: Path | None, data: dict[str, Any], init: dict[str, Any]
) -> ConfigError:
    first = error.errors()[0]
    loc = tuple(str(p) for p in first["loc"])
    key = ".".join(loc)
    # The variable that set this key: WATTLEDGER_A__B, or a JSON table in WATTLEDGER_A.
    env_names = [ENV_PREFIX + "__".join(loc[:i]).upper() for i in range(len(loc), 0, -1)]
    env_name = next((n for n in env_names if n in os.environ), env_names[0])
    in_init, init_val = _lookup(init, loc)
    in_file, file_val = _lookup(data, loc)
    if in_init:
        origin, value = "a command-line option", init_val
    elif env_name in os.environ:
        exact = env_name == env_names[0]
        origin = f"environment variable {env_name}"
        value = os.environ[env_name] if exact else first.get("input")
    elif in_file:
        origin, value = f"config file {path}", file_val
    else:
        origin, value = "the configuration", first.get("input")
    shown = _shown(loc, value)
    more = (
        f" ({len(error.errors()) - 1} more problem(s) after this one)"
        if len(error.errors()) > 1
        else ""
    )
    if first["type"] == "extra_forbidden":
        return ConfigError(
            f"Unknown config key '{key}' in {origin}{more}.",
            hint=f"Check the spelling or remove it. {DOCS_HINT}",
        )
    return ConfigError(
        f"Config key '{key}' from {origin} has value {shown}: {first['msg']}{more}.",
        hint=DOCS_HINT,
    )


__all__ = [
    "Settings",
    "load_settings",
    "find_config_file",
    "read_config_file",
    "default_data_dir",
]
