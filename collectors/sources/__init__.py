"""Power sources: one small read-only interface, one module per backend.

``base`` defines :class:`EnergySource`, :class:`EnergyReading`, :class:`DeviceInfo` and the
error taxonomy; ``nvml``, ``amdsmi``, ``rapl``, ``prometheus`` (vLLM, TGI, dcgm-exporter,
Kepler), ``tpu`` and ``neuron`` (power modeled from utilisation, ``utilization``) and
``modeled`` are the backends; ``fake`` has :class:`FakeSource` and :class:`ReplaySource`;
``fakes`` has hardware-library fakes shaped like the real ``pynvml`` and ``amdsmi`` modules, a
RAPL sysfs tree builder and stand-ins for the ``tpu-info`` and ``neuron-monitor`` CLIs. Vendor
libraries are imported only when their source is opened.
"""

from wattledger.collectors.sources.base import (
    DeviceInfo,
    DeviceLost,
    EnergyMethod,
    EnergyReading,
    EnergySource,
    GpuProcess,
    MetricUnsupported,
    SourceError,
    SourcePermissionError,
    SourceUnavailable,
    Unavailable,
)
from wattledger.collectors.sources.counters import CounterTracker, PowerIntegrator, counter_delta
from wattledger.collectors.sources.detect import (
    DetectedSources,
    amdsmi_is_available,
    detect_sources,
    neuron_is_available,
    nvml_is_available,
    rapl_is_available,
    tpu_is_available,
)
from wattledger.collectors.sources.fake import FakeSource, ReplaySource

__all__ = [
    "CounterTracker",
    "DetectedSources",
    "DeviceInfo",
    "DeviceLost",
    "EnergyMethod",
    "EnergyReading",
    "EnergySource",
    "FakeSource",
    "GpuProcess",
    "MetricUnsupported",
    "PowerIntegrator",
    "ReplaySource",
    "SourceError",
    "SourcePermissionError",
    "SourceUnavailable",
    "Unavailable",
    "amdsmi_is_available",
    "counter_delta",
    "detect_sources",
    "neuron_is_available",
    "nvml_is_available",
    "rapl_is_available",
    "tpu_is_available",
]
