"""TPU (``tpu-info``) and Neuron (``neuron-monitor``) sources: power modeled from utilisation.

The tools are replaced by executables printing recorded output (``FakeTool``), so finding the
tool, running it, reading its pipes and parsing all run as in production.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from collect_support import DATA, ManualClock, otlp_receiver

from wattledger.collectors import semconv as sc
from wattledger.collectors.collector.run import Collector
from wattledger.collectors.settings import CollectorSettings
from wattledger.collectors.sources.base import SourceError, SourceUnavailable
from wattledger.collectors.sources.fakes.tools import FakeTool
from wattledger.collectors.sources.neuron import NeuronMonitorSource, parse_neuron_report
from wattledger.collectors.sources.tpu import TpuInfoSource, parse_tpu_info
from wattledger.collectors.sources.utilization import (
    RANGE_GUESSED,
    RANGE_PUBLISHED,
    catalog_power_figures,
)

GIB = 2**30


def recording(name: str) -> str:
    return (DATA / name).read_text()


def reports(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in recording(name).splitlines()]


# --- the power model --------------------------------------------------------------------------


def test_catalog_figures_and_range_follow_the_guess_flags() -> None:
    v6e = catalog_power_figures("TPU v6e")  # the catalog alias tpu-info's type resolves to
    assert v6e is not None and (v6e.key, v6e.tdp_w, v6e.idle_power_w) == ("TPU-v6e", 300, 90)
    assert v6e.guessed and v6e.uncertainty_ratio == RANGE_GUESSED == 0.25
    assert v6e.power_w(0.0) == 90 and v6e.power_w(0.5) == 195 and v6e.power_w(1.7) == 300
    inf2 = catalog_power_figures("inferentia2")
    assert inf2 is not None and (inf2.key, inf2.vendor) == ("Inferentia2", "aws")
    assert catalog_power_figures("trainium2") is not None
    assert catalog_power_figures("trainium") is None  # Trn1: not in the catalog
    h100 = catalog_power_figures("H100-SXM")
    assert h100 is not None and h100.guessed  # its idle figure is a guess
    assert RANGE_PUBLISHED < RANGE_GUESSED


# --- tpu-info ---------------------------------------------------------------------------------


def test_tpu_info_tables_are_parsed() -> None:
    report = parse_tpu_info(recording("tpu_info_v6e_busy.txt"))
    assert [c.chip_type for c in report.chips] == ["TPU v6e"] * 4
    assert [c.duty_cycle_ratio for c in report.chips] == [1.0, 1.0, 0.375, 0.0]
    assert [c.pid for c in report.chips] == [1469584] * 4
    assert report.chips[0].path == "/dev/vfio/0"
    assert report.chips[0].hbm_used_bytes == int(18.45 * GIB)
    assert report.chips[0].hbm_total_bytes == int(31.25 * GIB)
    assert not report.metrics_unavailable  # the latency warning panel is not about duty cycle


def test_tpu_info_without_a_workload_and_with_ascii_boxes() -> None:
    """Quirk: without a framework holding the TPU libtpu serves no metrics (``N/A``); under
    ``LANG=C`` Rich draws the same tables with ASCII boxes."""
    idle = parse_tpu_info(recording("tpu_info_v5e_no_workload.txt"))
    assert len(idle.chips) == 8 and idle.metrics_unavailable
    assert all(c.duty_cycle_ratio is None and c.pid is None for c in idle.chips)
    held = parse_tpu_info(recording("tpu_info_v5e_no_workload_ascii.txt"))
    assert [c.pid for c in held.chips] == [2210] * 8
    assert [c.chip_type for c in held.chips] == ["TPU v5e"] * 8
    with pytest.raises(SourceUnavailable, match="no TPU chips"):
        parse_tpu_info(recording("tpu_info_no_chips.txt"))
    with pytest.raises(ValueError, match="TPU Chips"):
        parse_tpu_info("Traceback (most recent call last):\n  ...\nImportError: grpc\n")


def tpu_tool(tmp_path: Path, name: str) -> FakeTool:
    return FakeTool.printing(tmp_path / "bin", "tpu-info", recording(name))


def test_tpu_power_is_modeled_from_duty_cycle(tmp_path: Path) -> None:
    tool, clock = tpu_tool(tmp_path, "tpu_info_v6e_busy.txt"), ManualClock()
    source = TpuInfoSource(str(tool.path), clock_ns=clock, host="tpu-vm", background=False)
    try:
        (info, *_) = source.devices()
        assert (info.device_id, info.source, info.vendor, info.model) == (
            "tpu-vm:tpu:0",
            "tpu",
            "google",
            "TPU v6e",
        )
        assert (info.tdp_w, info.idle_power_w, info.uncertainty_ratio) == (300, 90, 0.25)
        first = {r.device_id: r for r in source.read()}
        clock.advance(10.0)
        source.refresh()
        second = {r.device_id: r for r in source.read()}
    finally:
        source.close()
    busy, partial, idle = (second[f"tpu-vm:tpu:{i}"] for i in (0, 2, 3))
    assert all(r.method == "modeled" for r in second.values())
    assert busy.power_w == 300 and idle.power_w == 90
    assert partial.power_w == pytest.approx(90 + 210 * 0.375)
    assert partial.utilization_ratio == 0.375
    assert busy.energy_j == pytest.approx(3000.0) and first["tpu-vm:tpu:0"].energy_j == 0.0
    assert busy.memory_used_bytes == int(18.45 * GIB)
    assert len(tool.calls()) == 2  # once when opened, once on refresh


def test_a_tpu_nobody_holds_is_idle_and_a_held_one_without_metrics_is_not_guessed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tool = tpu_tool(tmp_path, "tpu_info_v5e_no_workload.txt")
    source = TpuInfoSource(str(tool.path), clock_ns=ManualClock(), host="h", background=False)
    readings = source.read()
    assert len(readings) == 8
    assert all(r.power_w == 60 and r.utilization_ratio == 0.0 for r in readings)  # v5e idle
    tool.set_output(recording("tpu_info_v5e_no_workload_ascii.txt"))  # now PID 2210 holds them
    source.refresh()
    with caplog.at_level(logging.WARNING):
        assert source.read() == [] and source.read() == []
    source.close()
    warned = [r for r in caplog.records if "no duty cycle" in r.getMessage()]
    assert len(warned) == 8  # once per chip, not once per read


def test_tpu_info_missing_failing_or_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(SourceUnavailable, match="not found") as missing:
        TpuInfoSource(str(tmp_path / "nope" / "tpu-info"))
    assert "pip install tpu-info" in (missing.value.hint or "")
    none = tpu_tool(tmp_path, "tpu_info_no_chips.txt")
    with pytest.raises(SourceUnavailable, match="no TPU chips"):
        TpuInfoSource(str(none.path), background=False)
    broken = FakeTool.printing(tmp_path / "b", "tpu-info", "", returncode=1, stderr="boom")
    with pytest.raises(SourceError, match="cannot read"):
        TpuInfoSource(str(broken.path), background=False)
    clock = ManualClock()
    ok = tpu_tool(tmp_path / "ok", "tpu_info_v6e_busy.txt")
    source = TpuInfoSource(
        str(ok.path), clock_ns=clock, interval_s=5, timeout_s=10, background=False
    )
    clock.advance(26.0)  # 3 intervals + the timeout without a new report
    with caplog.at_level(logging.WARNING):
        assert source.read() == []
    source.close()
    assert any("no report" in r.getMessage() for r in caplog.records)


def test_tpu_info_reruns_in_the_background(tmp_path: Path) -> None:
    tool = tpu_tool(tmp_path, "tpu_info_v6e_busy.txt")
    source = TpuInfoSource(str(tool.path), interval_s=0.05, timeout_s=10)
    try:
        for _ in range(200):
            if len(tool.calls()) >= 3:
                break
            time.sleep(0.02)
    finally:
        source.close()
    assert len(tool.calls()) >= 3


# --- neuron-monitor ---------------------------------------------------------------------------


def test_neuron_reports_are_parsed_per_device() -> None:
    inf2, idle = (parse_neuron_report(d) for d in reports("neuron_monitor_inf2.jsonl"))
    (device,) = inf2.devices
    assert (inf2.device_type, inf2.device_count, inf2.cores_per_device) == ("inferentia2", 1, 2)
    assert device.utilization_ratio == pytest.approx(89.40087251059674 / 200)
    assert device.memory_used_bytes == 141649980 + 176285056  # the one core a model is on
    assert [d.utilization_ratio for d in idle.devices] == [0.0]  # no runtime: idle
    (trn2,) = (parse_neuron_report(d) for d in reports("neuron_monitor_trn2.jsonl"))
    util = [d.utilization_ratio for d in trn2.devices]
    assert len(util) == 16  # global core ids: device i has cores 4i..4i+3 (LNC=2)
    assert util[0] == pytest.approx((42.01 + 63.0) / 400) and util[1] == pytest.approx(0.45)
    assert set(util[2:]) == {0.0}
    assert trn2.devices[0].memory_used_bytes == 4 * GIB + 2 * 176285056
    with pytest.raises(ValueError):
        parse_neuron_report({"neuron_runtime_data": []})
    garbled = {**reports("neuron_monitor_inf2.jsonl")[0]}
    garbled["neuron_runtime_data"] = [
        {"report": {"neuroncore_counters": {"neuroncores_in_use": [1]}}}
    ]
    with pytest.raises(ValueError, match="malformed"):
        parse_neuron_report(garbled)


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[FakeTool]:
    yield FakeTool.streaming(tmp_path / "bin", "neuron-monitor")


def test_neuron_power_is_modeled_from_neuroncore_utilisation(monitor: FakeTool) -> None:
    busy, idle = reports("neuron_monitor_inf2.jsonl")
    monitor.emit(busy)
    clock = ManualClock()
    source = NeuronMonitorSource(str(monitor.path), clock_ns=clock, host="inf2", interval_s=1)
    try:
        (info,) = source.devices()
        assert (info.device_id, info.vendor, info.model) == ("inf2:neuron:0", "aws", "inferentia2")
        assert (info.tdp_w, info.idle_power_w, info.uncertainty_ratio) == (175, 45, 0.25)
        (first,) = source.read()
        util = 89.40087251059674 / 200
        assert first.method == "modeled" and first.power_w == pytest.approx(45 + 130 * util)
        assert first.memory_total_bytes == 32 * GIB
        monitor.emit("{not json")
        monitor.emit(idle)
        assert source.wait_for_reports(2)
        clock.advance(2.0)
        (second,) = source.read()
        assert second.power_w == 45 and second.utilization_ratio == 0.0  # zero cores in use
        assert second.energy_j == pytest.approx((first.power_w + 45) / 2 * 2.0)
        assert source.bad_lines == 1
        (argv,) = monitor.calls()
        assert argv[0] == "-c"
    finally:
        source.close()
    assert not Path(argv[1]).exists()  # the configuration file is removed on close


def test_neuron_monitor_is_asked_for_only_what_is_read(monitor: FakeTool) -> None:
    (trn2,) = reports("neuron_monitor_trn2.jsonl")
    monitor.emit(trn2)
    source = NeuronMonitorSource(str(monitor.path), interval_s=2, host="trn2")
    try:
        (argv,) = monitor.calls()
        config = json.loads(Path(argv[1]).read_text())
        readings = {r.device_id: r for r in source.read()}
    finally:
        source.close()
    assert config["period"] == "2s"
    assert [m["type"] for m in config["neuron_runtimes"][0]["metrics"]] == [
        "neuroncore_counters",
        "memory_used",
    ]
    assert len(readings) == 16 and readings["trn2:neuron:1"].power_w == pytest.approx(
        125 + 375 * 0.45
    )


def test_neuron_without_driver_tool_or_report(tmp_path: Path, monitor: FakeTool) -> None:
    (no_driver,) = reports("neuron_monitor_no_driver.jsonl")
    monitor.emit(no_driver)
    with pytest.raises(SourceUnavailable, match="sees no Neuron devices") as driver:
        NeuronMonitorSource(str(monitor.path))
    assert "aws-neuronx-dkms" in (driver.value.hint or "")
    with pytest.raises(SourceUnavailable, match="not found"):
        NeuronMonitorSource(str(tmp_path / "nope" / "neuron-monitor"))
    dying = FakeTool.streaming(tmp_path / "d", "neuron-monitor")
    dying.exit(1, "failed to open config")
    with pytest.raises(SourceUnavailable, match="exited with status 1.*failed to open config"):
        NeuronMonitorSource(str(dying.path))
    silent = FakeTool.streaming(tmp_path / "s", "neuron-monitor")
    with pytest.raises(SourceError, match="no report within"):
        NeuronMonitorSource(str(silent.path), startup_timeout_s=0.3)


def test_neuron_monitor_that_exits_is_restarted(
    monitor: FakeTool, caplog: pytest.LogCaptureFixture
) -> None:
    busy, _ = reports("neuron_monitor_inf2.jsonl")
    monitor.emit(busy)
    source = NeuronMonitorSource(str(monitor.path), restart_s=0.0)
    try:
        monitor.exit(2, "lost the driver")
        for _ in range(100):
            if not source._stream.alive():
                break
            time.sleep(0.02)
        with caplog.at_level(logging.WARNING):
            source.read()
        assert any("exited with status 2" in r.getMessage() for r in caplog.records)
        for _ in range(200):  # the restarted tool records its command line when it starts
            if len(monitor.calls()) >= 2:
                break
            time.sleep(0.02)
    finally:
        source.close()
    assert len(monitor.calls()) >= 2  # started again


# --- through the collector to OTLP ------------------------------------------------------------


def test_modeled_tpu_samples_are_exported_like_any_other(tmp_path: Path) -> None:
    tool, clock = tpu_tool(tmp_path, "tpu_info_v6e_busy.txt"), ManualClock()
    source = TpuInfoSource(str(tool.path), clock_ns=clock, host="tpu-vm", background=False)
    with otlp_receiver() as rx:
        collector = Collector(
            CollectorSettings(endpoint=rx.url), [source], host="tpu-vm", environ={}, clock_ns=clock
        )
        collector.sampler.sample()
        clock.advance(1.0)
        collector.sampler.sample()
        assert collector.exporter.send_pending()
        collector.sampler.close()
    energy = [(a, p) for a, p in rx.points(sc.HW_ENERGY) if a[sc.HW_ID] == "tpu-vm:tpu:0"]
    attrs, last = energy[-1]
    assert attrs[sc.WL_ENERGY_METHOD] == "modeled" and attrs[sc.WL_POWER_SOURCE] == "tpu"
    assert attrs[sc.WL_UNCERTAINTY_RATIO] == 0.25
    assert (attrs[sc.WL_TDP_W], attrs[sc.WL_IDLE_POWER_W]) == (300.0, 90.0)
    assert (attrs[sc.HW_VENDOR], attrs[sc.HW_MODEL], attrs[sc.HW_TYPE]) == (
        "google",
        "TPU v6e",
        "gpu",
    )
    assert last.as_double == pytest.approx(300.0)
    util = [
        p.as_double for a, p in rx.points(sc.HW_GPU_UTILIZATION) if a[sc.HW_ID] == "tpu-vm:tpu:2"
    ]
    assert util == [0.375, 0.375]
