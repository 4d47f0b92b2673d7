"""The deployment manifests in docs/deploy use options, sources and variables that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from wattledger.cli import app
from wattledger.collectors.collector.otlp import K8S_ENV
from wattledger.collectors.settings import CollectorSettings
from wattledger.collectors.sources.modeled import EnergyCatalog, parse_modeled_spec

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
MANIFESTS = sorted(DEPLOY.glob("collector-*.yaml")) + [DEPLOY / "wattledger-collector.service"]


def collect_options() -> set[str]:
    command = typer.main.get_command(app).commands["collect"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in param.opts}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_uses_real_options_sources_and_settings(path: Path) -> None:
    text = path.read_text()
    if path.suffix == ".service":  # the ExecStart line and its continuations
        exec_start = re.search(r"^ExecStart=((?:.*\\\n)*.*)$", text, re.M).group(1)  # type: ignore[union-attr]
        flags = re.findall(r"(--[a-z][a-z-]+)(?:[= ]([^\s\\]+))?", exec_start)
    else:  # the collector container's `args:` list items
        flags = re.findall(r"^\s*- (--[a-z][a-z-]+)(?:=(\S+))?", text, re.M)
    assert flags, "no collect flags found"
    options, sources = collect_options(), []
    for flag, value in flags:
        assert flag in options, f"{path.name}: wattledger collect has no {flag}"
        if flag == "--source":
            sources.append(value)
    CollectorSettings(sources=sources or ["auto"])  # every source spec is valid
    for spec in sources:
        if spec.startswith("modeled="):  # and names a catalog entry
            parse_modeled_spec(spec.partition("=")[2], EnergyCatalog.load())
    fields = set(CollectorSettings.model_fields)
    for key in re.findall(r"WATTLEDGER_COLLECTOR__([A-Z_]+)", text):
        assert key.lower() in fields, f"{path.name}: unknown setting {key}"


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("collector-*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifests_set_the_downward_api_and_grace_period(path: Path) -> None:
    text = path.read_text()
    names = set(re.findall(r"- name: (K8S_[A-Z_]+)", text))
    assert names == {env[0] for env in K8S_ENV.values()}
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", text).group(1))  # type: ignore[union-attr]
    assert grace > CollectorSettings().shutdown_timeout_s
    assert "WATTLEDGER_API_KEY" in text and "secretKeyRef" in text


def test_systemd_unit_gives_the_flush_time_to_stop() -> None:
    text = (DEPLOY / "wattledger-collector.service").read_text()
    assert "KillSignal=SIGTERM" in text
    stop = int(re.search(r"TimeoutStopSec=(\d+)", text).group(1))  # type: ignore[union-attr]
    assert stop > CollectorSettings().shutdown_timeout_s
