"""NVIDIA GPUs through NVML, driven by FakeNvml (real pynvml exception classes and structs)."""

from __future__ import annotations

import logging
from pathlib import Path

import pynvml
import pytest
from collect_support import ManualClock

from wattledger.collectors.sources.base import (
    DeviceLost,
    MetricUnsupported,
    SourceError,
    SourcePermissionError,
    SourceUnavailable,
)
from wattledger.collectors.sources.fakes.nvml import FakeGpu, FakeMigInstance, FakeNvml
from wattledger.collectors.sources.nvml import NVML_ERROR_CLASSES, NvmlSource, map_nvml_error

UUID0 = "GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f"
UUID1 = "GPU-a3e1f5b2-77c0-4e1d-9c2a-6b0f3d8e4a19"


def make(gpus: list[FakeGpu], clock: ManualClock, **kw: object) -> tuple[FakeNvml, NvmlSource]:
    fake = FakeNvml(gpus, clock_ns=clock)
    return fake, NvmlSource(fake.module, clock_ns=clock, **kw)  # type: ignore[arg-type]


def test_every_nvml_error_constant_is_mapped() -> None:
    """Like httpx's test of its httpcore mapping: a new NVML code must get a taxonomy class."""
    constants = {n for n in dir(pynvml) if n.startswith("NVML_ERROR_")}
    assert constants, "nvidia-ml-py exposes no NVML_ERROR_* constants?"
    assert constants <= set(NVML_ERROR_CLASSES), sorted(constants - set(NVML_ERROR_CLASSES))
    for name in constants:
        err = map_nvml_error(pynvml, pynvml.NVMLError(getattr(pynvml, name)), "test")
        assert type(err) is NVML_ERROR_CLASSES[name]
        assert name in err.message


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (pynvml.NVML_ERROR_NOT_SUPPORTED, MetricUnsupported),
        (pynvml.NVML_ERROR_GPU_IS_LOST, DeviceLost),
        (pynvml.NVML_ERROR_NO_PERMISSION, SourcePermissionError),
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, SourceUnavailable),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, SourceUnavailable),
        (pynvml.NVML_ERROR_UNKNOWN, SourceError),
    ],
)
def test_fake_raises_the_real_exception_classes(code: int, cls: type) -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID0, errors={"nvmlDeviceGetPowerUsage": code})])
    nvml = fake.module
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError) as info:
        nvml.nvmlDeviceGetPowerUsage(handle)
    assert type(info.value) is pynvml.nvmlExceptionClass(code)  # e.g. NVMLError_GpuIsLost
    assert info.value.value == code
    assert isinstance(map_nvml_error(pynvml, info.value, "x"), cls)


def test_fake_returns_the_real_types() -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID0, power_w=312.5, energy_mj=1234.0)])
    nvml = fake.module
    nvml.nvmlInit()
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    assert isinstance(nvml.nvmlDeviceGetUUID(h), str)
    assert nvml.nvmlDeviceGetPowerUsage(h) == 312_500  # milliwatts, int
    assert isinstance(nvml.nvmlDeviceGetTotalEnergyConsumption(h), int)
    assert isinstance(nvml.nvmlDeviceGetUtilizationRates(h), pynvml.c_nvmlUtilization_t)
    assert isinstance(nvml.nvmlDeviceGetMemoryInfo(h), pynvml.c_nvmlMemory_t)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetHandleByIndex(5)


def test_calls_before_init_raise_uninitialized() -> None:
    nvml = FakeNvml([FakeGpu(uuid=UUID0)]).module
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        nvml.nvmlDeviceGetCount()


def test_energy_counter_millijoules_become_joules() -> None:
    clock = ManualClock()
    fake, source = make([FakeGpu(uuid=UUID0, power_w=400.0, energy_mj=7_200_000.0)], clock)
    first = source.read()[0]
    assert first.device_id == UUID0 and first.method == "counter"
    assert first.energy_j == pytest.approx(7200.0)  # same as nvidia-smi total_energy_consumption
    assert first.power_w == pytest.approx(400.0)  # mW -> W
    clock.advance(2.5)
    second = source.read()[0]
    assert second.energy_j - first.energy_j == pytest.approx(1000.0, abs=0.01)  # 400 W x 2.5 s
    assert second.monotonic_ns - first.monotonic_ns == 2_500_000_000


def test_device_info_and_other_metrics() -> None:
    clock = ManualClock()
    gpu = FakeGpu(uuid=UUID0, utilization_gpu_pct=87, temperature_c=71, sm_clock_mhz=1755)
    _, source = make([gpu], clock)
    info = source.devices()[0]
    assert (info.device_id, info.vendor, info.hw_type, info.index) == (UUID0, "nvidia", "gpu", 0)
    assert info.model == "NVIDIA H100 80GB HBM3" and info.tdp_w == pytest.approx(700.0)
    r = source.read()[0]
    assert r.utilization_ratio == pytest.approx(0.87)
    assert r.memory_used_bytes == gpu.memory_used_bytes
    assert r.memory_total_bytes == gpu.memory_total_bytes
    assert (r.temperature_c, r.clock_mhz) == (71.0, 1755.0)


def test_driver_reload_never_makes_energy_negative() -> None:
    clock = ManualClock()
    fake, source = make([FakeGpu(uuid=UUID0, power_w=300.0, energy_mj=9e8)], clock)
    before = source.read()[0].energy_j
    clock.advance(1.0)
    fake.reload_driver(0)
    clock.advance(1.0)
    after = source.read()[0].energy_j
    assert after is not None and before is not None
    assert 0 <= after - before <= 600.0 + 1e-6  # at most 2 s at 300 W: no negative, no 900 kJ


def test_pre_volta_gpu_integrates_power_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    caplog.set_level(logging.INFO)
    fake, source = make([FakeGpu(uuid=UUID0, power_w=150.0, energy_supported=False)], clock)
    readings = []
    for _ in range(3):
        readings.append(source.read()[0])
        clock.advance(0.5)
    assert {r.method for r in readings} == {"power"}
    assert readings[-1].energy_j == pytest.approx(150.0)  # 150 W x 1 s, trapezoid
    assert sum("integrating power" in m for m in caplog.messages) == 1
    # The unsupported call is not retried on every tick.
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 1


def test_lost_gpu_is_logged_once_and_the_others_keep_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    fake, source = make([FakeGpu(uuid=UUID0), FakeGpu(uuid=UUID1)], clock)
    assert len(source.read()) == 2
    fake.gpus[0].lost = True  # fell off the bus (Xid 79)
    for _ in range(5):
        clock.advance(0.5)
        readings = source.read()
        assert [r.device_id for r in readings] == [UUID1]
    lost_lines = [r for r in caplog.records if "is lost" in r.getMessage()]
    assert len(lost_lines) == 1 and lost_lines[0].levelno == logging.ERROR
    assert UUID0 in lost_lines[0].getMessage()


def test_gpu_lost_at_startup_is_skipped() -> None:
    gpus = [FakeGpu(uuid=UUID0, lost=True), FakeGpu(uuid=UUID1)]
    _, source = make(gpus, ManualClock())
    assert [d.device_id for d in source.devices()] == [UUID1]


def test_unsupported_metric_is_empty_and_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    gpu = FakeGpu(uuid=UUID0, errors={"nvmlDeviceGetTemperature": pynvml.NVML_ERROR_NOT_SUPPORTED})
    fake, source = make([gpu], ManualClock())
    for _ in range(3):
        r = source.read()[0]
        assert r.temperature_c is None and r.energy_j is not None
    assert fake.calls["nvmlDeviceGetTemperature"] == 1
    assert sum("temperature" in m for m in caplog.messages) == 1


def test_transient_error_is_retried_next_tick() -> None:
    clock = ManualClock()
    gpu = FakeGpu(uuid=UUID0, errors={"nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_TIMEOUT})
    fake, source = make([gpu], clock)
    assert source.read()[0].power_w is None
    del gpu.errors["nvmlDeviceGetPowerUsage"]
    clock.advance(0.5)
    assert source.read()[0].power_w == pytest.approx(gpu.power_w)


def test_mig_slices_are_named_after_the_parent_and_carry_no_energy() -> None:
    """Quirk: NVML has power and energy only for the physical GPU, and no utilization at all
    on a MIG-enabled GPU; memory and processes are per slice."""
    gpu = FakeGpu(
        uuid=UUID0,
        mig=[FakeMigInstance(1, memory_used_bytes=3 * 2**30), FakeMigInstance(2)],
        processes=[(4242, 3 * 2**30, 1), (4343, 2**30, 2)],
    )
    fake, source = make([gpu], ManualClock())
    ids = [d.device_id for d in source.devices()]
    assert ids == [UUID0, f"MIG-{UUID0}/1/0", f"MIG-{UUID0}/2/0"]
    assert all(d.parent_id == UUID0 for d in source.devices()[1:])
    parent, slice1, slice2 = source.read()
    assert parent.energy_j is not None and parent.utilization_ratio is None
    assert slice1.energy_j is None and slice1.power_w is None
    assert slice1.memory_used_bytes == 3 * 2**30
    assert [p.pid for p in slice1.processes] == [4242]
    assert [p.pid for p in slice2.processes] == [4343]
    assert "nvmlDeviceGetUtilizationRates" not in fake.calls


def test_processes_are_mapped_to_containers(tmp_path: Path) -> None:
    cid = "a" * 64
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text(
        f"0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{cid}.scope\n"
    )
    gpu = FakeGpu(uuid=UUID0, processes=[(4242, 2**30, 0), (999, 5, 0)])
    _, source = make([gpu], ManualClock(), procfs_root=tmp_path)
    procs = {p.pid: p for p in source.read()[0].processes}
    assert procs[4242].container_id == cid and procs[4242].used_memory_bytes == 2**30
    assert procs[999].container_id is None


def test_processes_are_refreshed_at_their_own_pace() -> None:
    clock = ManualClock()
    fake, source = make([FakeGpu(uuid=UUID0)], clock, process_refresh_s=5.0)
    for _ in range(10):  # 10 ticks over 4.5 s
        source.read()
        clock.advance(0.5)
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 1
    source.read()
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 2


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, SourceUnavailable),
        (pynvml.NVML_ERROR_NO_PERMISSION, SourcePermissionError),
    ],
)
def test_init_failure_is_a_clear_error(code: int, cls: type) -> None:
    fake = FakeNvml([FakeGpu(uuid=UUID0)], init_error=code)
    with pytest.raises(cls) as info:
        NvmlSource(fake.module)
    assert info.value.hint


def test_real_pynvml_without_a_driver_is_unavailable_with_a_fix() -> None:
    """This machine has nvidia-ml-py but no libnvidia-ml: the real module says so."""
    with pytest.raises(SourceUnavailable) as info:
        NvmlSource(pynvml)
    assert "NVML_ERROR_LIBRARY_NOT_FOUND" in info.value.message
    assert "NVIDIA Container Toolkit" in (info.value.hint or "")


def test_close_shuts_nvml_down_once() -> None:
    fake, source = make([FakeGpu(uuid=UUID0)], ManualClock())
    source.close()
    source.close()
    assert fake.initialized == 0 and fake.calls["nvmlShutdown"] == 1
