"""Kepler's ``kepler_*`` series -> node CPU/DRAM readings and per-pod energy.

Kepler (CNCF, sustainable-computing-io/kepler) reads RAPL on each node and splits it among
processes, containers and pods by their CPU time. Current releases (0.10 and later) export:

* ``kepler_node_cpu_joules_total{zone, path}`` and ``kepler_node_cpu_watts``: the node's RAPL
  zones (``package``, ``dram``, ``core``, ``uncore``, ``psys``), measured. ``package`` and
  ``dram`` become devices ``<node>:kepler:<zone>`` (``hw.type`` cpu / memory,
  ``method="counter"``); ``core`` and ``uncore`` lie inside ``package`` and ``psys`` covers the
  platform, so they are left out, as the RAPL source does.
* ``kepler_pod_cpu_joules_total{pod_id, pod_name, pod_namespace, state, zone}`` and
  ``kepler_pod_cpu_watts``: each pod's *attributed* share, an estimate. These are not devices
  (adding them to the node's zones would count the energy twice): they are
  :class:`~wattledger.collectors.sources.base.WorkloadEnergy`, exported as
  ``wattledger.k8s.pod.energy`` / ``.power`` with ``wattledger.energy.method=modeled``.

Older Kepler (0.7 and before) has no pod series; its per-container
``kepler_container_package_joules_total`` / ``kepler_container_dram_joules_total``
(``container_namespace``, ``pod_name``, ``mode`` = dynamic / idle) are summed per pod and zone
instead. ``node_name`` is a constant label on every series of current releases.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from prometheus_client.metrics_core import Metric

from wattledger.collectors.sources.base import (
    DeviceInfo,
    EnergyReading,
    HwType,
    WorkloadEnergy,
)
from wattledger.collectors.sources.counters import CounterTracker

logger = logging.getLogger(__name__)

#: RAPL zones kept as devices, and their hw.type.
NODE_ZONES: dict[str, HwType] = {"package": "cpu", "dram": "memory"}
#: Pod zones exported, and their hw.type (a pod's package share includes its core share).
POD_ZONES: dict[str, HwType] = {"package": "cpu", "dram": "memory"}
_OLD_CONTAINER = {
    "kepler_container_package_joules": "package",
    "kepler_container_dram_joules": "dram",
}


def _zone(raw: str) -> str:
    """``package-0`` -> ``package``: Kepler names zones as the powercap ``name`` file does."""
    return raw.strip().lower().split("-", 1)[0]


def _family(families: dict[str, Metric], counter: str) -> Metric | None:
    """A counter's family: the parser names it without ``_total`` when a TYPE line says
    counter, with it when the series is untyped."""
    return families.get(counter) or families.get(counter + "_total")


def _samples(family: Metric | None) -> list[tuple[dict[str, str], float]]:
    if family is None:
        return []
    return [
        (dict(s.labels), s.value)
        for s in family.samples
        if not s.name.endswith("_created") and math.isfinite(s.value)
    ]


class KeplerReader:
    """Turns the ``kepler_*`` families of a scrape into node readings and pod energy.

    Args:
        url: The scraped URL (for log lines).
        source: The source name the devices carry (``prometheus``).
        host: Node name used when the series carry no ``node_name``.
        max_power_w: Plausibility bound for counter deltas (a Kepler restart resets them).
        start_time: ``(series key, total) -> Unix ns`` the series started (shared with the
            engine series, so a counter that goes down starts a new one).
    """

    def __init__(
        self,
        url: str,
        source: str,
        host: str,
        max_power_w: float,
        start_time: Callable[[tuple[str, ...], float], int],
    ) -> None:
        self.url = url
        self.source = source
        self.host = host
        self._max_power_w = max_power_w
        self._start = start_time
        self._zones: dict[str, tuple[DeviceInfo, CounterTracker]] = {}

    def devices(self) -> list[DeviceInfo]:
        """Node zones seen so far."""
        return [info for info, _ in self._zones.values()]

    def read(
        self, families: dict[str, Metric], t_ns: int
    ) -> tuple[list[EnergyReading], list[WorkloadEnergy]]:
        """Node zone readings and per-pod energy in the scrape."""
        return self._node(families, t_ns), self._pods(families, t_ns)

    def _node(self, families: dict[str, Metric], t_ns: int) -> list[EnergyReading]:
        watts = {
            (labels.get("zone", ""), labels.get("path", "")): value
            for labels, value in _samples(families.get("kepler_node_cpu_watts"))
        }
        out = []
        for labels, joules in _samples(_family(families, "kepler_node_cpu_joules")):
            zone = _zone(labels.get("zone", ""))
            if zone not in NODE_ZONES:
                continue
            path = labels.get("path", "")
            node = labels.get("node_name") or self.host
            # one device per zone and socket: the powercap directory names the socket
            tail = path.rstrip("/").rsplit("/", 1)[-1] if path else zone
            device_id = f"{node}:kepler:{tail}"
            known = self._zones.get(device_id)
            if known is None:
                info = DeviceInfo(
                    device_id=device_id,
                    source=self.source,
                    hw_type=NODE_ZONES[zone],
                    vendor="unknown",
                    model=f"RAPL {zone} (via Kepler)",
                    name=zone if tail == zone else f"{zone} {tail}",
                )
                known = self._zones[device_id] = (
                    info,
                    CounterTracker(1e-6, None, self._max_power_w),
                )
                logger.info("Scrape %s: found Kepler zone %s (%s)", self.url, zone, device_id)
            info, counter = known
            out.append(
                EnergyReading(
                    device_id=device_id,
                    energy_j=counter.update(int(round(joules * 1e6)), t_ns),
                    power_w=watts.get((labels.get("zone", ""), path)),
                    monotonic_ns=t_ns,
                    method="counter",
                )
            )
        return out

    def _pods(self, families: dict[str, Metric], t_ns: int) -> list[WorkloadEnergy]:
        # (namespace, pod, pod uid, zone, state) -> summed value
        energy: dict[tuple[str, str, str, str, str], float] = {}
        power: dict[tuple[str, str, str, str, str], float] = {}
        meta: dict[tuple[str, str, str, str, str], dict[str, str]] = {}
        current = _family(families, "kepler_pod_cpu_joules")
        if current is not None:
            for family, sink in (
                (current, energy),
                (families.get("kepler_pod_cpu_watts"), power),
            ):
                for labels, value in _samples(family):
                    zone = _zone(labels.get("zone", ""))
                    if zone not in POD_ZONES:
                        continue
                    key = (
                        labels.get("pod_namespace", ""),
                        labels.get("pod_name", ""),
                        labels.get("pod_id", ""),
                        zone,
                        labels.get("state", ""),
                    )
                    sink[key] = sink.get(key, 0.0) + value
                    meta.setdefault(key, labels)
        else:
            for name, zone in _OLD_CONTAINER.items():
                for labels, value in _samples(_family(families, name)):
                    if not labels.get("pod_name"):
                        continue
                    key = (labels.get("container_namespace", ""), labels["pod_name"], "", zone, "")
                    energy[key] = energy.get(key, 0.0) + value  # dynamic + idle
                    meta.setdefault(key, labels)
        out = []
        for key, joules in energy.items():
            namespace, pod, uid, pod_zone, state = key
            labels = meta[key]
            out.append(
                WorkloadEnergy(
                    exporter="kepler",
                    namespace=namespace or None,
                    pod_name=pod or None,
                    pod_uid=uid or None,
                    zone=pod_zone,
                    hw_type=POD_ZONES[pod_zone],
                    state=state or None,
                    node=labels.get("node_name") or self.host,
                    energy_j=joules,
                    power_w=power.get(key),
                    start_time_unix_nano=self._start(("kepler", *key), joules),
                    monotonic_ns=t_ns,
                )
            )
        return out


__all__ = ["NODE_ZONES", "POD_ZONES", "KeplerReader"]
