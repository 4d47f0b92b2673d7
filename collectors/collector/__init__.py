"""The sidecar collector: sample sources on a schedule, buffer, export every sample over OTLP.

:class:`Collector` ties together :class:`Sampler` (monotonic schedule), :class:`SampleBuffer`
(bounded, drop-oldest) and :class:`SampleExporter` (official OTLP/HTTP metric exporter with
backoff). ``wattledger collect`` runs it.
"""

from wattledger.collectors.collector.buffer import SampleBuffer, SampleCycle
from wattledger.collectors.collector.exporter import ExportStats, SampleExporter
from wattledger.collectors.collector.otlp import build_metrics_data, build_resource
from wattledger.collectors.collector.run import Collector, cycle_as_json
from wattledger.collectors.collector.sampler import Sampler

__all__ = [
    "Collector",
    "ExportStats",
    "SampleBuffer",
    "SampleCycle",
    "SampleExporter",
    "Sampler",
    "build_metrics_data",
    "build_resource",
    "cycle_as_json",
]
