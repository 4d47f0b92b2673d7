"""AWS Inferentia and Trainium through ``neuron-monitor``: NeuronCore utilisation in, modeled
power out.

Neuron devices expose no power reading. ``neuron-monitor`` (package ``aws-neuronx-tools``,
``/opt/aws/neuron/bin``) streams one JSON report per period to stdout; the parts read here are
(shape from the Neuron Monitor User Guide)::

    {"neuron_runtime_data": [{"pid": 2199, "error": "", "report": {
        "neuroncore_counters": {"period": 1.0, "error": "",
            "neuroncores_in_use": {"0": {"neuroncore_utilization": 89.4}, "1": {...}}},
        "memory_used": {"neuron_runtime_used_bytes": {"usage_breakdown": {
            "neuroncore_memory_usage": {"0": {"constants": ..., "tensors": ...}}}}}}}],
     "neuron_hardware_info": {"neuron_device_type": "inferentia2", "neuron_device_count": 1,
        "neuroncore_per_device_count": 2, "neuron_device_memory_size": 34359738368,
        "error": ""}}

NeuronCore indices are global (device ``i`` has cores ``i * per_device ...``). Each runtime
lists the cores it sees, often with 0 % for cores another runtime uses, so per-core
utilisation is summed over runtimes (capped at 100 %) and a device's utilisation is the mean
over its cores, unused cores counting as idle. Power is modeled from that between the
catalog's idle and TDP figures (:mod:`~wattledger.collectors.sources.utilization`); readings
are ``method="modeled"``. No runtime, or no core in use, means the devices are idle.

:class:`NeuronMonitorSource` starts ``neuron-monitor`` with a configuration file asking for
only those two metric groups every ``interval_s``, reads its stream in a thread, and restarts
it (at most every ``restart_s``) when it exits. A line that is not JSON is skipped and
counted (:attr:`NeuronMonitorSource.bad_lines`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wattledger.collectors.sources.base import (
    DeviceInfo,
    EnergyReading,
    OnceLogger,
    SourceError,
    SourceUnavailable,
)
from wattledger.collectors.sources.counters import DEFAULT_MAX_GAP_S, PowerIntegrator
from wattledger.collectors.sources.toolproc import StreamingCommand, find_tool
from wattledger.collectors.sources.utilization import PowerFigures, catalog_power_figures

logger = logging.getLogger(__name__)
#: Where the aws-neuronx-tools package installs its binaries.
NEURON_BIN = "/opt/aws/neuron/bin/neuron-monitor"
_INSTALL_FIX = (
    "Install the Neuron tools (`aws-neuronx-tools`, which puts neuron-monitor in "
    "/opt/aws/neuron/bin), or pass its path: --source neuron=/path/to/neuron-monitor. "
    "See docs/collector.md#tpu-and-neuron."
)
_DRIVER_FIX = (
    "Load the Neuron driver (`aws-neuronx-dkms`; `neuron-ls` must list the devices); in a "
    "container, request `aws.amazon.com/neuron` devices from the Neuron device plugin."
)


@dataclass(frozen=True, slots=True)
class NeuronDeviceUsage:
    """One Neuron device in one report.

    Attributes:
        index: Neuron device index.
        utilization_ratio: Mean NeuronCore utilisation of the device, 0..1.
        memory_used_bytes: Device memory the runtimes hold, bytes, or None when not reported.
    """

    index: int
    utilization_ratio: float
    memory_used_bytes: int | None


@dataclass(frozen=True, slots=True)
class NeuronReport:
    """What one ``neuron-monitor`` report says about the devices.

    Attributes:
        device_type: ``inferentia2``, ``trainium2``, ... (``neuron_device_type``).
        device_count: Neuron devices on the instance.
        cores_per_device: NeuronCores per device (logical cores on Trn2 with LNC=2).
        memory_bytes: Memory of each device, bytes, or None.
        devices: Usage per device, for every device (idle ones at 0).
        error: The hardware-info error string (driver missing), "" when none.
        runtime_errors: Errors reported by runtimes or their counter groups.
        instance_type: EC2 instance type, when reported.
    """

    device_type: str
    device_count: int
    cores_per_device: int
    memory_bytes: int | None
    devices: tuple[NeuronDeviceUsage, ...]
    error: str = ""
    runtime_errors: tuple[str, ...] = ()
    instance_type: str | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _index(key: Any) -> int | None:
    try:
        return int(key)
    except (TypeError, ValueError):
        return None


def parse_neuron_report(doc: Any) -> NeuronReport:
    """Per-device utilisation and memory from one ``neuron-monitor`` JSON report.

    Raises:
        ValueError: the document is not a neuron-monitor report.
    """
    try:
        return _parse(doc)
    except (AttributeError, TypeError) as e:  # an object where a number was expected, ...
        raise ValueError(f"malformed neuron-monitor report ({e})") from e


def _parse(doc: Any) -> NeuronReport:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("neuron_hardware_info"), Mapping):
        raise ValueError("not a neuron-monitor report (no neuron_hardware_info object)")
    hw = doc["neuron_hardware_info"]
    count = int(_number(hw.get("neuron_device_count")) or 0)
    per_device = int(_number(hw.get("neuroncore_per_device_count")) or 0)
    memory = _number(hw.get("neuron_device_memory_size"))
    busy: dict[int, float] = {}
    used: dict[int, float] = {}
    errors: list[str] = []
    runtimes = doc.get("neuron_runtime_data") or []
    for runtime in runtimes if isinstance(runtimes, list) else []:
        if not isinstance(runtime, Mapping):
            continue
        if runtime.get("error"):
            errors.append(f"runtime {runtime.get('pid')}: {runtime['error']}")
            continue
        report = runtime.get("report") or {}
        counters = report.get("neuroncore_counters") or {}
        if counters.get("error"):
            errors.append(f"runtime {runtime.get('pid')} counters: {counters['error']}")
        for key, core in (counters.get("neuroncores_in_use") or {}).items():
            util, index = _number((core or {}).get("neuroncore_utilization")), _index(key)
            if util is not None and index is not None:
                busy[index] = busy.get(index, 0.0) + max(util, 0.0)
        breakdown = (
            ((report.get("memory_used") or {}).get("neuron_runtime_used_bytes") or {}).get(
                "usage_breakdown"
            )
            or {}
        ).get("neuroncore_memory_usage") or {}
        for key, parts in breakdown.items():
            index = _index(key)
            if index is not None and isinstance(parts, Mapping):
                total = sum(v for v in map(_number, parts.values()) if v is not None)
                used[index] = used.get(index, 0.0) + total
    devices = []
    for d in range(count):
        cores = range(d * per_device, (d + 1) * per_device)
        util = sum(min(busy.get(c, 0.0), 100.0) for c in cores) / (100.0 * max(per_device, 1))
        memory_used = [used[c] for c in cores if c in used]
        devices.append(NeuronDeviceUsage(d, util, int(sum(memory_used)) if memory_used else None))
    instance = doc.get("instance_info") or {}
    return NeuronReport(
        device_type=str(hw.get("neuron_device_type") or ""),
        device_count=count,
        cores_per_device=per_device,
        memory_bytes=int(memory) if memory else None,
        devices=tuple(devices),
        error=str(hw.get("error") or ""),
        runtime_errors=tuple(errors),
        instance_type=instance.get("instance_type") if isinstance(instance, Mapping) else None,
    )


def monitor_config(interval_s: float) -> dict[str, Any]:
    """The neuron-monitor configuration the source runs it with: only what it reads."""
    return {
        "period": f"{max(interval_s, 1.0):g}s",
        "neuron_runtimes": [
            {
                "tag_filter": ".*",
                "metrics": [{"type": "neuroncore_counters"}, {"type": "memory_used"}],
            }
        ],
    }


@dataclass
class _Device:
    info: DeviceInfo
    integrator: PowerIntegrator


class NeuronMonitorSource:
    """Neuron devices with power modeled from NeuronCore utilisation (``method="modeled"``).

    Args:
        command: The ``neuron-monitor`` executable (a name on ``PATH`` or a path; default also
            finds ``/opt/aws/neuron/bin/neuron-monitor``).
        interval_s: Report period asked of neuron-monitor (whole seconds, at least 1).
        startup_timeout_s: How long to wait for the first report when opening.
        stale_s: A report older than this gives no readings.
        restart_s: Shortest time between restarts of a neuron-monitor that exited.
        clock_ns: Monotonic clock.
        host: Host name used in device ids (``<host>:neuron:<index>``).
        max_gap_s: Longest power-integration gap.

    Raises:
        SourceUnavailable: the tool is missing, sees no devices, or the catalog has no power
            figures for the device type.
        SourceError: the tool gives no usable report within ``startup_timeout_s``.
    """

    name = "neuron"

    def __init__(
        self,
        command: str = "neuron-monitor",
        *,
        interval_s: float = 5.0,
        startup_timeout_s: float = 15.0,
        stale_s: float | None = None,
        restart_s: float = 30.0,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        host: str | None = None,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        path = find_tool(command, [NEURON_BIN] if command == "neuron-monitor" else [])
        if path is None:
            raise SourceUnavailable(f"{command} was not found.", hint=_INSTALL_FIX)
        self._clock_ns = clock_ns
        self._once = OnceLogger(logger)
        self.stale_s = stale_s if stale_s is not None else 3 * max(interval_s, 1.0) + 10.0
        self.restart_s = restart_s
        #: Lines of neuron-monitor output that were not a JSON report (skipped).
        self.bad_lines = 0
        #: Reports received so far.
        self.reports = 0
        self._latest: tuple[NeuronReport, int] | None = None
        self._cond = threading.Condition()
        fd, self._config_path = tempfile.mkstemp(prefix="wattledger-neuron-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(monitor_config(interval_s), fh)
        self._stream = StreamingCommand([path, "-c", self._config_path], self._on_line)
        self._started_ns = clock_ns()
        try:
            self._stream.start()
            report = self._first_report(startup_timeout_s, command)
        except SourceError as e:
            self.close()
            if not e.hint:
                e.hint = _INSTALL_FIX
            raise
        host = host or socket.gethostname()
        figures = self._figures(report)
        self._devices = [
            _Device(
                DeviceInfo(
                    device_id=f"{host}:neuron:{d}",
                    source=self.name,
                    hw_type="gpu",
                    vendor=figures.vendor,
                    model=report.device_type,
                    name=f"neuron{d}",
                    index=d,
                    tdp_w=figures.tdp_w,
                    idle_power_w=figures.idle_power_w,
                    uncertainty_ratio=figures.uncertainty_ratio,
                ),
                PowerIntegrator(max_gap_s),
            )
            for d in range(report.device_count)
        ]
        self._figures_of = figures
        logger.info(
            "neuron-monitor: %d %s device(s), %d NeuronCore(s) each; power is modeled from "
            "NeuronCore utilisation.",
            report.device_count,
            report.device_type,
            report.cores_per_device,
        )

    def _figures(self, report: NeuronReport) -> PowerFigures:
        figures = catalog_power_figures(report.device_type) if report.device_type else None
        if figures is None:
            self.close()
            raise SourceUnavailable(
                f"The hardware catalog has no idle and TDP figures for Neuron device type "
                f"{report.device_type!r}, so its power cannot be modeled.",
                hint="Add the part to catalog/data/hardware.toml (docs/catalog.md).",
            )
        return figures

    def _on_line(self, line: str) -> None:
        if not line.strip():
            return
        try:
            report = parse_neuron_report(json.loads(line))
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            self.bad_lines += 1
            self._once.log(
                logging.WARNING,
                ("bad_line",),
                "neuron-monitor printed a line that is not a report (%s): %.120r; skipped "
                "(reported once; the count is in bad_lines).",
                e,
                line,
            )
            return
        with self._cond:
            self._latest = (report, self._clock_ns())
            self.reports += 1
            self._cond.notify_all()

    def _first_report(self, timeout_s: float, command: str) -> NeuronReport:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._latest is None:
                if not self._stream.alive():
                    self._cond.wait(0.2)  # let the reader hand over what it already read
                    if self._latest is not None:
                        break
                    raise SourceUnavailable(
                        f"{command} exited with status {self._stream.returncode()} before "
                        f"reporting: {self._stream.stderr_tail() or 'no message'}."
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SourceError(
                        f"{command} gave no report within {timeout_s:g} s.",
                        hint="Run `neuron-monitor` in a shell to see what it prints.",
                    )
                self._cond.wait(min(left, 0.2))
            report = self._latest[0]
        if report.error or report.device_count == 0:
            raise SourceUnavailable(
                f"{command} sees no Neuron devices ({report.error or 'device count 0'}).",
                hint=_DRIVER_FIX,
            )
        if report.cores_per_device <= 0:
            raise SourceError(
                f"{command} reported {report.device_count} device(s) without "
                "neuroncore_per_device_count, so cores cannot be mapped to devices.",
                hint="Upgrade aws-neuronx-tools.",
            )
        return report

    def wait_for_reports(self, n: int, timeout_s: float = 10.0) -> bool:
        """Block until ``n`` reports have arrived in total (tests); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.reports < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def devices(self) -> Sequence[DeviceInfo]:
        """One device per Neuron device."""
        return [d.info for d in self._devices]

    def _keep_running(self, t_ns: int) -> None:
        if self._stream.alive():
            return
        self._once.log(
            logging.WARNING,
            ("exited",),
            "neuron-monitor exited with status %s (%s); restarting it at most every %.0f s.",
            self._stream.returncode(),
            self._stream.stderr_tail() or "no message",
            self.restart_s,
        )
        if (t_ns - self._started_ns) / 1e9 >= self.restart_s:
            self._started_ns = t_ns
            self._stream.close()
            try:
                self._stream.start()
            except SourceError as e:
                logger.warning("Restarting neuron-monitor failed: %s", e.message)

    def read(self) -> list[EnergyReading]:
        """Modeled power and energy of each device from the latest report."""
        t_ns = self._clock_ns()
        self._keep_running(t_ns)
        with self._cond:
            latest = self._latest
        if latest is None or (t_ns - latest[1]) / 1e9 > self.stale_s:
            self._once.log(
                logging.WARNING,
                ("stale",),
                "neuron-monitor has given no report for over %.0f s; Neuron power is not "
                "reported until it does.",
                self.stale_s,
            )
            return []
        self._once.forget(("stale",))
        report, _ = latest
        for error in report.runtime_errors:
            self._once.log(logging.WARNING, ("runtime", error), "neuron-monitor: %s", error)
        usage = {u.index: u for u in report.devices}
        out = []
        for dev in self._devices:
            seen = usage.get(dev.info.index or 0)
            if seen is None:
                continue
            power_w = self._figures_of.power_w(seen.utilization_ratio)
            out.append(
                EnergyReading(
                    device_id=dev.info.device_id,
                    energy_j=dev.integrator.update(power_w, t_ns),
                    power_w=power_w,
                    monotonic_ns=t_ns,
                    method="modeled",
                    utilization_ratio=seen.utilization_ratio,
                    memory_used_bytes=seen.memory_used_bytes,
                    memory_total_bytes=report.memory_bytes,
                )
            )
        return out

    def close(self) -> None:
        """Stop neuron-monitor and remove its configuration file (idempotent)."""
        self._stream.close()
        with contextlib.suppress(OSError):
            os.unlink(self._config_path)


__all__ = [
    "NEURON_BIN",
    "NeuronDeviceUsage",
    "NeuronMonitorSource",
    "NeuronReport",
    "monitor_config",
    "parse_neuron_report",
]
