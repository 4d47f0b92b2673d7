"""NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``).

Energy comes from ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the driver was
loaded; Volta and newer). Where the counter is not supported, ``nvmlDeviceGetPowerUsage``
(milliwatts) is integrated with the trapezoid rule and the readings say ``method="power"``.
Note the driver's averaging: on Ampere (except A100) and newer, power usage is a 1 s trailing
average, so the counter is always preferred.

MIG: power and energy exist only for the physical GPU (``hw.id`` = its UUID). Each MIG slice
is listed as its own device ``MIG-<parent UUID>/<GI>/<CI>`` with its memory and processes,
``hw.parent`` pointing to the GPU, and no energy of its own (never apportioned silently).

The library is passed in (``NvmlSource(pynvml_module)``) so tests use
:class:`~wattledger.collectors.sources.fakes.nvml.FakeNvml`; by default the real ``pynvml``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from wattledger.collectors.sources.base import (
    DeviceInfo,
    DeviceLost,
    EnergyMethod,
    EnergyReading,
    GpuProcess,
    MetricUnsupported,
    OnceLogger,
    SourceError,
    SourcePermissionError,
    SourceUnavailable,
    read_optional,
)
from wattledger.collectors.sources.counters import (
    DEFAULT_MAX_GAP_S,
    DEFAULT_MAX_POWER_W,
    CounterTracker,
    PowerIntegrator,
)
from wattledger.collectors.sources.procs import container_id_of

logger = logging.getLogger(__name__)

_DRIVER_FIX = (
    "Install the NVIDIA driver (`nvidia-smi` must work); in a container use the NVIDIA "
    "Container Toolkit (`--gpus all`, or a `nvidia.com/gpu` resource) so libnvidia-ml is mounted."
)

#: Every ``NVML_ERROR_*`` constant -> the taxonomy class callers act on.
NVML_ERROR_CLASSES: dict[str, type[SourceError]] = {
    "NVML_ERROR_UNINITIALIZED": SourceUnavailable,
    "NVML_ERROR_INVALID_ARGUMENT": SourceError,
    "NVML_ERROR_NOT_SUPPORTED": MetricUnsupported,
    "NVML_ERROR_NO_PERMISSION": SourcePermissionError,
    "NVML_ERROR_ALREADY_INITIALIZED": SourceError,
    "NVML_ERROR_NOT_FOUND": MetricUnsupported,
    "NVML_ERROR_INSUFFICIENT_SIZE": SourceError,
    "NVML_ERROR_INSUFFICIENT_POWER": DeviceLost,
    "NVML_ERROR_DRIVER_NOT_LOADED": SourceUnavailable,
    "NVML_ERROR_TIMEOUT": SourceError,
    "NVML_ERROR_IRQ_ISSUE": DeviceLost,
    "NVML_ERROR_LIBRARY_NOT_FOUND": SourceUnavailable,
    "NVML_ERROR_FUNCTION_NOT_FOUND": MetricUnsupported,
    "NVML_ERROR_CORRUPTED_INFOROM": SourceError,
    "NVML_ERROR_GPU_IS_LOST": DeviceLost,
    "NVML_ERROR_RESET_REQUIRED": DeviceLost,
    "NVML_ERROR_OPERATING_SYSTEM": SourcePermissionError,
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": SourceUnavailable,
    "NVML_ERROR_IN_USE": SourceError,
    "NVML_ERROR_MEMORY": SourceError,
    "NVML_ERROR_NO_DATA": MetricUnsupported,
    "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED": MetricUnsupported,
    "NVML_ERROR_INSUFFICIENT_RESOURCES": SourceError,
    "NVML_ERROR_FREQ_NOT_SUPPORTED": MetricUnsupported,
    "NVML_ERROR_ARGUMENT_VERSION_MISMATCH": MetricUnsupported,
    "NVML_ERROR_DEPRECATED": MetricUnsupported,
    "NVML_ERROR_NOT_READY": SourceError,
    "NVML_ERROR_GPU_NOT_FOUND": DeviceLost,
    "NVML_ERROR_INVALID_STATE": SourceError,
    "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED": MetricUnsupported,
    "NVML_ERROR_UNKNOWN": SourceError,
}

_HINTS: dict[type[SourceError], str] = {
    SourceUnavailable: _DRIVER_FIX,
    SourcePermissionError: "Run the collector as root, or make /dev/nvidia* readable to it.",
    DeviceLost: "Check `nvidia-smi` and `dmesg` for Xid errors; the other devices keep being read.",
}


def map_nvml_error(nvml: ModuleType, error: Exception, doing: str) -> SourceError:
    """The taxonomy error for an ``NVMLError`` raised while ``doing`` something."""
    code = getattr(error, "value", None)
    name = next(
        (n for n in NVML_ERROR_CLASSES if getattr(nvml, n, object()) == code),
        f"NVML error {code}",
    )
    cls = NVML_ERROR_CLASSES.get(name, SourceError)
    return cls(f"NVML could not {doing}: {error} ({name}).", hint=_HINTS.get(cls))


def load_pynvml() -> ModuleType:
    """Import the real ``pynvml`` or explain which extra to install."""
    try:
        import pynvml
    except ImportError as e:
        raise SourceUnavailable(
            "The NVIDIA bindings (nvidia-ml-py) are not installed.",
            hint="pip install 'wattledger[nvidia]'",
        ) from e
    return pynvml


@dataclass
class _Gpu:
    info: DeviceInfo
    handle: Any
    counter: CounterTracker | None
    integrator: PowerIntegrator
    unsupported: set[str] = field(default_factory=set)
    lost: bool = False
    processes: tuple[GpuProcess, ...] = ()
    processes_at_ns: int | None = None
    process_gi: dict[int, int] = field(default_factory=dict)
    mig_slices: list[tuple[DeviceInfo, Any, int]] = field(default_factory=list)


class NvmlSource:
    """Energy, power, utilization, memory, temperature, clocks and processes of NVIDIA GPUs.

    Args:
        nvml: The ``pynvml`` module (or a fake shaped like it); None imports the real one.
        clock_ns: Monotonic clock for reading times.
        max_power_w: Plausibility bound for counter deltas (see ``CounterTracker``).
        max_gap_s: Longest power-integration gap (see ``PowerIntegrator``).
        process_refresh_s: How often to list processes (it is slower than the other calls).
        procfs_root: Where ``/proc`` is, for mapping processes to containers.

    Raises:
        SourceUnavailable: the bindings, library or driver are missing.
        SourcePermissionError: NVML refuses this user.
    """

    name = "nvml"

    def __init__(
        self,
        nvml: ModuleType | None = None,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        max_power_w: float = DEFAULT_MAX_POWER_W,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
        process_refresh_s: float = 5.0,
        procfs_root: Path = Path("/proc"),
    ) -> None:
        self._nvml = nvml if nvml is not None else load_pynvml()
        self._clock_ns = clock_ns
        self._max_power_w = max_power_w
        self._max_gap_s = max_gap_s
        self._process_refresh_ns = int(process_refresh_s * 1e9)
        self._procfs_root = procfs_root
        self._once = OnceLogger(logger)
        self._closed = False
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as e:
            raise map_nvml_error(self._nvml, e, "initialise") from e
        self._gpus = self._discover()

    # --- discovery ---------------------------------------------------------------------------
    def _call(self, doing: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except self._nvml.NVMLError as e:
            raise map_nvml_error(self._nvml, e, doing) from e

    def _discover(self) -> list[_Gpu]:
        nvml = self._nvml
        count = self._call("count devices", nvml.nvmlDeviceGetCount)
        gpus: list[_Gpu] = []
        for index in range(count):
            try:
                gpus.append(self._open(index))
            except SourceError as e:
                logger.warning("Skipping NVIDIA GPU %d: %s", index, e.message)
        return gpus

    def _open(self, index: int) -> _Gpu:
        nvml = self._nvml
        handle = self._call(f"open GPU {index}", nvml.nvmlDeviceGetHandleByIndex, index)
        uuid = _text(self._call(f"read GPU {index}'s UUID", nvml.nvmlDeviceGetUUID, handle))
        model = _text(self._call(f"read GPU {index}'s name", nvml.nvmlDeviceGetName, handle))
        tdp_w = self._optional(None, "power limit", nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        info = DeviceInfo(
            device_id=uuid,
            source=self.name,
            hw_type="gpu",
            vendor="nvidia",
            model=model,
            name=f"gpu{index}",
            index=index,
            tdp_w=tdp_w / 1000.0 if tdp_w is not None else None,
        )
        gpu = _Gpu(
            info=info,
            handle=handle,
            counter=CounterTracker(1e-3, None, self._max_power_w),
            integrator=PowerIntegrator(self._max_gap_s),
        )
        mode = self._optional(gpu, "mig mode", nvml.nvmlDeviceGetMigMode, handle)
        if mode and mode[0] == nvml.NVML_DEVICE_MIG_ENABLE:
            gpu.unsupported.add("utilization")  # not supported on MIG-enabled GPUs (nvml.h)
            slots = self._optional(gpu, "mig count", nvml.nvmlDeviceGetMaxMigDeviceCount, handle)
            for slot in range(slots or 0):
                try:
                    mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
                    gi = nvml.nvmlDeviceGetGpuInstanceId(mig)
                    ci = nvml.nvmlDeviceGetComputeInstanceId(mig)
                    mig_name = _text(nvml.nvmlDeviceGetName(mig))
                except nvml.NVMLError:
                    continue  # an empty slot: NVML_ERROR_NOT_FOUND
                mig_info = DeviceInfo(
                    device_id=f"MIG-{uuid}/{gi}/{ci}",
                    source=self.name,
                    hw_type="gpu",
                    vendor="nvidia",
                    model=mig_name,
                    name=f"gpu{index}-mig{gi}.{ci}",
                    index=index,
                    parent_id=uuid,
                )
                gpu.mig_slices.append((mig_info, mig, gi))
        return gpu

    def devices(self) -> Sequence[DeviceInfo]:
        """Physical GPUs, each followed by its MIG slices."""
        out: list[DeviceInfo] = []
        for gpu in self._gpus:
            out.append(gpu.info)
            out.extend(info for info, _, _ in gpu.mig_slices)
        return out

    # --- reading -----------------------------------------------------------------------------
    def _optional(self, gpu: _Gpu | None, metric: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn``; an unsupported metric becomes None (remembered); a lost GPU raises."""
        return read_optional(
            self._once,
            gpu.info.device_id if gpu is not None else "?",
            gpu.unsupported if gpu is not None else None,
            metric,
            lambda: fn(*args),
            self._nvml.NVMLError,
            lambda e, what: map_nvml_error(self._nvml, e, what),
        )
        try:
            return fn(*args)
        except self._nvml.NVMLError as e:
            label = gpu.info.device_id if gpu is not None else "?"
            err = map_nvml_error(self._nvml, e, f"read {metric} of {label}")
            if isinstance(err, DeviceLost):
                raise err from e
            if isinstance(err, MetricUnsupported):
                if gpu is not None:
                    gpu.unsupported.add(metric)
                self._once.log(logging.INFO, (label, metric), "%s", err.message)
            else:
                self._once.log(logging.WARNING, (label, metric, type(err)), "%s", err.message)
            return None

    def read(self) -> list[EnergyReading]:
        """One reading per live GPU and MIG slice; lost GPUs are logged once and skipped."""
        readings: list[EnergyReading] = []
        for gpu in self._gpus:
            if gpu.lost:
                continue
            try:
                readings.extend(self._read_gpu(gpu))
            except DeviceLost as e:
                gpu.lost = True
                logger.error(
                    "NVIDIA GPU %s (index %s) is lost and will no longer be read: %s %s",
                    gpu.info.device_id,
                    gpu.info.index,
                    e.message,
                    e.hint or "",
                )
        return readings

    def _read_gpu(self, gpu: _Gpu) -> list[EnergyReading]:
        nvml, h = self._nvml, gpu.handle
        energy_j: float | None = None
        method: EnergyMethod = "counter"
        raw_mj = None
        if gpu.counter is not None:
            raw_mj = self._optional(gpu, "energy", nvml.nvmlDeviceGetTotalEnergyConsumption, h)
            if raw_mj is None and "energy" in gpu.unsupported:
                gpu.counter = None
                self._once.log(
                    logging.INFO,
                    (gpu.info.device_id, "integrating"),
                    "GPU %s has no energy counter (pre-Volta); integrating power instead.",
                    gpu.info.device_id,
                )
        t_ns = self._clock_ns()
        power_mw = self._optional(gpu, "power", nvml.nvmlDeviceGetPowerUsage, h)
        power_w = power_mw / 1000.0 if power_mw is not None else None
        if gpu.counter is not None:
            if raw_mj is not None:
                energy_j = gpu.counter.update(int(raw_mj), t_ns)
            else:
                energy_j = gpu.counter.energy_j
        else:
            method = "power"
            if power_w is not None:
                energy_j = gpu.integrator.update(power_w, t_ns)
            else:
                self._once.log(
                    logging.WARNING,
                    (gpu.info.device_id, "no-energy"),
                    "GPU %s reports neither an energy counter nor power; its energy is unknown.",
                    gpu.info.device_id,
                )
        util = self._optional(gpu, "utilization", nvml.nvmlDeviceGetUtilizationRates, h)
        mem = self._optional(gpu, "memory", nvml.nvmlDeviceGetMemoryInfo, h)
        temp = self._optional(
            gpu, "temperature", nvml.nvmlDeviceGetTemperature, h, nvml.NVML_TEMPERATURE_GPU
        )
        clock = self._optional(gpu, "clock", nvml.nvmlDeviceGetClockInfo, h, nvml.NVML_CLOCK_SM)
        self._refresh_processes(gpu, t_ns)
        out = [
            EnergyReading(
                device_id=gpu.info.device_id,
                energy_j=energy_j,
                power_w=power_w,
                monotonic_ns=t_ns,
                method=method,
                utilization_ratio=util.gpu / 100.0 if util is not None else None,
                memory_used_bytes=int(mem.used) if mem is not None else None,
                memory_total_bytes=int(mem.total) if mem is not None else None,
                temperature_c=float(temp) if temp is not None else None,
                clock_mhz=float(clock) if clock is not None else None,
                processes=gpu.processes,
            )
        ]
        for info, mig_handle, gi in gpu.mig_slices:
            mig_mem = self._optional(
                gpu, f"memory {info.name}", nvml.nvmlDeviceGetMemoryInfo, mig_handle
            )
            out.append(
                EnergyReading(
                    device_id=info.device_id,
                    energy_j=None,
                    power_w=None,
                    monotonic_ns=t_ns,
                    method=method,
                    memory_used_bytes=int(mig_mem.used) if mig_mem is not None else None,
                    memory_total_bytes=int(mig_mem.total) if mig_mem is not None else None,
                    processes=tuple(p for p in gpu.processes if gpu.process_gi.get(p.pid) == gi),
                )
            )
        return out

    def _refresh_processes(self, gpu: _Gpu, t_ns: int) -> None:
        last = gpu.processes_at_ns
        if last is not None and t_ns - last < self._process_refresh_ns:
            return
        gpu.processes_at_ns = t_ns
        procs = self._optional(
            gpu, "processes", self._nvml.nvmlDeviceGetComputeRunningProcesses, gpu.handle
        )
        gpu.processes = tuple(
            GpuProcess(
                pid=int(p.pid),
                used_memory_bytes=int(p.usedGpuMemory) if p.usedGpuMemory is not None else None,
                container_id=container_id_of(int(p.pid), self._procfs_root),
            )
            for p in procs or ()
        )
        gpu.process_gi = {int(p.pid): int(getattr(p, "gpuInstanceId", 0)) for p in procs or ()}

    def close(self) -> None:
        """Shut NVML down (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as e:
            logger.debug("nvmlShutdown failed: %s", e)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = ["NVML_ERROR_CLASSES", "NvmlSource", "load_pynvml", "map_nvml_error"]
