"""CPU package and DRAM energy from Linux powercap RAPL (Intel, and AMD Zen) in sysfs.

Each zone ``intel-rapl:<N>`` (package N) and its ``dram`` subzone ``intel-rapl:<N>:<M>`` has
``energy_uj`` (µJ, wraps at ``max_energy_range_uj``) and ``name``. Core/uncore subzones are
left out because they are contained in the package (counting both would double count), and so
is ``psys`` (the whole platform). Power is the counter's rate over the last interval.

The sysfs root is a constructor argument (``RaplSource(root=tmp_path)``) so tests build a tree
instead of patching ``open``; see :mod:`wattledger.collectors.sources.fakes.sysfs`.

Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694), and container runtimes
mask ``/sys/class/powercap``: the collector needs root (or a udev/chmod rule) and the mount.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wattledger.collectors.sources.base import (
    DeviceInfo,
    EnergyReading,
    SourcePermissionError,
    SourceUnavailable,
)
from wattledger.collectors.sources.counters import DEFAULT_MAX_POWER_W, CounterTracker

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/sys/class/powercap")
_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
PERMISSION_FIX = (
    "energy_uj is root-only since Linux 5.10: run the collector as root, or allow it with a "
    "udev rule / `chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj`; in Kubernetes mount "
    "/sys/class/powercap and run the container privileged."
)


@dataclass
class _Zone:
    info: DeviceInfo
    energy_path: str
    counter: CounterTracker
    last_j: float | None = None
    last_ns: int | None = None
    lost: bool = False


def _read_int(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return int(os.read(fd, 64).split()[0])
    finally:
        os.close(fd)


def cpu_identity(procfs_root: Path = Path("/proc")) -> tuple[str, str]:
    """``(vendor, model name)`` of the CPU from ``cpuinfo``, e.g. ``("intel", "Xeon ...")``."""
    vendor, model = "unknown", "CPU"
    try:
        text = (procfs_root / "cpuinfo").read_text(errors="replace")
    except OSError:
        return vendor, model
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "vendor_id" and vendor == "unknown":
            vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "hygon"}.get(
                value, value.lower()
            )
        elif key == "model name" and model == "CPU":
            model = value
    return vendor, model


class RaplSource:
    """RAPL package and DRAM energy counters.

    Args:
        root: The powercap sysfs directory (default ``/sys/class/powercap``).
        host: Host name used in device ids (``<host>:rapl:<zone>``).
        clock_ns: Monotonic clock for reading times.
        procfs_root: Where ``/proc`` is, for the CPU vendor and model.
        max_power_w: Plausibility bound for counter deltas.

    Raises:
        SourceUnavailable: no RAPL zones under ``root``.
        SourcePermissionError: zones exist but ``energy_uj`` is not readable.
    """

    name = "rapl"

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        *,
        host: str | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        procfs_root: Path = Path("/proc"),
        max_power_w: float = DEFAULT_MAX_POWER_W,
    ) -> None:
        self._root = Path(root)
        self._clock_ns = clock_ns
        host = host or socket.gethostname()
        vendor, cpu_model = cpu_identity(procfs_root)
        try:
            entries = sorted(p.name for p in self._root.iterdir())
        except OSError as e:
            raise SourceUnavailable(
                f"No powercap tree at {self._root} ({e.strerror}).",
                hint="Load the intel_rapl_msr module; in a container mount /sys/class/powercap.",
            ) from e
        self._zones: list[_Zone] = []
        denied: list[str] = []
        for entry in entries:
            match = _ZONE.match(entry)
            if not match:
                continue
            zone_dir = self._root / entry
            try:
                zone_name = (zone_dir / "name").read_text().strip()
            except OSError:
                continue
            is_package = match.group(2) is None and zone_name.startswith("package")
            if not (is_package or (match.group(2) is not None and zone_name == "dram")):
                continue
            energy_path = str(zone_dir / "energy_uj")
            try:
                _read_int(energy_path)
                range_uj = _read_int(str(zone_dir / "max_energy_range_uj"))
            except PermissionError:
                denied.append(entry)
                continue
            except (OSError, ValueError, IndexError) as e:
                logger.info("Skipping RAPL zone %s: %s", entry, e)
                continue
            suffix = entry.split(":", 1)[1]
            package = f"package-{match.group(1)}"
            info = DeviceInfo(
                device_id=f"{host}:rapl:{suffix}",
                source=self.name,
                hw_type="cpu" if is_package else "memory",
                vendor=vendor,
                model=cpu_model if is_package else "DRAM",
                name=zone_name if is_package else f"{package}/dram",
                index=int(match.group(1)),
            )
            self._zones.append(
                _Zone(info, energy_path, CounterTracker(1e-6, range_uj or None, max_power_w))
            )
        if not self._zones:
            if denied:
                raise SourcePermissionError(
                    f"RAPL zones {', '.join(denied)} exist but energy_uj is not readable.",
                    hint=PERMISSION_FIX,
                )
            raise SourceUnavailable(
                f"No RAPL package zones under {self._root}.",
                hint="This CPU or kernel has no powercap RAPL (modprobe intel_rapl_msr), or "
                "/sys/class/powercap is not mounted into the container.",
            )

    def devices(self) -> Sequence[DeviceInfo]:
        """Package zones and their DRAM subzones."""
        return [z.info for z in self._zones]

    def read(self) -> list[EnergyReading]:
        """Cumulative, wrap-corrected energy of each zone; power over the last interval."""
        out: list[EnergyReading] = []
        for zone in self._zones:
            if zone.lost:
                continue
            try:
                raw = _read_int(zone.energy_path)
            except (OSError, ValueError, IndexError) as e:
                zone.lost = True
                logger.error(
                    "RAPL zone %s can no longer be read (%s) and is skipped from now on.",
                    zone.info.device_id,
                    e,
                )
                continue
            t_ns = self._clock_ns()
            energy_j = zone.counter.update(raw, t_ns)
            power_w = None
            if zone.last_j is not None and zone.last_ns is not None and t_ns > zone.last_ns:
                power_w = (energy_j - zone.last_j) / ((t_ns - zone.last_ns) / 1e9)
            zone.last_j, zone.last_ns = energy_j, t_ns
            out.append(
                EnergyReading(
                    device_id=zone.info.device_id,
                    energy_j=energy_j,
                    power_w=power_w,
                    monotonic_ns=t_ns,
                    method="counter",
                )
            )
        return out

    def close(self) -> None:
        """Nothing to release: files are opened per read."""


__all__ = ["DEFAULT_ROOT", "PERMISSION_FIX", "RaplSource", "cpu_identity"]
