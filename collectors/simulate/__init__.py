"""The fleet simulator: a heterogeneous inference fleet with known ground truth.

It replays the Azure LLM inference traces (or synthetic workloads) through a roofline model
of every device, simulates continuous batching and power, and produces exactly what real
producers send: request spans and device readings, as column dicts for a fast backfill or as
OTLP through the official exporters for a live run. The true energy of every request is kept
apart as ground truth. See docs/simulator.md.

Typical use::

    from wattledger.collectors.simulate import Simulation, GroundTruthWriter

    sim = Simulation(start_unix_s=1_700_000_000, horizon_s=86_400, seed=7)
    with GroundTruthWriter(path, sim.metadata()) as truth:
        for chunk in sim.chunks():
            ...  # chunk.request_columns, chunk.metric_columns
            truth.write(chunk)
"""

from wattledger.catalog.roofline import PerfModel, steady_state
from wattledger.catalog.specs import Catalog, load_catalog
from wattledger.collectors.simulate.backfill import Chunk, Simulation, simulate_backfill
from wattledger.collectors.simulate.config import DEMO_FLEET, FleetConfig, load_fleet
from wattledger.collectors.simulate.emit import EmitError, OtlpSender, run_live
from wattledger.collectors.simulate.fleet import SimulationOverload, simulate_replica
from wattledger.collectors.simulate.groundtruth import (
    GroundTruth,
    GroundTruthWriter,
    default_ground_truth_path,
    read_ground_truth,
)

__all__ = [
    "DEMO_FLEET",
    "Catalog",
    "Chunk",
    "EmitError",
    "FleetConfig",
    "GroundTruth",
    "GroundTruthWriter",
    "OtlpSender",
    "PerfModel",
    "Simulation",
    "SimulationOverload",
    "default_ground_truth_path",
    "load_catalog",
    "load_fleet",
    "read_ground_truth",
    "run_live",
    "simulate_backfill",
    "simulate_replica",
    "steady_state",
]
