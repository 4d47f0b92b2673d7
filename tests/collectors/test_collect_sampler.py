"""Source detection and the sampling loop: schedule, robustness, zero sources."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pynvml
import pytest
from collect_support import DATA, ManualClock

from wattledger.collectors.collector.buffer import SampleBuffer
from wattledger.collectors.collector.sampler import Sampler
from wattledger.collectors.settings import CollectorSettings
from wattledger.collectors.sources.base import DeviceInfo, EnergyReading, EnergySource
from wattledger.collectors.sources.detect import AUTO_ORDER, detect_sources, rapl_is_available
from wattledger.collectors.sources.fake import FakeSource
from wattledger.collectors.sources.fakes import FakeAmdGpu, FakeAmdSmi, FakeRapl, FakeTool
from wattledger.collectors.sources.fakes.nvml import FakeGpu, FakeNvml
from wattledger.errors import ConfigError


def test_auto_opens_what_the_node_has_in_a_fixed_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeRapl(tmp_path).add_zone("intel-rapl:0", "package-0")
    tools = tmp_path / "bin"
    FakeTool.printing(tools, "tpu-info", (DATA / "tpu_info_v6e_busy.txt").read_text())
    neuron = FakeTool.streaming(tools, "neuron-monitor")
    neuron.emit((DATA / "neuron_monitor_inf2.jsonl").read_text().splitlines()[0])
    monkeypatch.setenv("PATH", str(tools))  # the tools are found where the real ones would be
    settings = CollectorSettings(sources=["auto"], rapl_root=tmp_path)
    found = detect_sources(
        settings,
        host="n",
        nvml_module=FakeNvml([FakeGpu(uuid="GPU-1")]).module,
        amdsmi_module=FakeAmdSmi([FakeAmdGpu(uuid="amd-1")]).module,
    )
    names = [s.name for s in found.sources]
    assert names == list(AUTO_ORDER) == ["nvml", "amdsmi", "rapl", "tpu", "neuron"]
    assert found.unavailable == []
    found.close()


def test_missing_sources_are_reported_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    broken = FakeNvml([FakeGpu(uuid="GPU-1")], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    found = detect_sources(
        CollectorSettings(sources=["auto", "fake=1"], rapl_root=tmp_path / "nope"),
        nvml_module=broken.module,
    )
    assert [s.name for s in found.sources] == ["fake"]
    assert {u.source for u in found.unavailable} == {"nvml", "amdsmi", "rapl", "tpu", "neuron"}
    assert all(u.reason and u.fix for u in found.unavailable)
    # auto: expected absences are INFO; nothing at ERROR
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    explicit = detect_sources(CollectorSettings(sources=["rapl"], rapl_root=tmp_path / "nope"))
    assert explicit.sources == []
    assert [r for r in caplog.records if r.levelno == logging.ERROR]  # the user asked for it


def test_modeled_misconfiguration_fails_at_startup() -> None:
    with pytest.raises(ConfigError):
        detect_sources(CollectorSettings(sources=["modeled=unknown-model@H100"]))


def test_settings_reject_unknown_sources() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        CollectorSettings(sources=["gpu"])
    with pytest.raises(ValueError, match="needs a value"):
        CollectorSettings(sources=["prometheus"])
    with pytest.raises(ValueError, match="device count"):
        CollectorSettings(sources=["fake=lots"])
    with pytest.raises(ValueError, match="path of its tool"):
        CollectorSettings(sources=["tpu="])
    assert (
        CollectorSettings(sources=["tpu", "neuron=/opt/bin/nm"]).sources[1] == "neuron=/opt/bin/nm"
    )
    with pytest.raises(ValueError, match="http"):
        CollectorSettings(endpoint="ingest:4318")


def test_rapl_probe_is_cached(tmp_path: Path) -> None:
    rapl_is_available.cache_clear()
    assert rapl_is_available(tmp_path) is False
    FakeRapl(tmp_path).add_zone("intel-rapl:0", "package-0")
    assert rapl_is_available(tmp_path) is False  # cached
    rapl_is_available.cache_clear()
    assert rapl_is_available(tmp_path) is True
    rapl_is_available.cache_clear()


class Exploding:
    """A source whose read() raises something unexpected."""

    name = "exploding"

    def devices(self) -> Sequence[DeviceInfo]:
        return []

    def read(self) -> list[EnergyReading]:
        raise RuntimeError("driver went sideways")

    def close(self) -> None:
        pass


class Slow(FakeSource):
    """A source that may be read at most every 5 s (like a Prometheus scrape)."""

    min_interval_s = 5.0


def test_a_broken_source_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    exploding: EnergySource = Exploding()
    sampler = Sampler([exploding, FakeSource(100.0, clock_ns=clock, host="h")], clock_ns=clock)
    for _ in range(4):
        cycle = sampler.sample()
        assert [r.device_id for r in cycle.readings] == ["h:fake:0"]
        clock.advance(0.5)
    errors = [r for r in caplog.records if "driver went sideways" in r.getMessage()]
    assert len(errors) == 1


def test_sources_with_a_minimum_interval_are_read_when_due() -> None:
    clock = ManualClock()
    sampler = Sampler(
        [FakeSource(100.0, clock_ns=clock, host="fast"), Slow(50.0, clock_ns=clock, host="slow")],
        clock_ns=clock,
    )
    slow_reads = 0
    for _ in range(20):  # 10 s at 0.5 s
        cycle = sampler.sample()
        slow_reads += any(r.device_id.startswith("slow") for r in cycle.readings)
        clock.advance(0.5)
    assert slow_reads == 2


def test_zero_sources_runs_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    buffer = SampleBuffer(10)
    sampler = Sampler([], buffer)
    for _ in range(3):
        assert sampler.sample().readings == ()
    assert len(buffer) == 3
    assert sum("No power sources found" in m for m in caplog.messages) == 1


def test_series_start_is_the_first_reading_in_utc() -> None:
    clock, wall = ManualClock(5_000_000_000), [1_700_000_000_000_000_000]
    sampler = Sampler(
        [FakeSource(10.0, clock_ns=clock, host="h")], clock_ns=clock, wall_ns=lambda: wall[0]
    )
    cycle = sampler.sample()
    (reading,) = cycle.readings
    assert cycle.time_unix_nano(reading) == wall[0]
    assert sampler.start_times == {"h:fake:0": wall[0]}
    clock.advance(1.0)
    wall[0] += 3_600_000_000_000  # NTP stepped the wall clock by an hour
    sampler.sample()
    assert sampler.start_times == {"h:fake:0": 1_700_000_000_000_000_000}


def test_run_skips_missed_ticks_instead_of_bursting(caplog: pytest.LogCaptureFixture) -> None:
    """A slow cycle (3 intervals) is followed by one sample, not three back to back."""
    clock = ManualClock()
    stop = threading.Event()
    calls: list[int] = []

    class Sluggish(FakeSource):
        def read(self) -> list[EnergyReading]:
            calls.append(clock())
            clock.advance(0.35 if len(calls) == 2 else 0.0)
            if len(calls) == 5:
                stop.set()
            return super().read()

    sampler = Sampler([Sluggish(1.0, clock_ns=clock, host="h")], clock_ns=clock)
    waits: list[float] = []

    def fake_wait(timeout: float) -> bool:
        waits.append(timeout)
        clock.advance(timeout)
        return stop.is_set()

    stop.wait = fake_wait  # type: ignore[method-assign]
    sampler.run(0.1, stop)
    start = calls[0]
    assert [(c - start) / 1e9 for c in calls] == pytest.approx([0.0, 0.1, 0.5, 0.6, 0.7])
    assert sum("skipping missed ticks" in m for m in caplog.messages) == 1
