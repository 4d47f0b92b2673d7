"""Find the power sources a node has: one probe per backend, in a fixed order.

:func:`detect_sources` turns the configured source list into opened sources plus an
:class:`~wattledger.collectors.sources.base.Unavailable` (reason and fix) for each one that
could not be opened. It never raises for a missing library or device: those are expected on
most nodes (``auto`` logs them at INFO; a source the user named explicitly logs at ERROR).
Malformed configuration (an unknown model in ``modeled=...``) is a ``ConfigError``.

The ``<backend>_is_available()`` probes answer the cheap yes/no question and are cached.
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from wattledger.collectors.settings import CollectorSettings
from wattledger.collectors.sources.base import EnergySource, SourceError, Unavailable

logger = logging.getLogger(__name__)

#: The order ``auto`` probes in. ``tpu`` and ``neuron`` look for their tool on ``PATH`` first,
#: so on a node without them they cost a lookup.
AUTO_ORDER = ("nvml", "amdsmi", "rapl", "tpu", "neuron")


@dataclass
class DetectedSources:
    """The outcome of :func:`detect_sources`."""

    sources: list[EnergySource] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)

    def close(self) -> None:
        """Close every opened source."""
        for source in self.sources:
            try:
                source.close()
            except Exception:  # closing must not stop the others from closing
                logger.exception("Closing source %s failed", source.name)


def _open(
    kind: str,
    arg: str,
    settings: CollectorSettings,
    host: str,
    clock_ns: Callable[[], int],
    nvml_module: ModuleType | None,
    amdsmi_module: ModuleType | None,
) -> EnergySource:
    common = {"max_power_w": settings.max_power_w}
    if kind == "nvml":
        from wattledger.collectors.sources.nvml import NvmlSource

        return NvmlSource(
            nvml_module,
            clock_ns=clock_ns,
            max_gap_s=settings.max_gap_s,
            process_refresh_s=settings.process_refresh_s,
            procfs_root=settings.procfs_root,
            **common,
        )
    if kind == "amdsmi":
        from wattledger.collectors.sources.amdsmi import AmdSmiSource

        return AmdSmiSource(
            amdsmi_module, clock_ns=clock_ns, max_gap_s=settings.max_gap_s, **common
        )
    if kind == "rapl":
        from wattledger.collectors.sources.rapl import RaplSource

        return RaplSource(
            settings.rapl_root,
            host=host,
            clock_ns=clock_ns,
            procfs_root=settings.procfs_root,
            **common,
        )
    if kind == "tpu":
        from wattledger.collectors.sources.tpu import TpuInfoSource

        return TpuInfoSource(
            arg or "tpu-info",
            interval_s=settings.tool_interval_s,
            timeout_s=settings.tool_timeout_s,
            clock_ns=clock_ns,
            host=host,
            max_gap_s=settings.max_gap_s,
        )
    if kind == "neuron":
        from wattledger.collectors.sources.neuron import NeuronMonitorSource

        return NeuronMonitorSource(
            arg or "neuron-monitor",
            interval_s=settings.tool_interval_s,
            startup_timeout_s=settings.tool_timeout_s,
            clock_ns=clock_ns,
            host=host,
            max_gap_s=settings.max_gap_s,
        )
    if kind == "prometheus":
        from wattledger.collectors.sources.prometheus import PrometheusSource

        return PrometheusSource(
            arg,
            timeout_s=settings.scrape_timeout_s,
            min_interval_s=settings.scrape_interval_s,
            clock_ns=clock_ns,
            max_gap_s=settings.max_gap_s,
            **common,
        )
    if kind == "fake":
        from wattledger.collectors.sources.fake import FakeSource

        return FakeSource(300.0, devices=int(arg or 1), clock_ns=clock_ns, host=host)
    if kind == "replay":
        from wattledger.collectors.sources.fake import ReplaySource

        return ReplaySource.from_csv(Path(arg), clock_ns=clock_ns)
    raise AssertionError(kind)


def detect_sources(
    settings: CollectorSettings,
    *,
    host: str | None = None,
    clock_ns: Callable[[], int] = time.monotonic_ns,
    nvml_module: ModuleType | None = None,
    amdsmi_module: ModuleType | None = None,
    log_unavailable: bool = True,
) -> DetectedSources:
    """Open the configured sources; report the rest as unavailable with a fix.

    Args:
        settings: The collector settings (``sources`` says what to open).
        host: Host name for device ids; default ``settings.host_name`` or the system's.
        clock_ns: Monotonic clock handed to every source.
        nvml_module: A ``pynvml``-shaped module to use instead of the real one (fakes).
        amdsmi_module: An ``amdsmi``-shaped module to use instead of the real one (fakes).
        log_unavailable: Log each unavailable source (``doctor`` prints them instead).

    Raises:
        ConfigError: a source's configuration is invalid (not merely unavailable).
    """
    host = host or settings.host_name or socket.gethostname()
    wanted: list[tuple[str, str, bool]] = []
    for spec in settings.sources:
        kind, _, arg = spec.partition("=")
        if kind == "auto":
            wanted += [(k, "", False) for k in AUTO_ORDER]
        elif kind != "modeled":
            wanted.append((kind, arg, True))
    found = DetectedSources()
    seen: set[tuple[str, str]] = set()
    for kind, arg, explicit in wanted:
        if (kind, arg) in seen:
            continue
        seen.add((kind, arg))
        try:
            source = _open(kind, arg, settings, host, clock_ns, nvml_module, amdsmi_module)
        except SourceError as e:
            label = f"{kind}={arg}" if arg else kind
            found.unavailable.append(Unavailable(label, e.message, e.hint or ""))
            level = logging.ERROR if explicit else logging.INFO
            logger.log(
                level if log_unavailable else logging.DEBUG,
                "Power source %s unavailable: %s%s",
                label,
                e.message,
                f" Fix: {e.hint}" if e.hint else "",
            )
            continue
        found.sources.append(source)
    modeled = [s.partition("=")[2] for s in settings.sources if s.startswith("modeled=")]
    if modeled:
        from wattledger.collectors.sources.modeled import ModeledSource

        found.sources.append(ModeledSource(modeled, host=host, clock_ns=clock_ns))
    return found


@functools.cache
def nvml_is_available() -> bool:
    """Whether NVML can be initialised here (cached)."""
    return _probe("nvml")


@functools.cache
def amdsmi_is_available() -> bool:
    """Whether AMD SMI can be initialised here (cached)."""
    return _probe("amdsmi")


@functools.cache
def rapl_is_available(root: Path = Path("/sys/class/powercap")) -> bool:
    """Whether readable RAPL zones exist under ``root`` (cached)."""
    settings = CollectorSettings(sources=["rapl"], rapl_root=root)
    return _probe("rapl", settings)


@functools.cache
def tpu_is_available() -> bool:
    """Whether ``tpu-info`` runs here and finds TPU chips the catalog can model (cached)."""
    return _probe("tpu")


@functools.cache
def neuron_is_available() -> bool:
    """Whether ``neuron-monitor`` runs here and reports Neuron devices (cached)."""
    return _probe("neuron")


def _probe(kind: str, settings: CollectorSettings | None = None) -> bool:
    settings = settings or CollectorSettings(sources=[kind])
    try:
        source = _open(kind, "", settings, "probe", time.monotonic_ns, None, None)
    except SourceError as e:
        logger.info("%s is not available: %s", kind, e.message)
        return False
    source.close()
    return True


__all__ = [
    "AUTO_ORDER",
    "DetectedSources",
    "amdsmi_is_available",
    "detect_sources",
    "neuron_is_available",
    "nvml_is_available",
    "rapl_is_available",
    "tpu_is_available",
]
