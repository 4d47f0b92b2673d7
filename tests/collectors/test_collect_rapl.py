"""RAPL through a powercap sysfs tree built in a temporary directory (no patched ``open``)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from collect_support import ManualClock

from wattledger.collectors.sources.base import SourcePermissionError, SourceUnavailable
from wattledger.collectors.sources.fakes.sysfs import FakeRapl
from wattledger.collectors.sources.rapl import RaplSource, cpu_identity

RANGE = 262_143_328_850


def intel_tree(root: Path) -> tuple[FakeRapl, dict[str, object]]:
    tree = FakeRapl(root)
    tree.add_control_type()
    zones = {
        "pkg0": tree.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000),
        "core0": tree.add_zone("intel-rapl:0:0", "core", energy_uj=500),
        "dram0": tree.add_zone("intel-rapl:0:1", "dram", energy_uj=2_000_000),
        "pkg1": tree.add_zone("intel-rapl:1", "package-1", energy_uj=3_000_000),
        "psys": tree.add_zone("intel-rapl:2", "psys", energy_uj=9),
    }
    return tree, zones


def cpuinfo(root: Path, vendor: str, model: str) -> Path:
    proc = root / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(
        f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: {model}\n\n"
        f"processor\t: 1\nvendor_id\t: {vendor}\nmodel name\t: {model}\n"
    )
    return proc


def test_packages_and_dram_only_no_double_counting(tmp_path: Path) -> None:
    intel_tree(tmp_path / "powercap")
    proc = cpuinfo(tmp_path, "GenuineIntel", "Intel(R) Xeon(R) Platinum 8480+")
    source = RaplSource(tmp_path / "powercap", host="node1", procfs_root=proc)
    devices = {d.device_id: d for d in source.devices()}
    assert set(devices) == {"node1:rapl:0", "node1:rapl:0:1", "node1:rapl:1"}
    pkg, dram = devices["node1:rapl:0"], devices["node1:rapl:0:1"]
    assert (pkg.hw_type, pkg.vendor, pkg.name) == ("cpu", "intel", "package-0")
    assert pkg.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert (dram.hw_type, dram.name) == ("memory", "package-0/dram")


def test_microjoules_become_joules_and_power_is_the_rate(tmp_path: Path) -> None:
    _, zones = intel_tree(tmp_path)
    clock = ManualClock()
    source = RaplSource(tmp_path, host="n", clock_ns=clock)
    first = {r.device_id: r for r in source.read()}
    assert first["n:rapl:0"].energy_j == pytest.approx(1.0)
    assert first["n:rapl:0"].power_w is None  # no rate from one reading
    zones["pkg0"].add_energy(120_000_000)  # type: ignore[attr-defined]
    clock.advance(0.5)
    second = {r.device_id: r for r in source.read()}
    assert second["n:rapl:0"].energy_j == pytest.approx(121.0)
    assert second["n:rapl:0"].power_w == pytest.approx(240.0)
    assert second["n:rapl:0"].method == "counter"


def test_wraparound_at_max_energy_range(tmp_path: Path) -> None:
    tree = FakeRapl(tmp_path)
    zone = tree.add_zone("intel-rapl:0", "package-0", energy_uj=RANGE - 10_000_000)
    clock = ManualClock()
    source = RaplSource(tmp_path, host="n", clock_ns=clock)
    start = source.read()[0].energy_j
    zone.add_energy(30_000_000)  # crosses the wrap: file now shows 20_000_000
    assert zone.energy_uj == 20_000_000
    clock.advance(0.2)
    r = source.read()[0]
    assert r.energy_j is not None and start is not None
    assert r.energy_j - start == pytest.approx(30.0)
    assert r.power_w == pytest.approx(150.0)


def test_counter_written_to_zero_is_a_reset_not_a_wrap(tmp_path: Path) -> None:
    tree = FakeRapl(tmp_path)
    zone = tree.add_zone("intel-rapl:0", "package-0", energy_uj=200_000_000_000)
    clock = ManualClock()
    source = RaplSource(tmp_path, host="n", clock_ns=clock)
    before = source.read()[0].energy_j or 0.0
    zone.set_energy(10_000_000)  # someone wrote 0 to energy_uj; 10 J since
    clock.advance(1.0)
    after = source.read()[0].energy_j or 0.0
    assert after - before == pytest.approx(10.0)


def test_amd_zen_packages_through_the_same_tree(tmp_path: Path) -> None:
    """AMD Family 17h/19h register package and core domains under intel-rapl, no DRAM."""
    tree = FakeRapl(tmp_path / "powercap")
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=5)
    tree.add_zone("intel-rapl:0:0", "core", energy_uj=1)
    proc = cpuinfo(tmp_path, "AuthenticAMD", "AMD EPYC 9654 96-Core Processor")
    source = RaplSource(tmp_path / "powercap", host="n", procfs_root=proc)
    (info,) = source.devices()
    assert (info.vendor, info.model) == ("amd", "AMD EPYC 9654 96-Core Processor")


def test_zone_that_vanishes_is_logged_once_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, zones = intel_tree(tmp_path)
    source = RaplSource(tmp_path, host="n")
    zones["pkg1"].remove()  # type: ignore[attr-defined]
    for _ in range(3):
        ids = [r.device_id for r in source.read()]
        assert ids == ["n:rapl:0", "n:rapl:0:1"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "n:rapl:1" in errors[0].getMessage()


def test_no_tree_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable):
        RaplSource(tmp_path / "missing")
    with pytest.raises(SourceUnavailable):
        RaplSource(tmp_path)  # exists but has no zones


def test_cpu_identity_without_cpuinfo(tmp_path: Path) -> None:
    assert cpu_identity(tmp_path) == ("unknown", "CPU")


def test_root_only_energy_uj_is_a_permission_error_with_the_fix(tmp_path: Path) -> None:
    """Since Linux 5.10 energy_uj is 0400 root. As root we check it as an unprivileged user."""
    if os.geteuid() != 0:
        FakeRapl(tmp_path).add_zone("intel-rapl:0", "package-0", readable=False)
        with pytest.raises(SourcePermissionError) as info:
            RaplSource(tmp_path)
        assert "root" in (info.value.hint or "")
        return
    # Root reads anything, so fork and drop to "nobody" (the interpreter is already loaded:
    # nothing needs to be read from root-only paths after the switch).
    root = Path(tempfile.mkdtemp(prefix="wl-rapl-"))
    try:
        root.chmod(0o755)
        FakeRapl(root / "powercap").add_zone("intel-rapl:0", "package-0", readable=False)
        (root / "powercap").chmod(0o755)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            status = 1
            try:
                os.close(read_end)
                os.setgid(65534)
                os.setuid(65534)
                try:
                    RaplSource(root / "powercap")
                except SourcePermissionError as e:
                    os.write(write_end, f"PERMISSION {e.hint}".encode())
                    status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        _, wait_status = os.waitpid(pid, 0)
        with os.fdopen(read_end) as fh:
            out = fh.read()
        assert os.waitstatus_to_exitcode(wait_status) == 0, out
        assert out.startswith("PERMISSION") and "root" in out
    finally:
        shutil.rmtree(root, ignore_errors=True)
