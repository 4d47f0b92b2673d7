"""The OpenTelemetry Collector configurations in docs/deploy/ are wired correctly.

The otelcol-contrib binary cannot be downloaded here, so these tests cannot run it; they check
what a reader could get wrong: every component a pipeline uses is defined, the persistent queue's
file_storage extension is enabled and used, the exporters reach the routes wattledger ingest
serves on the Service's port, the API key comes from an environment variable, and only keys the
Collector documents are used (exporterhelper, otlphttp exporter, batch and memory_limiter
processors, file_storage extension READMEs, v0.1xx).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.support import (
    DEPLOY,
    ingest_routes,
    k8s_objects,
    otelcol_configs,
    pod_spec,
    yaml_documents,
)

CONFIGS = otelcol_configs()
SECTIONS = ("receivers", "processors", "exporters")
#: Keys the Collector documents for the components we use (typos are silently fatal there).
KNOWN_KEYS = {
    "otlphttp": {
        "endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint", "headers",
        "compression", "timeout", "sending_queue", "retry_on_failure", "tls", "encoding",
        "read_buffer_size", "write_buffer_size",
    },
    "sending_queue": {
        "enabled", "num_consumers", "queue_size", "storage", "sizer", "block_on_overflow",
        "wait_for_result", "batch",
    },
    "retry_on_failure": {
        "enabled", "initial_interval", "max_interval", "max_elapsed_time", "multiplier",
        "randomization_factor",
    },
    "file_storage": {
        "directory", "timeout", "compaction", "fsync", "create_directory",
        "directory_permissions", "recreate",
    },
    "memory_limiter": {
        "check_interval", "limit_mib", "spike_limit_mib", "limit_percentage",
        "spike_limit_percentage",
    },
    "batch": {
        "send_batch_size", "send_batch_max_size", "timeout", "metadata_keys",
        "metadata_cardinality_limit",
    },
}  # fmt: skip
#: The body size wattledger ingest was benchmarked with (docs/benchmarks/ingest.md).
SPANS_PER_BODY = 512
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _config(path: Path) -> dict[str, Any]:
    (doc,) = yaml_documents(path)
    return doc


def _services() -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``name.namespace.svc`` -> (Service, the pods' containers it selects)."""
    objects = [o for _, o in k8s_objects()]
    out = {}
    for svc in (o for o in objects if o["kind"] == "Service"):
        meta = svc["metadata"]
        pods = [
            c
            for o in objects
            if pod_spec(o) is not None
            and svc["spec"]["selector"].items()
            <= o["spec"]["template"]["metadata"]["labels"].items()
            for c in pod_spec(o)["containers"]  # type: ignore[index]
        ]
        out[f"{meta['name']}.{meta['namespace']}.svc"] = (svc, pods)
    return out


def _manifest_for(config: Path) -> list[dict[str, Any]]:
    """The workloads whose pods mount ``config`` (its ConfigMap is named after the file)."""
    out = [
        obj
        for _, obj in k8s_objects()
        if any(
            v.get("configMap", {}).get("name") == config.stem
            for v in (pod_spec(obj) or {}).get("volumes", [])
        )
    ]
    assert out, f"no manifest mounts the ConfigMap {config.stem}"
    return out


def test_there_is_a_gateway_and_an_agent() -> None:
    assert {p.name for p in CONFIGS} == {"otelcol-gateway.yaml", "otelcol-agent.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_pipelines_use_only_defined_components(path: Path) -> None:
    cfg = _config(path)
    pipelines = cfg["service"]["pipelines"]
    assert {"traces", "metrics"} <= set(pipelines)
    for name, pipeline in pipelines.items():
        for section in SECTIONS:
            assert pipeline.get(section), (name, section)
            for component in pipeline[section]:
                assert component in (cfg.get(section) or {}), f"{name}: {component} undefined"
        procs = pipeline["processors"]
        assert _type(procs[0]) == "memory_limiter", "memory_limiter must come first"
        assert any(_type(p) == "batch" for p in procs)
    used = {c for p in pipelines.values() for s in SECTIONS for c in p[s]}
    for section in SECTIONS:
        assert set(cfg[section]) <= used, f"{section} defined but unused"
    for ext in cfg["service"].get("extensions", []):
        assert ext in cfg.get("extensions", {}), ext


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_components_use_documented_keys_and_our_batch_size(path: Path) -> None:
    cfg = _config(path)
    for section in ("processors", "exporters", "extensions"):
        for cid, body in (cfg.get(section) or {}).items():
            kind = _type(cid)
            if kind in KNOWN_KEYS:
                assert set(body or {}) <= KNOWN_KEYS[kind], (cid, set(body) - KNOWN_KEYS[kind])
            for sub in ("sending_queue", "retry_on_failure"):
                if sub in (body or {}):
                    assert set(body[sub]) <= KNOWN_KEYS[sub], (cid, sub)
            if kind == "batch":
                assert body["send_batch_max_size"] == SPANS_PER_BODY
                assert body["send_batch_size"] <= body["send_batch_max_size"]
            if kind == "memory_limiter":
                assert body["spike_limit_mib"] < body["limit_mib"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_exporters_queue_on_enabled_file_storage_and_retry(path: Path) -> None:
    cfg = _config(path)
    enabled = cfg["service"]["extensions"]
    exporters = cfg["exporters"]
    for eid, body in exporters.items():
        assert _type(eid) == "otlphttp", eid
        queue = body["sending_queue"]
        assert queue["enabled"] is True
        storage = queue["storage"]
        assert storage in cfg["extensions"] and _type(storage) == "file_storage", storage
        assert storage in enabled, f"{storage} is defined but not enabled in service.extensions"
        assert body["retry_on_failure"]["enabled"] is True
    # The queue directory is on a volume that outlives the container.
    for obj in _manifest_for(path):
        spec = pod_spec(obj) or {}
        mounts = {m["mountPath"]: m["name"] for c in spec["containers"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        for ext, body in cfg["extensions"].items():
            if _type(ext) == "file_storage":
                volume = mounts[body["directory"]]
                if volume in volumes:  # not an emptyDir: that dies with the pod
                    assert {"hostPath", "persistentVolumeClaim"} & set(volumes[volume]), volume
                else:
                    assert volume in claims, volume


def test_gateway_exports_to_the_ingest_routes_with_a_key_from_the_environment() -> None:
    path = DEPLOY / "otelcol-gateway.yaml"
    cfg = _config(path)
    services = _services()
    routes = ingest_routes()
    (exporter,) = cfg["exporters"].values()
    url = urlsplit(exporter["endpoint"])
    svc, containers = services[url.hostname or ""]
    assert url.port in [p["port"] for p in svc["spec"]["ports"]]
    assert any(c.get("args", [None])[0] in ("ingest", "serve") for c in containers)
    # The otlphttp exporter appends /v1/<signal> to endpoint; ingest serves exactly those.
    for signal in ("traces", "metrics"):
        route = url.path.rstrip("/") + f"/v1/{signal}"
        assert "POST" in routes[route], route
    auth = exporter["headers"]["Authorization"]
    match = re.fullmatch(r"Bearer (\$\{env:[A-Za-z_][A-Za-z0-9_]*\})", auth)
    assert match, f"the key must come from ${{env:...}}, not a literal: {auth!r}"
    (var,) = ENV_REF.findall(auth)
    for obj in _manifest_for(path):
        containers = (pod_spec(obj) or {})["containers"]
        env = {e["name"]: e for c in containers for e in c.get("env", [])}
        assert "secretKeyRef" in env[var]["valueFrom"], f"{var} must come from a Secret"


def test_agent_exports_to_the_gateway_receiver() -> None:
    agent, gateway = (
        _config(DEPLOY / "otelcol-agent.yaml"),
        _config(DEPLOY / "otelcol-gateway.yaml"),
    )
    services = _services()
    (exporter,) = agent["exporters"].values()
    url = urlsplit(exporter["endpoint"])
    svc, containers = services[url.hostname or ""]
    (port,) = [p for p in svc["spec"]["ports"] if p["port"] == url.port]
    http = gateway["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert int(http.rsplit(":", 1)[1]) == url.port
    assert any(p["name"] == port["targetPort"] for c in containers for p in c["ports"])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_no_literal_key_anywhere(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"wl_[A-Za-z0-9]{8,}", text)
    for line in text.splitlines():
        if "Bearer" in line and not line.lstrip().startswith("#"):
            assert ENV_REF.search(line), line
