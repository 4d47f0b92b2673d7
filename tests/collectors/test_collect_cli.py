"""``wattledger collect`` and ``wattledger doctor`` through the real console entry point."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from collect_support import DATA, free_port, otlp_receiver, text_server

from wattledger.collectors import semconv as sc
from wattledger.collectors.sources.fakes.sysfs import FakeRapl
from wattledger.collectors.sources.fakes.tools import FakeTool


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattledger", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def rapl_tree(root: Path) -> Path:
    tree = FakeRapl(root / "powercap")
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=123_000_000)
    tree.add_zone("intel-rapl:0:0", "core", energy_uj=1)
    tree.add_zone("intel-rapl:0:1", "dram", energy_uj=45_000_000)
    return root / "powercap"


def test_once_prints_one_set_of_readings_as_json() -> None:
    r = run("collect", "--once", "-s", "fake=2", "--interval", "0.05")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["device_id"].split(":", 1)[1] for row in rows] == ["fake:0", "fake:1"]
    for row in rows:
        assert row["method"] == "counter" and row["power_w"] == 300.0
        assert row["energy_j"] > 0 and row["ts"].endswith("+00:00")
        assert row["source"] == "fake" and row["hw_type"] == "gpu"


def test_once_reads_a_rapl_tree_from_the_configured_root(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path)
    env = {"WATTLEDGER_COLLECTOR__RAPL_ROOT": str(root)}
    r = run("collect", "--once", "-s", "rapl", "--interval", "0.05", env=env)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"package-0", "package-0/dram"}
    assert rows["package-0"]["energy_j"] == 123.0 and rows["package-0"]["hw_type"] == "cpu"
    assert rows["package-0/dram"]["hw_type"] == "memory"


def test_once_includes_scraped_engine_stats() -> None:
    page = (DATA / "vllm_metrics_2.txt").read_text()
    with text_server(lambda path: (200, page)) as base:
        r = run("collect", "--once", "-s", f"prometheus={base}/metrics", "--interval", "0.05")
    assert r.returncode == 0, r.stderr
    (engine,) = [row for row in json.loads(r.stdout) if row.get("kind") == "engine"]
    assert engine["engine"] == "vllm" and engine["generation_tokens"] == 35612.0
    assert engine["ttft"]["count"] == 160


def test_doctor_lists_found_and_unavailable_sources_with_fixes(tmp_path: Path) -> None:
    root = rapl_tree(tmp_path)
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {
        "WATTLEDGER_COLLECTOR__RAPL_ROOT": str(root),
        "WATTLEDGER_COLLECTOR__ENDPOINT": endpoint,
    }
    r = run("doctor", "--json", env=env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    by_source = {s["source"]: s for s in report["sources"]}
    assert by_source["rapl"]["status"] == "found"
    assert {d["type"] for d in by_source["rapl"]["devices"]} == {"cpu", "memory"}
    assert by_source["nvml"]["status"] == "unavailable"
    assert "NVIDIA" in by_source["nvml"]["fix"]
    assert "wattledger[amd]" in by_source["amdsmi"]["fix"]
    assert report["endpoint"] == {
        "url": endpoint,
        "reachable": False,
        "error": report["endpoint"]["error"],
    }
    text = run("doctor", env=env)
    assert text.returncode == 0
    assert "[found]       rapl" in text.stdout and "fix:" in text.stdout
    assert "ERROR" not in text.stderr  # doctor reports, it does not log errors


def test_sigterm_flushes_every_sample_to_ingest() -> None:
    with otlp_receiver() as rx:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "wattledger", "collect", "-s", "fake=2",
                "--endpoint", rx.url, "--interval", "0.05", "--export-interval", "600",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "WATTLEDGER_API_KEY": "wl_env_key", "K8S_POD_NAME": "p-1"},
        )  # fmt: skip
        assert proc.stderr is not None
        started = proc.stderr.readline()
        assert "Collecting from fake (2 device(s))" in started, started
        time.sleep(0.5)
        assert rx.received == []  # nothing yet: the export interval is 10 minutes
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert "flushing" in rest
    match = re.search(r"(\d+) cycle\(s\) sampled, (\d+) exported", rest)
    assert match and match.group(1) == match.group(2), rest
    cycles = int(match.group(1))
    assert cycles >= 2
    assert len(rx.points(sc.HW_ENERGY)) == 2 * cycles  # every sample, two devices
    assert rx.received[0].headers["authorization"] == "Bearer wl_env_key"
    resource = rx.received[0].request.resource_metrics[0].resource
    pods = [kv.value.string_value for kv in resource.attributes if kv.key == sc.K8S_POD_NAME]
    assert pods == ["p-1"]


def test_bad_options_are_clear_errors() -> None:
    r = run("collect", "-s", "gpu")
    assert r.returncode == 1
    assert "unknown source 'gpu'" in r.stderr and "Hint:" in r.stderr
    r = run("collect", "--once", env={"WATTLEDGER_COLLECTOR__INTERVAL_S": "fast"})
    assert r.returncode == 1
    assert "collector.interval_s" in r.stderr and "'fast'" in r.stderr
    r = run("collect", "--once", "-s", "modeled=gpt-17@H100")
    assert r.returncode == 1 and "No published energy per token" in r.stderr


def test_doctor_shows_an_unresolved_gpu_name_as_unknown(tmp_path: Path) -> None:
    env = {
        "WATTLEDGER_COLLECTOR__RAPL_ROOT": str(tmp_path / "none"),
        "WATTLEDGER_COLLECTOR__ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    r = run("doctor", "--json", "-s", "fake=1", env=env)
    assert r.returncode == 0, r.stderr
    (fake,) = [s for s in json.loads(r.stdout)["sources"] if s["source"] == "fake"]
    (device,) = fake["devices"]
    assert device["model"] == "Fake GPU"  # stored and shown as reported
    assert device["hardware"] == {"key": None, "name": None, "known": False, "in_catalog": False}
    text = run("doctor", "-s", "fake=1", env=env)
    assert "Fake GPU: unknown hardware" in text.stdout


def test_doctor_finds_tpus_and_says_their_power_is_modeled(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    FakeTool.printing(tools, "tpu-info", (DATA / "tpu_info_v6e_busy.txt").read_text())
    env = {
        "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        "WATTLEDGER_COLLECTOR__RAPL_ROOT": str(tmp_path / "none"),
        "WATTLEDGER_COLLECTOR__ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    r = run("doctor", "--json", env=env)
    assert r.returncode == 0, r.stderr
    by_source = {s["source"]: s for s in json.loads(r.stdout)["sources"]}
    tpu = by_source["tpu"]
    assert tpu["status"] == "found" and len(tpu["devices"]) == 4
    device = tpu["devices"][0]
    assert (device["power"], device["uncertainty_ratio"], device["vendor"]) == (
        "modeled",
        0.25,
        "google",
    )
    assert device["hardware"]["key"] == "TPU-v6e" and device["hardware"]["in_catalog"]
    assert by_source["neuron"]["status"] == "unavailable"
    assert "aws-neuronx-tools" in by_source["neuron"]["fix"]
    text = run("doctor", env=env)
    assert "[found]       tpu:" in text.stdout
    assert "power is MODELED from TPU duty cycle" in text.stdout and "(±25%)" in text.stdout
