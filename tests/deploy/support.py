"""Helpers for the deployment tests: the files in docs/deploy/, and checks of a ``wattledger``
command line against the real CLI and of routes against the real ingest app."""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in ``path``."""
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]


def k8s_objects() -> list[tuple[Path, dict[str, Any]]]:
    """(file, object) for every Kubernetes object in docs/deploy/*.yaml."""
    return [
        (path, doc)
        for path in sorted(DEPLOY.glob("*.yaml"))
        for doc in yaml_documents(path)
        if "kind" in doc and "apiVersion" in doc
    ]


def otelcol_configs() -> list[Path]:
    """The OpenTelemetry Collector configurations in docs/deploy/."""
    return [p for p in sorted(DEPLOY.glob("otelcol-*.yaml")) if "service" in yaml_documents(p)[0]]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload object (Deployment, DaemonSet, StatefulSet, Job)."""
    template = obj.get("spec", {}).get("template")
    return template["spec"] if template else None


def systemd_units() -> list[Path]:
    return sorted(DEPLOY.glob("*.service"))


def systemd_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, with backslash continuations joined."""
    out: list[tuple[str, str, str]] = []
    section, pending = "", ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def exec_start(path: Path) -> list[str]:
    (value,) = [v for s, k, v in systemd_entries(path) if (s, k) == ("Service", "ExecStart")]
    return shlex.split(value)


@functools.cache
def _root() -> Any:
    from wattledger.cli import app

    return typer.main.get_command(app)


def check_cli(args: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse ``wattledger <args>`` with the real CLI without running it.

    Returns the command path (e.g. ``["ingest", "serve"]``) and the parsed options of the last
    command. Fails the test with the CLI's own message on an unknown command or option or a
    bad value. Also checks that ``wattledger <path> --help`` runs and lists every long option
    used.
    """
    root = _root()
    try:
        ctx = root.make_context("wattledger", list(args))
        cmd, path = root, []
        while hasattr(cmd, "resolve_command"):
            rest = [*ctx._protected_args, *ctx.args]
            if not rest:
                break
            name, cmd, rest = cmd.resolve_command(ctx, rest)
            path.append(name)
            ctx = cmd.make_context(name, rest, parent=ctx)
    except Exception as e:  # click's UsageError family, vendored by typer
        raise AssertionError(f"`wattledger {shlex.join(args)}`: {e}") from e
    assert path, f"`wattledger {shlex.join(args)}` names no command"
    from wattledger.cli import app

    help_text = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert help_text.exit_code == 0, help_text.output
    for arg in args[args.index(path[-1]) + 1 :]:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in help_text.output, (arg, path)
    return path, ctx.params


def option(args: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in ``args``."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def check_setting_env(name: str) -> None:
    """``WATTLEDGER_*`` variables must name a real setting (``__`` for nesting) or a variable
    the code reads itself."""
    from wattledger.analytics.reports.settings import ReportSettings
    from wattledger.collectors.sdk._config import WATTLEDGER_API_KEY, WATTLEDGER_ENDPOINT
    from wattledger.config import ENV_PREFIX, Settings

    if not name.startswith(ENV_PREFIX):
        return
    if name in (WATTLEDGER_API_KEY, ReportSettings().password_env, WATTLEDGER_ENDPOINT):
        return
    model: Any = Settings
    for part in name.removeprefix(ENV_PREFIX).lower().split("__"):
        assert isinstance(model, type) and issubclass(model, BaseModel), name
        assert part in model.model_fields, f"{name}: no setting {part!r}"
        model = model.model_fields[part].annotation
    # a leaf: a plain value, not a whole section
    assert not (isinstance(model, type) and issubclass(model, BaseModel)), name


@functools.cache
def ingest_routes() -> dict[str, set[str]]:
    """Path -> HTTP methods of the real ingest app."""
    import tempfile

    from wattledger.config import Settings
    from wattledger.ingest import IngestService
    from wattledger.models import make_engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"duckdb:///{tmp}/w.duckdb")
        service = IngestService(Settings(data_dir=Path(tmp)), engine, spool_dir=Path(tmp))
        routes = {r.path: set(r.methods or ()) for r in service.app.routes}
        engine.dispose()
    return routes
