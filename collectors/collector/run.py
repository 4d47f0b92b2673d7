"""The collector as a whole: detected sources -> sampler -> buffer -> OTLP exporter.

:class:`Collector` is what ``wattledger collect`` runs, as a Kubernetes sidecar, a per-node
DaemonSet or a systemd service. :meth:`Collector.run` samples until its stop event is set
(SIGTERM/SIGINT in the CLI), then takes a last sample, and flushes the buffer within
``shutdown_timeout_s`` before closing the sources.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from wattledger.collectors.collector.buffer import SampleBuffer, SampleCycle
from wattledger.collectors.collector.exporter import SampleExporter
from wattledger.collectors.collector.otlp import build_resource
from wattledger.collectors.collector.sampler import Sampler
from wattledger.collectors.settings import CollectorSettings
from wattledger.collectors.sources.base import EnergySource

logger = logging.getLogger(__name__)


class Collector:
    """Samples sources on a schedule and exports every sample over OTLP/HTTP.

    Args:
        settings: Collector settings.
        sources: Opened sources (see ``detect_sources``).
        api_key: Bearer key for ingest; overrides ``settings.api_key``.
        host: Host name; default ``settings.host_name`` or the system's.
        environ: Environment for Kubernetes downward-API attributes (default ``os.environ``).
        exporter: An ``OTLPMetricExporter``-like object to use instead of the official one.
        clock_ns: Monotonic clock.
        wall_ns: Wall clock (Unix ns, UTC).
    """

    def __init__(
        self,
        settings: CollectorSettings,
        sources: Sequence[EnergySource],
        *,
        api_key: str | None = None,
        host: str | None = None,
        environ: Mapping[str, str] | None = None,
        exporter: Any = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.host = host or settings.host_name or socket.gethostname()
        self.buffer = SampleBuffer(settings.max_buffered_samples)
        self.sampler = Sampler(sources, self.buffer, clock_ns=clock_ns, wall_ns=wall_ns)
        key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
        self.resource = build_resource(
            self.host, settings.site, os.environ if environ is None else environ
        )
        self.exporter = SampleExporter(
            self.buffer,
            settings.endpoint,
            self.resource,
            self.sampler.start_times,
            api_key=key,
            export_interval_s=settings.export_interval_s,
            export_timeout_s=settings.export_timeout_s,
            max_batch_samples=settings.max_batch_samples,
            max_backoff_s=settings.max_backoff_s,
            exporter=exporter,
            wall_ns=wall_ns,
        )
        self.stop_event = threading.Event()

    def run(self) -> bool:
        """Sample and export until :attr:`stop_event` is set; return True if all was sent."""
        n_devices = sum(len(s.devices()) for s in self.sampler.sources)
        logger.info(
            "Collecting from %s (%d device(s)) every %.3g s; exporting to %s every %.3g s.",
            ", ".join(s.name for s in self.sampler.sources) or "no sources",
            n_devices,
            self.settings.interval_s,
            self.exporter.url,
            self.settings.export_interval_s,
        )
        self.exporter.start()
        try:
            self.sampler.run(self.settings.interval_s, self.stop_event)
        finally:
            ok = self.shutdown()
        return ok

    def stop(self) -> None:
        """Ask :meth:`run` to finish (safe from a signal handler)."""
        self.stop_event.set()

    def shutdown(self) -> bool:
        """Take a last sample, flush within the shutdown timeout, close the sources."""
        try:
            self.sampler.sample()
        except Exception:
            logger.exception("The final sample failed")
        ok = self.exporter.shutdown(self.settings.shutdown_timeout_s)
        self.sampler.close()
        stats = self.exporter.stats
        logger.info(
            "Collector stopped: %d cycle(s) sampled, %d exported in %d request(s), "
            "%d dropped while ingest was unreachable.",
            self.sampler.cycles,
            stats.exported_cycles,
            stats.requests,
            self.buffer.dropped,
        )
        return ok


def cycle_as_json(cycle: SampleCycle) -> list[dict[str, Any]]:
    """The readings of a cycle as JSON-ready dicts (``collect --once``)."""
    out: list[dict[str, Any]] = []
    for r in cycle.readings:
        info = cycle.devices.get(r.device_id)
        ts = dt.datetime.fromtimestamp(cycle.time_unix_nano(r) / 1e9, tz=dt.UTC)
        row: dict[str, Any] = {"ts": ts.isoformat(), **(asdict(info) if info else {})}
        reading = asdict(r)
        reading.pop("monotonic_ns")
        reading["attributes"] = dict(r.attributes)
        row.update(reading)
        out.append(row)
    for e in cycle.engines:
        engine = asdict(e)
        engine["ts"] = dt.datetime.fromtimestamp(
            (e.monotonic_ns + cycle.wall_offset_ns) / 1e9, tz=dt.UTC
        ).isoformat()
        engine.pop("monotonic_ns")
        out.append({"kind": "engine", **engine})
    for w in cycle.workloads:
        share = asdict(w)
        share["ts"] = dt.datetime.fromtimestamp(
            (w.monotonic_ns + cycle.wall_offset_ns) / 1e9, tz=dt.UTC
        ).isoformat()
        share.pop("monotonic_ns")
        out.append({"kind": "workload", **share})
    return out


__all__ = ["Collector", "cycle_as_json"]
