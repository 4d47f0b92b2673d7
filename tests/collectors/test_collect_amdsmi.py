"""AMD GPUs through AMD SMI, driven by FakeAmdSmi (shaped like amdsmi_interface.py)."""

from __future__ import annotations

import logging

import pytest
from collect_support import ManualClock

from wattledger.collectors.settings import CollectorSettings
from wattledger.collectors.sources.amdsmi import AmdSmiSource, map_amdsmi_error
from wattledger.collectors.sources.base import (
    DeviceLost,
    MetricUnsupported,
    SourcePermissionError,
    SourceUnavailable,
)
from wattledger.collectors.sources.detect import detect_sources
from wattledger.collectors.sources.fakes import amdsmi as fake_amdsmi
from wattledger.collectors.sources.fakes.amdsmi import FakeAmdGpu, FakeAmdSmi

UUID0 = "ecff74a1-0000-1000-80e2-c1d1b77ddfae"
UUID1 = "b7ff74a1-0000-1000-80d1-0f2d9ee3a1c4"


def make(gpus: list[FakeAmdGpu], clock: ManualClock) -> tuple[FakeAmdSmi, AmdSmiSource]:
    fake = FakeAmdSmi(gpus, clock_ns=clock)
    return fake, AmdSmiSource(fake.module, clock_ns=clock)


def test_fake_is_shaped_like_the_real_interface() -> None:
    fake = FakeAmdSmi([FakeAmdGpu(uuid=UUID0, power_w=612.0)])
    amd = fake.module
    amd.amdsmi_init(amd.AmdSmiInitFlags.INIT_AMD_GPUS)
    (h,) = amd.amdsmi_get_processor_handles()
    count = amd.amdsmi_get_energy_count(h)
    assert set(count) == {"power", "energy_accumulator", "counter_resolution", "timestamp"}
    assert isinstance(count["counter_resolution"], float)
    power = amd.amdsmi_get_power_info(h)
    assert power["current_socket_power"] == 612 and power["average_socket_power"] == "N/A"
    with pytest.raises(amd.AmdSmiParameterException):
        amd.amdsmi_get_power_info("not a handle")
    fake.gpus[0].errors["amdsmi_get_gpu_activity"] = fake_amdsmi.AMDSMI_STATUS_RETRY
    with pytest.raises(amd.AmdSmiRetryException) as info:
        amd.amdsmi_get_gpu_activity(h)
    assert info.value.get_error_code() == fake_amdsmi.AMDSMI_STATUS_RETRY
    assert isinstance(info.value, amd.AmdSmiLibraryException)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (fake_amdsmi.AMDSMI_STATUS_NOT_SUPPORTED, MetricUnsupported),
        (fake_amdsmi.AMDSMI_STATUS_NO_PERM, SourcePermissionError),
        (fake_amdsmi.AMDSMI_STATUS_DRIVER_NOT_LOADED, SourceUnavailable),
        (fake_amdsmi.AMDSMI_STATUS_NOT_FOUND, DeviceLost),
    ],
)
def test_status_codes_map_to_the_taxonomy(code: int, cls: type) -> None:
    fake = FakeAmdSmi([])
    err = map_amdsmi_error(fake.module, fake_amdsmi.AmdSmiLibraryException(code), "x")
    assert type(err) is cls


def test_accumulator_times_resolution_is_microjoules() -> None:
    clock = ManualClock()
    fake, source = make([FakeAmdGpu(uuid=UUID0, power_w=500.0, energy_uj=15.3 * 1_000_000)], clock)
    first = source.read()[0]
    assert first.method == "counter"
    assert first.energy_j == pytest.approx(15.3, rel=1e-6)  # 1e6 ticks x 15.3 uJ
    clock.advance(2.0)
    second = source.read()[0]
    assert second.energy_j - first.energy_j == pytest.approx(1000.0, rel=1e-4)
    assert second.power_w == 500.0
    assert second.utilization_ratio == pytest.approx(0.6)
    assert second.memory_used_bytes == 40_000 * 2**20  # MB -> bytes
    assert second.temperature_c == 55.0


def test_pre_rocm_6_4_power_key_is_accepted() -> None:
    """Quirk: before ROCm 6.4 the accumulator was returned as 'power'."""
    clock = ManualClock()
    _, source = make([FakeAmdGpu(uuid=UUID0, power_w=300.0, legacy_energy_key=True)], clock)
    source.read()
    clock.advance(1.0)
    r = source.read()[0]
    assert r.method == "counter" and r.energy_j == pytest.approx(300.0, rel=1e-3)


def test_mi200_average_socket_power_is_used_when_current_is_na() -> None:
    gpu = FakeAmdGpu(uuid=UUID0, power_w=420.0, power_field="average_socket_power")
    _, source = make([gpu], ManualClock())
    assert source.read()[0].power_w == 420.0


def test_stuck_accumulator_falls_back_to_power(caplog: pytest.LogCaptureFixture) -> None:
    """Quirk (MI100, ROCm/amdsmi #22): the accumulator never advances while the GPU works."""
    clock = ManualClock()
    _, source = make([FakeAmdGpu(uuid=UUID0, power_w=250.0, energy_stuck=True)], clock)
    energies, methods = [], []
    for _ in range(10):
        r = source.read()[0]
        energies.append(r.energy_j or 0.0)
        methods.append(r.method)
        clock.advance(0.5)
    assert methods[0] == "counter" and methods[-1] == "power"
    assert all(b >= a for a, b in zip(energies, energies[1:], strict=False))
    assert energies[-1] == pytest.approx(250.0 * 4.5)  # integrated from the first sample
    assert sum("did not advance" in m for m in caplog.messages) == 1


def test_accumulator_that_keeps_going_backwards_is_abandoned() -> None:
    """Quirk (ROCm/amdsmi #115): the counter can go backwards; after 3 resets use power."""
    clock = ManualClock()
    fake, source = make([FakeAmdGpu(uuid=UUID0, power_w=100.0)], clock)
    last = 0.0
    for _ in range(4):
        clock.advance(1.0)
        fake.reset_accumulator(0)
        clock.advance(1.0)
        r = source.read()[0]
        assert (r.energy_j or 0) >= last
        last = r.energy_j or 0
    assert r.method == "power"


def test_vm_guest_without_energy_counter_integrates_power() -> None:
    clock = ManualClock()
    _, source = make([FakeAmdGpu(uuid=UUID0, power_w=200.0, energy_supported=False)], clock)
    source.read()
    clock.advance(1.0)
    r = source.read()[0]
    assert r.method == "power" and r.energy_j == pytest.approx(200.0)


def test_lost_gpu_is_skipped_and_others_continue(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    fake, source = make([FakeAmdGpu(uuid=UUID0), FakeAmdGpu(uuid=UUID1)], clock)
    fake.gpus[1].lost = True
    for _ in range(3):
        assert [r.device_id for r in source.read()] == [UUID0]
        clock.advance(0.5)
    assert sum("is lost" in m for m in caplog.messages) == 1


def test_device_info() -> None:
    _, source = make([FakeAmdGpu(uuid=UUID0, market_name="AMD Instinct MI250X")], ManualClock())
    info = source.devices()[0]
    assert (info.device_id, info.vendor, info.model, info.tdp_w) == (
        UUID0,
        "amd",
        "AMD Instinct MI250X",
        750.0,
    )


def test_init_failure_is_unavailable_with_a_fix() -> None:
    fake = FakeAmdSmi([FakeAmdGpu(uuid=UUID0)], init_error=fake_amdsmi.AMDSMI_STATUS_INIT_ERROR)
    with pytest.raises(SourceUnavailable) as info:
        AmdSmiSource(fake.module)
    assert "amd-smi" in (info.value.hint or "")


def test_missing_bindings_name_the_extra(caplog: pytest.LogCaptureFixture) -> None:
    """amdsmi is not installable here (needs ROCm): detection reports it, never raises."""
    caplog.set_level(logging.INFO)
    found = detect_sources(CollectorSettings(sources=["amdsmi"]))
    assert found.sources == []
    (missing,) = found.unavailable
    assert missing.source == "amdsmi" and "wattledger[amd]" in missing.fix
