"""A fake ``pynvml`` module: the real nvidia-ml-py API surface, backed by simulated GPUs.

:class:`FakeNvml` builds a module object that ``NvmlSource`` uses exactly as it uses the real
``pynvml``: the same function names and argument orders, the
same return types (``int`` millijoules and milliwatts, ``str`` UUIDs, the real ctypes structs
``c_nvmlUtilization_t`` and ``c_nvmlMemory_t``, ``nvmlFriendlyObject`` processes) and the
**real exception classes** of the installed ``pynvml`` (``NVMLError(code)`` maps to
``NVMLError_NotSupported``, ``NVMLError_GpuIsLost``, ...). Only the C library is simulated.

Energy is simulated from power and a clock: a GPU drawing ``power_w`` for ``dt`` seconds adds
``power_w * dt * 1000`` to its millijoule counter, like the driver's total-energy counter.

Example::

    fake = FakeNvml([FakeGpu(uuid="GPU-0a1b...", power_w=350.0)], clock_ns=clock)
    source = NvmlSource(fake.module)
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

try:
    import pynvml as _real
except ImportError as e:  # pragma: no cover - nvidia-ml-py is in the dev and nvidia extras
    raise ImportError(
        "The fake pynvml reuses the real nvidia-ml-py's exception classes and structs; "
        "install it with `pip install 'wattledger[nvidia]'`."
    ) from e

GIB = 2**30


@dataclass
class FakeMigInstance:
    """One MIG slice of a fake GPU (memory is per slice; power and energy are not)."""

    gpu_instance_id: int
    compute_instance_id: int = 0
    name: str = "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
    memory_total_bytes: int = 10 * GIB
    memory_used_bytes: int = 2 * GIB


@dataclass
class FakeGpu:
    """A simulated NVIDIA GPU. Change the fields while a test runs to change what NVML says.

    Attributes:
        uuid: ``GPU-...`` UUID as ``nvmlDeviceGetUUID`` returns it.
        name: Model name as ``nvmlDeviceGetName`` returns it.
        power_w: Current power draw, watts (reported in mW; integrated into the counter).
        energy_mj: Total-energy counter, millijoules since the "driver was loaded".
        energy_supported: False for pre-Volta GPUs (``NVML_ERROR_NOT_SUPPORTED``).
        power_supported: False for boards without power readings.
        processes: ``(pid, used_gpu_memory_bytes, gpu_instance_id)`` of compute processes.
        mig: MIG slices; non-empty means MIG mode is enabled.
        lost: When True every call on this GPU raises ``NVMLError_GpuIsLost``.
        errors: Function name -> ``NVML_ERROR_*`` code that call raises (failure injection).
    """

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    power_w: float = 300.0
    energy_mj: float = 0.0
    energy_supported: bool = True
    power_supported: bool = True
    utilization_gpu_pct: int = 50
    utilization_memory_pct: int = 30
    memory_total_bytes: int = 80 * GIB
    memory_used_bytes: int = 20 * GIB
    temperature_c: int = 60
    sm_clock_mhz: int = 1980
    power_limit_mw: int = 700_000
    processes: list[tuple[int, int, int]] = field(default_factory=list)
    mig: list[FakeMigInstance] = field(default_factory=list)
    lost: bool = False
    errors: dict[str, int] = field(default_factory=dict)
    _last_ns: int | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Handle:
    """Opaque device handle (the real one is a ctypes ``c_nvmlDevice_t`` pointer)."""

    index: int
    mig: int | None = None


class FakeNvml:
    """A simulated NVML library exposed as a ``pynvml``-shaped module (:attr:`module`).

    Args:
        gpus: The simulated GPUs, index order.
        clock_ns: Monotonic clock used to integrate power into the energy counters.
        driver_version: What ``nvmlSystemGetDriverVersion`` returns.
        init_error: An ``NVML_ERROR_*`` code ``nvmlInit`` raises (e.g. driver not loaded).
    """

    def __init__(
        self,
        gpus: Sequence[FakeGpu],
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        driver_version: str = "550.54.15",
        init_error: int | None = None,
    ) -> None:
        self.gpus = list(gpus)
        self.clock_ns = clock_ns
        self.driver_version = driver_version
        self.init_error = init_error
        self.initialized = 0
        self.calls: dict[str, int] = {}
        self.module = self._build_module()

    # --- simulation controls -------------------------------------------------------------
    def advance(self) -> None:
        """Integrate every GPU's power into its counter up to now."""
        for gpu in self.gpus:
            self._integrate(gpu)

    def set_power(self, index: int, power_w: float) -> None:
        """Change a GPU's power draw from now on."""
        self._integrate(self.gpus[index])
        self.gpus[index].power_w = power_w

    def reload_driver(self, index: int) -> None:
        """Simulate a driver reload: the total-energy counter restarts from zero."""
        self._integrate(self.gpus[index])
        self.gpus[index].energy_mj = 0.0

    def _integrate(self, gpu: FakeGpu) -> None:
        now = self.clock_ns()
        if gpu._last_ns is not None:
            gpu.energy_mj += gpu.power_w * max(now - gpu._last_ns, 0) / 1e6
        gpu._last_ns = now

    # --- the pynvml surface ----------------------------------------------------------------
    def _raise(self, code: int) -> NoReturn:
        raise _real.NVMLError(code)

    def _check(self, fn: str, handle: Any = None) -> FakeGpu | None:
        self.calls[fn] = self.calls.get(fn, 0) + 1
        if fn not in ("nvmlInit", "nvmlInitWithFlags") and not self.initialized:
            self._raise(_real.NVML_ERROR_UNINITIALIZED)
        if handle is None:
            return None
        if not isinstance(handle, _Handle) or not 0 <= handle.index < len(self.gpus):
            self._raise(_real.NVML_ERROR_INVALID_ARGUMENT)
        gpu = self.gpus[handle.index]
        if gpu.lost:
            self._raise(_real.NVML_ERROR_GPU_IS_LOST)
        if fn in gpu.errors:
            self._raise(gpu.errors[fn])
        return gpu

    def _build_module(self) -> types.ModuleType:
        mod = types.ModuleType("pynvml", "Fake pynvml backed by wattledger's FakeNvml.")
        for attr in dir(_real):
            if attr.startswith(("NVML", "c_nvml", "nvmlMemory_v", "nvmlFriendlyObject")):
                setattr(mod, attr, getattr(_real, attr))
        for attr in dir(self):
            if attr.startswith("nvml"):
                setattr(mod, attr, getattr(self, attr))
        mod.__dict__["__fake__"] = self
        return mod

    def nvmlInit(self) -> None:
        self._check("nvmlInit")
        if self.init_error is not None:
            self._raise(self.init_error)
        self.initialized += 1

    def nvmlInitWithFlags(self, flags: int) -> None:
        self.nvmlInit()

    def nvmlShutdown(self) -> None:
        self._check("nvmlShutdown")
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            self._raise(_real.NVML_ERROR_INVALID_ARGUMENT)
        if self.gpus[index].lost:
            self._raise(_real.NVML_ERROR_GPU_IS_LOST)
        return _Handle(index)

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu = self._check("nvmlDeviceGetUUID", handle)
        assert gpu is not None
        if handle.mig is not None:
            mig = gpu.mig[handle.mig]
            return f"MIG-{gpu.uuid[4:]}-{mig.gpu_instance_id}{mig.compute_instance_id}"
        return gpu.uuid

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        gpu = self._check("nvmlDeviceGetName", handle)
        assert gpu is not None
        return gpu.mig[handle.mig].name if handle.mig is not None else gpu.name

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu = self._check("nvmlDeviceGetTotalEnergyConsumption", handle)
        assert gpu is not None
        if not gpu.energy_supported or handle.mig is not None:
            self._raise(_real.NVML_ERROR_NOT_SUPPORTED)
        self._integrate(gpu)
        return int(gpu.energy_mj)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        gpu = self._check("nvmlDeviceGetPowerUsage", handle)
        assert gpu is not None
        if not gpu.power_supported or handle.mig is not None:
            self._raise(_real.NVML_ERROR_NOT_SUPPORTED)
        return int(round(gpu.power_w * 1000))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        gpu = self._check("nvmlDeviceGetEnforcedPowerLimit", handle)
        assert gpu is not None
        return gpu.power_limit_mw

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> Any:
        gpu = self._check("nvmlDeviceGetUtilizationRates", handle)
        assert gpu is not None
        if gpu.mig:  # "not supported on MIG-enabled GPUs" (nvml.h)
            self._raise(_real.NVML_ERROR_NOT_SUPPORTED)
        return _real.c_nvmlUtilization_t(gpu.utilization_gpu_pct, gpu.utilization_memory_pct)

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle, version: int | None = None) -> Any:
        gpu = self._check("nvmlDeviceGetMemoryInfo", handle)
        assert gpu is not None
        if handle.mig is not None:
            mig = gpu.mig[handle.mig]
            total, used = mig.memory_total_bytes, mig.memory_used_bytes
        else:
            total, used = gpu.memory_total_bytes, gpu.memory_used_bytes
        if version:
            return _real.c_nvmlMemory_v2_t(version, total, 0, total - used, used)
        return _real.c_nvmlMemory_t(total, total - used, used)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu = self._check("nvmlDeviceGetTemperature", handle)
        assert gpu is not None
        if sensor != _real.NVML_TEMPERATURE_GPU:
            self._raise(_real.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature_c

    def nvmlDeviceGetClockInfo(self, handle: _Handle, type: int) -> int:
        gpu = self._check("nvmlDeviceGetClockInfo", handle)
        assert gpu is not None
        return gpu.sm_clock_mhz

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[Any]:
        gpu = self._check("nvmlDeviceGetComputeRunningProcesses", handle)
        assert gpu is not None
        return [
            _real.nvmlFriendlyObject(
                {
                    "pid": pid,
                    "usedGpuMemory": used,
                    "gpuInstanceId": gi,
                    "computeInstanceId": 0,
                }
            )
            for pid, used, gi in gpu.processes
        ]

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        gpu = self._check("nvmlDeviceGetMigMode", handle)
        assert gpu is not None
        mode = _real.NVML_DEVICE_MIG_ENABLE if gpu.mig else _real.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        self._check("nvmlDeviceGetMaxMigDeviceCount", handle)
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle, index: int) -> _Handle:
        gpu = self._check("nvmlDeviceGetMigDeviceHandleByIndex", handle)
        assert gpu is not None
        if index >= len(gpu.mig):
            self._raise(_real.NVML_ERROR_NOT_FOUND)
        return _Handle(handle.index, index)

    def nvmlDeviceGetGpuInstanceId(self, handle: _Handle) -> int:
        gpu = self._check("nvmlDeviceGetGpuInstanceId", handle)
        assert gpu is not None
        if handle.mig is None:
            self._raise(_real.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.mig[handle.mig].gpu_instance_id

    def nvmlDeviceGetComputeInstanceId(self, handle: _Handle) -> int:
        gpu = self._check("nvmlDeviceGetComputeInstanceId", handle)
        assert gpu is not None
        if handle.mig is None:
            self._raise(_real.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.mig[handle.mig].compute_instance_id


__all__ = ["FakeGpu", "FakeMigInstance", "FakeNvml"]
