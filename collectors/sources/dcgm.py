"""NVIDIA dcgm-exporter's ``DCGM_FI_*`` series -> GPU readings, with the pod each GPU serves.

Energy comes from ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (mJ since driver load,
``method="counter"``), else ``DCGM_FI_DEV_POWER_USAGE`` (W, integrated); plus utilization,
framebuffer memory (MiB), temperature and SM clock. Device ids are the GPU UUIDs, the same
``hw.id`` NVML gives.

In Kubernetes mode (the Helm chart's default) dcgm-exporter adds ``pod``, ``namespace`` and
``container`` labels (and ``pod_uid`` when asked to) naming the workload the device plugin gave
the GPU to. They are kept on each reading as ``k8s.pod.name``, ``k8s.namespace.name``,
``k8s.container.name`` and ``k8s.pod.uid``, so GPU energy arrives already tied to its pod; they
change as pods come and go. A GPU shared by several pods (time-slicing) is exported once per
pod with the same values: its energy is reported once, with the pods listed in
``wattledger.gpu.shared_pods`` (``namespace/pod``, comma-separated) instead of one pod name,
because splitting it among them is an attribution decision made downstream.
"""

from __future__ import annotations

import logging
import math

from prometheus_client.metrics_core import Metric

from wattledger.collectors import semconv as sc
from wattledger.collectors.sources.base import DeviceInfo, EnergyMethod, EnergyReading
from wattledger.collectors.sources.counters import CounterTracker, PowerIntegrator

logger = logging.getLogger(__name__)
MIB = 2**20

#: dcgm-exporter label -> point attribute.
POD_LABELS = {
    "pod": sc.K8S_POD_NAME,
    "namespace": sc.K8S_NAMESPACE_NAME,
    "container": sc.K8S_CONTAINER_NAME,
    "pod_uid": sc.K8S_POD_UID,
}


class _Gpu:
    def __init__(self, info: DeviceInfo, max_power_w: float, max_gap_s: float) -> None:
        self.info = info
        self.counter = CounterTracker(1e-3, None, max_power_w)
        self.integrator = PowerIntegrator(max_gap_s)
        self.has_counter = False


def _bytes(mib: float | None) -> int | None:
    """MiB as bytes; None when unknown or too large to be real (e.g. ``1e308``)."""
    if mib is None or not math.isfinite(mib * MIB):
        return None
    return int(mib * MIB)


def pod_attributes(pods: set[tuple[tuple[str, str], ...]]) -> tuple[tuple[str, str], ...]:
    """The point attributes for the pods a GPU's series name (see the module docstring)."""
    pods = {p for p in pods if p}
    if not pods:
        return ()
    if len(pods) == 1:
        return next(iter(pods))
    names = sorted(
        f"{dict(p).get(sc.K8S_NAMESPACE_NAME, '')}/{dict(p).get(sc.K8S_POD_NAME, '')}" for p in pods
    )
    return ((sc.WL_GPU_SHARED_PODS, ",".join(dict.fromkeys(names))),)


class DcgmReader:
    """Turns the ``DCGM_FI_*`` families of a scrape into GPU readings.

    Args:
        url: The scraped URL (for log lines).
        source: The source name the devices carry (``prometheus``).
        max_power_w: Plausibility bound for energy-counter deltas.
        max_gap_s: Longest power-integration gap.
    """

    def __init__(self, url: str, source: str, max_power_w: float, max_gap_s: float) -> None:
        self.url = url
        self.source = source
        self._max_power_w = max_power_w
        self._max_gap_s = max_gap_s
        self._gpus: dict[str, _Gpu] = {}

    def devices(self) -> list[DeviceInfo]:
        """GPUs seen so far."""
        return [g.info for g in self._gpus.values()]

    def read(self, families: dict[str, Metric], t_ns: int) -> list[EnergyReading]:
        """One reading per GPU UUID in the scrape."""
        values: dict[str, dict[str, float]] = {}
        labels_of: dict[str, dict[str, str]] = {}
        pods_of: dict[str, set[tuple[tuple[str, str], ...]]] = {}
        for fname, family in families.items():
            if not fname.startswith("DCGM_FI_"):
                continue
            seen: set[tuple[str, str]] = set()
            for s in family.samples:
                uuid = s.labels.get("UUID") or s.labels.get("uuid")
                if not uuid or s.name.endswith("_created") or not math.isfinite(s.value):
                    continue
                per = values.setdefault(uuid, {})
                labels_of.setdefault(uuid, dict(s.labels))
                pod = tuple(
                    sorted((attr, s.labels[k]) for k, attr in POD_LABELS.items() if s.labels.get(k))
                )
                pods_of.setdefault(uuid, set()).add(pod)
                if (
                    fname in ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE")
                    and "GPU_I_ID" in s.labels
                ):
                    # MIG slices: sum to the GPU (once per slice, not once per pod on it)
                    key = (uuid, s.labels["GPU_I_ID"])
                    if key not in seen:
                        seen.add(key)
                        per[fname] = per.get(fname, 0.0) + s.value
                else:
                    per.setdefault(fname, s.value)
        out: list[EnergyReading] = []
        for uuid, v in values.items():
            gpu = self._gpus.get(uuid) or self._new_gpu(uuid, labels_of[uuid], v)
            energy_mj = v.get("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
            power_w = v.get("DCGM_FI_DEV_POWER_USAGE", v.get("DCGM_FI_DEV_POWER_USAGE_INSTANT"))
            method: EnergyMethod
            energy_j: float | None
            if energy_mj is not None:
                gpu.has_counter = True
                method, energy_j = "counter", gpu.counter.update(int(energy_mj), t_ns)
            elif gpu.has_counter:
                method, energy_j = "counter", gpu.counter.energy_j
            else:
                method = "power"
                energy_j = gpu.integrator.update(power_w, t_ns) if power_w is not None else None
            used, free = v.get("DCGM_FI_DEV_FB_USED"), v.get("DCGM_FI_DEV_FB_FREE")
            reserved = v.get("DCGM_FI_DEV_FB_RESERVED", 0.0)
            util = v.get("DCGM_FI_DEV_GPU_UTIL")
            out.append(
                EnergyReading(
                    device_id=uuid,
                    energy_j=energy_j,
                    power_w=power_w,
                    monotonic_ns=t_ns,
                    method=method,
                    utilization_ratio=util / 100.0 if util is not None else None,
                    memory_used_bytes=_bytes(used),
                    memory_total_bytes=(
                        _bytes(used + free + reserved)
                        if used is not None and free is not None
                        else None
                    ),
                    temperature_c=v.get("DCGM_FI_DEV_GPU_TEMP"),
                    clock_mhz=v.get("DCGM_FI_DEV_SM_CLOCK"),
                    attributes=pod_attributes(pods_of.get(uuid, set())),
                )
            )
        return out

    def _new_gpu(self, uuid: str, labels: dict[str, str], v: dict[str, float]) -> _Gpu:
        index = labels.get("gpu")
        info = DeviceInfo(
            device_id=uuid,
            source=self.source,
            hw_type="gpu",
            vendor="nvidia",
            model=labels.get("modelName", "NVIDIA GPU"),
            name=f"gpu{index}" if index is not None else uuid,
            index=int(index) if index is not None and index.isdigit() else None,
            tdp_w=v.get("DCGM_FI_DEV_POWER_MGMT_LIMIT"),
        )
        gpu = self._gpus[uuid] = _Gpu(info, self._max_power_w, self._max_gap_s)
        logger.info("Scrape %s: found GPU %s (%s)", self.url, uuid, info.model)
        return gpu


__all__ = ["POD_LABELS", "DcgmReader", "pod_attributes"]
