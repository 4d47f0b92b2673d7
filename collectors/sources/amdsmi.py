"""AMD GPUs through AMD SMI's Python interface (``amdsmi``, shipped with ROCm).

Energy is the accumulator: ``energy_accumulator × counter_resolution`` µJ (the key was named
``power`` before ROCm 6.4, and both are accepted). Power is ``socket_power``
(``current_socket_power`` on MI300+, ``average_socket_power`` on MI200 and earlier; members
the ASIC lacks are ``"N/A"``). Activity is ``gfx_activity`` in percent.

The accumulator is validated against power while the source starts: on some parts (MI100,
ROCm/amdsmi #22) it never advances, and before ROCm 6.2 it can go backwards (#115). A counter
that stays flat while the GPU draws power, or resets again and again, is abandoned for power
integration (``method="power"``), with one log line saying so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from wattledger.collectors.sources.base import (
    DeviceInfo,
    DeviceLost,
    EnergyMethod,
    EnergyReading,
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

logger = logging.getLogger(__name__)

#: ``AMDSMI_STATUS_*`` name -> taxonomy class; anything else is a (transient) SourceError.
AMDSMI_STATUS_CLASSES: dict[str, type[SourceError]] = {
    "AMDSMI_STATUS_NOT_SUPPORTED": MetricUnsupported,
    "AMDSMI_STATUS_NOT_YET_IMPLEMENTED": MetricUnsupported,
    "AMDSMI_STATUS_NO_DATA": MetricUnsupported,
    "AMDSMI_STATUS_NO_PERM": SourcePermissionError,
    "AMDSMI_STATUS_FAIL_LOAD_MODULE": SourceUnavailable,
    "AMDSMI_STATUS_FAIL_LOAD_SYMBOL": SourceUnavailable,
    "AMDSMI_STATUS_DRM_ERROR": SourceUnavailable,
    "AMDSMI_STATUS_INIT_ERROR": SourceUnavailable,
    "AMDSMI_STATUS_NOT_INIT": SourceUnavailable,
    "AMDSMI_STATUS_DRIVER_NOT_LOADED": SourceUnavailable,
    "AMDSMI_STATUS_NOT_FOUND": DeviceLost,
}
_HINTS: dict[type[SourceError], str] = {
    SourceUnavailable: "Install ROCm's amd-smi-lib and load the amdgpu driver (`amd-smi list` "
    "must work); in a container pass /dev/kfd and /dev/dri.",
    SourcePermissionError: "Run the collector as root or in the `render`/`video` groups.",
    DeviceLost: "Check `amd-smi list` and `dmesg`; the other devices keep being read.",
}
#: Validation window: the counter must advance within this time while power is drawn.
VALIDATE_S = 2.0
#: Power above which a flat accumulator is considered stuck, watts.
STUCK_POWER_W = 5.0
#: Resets after which the accumulator is abandoned.
MAX_RESETS = 3
_BUGGY_COUNTER = (
    " (a known AMD SMI problem on some parts and ROCm versions: ROCm/amdsmi #22, #115; "
    "ROCm >= 6.2 is recommended)."
)


def map_amdsmi_error(amdsmi: ModuleType, error: Exception, doing: str) -> SourceError:
    """The taxonomy error for an ``AmdSmiException`` raised while ``doing`` something."""
    code = getattr(error, "err_code", None)
    wrapper = getattr(amdsmi, "amdsmi_wrapper", None)
    name = next(
        (n for n in AMDSMI_STATUS_CLASSES if getattr(wrapper, n, object()) == code),
        f"AMD SMI status {code}",
    )
    cls = AMDSMI_STATUS_CLASSES.get(name, SourceError)
    info = getattr(error, "err_info", None) or str(error).strip()
    return cls(f"AMD SMI could not {doing}: {info} ({name}).", hint=_HINTS.get(cls))


def load_amdsmi() -> ModuleType:
    """Import the real ``amdsmi`` or explain what is missing."""
    try:
        import amdsmi
    except (ImportError, OSError) as e:
        raise SourceUnavailable(
            f"The AMD SMI Python bindings cannot be loaded ({e}).",
            hint="pip install 'wattledger[amd]' on a host with ROCm's libamd_smi.so "
            "(set ROCM_PATH if it is not under /opt/rocm).",
        ) from e
    return amdsmi


@dataclass
class _AmdGpu:
    info: DeviceInfo
    handle: Any
    counter: CounterTracker | None
    integrator: PowerIntegrator
    unsupported: set[str] = field(default_factory=set)
    lost: bool = False
    validated: bool = False
    first_raw: int | None = None
    first_ns: int | None = None
    power_sum_w: float = 0.0
    power_n: int = 0
    offset_j: float = 0.0
    seen_power: bool = False


class AmdSmiSource:
    """Energy, power, activity, VRAM and temperature of AMD GPUs.

    Args:
        amdsmi: The ``amdsmi`` module (or a fake shaped like it); None imports the real one.
        clock_ns: Monotonic clock for reading times.
        max_power_w: Plausibility bound for counter deltas.
        max_gap_s: Longest power-integration gap.

    Raises:
        SourceUnavailable: bindings, library or driver missing, or no AMD GPU.
    """

    name = "amdsmi"

    def __init__(
        self,
        amdsmi: ModuleType | None = None,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        max_power_w: float = DEFAULT_MAX_POWER_W,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        self._amd = amdsmi if amdsmi is not None else load_amdsmi()
        self._clock_ns = clock_ns
        self._max_power_w = max_power_w
        self._max_gap_s = max_gap_s
        self._once = OnceLogger(logger)
        self._closed = False
        amd = self._amd
        try:
            amd.amdsmi_init(amd.AmdSmiInitFlags.INIT_AMD_GPUS)
            handles = amd.amdsmi_get_processor_handles()
        except amd.AmdSmiException as e:
            raise map_amdsmi_error(amd, e, "initialise") from e
        except OSError as e:  # ROCm 7 imports in "degraded mode" and raises on first call
            raise SourceUnavailable(
                f"AMD SMI's library could not be loaded: {e}", hint=_HINTS[SourceUnavailable]
            ) from e
        self._gpus: list[_AmdGpu] = []
        for index, handle in enumerate(handles):
            try:
                self._gpus.append(self._open(index, handle))
            except SourceError as e:
                logger.warning("Skipping AMD GPU %d: %s", index, e.message)

    def _call(self, gpu: _AmdGpu | None, metric: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn``; an unsupported metric becomes None (remembered); a lost GPU raises."""
        return read_optional(
            self._once,
            gpu.info.device_id if gpu is not None else "?",
            gpu.unsupported if gpu is not None else None,
            metric,
            lambda: fn(*args),
            self._amd.AmdSmiException,
            lambda e, what: map_amdsmi_error(self._amd, e, what),
        )
        try:
            return fn(*args)
        except self._amd.AmdSmiException as e:
            label = gpu.info.device_id if gpu is not None else "?"
            err = map_amdsmi_error(self._amd, e, f"read {metric} of {label}")
            if isinstance(err, DeviceLost):
                raise err from e
            if isinstance(err, MetricUnsupported):
                if gpu is not None:
                    gpu.unsupported.add(metric)
                self._once.log(logging.INFO, (label, metric), "%s", err.message)
            else:
                self._once.log(logging.WARNING, (label, metric, type(err)), "%s", err.message)
            return None

    def _open(self, index: int, handle: Any) -> _AmdGpu:
        amd = self._amd
        try:
            uuid = str(amd.amdsmi_get_gpu_device_uuid(handle))
            asic = amd.amdsmi_get_gpu_asic_info(handle)
        except amd.AmdSmiException as e:
            raise map_amdsmi_error(amd, e, f"identify GPU {index}") from e
        power = self._call(None, "power limit", amd.amdsmi_get_power_info, handle) or {}
        info = DeviceInfo(
            device_id=uuid,
            source=self.name,
            hw_type="gpu",
            vendor="amd",
            model=str(asic.get("market_name") or "AMD GPU"),
            name=f"gpu{index}",
            index=index,
            tdp_w=_number(power.get("power_limit")),
        )
        return _AmdGpu(
            info=info,
            handle=handle,
            counter=CounterTracker(1e-6, None, self._max_power_w),
            integrator=PowerIntegrator(self._max_gap_s),
        )

    def devices(self) -> Sequence[DeviceInfo]:
        """The AMD GPUs AMD SMI lists, in its order."""
        return [g.info for g in self._gpus]

    def read(self) -> list[EnergyReading]:
        """One reading per live GPU; lost GPUs are logged once and skipped."""
        out: list[EnergyReading] = []
        for gpu in self._gpus:
            if gpu.lost:
                continue
            try:
                out.append(self._read_gpu(gpu))
            except DeviceLost as e:
                gpu.lost = True
                logger.error(
                    "AMD GPU %s (index %s) is lost and will no longer be read: %s %s",
                    gpu.info.device_id,
                    gpu.info.index,
                    e.message,
                    e.hint or "",
                )
        return out

    def _read_gpu(self, gpu: _AmdGpu) -> EnergyReading:
        amd, h = self._amd, gpu.handle
        raw: int | None = None
        if gpu.counter is not None:
            count = self._call(gpu, "energy", amd.amdsmi_get_energy_count, h)
            if count is not None:
                ticks = count.get("energy_accumulator", count.get("power"))
                resolution_uj = float(count.get("counter_resolution") or 0.0)
                if ticks is not None and resolution_uj > 0:
                    raw = int(round(int(ticks) * resolution_uj))
            elif "energy" in gpu.unsupported:
                self._abandon_counter(gpu, "is not supported here", " (VM guests lack it).")
        t_ns = self._clock_ns()
        power = self._call(gpu, "power", amd.amdsmi_get_power_info, h) or {}
        power_w = next(
            (
                v
                for v in map(
                    _number,
                    (
                        power.get("socket_power"),
                        power.get("current_socket_power"),
                        power.get("average_socket_power"),
                    ),
                )
                if v is not None
            ),
            None,
        )
        energy_j: float | None
        method: EnergyMethod
        if power_w is not None:
            gpu.integrator.update(power_w, t_ns)
            gpu.seen_power = True
        if gpu.counter is not None and raw is not None:
            energy_j = gpu.counter.update(raw, t_ns)
            self._validate(gpu, raw, t_ns, power_w)
        if gpu.counter is not None:
            method, energy_j = "counter", gpu.counter.energy_j
        else:
            method = "power"
            energy_j = gpu.integrator.energy_j + gpu.offset_j if gpu.seen_power else None
        activity = self._call(gpu, "activity", amd.amdsmi_get_gpu_activity, h) or {}
        vram = self._call(gpu, "memory", amd.amdsmi_get_gpu_vram_usage, h) or {}
        temp = self._temperature(gpu)
        gfx = _number(activity.get("gfx_activity"))
        used_mb, total_mb = _number(vram.get("vram_used")), _number(vram.get("vram_total"))
        return EnergyReading(
            device_id=gpu.info.device_id,
            energy_j=energy_j,
            power_w=power_w,
            monotonic_ns=t_ns,
            method=method,
            utilization_ratio=gfx / 100.0 if gfx is not None else None,
            memory_used_bytes=int(used_mb * 2**20) if used_mb is not None else None,
            memory_total_bytes=int(total_mb * 2**20) if total_mb is not None else None,
            temperature_c=temp,
        )

    def _temperature(self, gpu: _AmdGpu) -> float | None:
        amd = self._amd
        for sensor in ("HOTSPOT", "EDGE"):  # MI300 has no edge sensor; hotspot is the die
            value = self._call(
                gpu,
                f"temperature {sensor.lower()}",
                amd.amdsmi_get_temp_metric,
                gpu.handle,
                getattr(amd.AmdSmiTemperatureType, sensor),
                amd.AmdSmiTemperatureMetric.CURRENT,
            )
            if _number(value) is not None:
                return float(value)
        return None

    def _validate(self, gpu: _AmdGpu, raw: int, t_ns: int, power_w: float | None) -> None:
        assert gpu.counter is not None
        if gpu.counter.stats.resets >= MAX_RESETS:
            self._abandon_counter(gpu, f"went backwards {gpu.counter.stats.resets} times")
            return
        if gpu.validated:
            return
        if gpu.first_raw is None or gpu.first_ns is None:
            gpu.first_raw, gpu.first_ns = raw, t_ns
            return
        if power_w is not None:
            gpu.power_sum_w += power_w
            gpu.power_n += 1
        if (t_ns - gpu.first_ns) / 1e9 < VALIDATE_S:
            return
        gpu.validated = True
        mean_w = gpu.power_sum_w / gpu.power_n if gpu.power_n else 0.0
        if raw == gpu.first_raw and mean_w >= STUCK_POWER_W:
            self._abandon_counter(gpu, f"did not advance while the GPU drew {mean_w:.0f} W")

    def _abandon_counter(self, gpu: _AmdGpu, why: str, advice: str = _BUGGY_COUNTER) -> None:
        if gpu.counter is None:
            return
        # Continue from the counter's total so energy never goes back at the switch.
        gpu.offset_j = max((gpu.counter.energy_j or 0.0) - gpu.integrator.energy_j, 0.0)
        gpu.counter = None
        logger.warning(
            "AMD GPU %s: the energy accumulator %s; integrating socket power instead%s",
            gpu.info.device_id,
            why,
            advice,
        )

    def close(self) -> None:
        """Shut AMD SMI down (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._amd.amdsmi_shut_down()
        except self._amd.AmdSmiException as e:
            logger.debug("amdsmi_shut_down failed: %s", e)


def _number(value: Any) -> float | None:
    """A float from an AMD SMI field, or None for ``"N/A"``, missing or sentinel values."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return None if value >= 0xFFFF and float(value) in (0xFFFF, 0xFFFFFFFF) else float(value)
    try:
        return float(str(value).split()[0])
    except (ValueError, IndexError):
        return None


__all__ = ["AMDSMI_STATUS_CLASSES", "AmdSmiSource", "load_amdsmi", "map_amdsmi_error"]
