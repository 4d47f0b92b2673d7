"""The seam between wattledger and power-measuring hardware: one small read-only interface.

Every backend (NVML, AMD SMI, RAPL, a Prometheus scrape, the modeled catalog, the fakes) is an
:class:`EnergySource`: it lists its devices and reads one sample of all of them. Readings carry
*cumulative*, wrap-corrected energy in joules plus how it was obtained (:data:`EnergyMethod`),
so a modeled number can never pass for a measured one.

Exception tree (vendor errors are mapped onto it at the boundary, with ``raise ... from e``)::

    WattledgerError
    └── SourceError               something about a power source went wrong
        ├── SourceUnavailable     the library, driver or sysfs tree is missing: install or mount it
        ├── SourcePermissionError present but not readable by this user: run privileged / chmod
        ├── DeviceLost            the device fell off the bus or was unplugged: it is skipped
        └── MetricUnsupported     this device cannot report this metric: it is left empty
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from wattledger.errors import WattledgerError

logger = logging.getLogger(__name__)

#: How an energy figure was obtained: a hardware ``counter``, integrated ``power`` samples
#: (trapezoid), or ``modeled`` (an estimate, never a measurement). Same words as the warehouse.
EnergyMethod = Literal["counter", "power", "modeled"]
#: What kind of component a device is (semantic-conventions ``hw.type``).
HwType = Literal["gpu", "cpu", "memory"]


class SourceError(WattledgerError):
    """A power source or one of its devices cannot be read."""


class SourceUnavailable(SourceError):
    """The library, driver, device tree or endpoint behind a source is not there."""


class SourcePermissionError(SourceError):
    """The source exists but this process may not read it."""


class DeviceLost(SourceError):
    """A device that was there has gone (GPU fell off the bus, hot-unplug, file vanished)."""


class MetricUnsupported(SourceError):
    """The device cannot report this metric (e.g. utilization on a MIG-enabled GPU)."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What a device is; constant for the life of a source.

    Attributes:
        device_id: Stable id exported as ``hw.id``: the GPU UUID where there is one (MIG
            slices: ``MIG-<parent UUID>/<GI>/<CI>``), else ``<host>:<source>:<index>``.
        source: Source name (``nvml``, ``amdsmi``, ``rapl``, ``prometheus``, ``modeled``, ``fake``).
        hw_type: ``gpu``, ``cpu`` or ``memory``.
        vendor: ``nvidia``, ``amd``, ``intel``, ... (``hw.vendor``).
        model: Marketing model name as the driver reports it (``hw.model``).
        name: Human-readable name (``hw.name``), e.g. ``gpu0`` or ``package-0``.
        index: The device's index within its source (``wattledger.device.index``).
        parent_id: The ``hw.id`` of the physical device for a partition (MIG), else None.
        tdp_w: Power limit / thermal design power in watts, when known.
        idle_power_w: Idle baseline in watts, when known.
        uncertainty_ratio: For a modeled device, the relative half-width of the range its
            power and energy lie in (``0.25`` = the true figure is taken to be within ±25 %);
            None for measured devices.
    """

    device_id: str
    source: str
    hw_type: HwType
    vendor: str
    model: str
    name: str
    index: int | None = None
    parent_id: str | None = None
    tdp_w: float | None = None
    idle_power_w: float | None = None
    uncertainty_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process using a device; maps devices to serving processes and containers.

    Attributes:
        pid: Process id as the driver sees it (host PID namespace).
        used_memory_bytes: Device memory the process holds, bytes; None when not reported.
        container_id: Container id from ``/proc/<pid>/cgroup`` when readable.
    """

    pid: int
    used_memory_bytes: int | None = None
    container_id: str | None = None


@dataclass(frozen=True, slots=True)
class EnergyReading:
    """One sample of one device.

    Attributes:
        device_id: The :attr:`DeviceInfo.device_id` this reading belongs to.
        energy_j: Cumulative energy in joules, wrap- and reset-corrected, never decreasing;
            None only for a partition that has no energy of its own (MIG slice).
        power_w: Power in watts as the device reports it (NVML: a 1 s average on Ampere+ except
            A100), or None.
        monotonic_ns: ``time.monotonic_ns()`` when read; wall-clock time is attached at export.
        method: How ``energy_j`` was obtained (:data:`EnergyMethod`).
        utilization_ratio: Compute utilization 0..1, or None.
        memory_used_bytes: Device memory in use, bytes, or None.
        memory_total_bytes: Device memory size, bytes, or None.
        temperature_c: Temperature in degrees Celsius, or None.
        clock_mhz: Core/SM clock in MHz, or None.
        processes: Processes on the device, when the source can list them.
        attributes: Extra point attributes that can change between readings, as sorted
            ``(name, value)`` pairs: the Kubernetes pod a scraped GPU is assigned to
            (``k8s.pod.name``, ``k8s.namespace.name``, ``k8s.container.name``).
    """

    device_id: str
    energy_j: float | None
    power_w: float | None
    monotonic_ns: int
    method: EnergyMethod
    utilization_ratio: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_c: float | None = None
    clock_mhz: float | None = None
    processes: tuple[GpuProcess, ...] = field(default_factory=tuple)
    attributes: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class WorkloadEnergy:
    """Energy an exporter attributes to a Kubernetes workload: an estimate, never a device.

    Kepler splits a node's measured energy among pods by their CPU time. Such shares are not
    device readings (adding them to the node's devices would count the energy twice), so they
    travel beside the readings and are exported under their own metric names.

    Attributes:
        exporter: Who attributed it (``kepler``).
        namespace: The pod's namespace, or None.
        pod_name: The pod's name, or None.
        pod_uid: The pod's UID, or None.
        zone: The energy domain (``package``, ``dram``).
        hw_type: The kind of component the zone is (``cpu``, ``memory``).
        state: ``running`` or ``terminated`` as the exporter says, or None.
        node: The node the pod runs on, or None.
        energy_j: Cumulative joules as the exporter reports them.
        power_w: Power over the exporter's last interval, watts, or None.
        start_time_unix_nano: When this series started (first seen, or last reset).
        monotonic_ns: When scraped.
    """

    exporter: str
    namespace: str | None
    pod_name: str | None
    pod_uid: str | None
    zone: str
    hw_type: HwType
    state: str | None
    node: str | None
    energy_j: float
    power_w: float | None
    start_time_unix_nano: int
    monotonic_ns: int


@runtime_checkable
class EnergySource(Protocol):
    """A read-only power source: list devices, read a sample, close.

    ``read()`` never raises for a single bad device: it logs once and leaves that device out
    (lost) or its metric empty (unsupported). It may raise :class:`SourceError` when the whole
    source fails.
    """

    name: str

    def devices(self) -> Sequence[DeviceInfo]:
        """The devices this source reads, in a stable order."""
        ...

    def read(self) -> list[EnergyReading]:
        """One reading per readable device, cumulative and wrap-corrected, in joules."""
        ...

    def close(self) -> None:
        """Release the library or connection; idempotent."""
        ...


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A source that could not be opened, and what to do about it (shown by ``doctor``).

    Attributes:
        source: The source name (``nvml``, ``amdsmi``, ...).
        reason: What is wrong, in one line.
        fix: What to do, in one line.
    """

    source: str
    reason: str
    fix: str


class OnceLogger:
    """Logs a message once per key, so a broken device yields one line and not one per tick."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._seen: set[tuple[object, ...]] = set()

    def log(self, level: int, key: tuple[object, ...], msg: str, *args: object) -> bool:
        """Log ``msg`` at ``level`` the first time ``key`` is seen; return whether it logged."""
        if key in self._seen:
            return False
        self._seen.add(key)
        self._log.log(level, msg, *args)
        return True

    def forget(self, key: tuple[object, ...]) -> None:
        """Allow ``key`` to log again (e.g. after a device recovered)."""
        self._seen.discard(key)


__all__ = [
    "DeviceInfo",
    "DeviceLost",
    "EnergyMethod",
    "EnergyReading",
    "EnergySource",
    "GpuProcess",
    "HwType",
    "MetricUnsupported",
    "OnceLogger",
    "SourceError",
    "SourcePermissionError",
    "SourceUnavailable",
    "Unavailable",
    "WorkloadEnergy",
]


def read_optional(
    once: OnceLogger,
    label: str,
    unsupported: set[str] | None,
    metric: str,
    call: Callable[[], Any],
    vendor_error: type[BaseException],
    to_error: Callable[[BaseException, str], SourceError],
) -> Any:
    """Read one optional metric of a device through a vendor library.

    An unsupported metric becomes None and is remembered in ``unsupported`` (logged once at
    INFO); another vendor error becomes None with one WARNING per kind; a lost device raises
    :class:`DeviceLost`. Shared by the NVML and AMD SMI sources.
    """
    if unsupported is not None and metric in unsupported:
        return None
    try:
        return call()
    except vendor_error as e:
        err = to_error(e, f"read {metric} of {label}")
        if isinstance(err, DeviceLost):
            raise err from e
        if isinstance(err, MetricUnsupported):
            if unsupported is not None:
                unsupported.add(metric)
            once.log(logging.INFO, (label, metric), "%s", err.message)
        else:
            once.log(logging.WARNING, (label, metric, type(err)), "%s", err.message)
        return None
