"""The Kubernetes manifests and systemd units in docs/deploy/ run real ``wattledger`` commands
with options that exist, on ports that match, with probes on endpoints the programs serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.support import (
    DEPLOY,
    check_cli,
    check_setting_env,
    exec_start,
    ingest_routes,
    k8s_objects,
    option,
    pod_spec,
    systemd_entries,
    systemd_units,
)

OBJECTS = k8s_objects()
WORKLOADS = [(p, o) for p, o in OBJECTS if pod_spec(o) is not None]
SERVICES = [o for _, o in OBJECTS if o["kind"] == "Service"]
#: Which HTTP server a wattledger command runs, and its default port.
SERVERS = {("serve",): ("ingest", 4318), ("ingest", "serve"): ("ingest", 4318)}
SERVERS[("dashboard",)] = ("dashboard", 8501)


def _id(item: tuple[Path, dict[str, Any]]) -> str:
    return f"{item[0].name}:{item[1]['kind']}/{item[1]['metadata']['name']}"


def _wattledger_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj) or {}
    return [
        c
        for c in spec.get("initContainers", []) + spec.get("containers", [])
        if "wattledger/wattledger" in c["image"]
    ]


def _dashboard_health_path() -> str:
    from streamlit.web.server.starlette.starlette_routes import ROUTE_HEALTH

    return "/" + ROUTE_HEALTH.lstrip("/")


def test_the_expected_deployables_are_there() -> None:
    commands = {
        tuple(check_cli(c.get("command", [])[1:] + c.get("args", []))[0])
        for _, o in WORKLOADS
        for c in _wattledger_containers(o)
    }
    assert {("ingest", "serve"), ("serve",), ("dashboard",), ("db", "upgrade"), ("collect",)} <= (
        commands
    )
    kinds = {(o["kind"], o["metadata"]["name"]) for _, o in OBJECTS}
    assert ("Job", "wattledger-db-upgrade") in kinds
    assert ("Service", "wattledger-ingest") in kinds


@pytest.mark.parametrize("item", WORKLOADS, ids=[_id(w) for w in WORKLOADS])
def test_workload_containers(item: tuple[Path, dict[str, Any]]) -> None:
    _, obj = item
    spec = pod_spec(obj)
    assert spec is not None
    labels = obj["spec"]["template"]["metadata"].get("labels", {})
    if "selector" in obj["spec"]:
        assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for c in spec["containers"]:
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
        for probe in ("readinessProbe", "livenessProbe"):
            get = c.get(probe, {}).get("httpGet")
            if get is not None:  # a probe names a port the container declares
                port = get["port"]
                assert port in ports or port in ports.values(), (c["name"], probe, port)
        for env in c.get("env", []):
            check_setting_env(env["name"])
    for c in _wattledger_containers(obj):
        args = c.get("command", [])[1:] + c.get("args", [])
        path, _params = check_cli(args)
        server = SERVERS.get(tuple(path))
        if server is None:
            continue
        kind, default_port = server
        port = int(option(args, "--port") or default_port)
        declared = [p["containerPort"] for p in c.get("ports", [])]
        assert declared == [port], (c["name"], declared, port)
        assert option(args, "--host") == "0.0.0.0", "a pod must listen beyond loopback"
        for probe in ("readinessProbe", "livenessProbe"):
            assert probe in c, (c["name"], probe)
            path_ = c[probe]["httpGet"]["path"]
            if kind == "ingest":
                assert "GET" in ingest_routes()[path_], path_
            else:
                assert path_ == _dashboard_health_path()
        if kind == "ingest":
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # The database URL is a secret, never a literal in the manifest.
        env = {e["name"]: e for e in c.get("env", [])}
        url = env["WATTLEDGER_DATABASE_URL"]
        assert "secretKeyRef" in url["valueFrom"] and "value" not in url


def test_services_target_declared_ports() -> None:
    for svc in SERVICES:
        selector = svc["spec"]["selector"]
        pods = [
            o
            for _, o in WORKLOADS
            if selector.items() <= o["spec"]["template"]["metadata"]["labels"].items()
            and o["metadata"]["namespace"] == svc["metadata"]["namespace"]
        ]
        assert pods, f"Service {svc['metadata']['name']} selects no pod"
        for port in svc["spec"]["ports"]:
            for pod in pods:
                declared = {
                    (p.get("name"), p["containerPort"])
                    for c in pod_spec(pod)["containers"]  # type: ignore[index]
                    for p in c.get("ports", [])
                }
                target = port["targetPort"]
                assert any(target in pair for pair in declared), (svc["metadata"]["name"], port)


def test_clients_send_to_the_ingest_service() -> None:
    """Every collector's --endpoint is the ingest Service on its port."""
    (ingest,) = [s for s in SERVICES if s["metadata"]["name"] == "wattledger-ingest"]
    host = f"{ingest['metadata']['name']}.{ingest['metadata']['namespace']}.svc"
    (port,) = [p["port"] for p in ingest["spec"]["ports"]]
    endpoints = [
        option(c.get("args", []), "--endpoint")
        for _, o in WORKLOADS
        for c in _wattledger_containers(o)
        if c.get("args", [None])[0] == "collect"
    ]
    assert len(endpoints) >= 2
    for endpoint in endpoints:
        parts = urlsplit(endpoint or "")
        assert (parts.hostname, parts.port) == (host, port), endpoint


def test_scheduler_runs_once_and_ingest_replicas_do_not_schedule() -> None:
    for _, obj in WORKLOADS:
        for c in _wattledger_containers(obj):
            path, params = check_cli(c.get("args", []))
            if path == ["serve"] and params["scheduler"]:
                assert obj["spec"]["replicas"] == 1
                assert obj["spec"]["strategy"]["type"] == "Recreate"
                assert not params["migrate"], "migrations run in the Job, not at every start"


@pytest.mark.parametrize("unit", systemd_units(), ids=lambda p: p.name)
def test_systemd_unit(unit: Path) -> None:
    entries = systemd_entries(unit)
    sections = {s for s, _, _ in entries}
    assert {"Unit", "Service", "Install"} <= sections
    argv = exec_start(unit)
    assert Path(argv[0]).name == "wattledger" and Path(argv[0]).is_absolute()
    path, _ = check_cli(argv[1:])
    for section, key, value in entries:
        if (section, key) == ("Service", "Environment"):
            check_setting_env(value.split("=", 1)[0])
    server = SERVERS.get(tuple(path))
    if server is not None:
        assert option(argv, "--port") is not None, "say the port: the units may share a host"


def test_systemd_units_that_run_together_use_different_ports() -> None:
    ports: dict[str, str] = {}
    for unit in systemd_units():
        argv = exec_start(unit)
        if unit.name in ("wattledger-serve.service", "wattledger-collector.service"):
            continue  # the single-node alternative to ingest + scheduler; the collector is a client
        port = option(argv, "--port")
        assert port not in ports, (unit.name, ports.get(port or ""))
        ports[port or ""] = unit.name


def test_every_deploy_file_is_described_in_the_readme() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for path in sorted(DEPLOY.iterdir()):
        if path.name != "README.md" and path.suffix in (".yaml", ".service", ".md", ".sql"):
            assert path.name in readme, path.name
