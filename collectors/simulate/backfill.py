"""Simulate a fleet over a period and hand the results out in bounded chunks.

:class:`Simulation` builds the workload of every class, routes each request to a pool or a
hosted route, spreads a pool's requests round-robin over its devices, simulates every device
for the whole period and yields one :class:`Chunk` per device (or hosted route) and day. A
chunk holds the span columns, the metric columns (power samples) and the ground truth of that
slice, so memory stays bounded by one device's period while the physics stays continuous.
Every random draw comes from a generator seeded by ``(seed, purpose, ordinal)``: the same
seed, fleet, start and horizon give the same chunks.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from wattledger.catalog.roofline import PerfModel
from wattledger.catalog.specs import Catalog, load_catalog
from wattledger.collectors import semconv as sc
from wattledger.collectors.simulate import columns as cols
from wattledger.collectors.simulate.config import Device, FleetConfig, fleet_devices, load_fleet
from wattledger.collectors.simulate.fleet import ReplicaRun, simulate_replica
from wattledger.collectors.simulate.hosted import HostedRun, simulate_hosted
from wattledger.collectors.simulate.workload import (
    Arrivals,
    load_trace,
    replay_trace,
    synthetic_arrivals,
)
from wattledger.errors import ConfigError

logger = logging.getLogger(__name__)

CHUNK_S = 86400.0
TRUTH_PERIOD_S = 3600.0
# Purposes of the seeded random streams (never reorder: it would change every simulation).
_ARRIVALS, _ROUTING, _DEVICE_IDS, _HOSTED, _HOSTED_IDS, _COUNTER = range(1, 7)


@dataclass(frozen=True)
class Chunk:
    """One device's (or hosted route's) requests, samples and truth over one period."""

    source: str
    period_start_unix_nano: int
    period_end_unix_nano: int
    request_columns: cols.Columns
    metric_columns: cols.Columns = field(default_factory=dict)
    truth_request_columns: cols.Columns = field(default_factory=dict)
    truth_device_columns: cols.Columns = field(default_factory=dict)

    @property
    def n_requests(self) -> int:
        """Number of spans in the chunk."""
        return len(self.request_columns.get("trace_id", ()))

    @property
    def n_metric_points(self) -> int:
        """Number of metric data points in the chunk."""
        return len(self.metric_columns.get("value", ()))


@dataclass(frozen=True)
class _Routed:
    arrivals: Arrivals
    workload: NDArray[np.int64]


class Simulation:
    """A fleet simulated from ``start_unix_s`` for ``horizon_s`` seconds.

    Args:
        fleet: The fleet (default: the demo fleet).
        start_unix_s: Start, Unix seconds (UTC).
        horizon_s: Length of the simulated period, seconds.
        seed: Seed of every random draw.
        rate: Request rate relative to the traces (2.0 = twice as many requests per second).
        sample_interval_s: Seconds between power samples of each device.
        catalog: Catalogs (default: the packaged ones).
    """

    def __init__(
        self,
        fleet: FleetConfig | None = None,
        *,
        start_unix_s: float,
        horizon_s: float,
        seed: int = 0,
        rate: float = 1.0,
        sample_interval_s: float = 1.0,
        catalog: Catalog | None = None,
    ) -> None:
        for name, value in (("horizon_s", horizon_s), ("rate", rate)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"The simulation's {name} must be positive, not {value}.")
        if not (math.isfinite(sample_interval_s) and 0.01 <= sample_interval_s <= 3600):
            raise ConfigError(
                f"The sample interval must be between 0.01 and 3600 s, not {sample_interval_s}."
            )
        if seed < 0:
            raise ConfigError(f"The seed must be a non-negative integer, not {seed}.")
        self.catalog = catalog or load_catalog()
        self.fleet = fleet or load_fleet(catalog=self.catalog)
        self.start_unix_s = float(start_unix_s)
        self.start_unix_nano = int(round(self.start_unix_s * 1e9))
        self.horizon_s = float(horizon_s)
        self.seed = int(seed)
        self.rate = float(rate)
        self.sample_interval_s = float(sample_interval_s)
        self.devices: list[Device] = fleet_devices(self.fleet, self.catalog)
        self.workloads = list(self.fleet.workloads)
        self.periods = [
            (p * CHUNK_S, min((p + 1) * CHUNK_S, self.horizon_s))
            for p in range(math.ceil(self.horizon_s / CHUNK_S))
        ]

    def _unix_nano(self, t_s: float) -> int:
        return int(cols.to_unix_nano(self.start_unix_nano, np.array([t_s]))[0])

    @property
    def total_chunks(self) -> int:
        """How many chunks :meth:`chunks` yields."""
        return (len(self.devices) + len(self.fleet.hosted)) * len(self.periods)

    def perf(self, pool: str) -> PerfModel:
        """The performance model of one pool's replicas."""
        p = self.fleet.pools[pool]
        return PerfModel.from_catalog(
            self.catalog, p.hardware, p.llm_model, p.quantization, p.engine
        )

    def metadata(self) -> dict[str, object]:
        """What the ground truth needs to be interpreted and reproduced."""
        return {
            "seed": self.seed,
            "rate": self.rate,
            "start_unix_s": self.start_unix_s,
            "horizon_s": self.horizon_s,
            "sample_interval_s": self.sample_interval_s,
            "decode_weight": {name: self.perf(name).decode_weight() for name in self.fleet.pools},
            "devices": [d.model_dump() for d in self.devices],
            "fleet": self.fleet.model_dump(mode="json"),
        }

    # --- workload and routing ---------------------------------------------------------------
    def _arrivals(self, index: int, name: str) -> Arrivals:
        w = self.fleet.workloads[name]
        rng = np.random.default_rng([self.seed, _ARRIVALS, index])
        common = {"start_unix_s": self.start_unix_s, "horizon_s": self.horizon_s, "rate": self.rate}
        if w.synthetic is not None:
            return synthetic_arrivals(w.synthetic, rng=rng, **common)
        assert w.trace is not None
        return replay_trace(load_trace(w.trace), sim=self.fleet.simulation, rng=rng, **common)

    def route(self) -> dict[str, _Routed]:
        """Every route's requests, merged over workloads and sorted by arrival."""
        parts: dict[str, list[tuple[Arrivals, int]]] = {}
        for w, name in enumerate(self.workloads):
            arrivals = self._arrivals(w, name)
            routes = self.fleet.workloads[name].routes
            names = list(routes)
            share = np.array([routes[r] for r in names], dtype=np.float64)
            rng = np.random.default_rng([self.seed, _ROUTING, w])
            pick = rng.choice(len(names), size=len(arrivals), p=share / share.sum())
            by_route = np.argsort(pick, kind="stable")  # arrival order within each route
            bounds = np.searchsorted(pick[by_route], np.arange(len(names) + 1))
            for r, route in enumerate(names):
                part = arrivals.take(by_route[bounds[r] : bounds[r + 1]])
                parts.setdefault(route, []).append((part, w))
        merged = {}
        for route, items in parts.items():
            a = Arrivals(*(np.concatenate([getattr(x, f) for x, _ in items]) for f in _FIELDS))
            wl = np.concatenate([np.full(len(x), w, dtype=np.int64) for x, w in items])
            order = np.argsort(a.arrival_s, kind="stable")
            merged[route] = _Routed(a.take(order), wl[order])
        return merged

    # --- chunks ------------------------------------------------------------------------------
    def chunks(self) -> Iterator[Chunk]:
        """Simulate device by device and yield each device's (route's) chunks day by day."""
        routed = self.route()
        empty = _Routed(Arrivals(*(np.zeros(0, dtype=t) for t in _TYPES)), np.zeros(0, np.int64))
        for d, device in enumerate(self.devices):
            pool = self.fleet.pools[device.pool]
            r = routed.get(device.pool, empty)
            mine = np.flatnonzero(np.arange(len(r.arrivals)) % pool.count == device.index)
            yield from self._device_chunks(
                d, device, _Routed(r.arrivals.take(mine), r.workload[mine])
            )
        for h, name in enumerate(self.fleet.hosted):
            yield from self._hosted_chunks(h, name, routed.get(name, empty))

    def _strings(self, workload: NDArray[np.int64]) -> dict[str, NDArray[np.object_]]:
        wl = [self.fleet.workloads[w] for w in self.workloads]
        table = {
            "service": np.array([w.service for w in wl] or [""], dtype=object),
            "operation": np.array([w.operation for w in wl] or [""], dtype=object),
            "workload": np.array(self.workloads or [""], dtype=object),
        }
        return {k: v[workload] for k, v in table.items()}

    def _device_chunks(self, ordinal: int, device: Device, routed: _Routed) -> Iterator[Chunk]:
        pool = self.fleet.pools[device.pool]
        perf = self.perf(device.pool)
        started = time.perf_counter()
        name = f"pool '{device.pool}' device {device.index}"
        run = simulate_replica(perf, routed.arrivals, name=name)
        logger.debug(
            "%s: %d requests in %.2f s", name, len(routed.arrivals), time.perf_counter() - started
        )
        if run.peak_kv_tokens > perf.kv_capacity_tokens or run.peak_batch > int(
            perf.engine.max_num_seqs.value
        ):
            logger.warning(
                "%s peaks at %d sequences / %.0f KV tokens (capacity %d / %.0f); the simulator "
                "does not queue for KV cache, so latency at the peak is optimistic",
                name, run.peak_batch, run.peak_kv_tokens,
                int(perf.engine.max_num_seqs.value), perf.kv_capacity_tokens,
            )  # fmt: skip
        n = len(routed.arrivals)
        rng = np.random.default_rng([self.seed, _DEVICE_IDS, ordinal])
        ids = rng.bytes(24 * n)
        counter0 = float(np.random.default_rng([self.seed, _COUNTER, ordinal]).uniform(1e6, 1e8))
        strings = self._strings(routed.workload)
        llm_model = self.catalog.models[pool.llm_model].name
        for p0, p1 in self.periods:
            i0, i1 = np.searchsorted(run.arrival_s, [p0, p1], side="left")
            sl = np.arange(i0, i1)
            trace_id, span_id = cols.ids_from_bytes(ids, i0, i1)
            sliced = _slice_run(run, sl)
            req = cols.replica_request_columns(
                sliced,
                device=device,
                start_unix_nano=self.start_unix_nano,
                trace_id=trace_id,
                span_id=span_id,
                service=strings["service"][sl],
                operation=strings["operation"][sl],
                workload=strings["workload"][sl],
                input_tokens=routed.arrivals.input_tokens[sl],
                output_tokens=routed.arrivals.output_tokens[sl],
                llm_model=llm_model,
                quantization=pool.quantization,
            )
            yield Chunk(
                source=device.device_id,
                period_start_unix_nano=self._unix_nano(p0),
                period_end_unix_nano=self._unix_nano(p1),
                request_columns=req,
                metric_columns=self._samples(device, perf, run, p0, p1, counter0),
                truth_request_columns=_truth_requests(req, sliced, device.pool),
                truth_device_columns=self._truth_periods(device, perf, run, p0, p1),
            )

    def _sample_times(self, p0: float, p1: float) -> NDArray[np.float64]:
        dt = self.sample_interval_s
        k0 = math.ceil(p0 / dt - 1e-9)
        last = p1 >= self.horizon_s
        k1 = math.floor(p1 / dt + 1e-9) + 1 if last else math.ceil(p1 / dt - 1e-9)
        return np.arange(k0, k1, dtype=np.float64) * dt

    def _samples(
        self,
        device: Device,
        perf: PerfModel,
        run: ReplicaRun,
        p0: float,
        p1: float,
        counter0: float,
    ) -> cols.Columns:
        t = self._sample_times(p0, p1)
        # Each sample covers the interval since the previous one (like NVML's 1 s average);
        # the first sample of the simulation reports idle.
        edges = np.concatenate([[max(t[0] - self.sample_interval_s, 0.0)], t])
        energy_all = counter0 + perf.idle_power_w * edges + run.dynamic_energy_at(edges)
        busy_all = run.busy_time_at(edges)
        span = np.diff(edges)
        energy = energy_all[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            power = np.where(span > 0, np.diff(energy_all) / span, perf.idle_power_w)
            busy = np.where(span > 0, np.diff(busy_all) / span, 0.0)
        return cols.metric_columns(
            device,
            time_unix_nano=cols.to_unix_nano(self.start_unix_nano, t),
            energy_j=energy,
            power_w=power,
            utilization=np.clip(busy, 0.0, 1.0),
        )

    def _truth_periods(
        self, device: Device, perf: PerfModel, run: ReplicaRun, p0: float, p1: float
    ) -> cols.Columns:
        edges = np.arange(p0, p1, TRUTH_PERIOD_S)
        lo, hi = edges, np.minimum(edges + TRUTH_PERIOD_S, p1)
        active = run.dynamic_energy_at(hi) - run.dynamic_energy_at(lo)
        idle = perf.idle_power_w * (hi - lo)
        n = len(edges)
        return {
            "device_id": cols.constant(device.device_id, n),
            "period_start_unix_nano": cols.to_unix_nano(self.start_unix_nano, lo),
            "period_end_unix_nano": cols.to_unix_nano(self.start_unix_nano, hi),
            "idle_energy_j": idle,
            "active_energy_j": active,
            "total_energy_j": idle + active,
            "busy_s": run.busy_time_at(hi) - run.busy_time_at(lo),
            "energy_method": cols.constant(device.energy_method, n),
        }

    def _hosted_chunks(self, ordinal: int, name: str, routed: _Routed) -> Iterator[Chunk]:
        route = self.fleet.hosted[name]
        provider = self.catalog.providers[route.provider]
        model = provider.models[route.llm_model]
        run = simulate_hosted(
            provider, model, routed.arrivals, np.random.default_rng([self.seed, _HOSTED, ordinal])
        )
        n = len(routed.arrivals)
        ids = np.random.default_rng([self.seed, _HOSTED_IDS, ordinal]).bytes(24 * n)
        strings = self._strings(routed.workload)
        for p0, p1 in self.periods:
            i0, i1 = np.searchsorted(run.arrival_s, [p0, p1], side="left")
            sl = np.arange(i0, i1)
            trace_id, span_id = cols.ids_from_bytes(ids, i0, i1)
            req = cols.hosted_request_columns(
                _slice_hosted(run, sl),
                provider=provider,
                served_model=model.served_model,
                start_unix_nano=self.start_unix_nano,
                trace_id=trace_id,
                span_id=span_id,
                service=strings["service"][sl],
                operation=strings["operation"][sl],
                workload=strings["workload"][sl],
                input_tokens=routed.arrivals.input_tokens[sl],
            )
            yield Chunk(
                source=name,
                period_start_unix_nano=self._unix_nano(p0),
                period_end_unix_nano=self._unix_nano(p1),
                request_columns=req,
                truth_request_columns=_truth_requests(req, None, name),
            )


_FIELDS = ("arrival_s", "input_tokens", "output_tokens", "trace_row", "copy")
_TYPES = (np.float64, np.int64, np.int64, np.int64, np.int64)


def _slice_run(run: ReplicaRun, sl: NDArray[np.int64]) -> ReplicaRun:
    per_request = {
        k: getattr(run, k)[sl]
        for k in (
            "arrival_s", "prefill_start_s", "first_token_s", "end_s", "itl_mean_s",
            "itl_p50_s", "itl_p95_s", "itl_max_s", "itl_count", "batch_size",
            "prefill_energy_j", "decode_energy_j",
        )
    }  # fmt: skip
    return ReplicaRun(
        **per_request,
        boundary_s=run.boundary_s,
        cum_dynamic_j=run.cum_dynamic_j,
        cum_busy_s=run.cum_busy_s,
        peak_batch=run.peak_batch,
        peak_kv_tokens=run.peak_kv_tokens,
    )


def _slice_hosted(run: HostedRun, sl: NDArray[np.int64]) -> HostedRun:
    return HostedRun(**{k: getattr(run, k)[sl] for k in HostedRun.__dataclass_fields__})


def _truth_requests(req: cols.Columns, run: ReplicaRun | None, route: str) -> cols.Columns:
    n = len(req["trace_id"])
    nan = np.full(n, np.nan)
    return {
        "trace_id": req["trace_id"],
        "span_id": req["span_id"],
        "device_id": req.get(sc.WL_DEVICE_ID, cols.constant(None, n)),
        "route": cols.constant(route, n),
        "workload": req[sc.WL_WORKLOAD],
        "start_time_unix_nano": req["start_time_unix_nano"],
        "end_time_unix_nano": req["end_time_unix_nano"],
        "input_tokens": req[sc.GEN_AI_USAGE_INPUT_TOKENS],
        "output_tokens": req[sc.GEN_AI_USAGE_OUTPUT_TOKENS],
        "energy_j": nan if run is None else run.prefill_energy_j + run.decode_energy_j,
        "prefill_energy_j": nan if run is None else run.prefill_energy_j,
        "decode_energy_j": nan if run is None else run.decode_energy_j,
    }


def simulate_backfill(
    fleet: FleetConfig | None = None,
    *,
    start_unix_s: float,
    horizon_s: float,
    seed: int = 0,
    rate: float = 1.0,
    sample_interval_s: float = 1.0,
    catalog: Catalog | None = None,
) -> Iterator[Chunk]:
    """Shorthand for ``Simulation(...).chunks()``."""
    return Simulation(
        fleet,
        start_unix_s=start_unix_s,
        horizon_s=horizon_s,
        seed=seed,
        rate=rate,
        sample_interval_s=sample_interval_s,
        catalog=catalog,
    ).chunks()
