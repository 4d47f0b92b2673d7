"""A fake ``amdsmi`` module shaped exactly like AMD SMI's Python interface (ROCm 6.4 / 7.x).

The real package is a ctypes wrapper around ROCm's ``libamd_smi.so`` and cannot be installed
without ROCm, so this fake reproduces its surface from the published interface
(``py-interface/amdsmi_interface.py``, ``amdsmi_exception.py``, ``amdsmi.h``):

* handles are ``amdsmi_processor_handle`` (``ctypes.c_void_p``) and every call checks the type
  and raises ``AmdSmiParameterException`` otherwise;
* failures raise ``AmdSmiLibraryException(err_code)`` with ``err_code``/``err_info`` and
  ``get_error_code()``; status ``RETRY`` and ``TIMEOUT`` raise ``AmdSmiRetryException`` and
  ``AmdSmiTimeoutException`` (as ``_check_res`` does);
* ``amdsmi_get_energy_count`` returns ``{'power', 'energy_accumulator', 'counter_resolution',
  'timestamp'}`` (``power`` is the pre-6.4 name of the accumulator), energy in µJ being
  ``energy_accumulator * counter_resolution``;
* ``amdsmi_get_power_info`` returns watts, with ``"N/A"`` for members the ASIC lacks;
* ``amdsmi_get_gpu_vram_usage`` returns MB; ``amdsmi_get_gpu_activity`` percent.

Energy is simulated from ``power_w`` and a clock, in ticks of ``counter_resolution_uj``.
"""

from __future__ import annotations

import ctypes
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

# amdsmi.h amdsmi_status_t (ROCm 7.x)
AMDSMI_STATUS_SUCCESS = 0
AMDSMI_STATUS_INVAL = 1
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NOT_YET_IMPLEMENTED = 3
AMDSMI_STATUS_FAIL_LOAD_MODULE = 4
AMDSMI_STATUS_FAIL_LOAD_SYMBOL = 5
AMDSMI_STATUS_DRM_ERROR = 6
AMDSMI_STATUS_API_FAILED = 7
AMDSMI_STATUS_TIMEOUT = 8
AMDSMI_STATUS_RETRY = 9
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_INTERRUPT = 11
AMDSMI_STATUS_IO = 12
AMDSMI_STATUS_ADDRESS_FAULT = 13
AMDSMI_STATUS_FILE_ERROR = 14
AMDSMI_STATUS_OUT_OF_RESOURCES = 15
AMDSMI_STATUS_INTERNAL_EXCEPTION = 16
AMDSMI_STATUS_INPUT_OUT_OF_BOUNDS = 17
AMDSMI_STATUS_INIT_ERROR = 18
AMDSMI_STATUS_REFCOUNT_OVERFLOW = 19
AMDSMI_STATUS_DIRECTORY_NOT_FOUND = 20
AMDSMI_STATUS_BUSY = 30
AMDSMI_STATUS_NOT_FOUND = 31
AMDSMI_STATUS_NOT_INIT = 32
AMDSMI_STATUS_NO_SLOT = 33
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34
AMDSMI_STATUS_MORE_DATA = 39
AMDSMI_STATUS_NO_DATA = 40
AMDSMI_STATUS_INSUFFICIENT_SIZE = 41
AMDSMI_STATUS_UNEXPECTED_SIZE = 42
AMDSMI_STATUS_UNEXPECTED_DATA = 43
AMDSMI_STATUS_UNKNOWN_ERROR = 0xFFFFFFFF

_STATUS_TEXT = {
    v: k for k, v in globals().items() if k.startswith("AMDSMI_STATUS_") and isinstance(v, int)
}

amdsmi_processor_handle = ctypes.c_void_p


class AmdSmiException(Exception):
    """Base smi exception class (as in amdsmi_exception.py)."""


class AmdSmiLibraryException(AmdSmiException):
    """A status code returned by the C library."""

    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _STATUS_TEXT.get(err_code, "AMDSMI_STATUS_UNKNOWN_ERROR")

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_code(self) -> int:
        """The ``AMDSMI_STATUS_*`` code."""
        return self.err_code

    def get_error_info(self, detailed: bool = True) -> str:
        """The status name (and description)."""
        return self.err_info


class AmdSmiRetryException(AmdSmiLibraryException):
    """``AMDSMI_STATUS_RETRY``: the device is busy, call again."""

    def __init__(self) -> None:
        super().__init__(AMDSMI_STATUS_RETRY)


class AmdSmiTimeoutException(AmdSmiLibraryException):
    """``AMDSMI_STATUS_TIMEOUT``."""

    def __init__(self) -> None:
        super().__init__(AMDSMI_STATUS_TIMEOUT)


class AmdSmiParameterException(AmdSmiException):
    """A Python-side argument of the wrong type."""

    def __init__(self, received: Any, expected: Any, msg: str | None = None) -> None:
        super().__init__(msg)
        self.err_code = None
        self.err_msg = msg or (
            f"Invalid parameter:\nActual type: {type(received)}\nExpected type: {expected}"
        )

    def __str__(self) -> str:
        return self.err_msg


class AmdSmiInitFlags(IntEnum):
    """``amdsmi_init`` flags."""

    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1 << 0
    INIT_AMD_GPUS = 1 << 1
    INIT_NON_AMD_CPUS = 1 << 2
    INIT_NON_AMD_GPUS = 1 << 3
    INIT_AMD_APUS = (1 << 0) | (1 << 1)


class AmdSmiTemperatureType(IntEnum):
    """Temperature sensors."""

    EDGE = 0
    HOTSPOT = 1
    JUNCTION = 1
    VRAM = 2


class AmdSmiTemperatureMetric(IntEnum):
    """Temperature metrics."""

    CURRENT = 0
    MAX = 1
    MIN = 2


_NA = "N/A"


@dataclass
class FakeAmdGpu:
    """A simulated AMD Instinct GPU; change fields while a test runs.

    Attributes:
        uuid: What ``amdsmi_get_gpu_device_uuid`` returns.
        market_name: ``asic_info['market_name']``.
        power_w: Socket power, watts (integrated into the accumulator).
        energy_uj: Energy accumulated so far, µJ.
        counter_resolution_uj: µJ per accumulator tick (15.3 on MI200/MI300).
        energy_supported: False on VM guests (``AMDSMI_STATUS_NOT_SUPPORTED``).
        energy_stuck: The accumulator stops advancing (MI100 bug, ROCm/amdsmi #22).
        power_field: Which power_info key carries the value (``current_socket_power`` on
            MI300+, ``average_socket_power`` on MI200 and earlier); others are ``"N/A"``.
        legacy_energy_key: Return only the pre-6.4 ``power`` key for the accumulator.
        errors: Function name -> ``AMDSMI_STATUS_*`` the call fails with.
        lost: Every call fails with ``AMDSMI_STATUS_NOT_FOUND`` (device gone).
    """

    uuid: str
    market_name: str = "AMD Instinct MI300X"
    power_w: float = 550.0
    energy_uj: float = 0.0
    counter_resolution_uj: float = 15.3
    energy_supported: bool = True
    energy_stuck: bool = False
    power_field: str = "current_socket_power"
    power_limit_w: int = 750
    gfx_activity_pct: int = 60
    umc_activity_pct: int = 20
    vram_total_mb: int = 196_592
    vram_used_mb: int = 40_000
    temperature_c: int = 55
    legacy_energy_key: bool = False
    errors: dict[str, int] = field(default_factory=dict)
    lost: bool = False
    _last_ns: int | None = field(default=None, repr=False)


class FakeAmdSmi:
    """A simulated AMD SMI library exposed as an ``amdsmi``-shaped module (:attr:`module`).

    Args:
        gpus: The simulated GPUs.
        clock_ns: Monotonic clock used to integrate power into the accumulators.
        init_error: An ``AMDSMI_STATUS_*`` code ``amdsmi_init`` fails with.
    """

    def __init__(
        self,
        gpus: Sequence[FakeAmdGpu],
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        init_error: int | None = None,
    ) -> None:
        self.gpus = list(gpus)
        self.clock_ns = clock_ns
        self.init_error = init_error
        self.initialized = False
        self._handles = [amdsmi_processor_handle(0x1000 + i) for i in range(len(self.gpus))]
        self.module = self._build_module()

    def set_power(self, index: int, power_w: float) -> None:
        """Change a GPU's power draw from now on."""
        self._integrate(self.gpus[index])
        self.gpus[index].power_w = power_w

    def reset_accumulator(self, index: int) -> None:
        """Simulate a GPU reset: the accumulator restarts from zero."""
        self._integrate(self.gpus[index])
        self.gpus[index].energy_uj = 0.0

    def _integrate(self, gpu: FakeAmdGpu) -> None:
        now = self.clock_ns()
        if gpu._last_ns is not None and not gpu.energy_stuck:
            gpu.energy_uj += gpu.power_w * max(now - gpu._last_ns, 0) / 1e3
        gpu._last_ns = now

    def _build_module(self) -> types.ModuleType:
        mod = types.ModuleType("amdsmi", "Fake amdsmi backed by wattledger's FakeAmdSmi.")
        g = globals()
        for name in (
            "AmdSmiException",
            "AmdSmiLibraryException",
            "AmdSmiRetryException",
            "AmdSmiTimeoutException",
            "AmdSmiParameterException",
            "AmdSmiInitFlags",
            "AmdSmiTemperatureType",
            "AmdSmiTemperatureMetric",
            "amdsmi_processor_handle",
        ):
            setattr(mod, name, g[name])
        wrapper = types.SimpleNamespace(
            **{k: v for k, v in g.items() if k.startswith("AMDSMI_STATUS_")},
            amdsmi_processor_handle=amdsmi_processor_handle,
        )
        mod.amdsmi_wrapper = wrapper  # type: ignore[attr-defined]
        for attr in dir(self):
            if attr.startswith("amdsmi_"):
                setattr(mod, attr, getattr(self, attr))
        mod.__dict__["__fake__"] = self
        return mod

    def _check(self, fn: str, handle: Any = None) -> FakeAmdGpu | None:
        if fn != "amdsmi_init" and not self.initialized:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
        if handle is None:
            return None
        if not isinstance(handle, amdsmi_processor_handle):
            raise AmdSmiParameterException(handle, amdsmi_processor_handle)
        index = next((i for i, h in enumerate(self._handles) if h.value == handle.value), None)
        if index is None:
            raise AmdSmiLibraryException(AMDSMI_STATUS_INVAL)
        gpu = self.gpus[index]
        code = AMDSMI_STATUS_NOT_FOUND if gpu.lost else gpu.errors.get(fn)
        if code == AMDSMI_STATUS_RETRY:
            raise AmdSmiRetryException()
        if code == AMDSMI_STATUS_TIMEOUT:
            raise AmdSmiTimeoutException()
        if code is not None:
            raise AmdSmiLibraryException(code)
        return gpu

    def amdsmi_init(self, flag: AmdSmiInitFlags = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
        self._check("amdsmi_init")
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        self.initialized = True

    def amdsmi_shut_down(self) -> None:
        self._check("amdsmi_shut_down")
        self.initialized = False

    def amdsmi_get_processor_handles(self) -> list[ctypes.c_void_p]:
        self._check("amdsmi_get_processor_handles")
        return list(self._handles)

    def amdsmi_get_gpu_device_uuid(self, processor_handle: Any) -> str:
        gpu = self._check("amdsmi_get_gpu_device_uuid", processor_handle)
        assert gpu is not None
        return gpu.uuid

    def amdsmi_get_gpu_asic_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check("amdsmi_get_gpu_asic_info", processor_handle)
        assert gpu is not None
        return {
            "market_name": gpu.market_name,
            "vendor_id": "0x1002",
            "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "subvendor_id": "0x1002",
            "device_id": "0x74a1",
            "rev_id": "0x00",
            "asic_serial": "0x" + gpu.uuid[-16:].upper(),
            "oam_id": self.gpus.index(gpu),
            "num_compute_units": 304,
            "target_graphics_version": "gfx942",
        }

    def amdsmi_get_energy_count(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check("amdsmi_get_energy_count", processor_handle)
        assert gpu is not None
        if not gpu.energy_supported:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        self._integrate(gpu)
        ticks = int(gpu.energy_uj / gpu.counter_resolution_uj)
        resolution = ctypes.c_float(gpu.counter_resolution_uj).value
        if gpu.legacy_energy_key:
            return {"power": ticks, "counter_resolution": resolution, "timestamp": self.clock_ns()}
        return {
            "power": ticks,
            "energy_accumulator": ticks,
            "counter_resolution": resolution,
            "timestamp": self.clock_ns(),
        }

    def amdsmi_get_power_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check("amdsmi_get_power_info", processor_handle)
        assert gpu is not None
        info: dict[str, Any] = {
            "socket_power": _NA,
            "current_socket_power": _NA,
            "average_socket_power": _NA,
            "gfx_voltage": 900,
            "soc_voltage": 800,
            "mem_voltage": 1100,
            "power_limit": gpu.power_limit_w,
        }
        if gpu.power_field:
            info[gpu.power_field] = int(gpu.power_w)
            info["socket_power"] = int(gpu.power_w)
        return info

    def amdsmi_get_gpu_activity(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check("amdsmi_get_gpu_activity", processor_handle)
        assert gpu is not None
        return {
            "gfx_activity": gpu.gfx_activity_pct,
            "umc_activity": gpu.umc_activity_pct,
            "mm_activity": _NA,
        }

    def amdsmi_get_gpu_vram_usage(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check("amdsmi_get_gpu_vram_usage", processor_handle)
        assert gpu is not None
        return {"vram_total": gpu.vram_total_mb, "vram_used": gpu.vram_used_mb}

    def amdsmi_get_temp_metric(
        self, processor_handle: Any, sensor_type: AmdSmiTemperatureType, metric: Any
    ) -> int:
        gpu = self._check("amdsmi_get_temp_metric", processor_handle)
        assert gpu is not None
        if not isinstance(sensor_type, AmdSmiTemperatureType):
            raise AmdSmiParameterException(sensor_type, AmdSmiTemperatureType)
        return gpu.temperature_c


__all__ = [
    "AmdSmiException",
    "AmdSmiLibraryException",
    "AmdSmiParameterException",
    "AmdSmiRetryException",
    "AmdSmiTimeoutException",
    "FakeAmdGpu",
    "FakeAmdSmi",
]
