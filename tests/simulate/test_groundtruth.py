"""Ground truth: a Parquet file next to the warehouse, written atomically, read back whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wattledger.collectors.simulate.backfill import Simulation
from wattledger.collectors.simulate.groundtruth import (
    GroundTruthWriter,
    default_ground_truth_path,
    read_ground_truth,
)

MONDAY = 1_699_833_600.0


def test_round_trip(tmp_path: Path) -> None:
    sim = Simulation(start_unix_s=MONDAY + 14 * 3600, horizon_s=7200, seed=2, sample_interval_s=5)
    path = tmp_path / "wl.duckdb.groundtruth.parquet"
    chunks = list(sim.chunks())
    with GroundTruthWriter(path, sim.metadata()) as w:
        for c in chunks:
            w.write(c)
    truth = read_ground_truth(path)
    n = sum(c.n_requests for c in chunks)
    assert truth.requests.num_rows == n == w.requests
    assert truth.devices.num_rows == 14 * 2  # two hours of 14 devices
    ids = set(truth.requests["span_id"].to_pylist())
    assert ids == {s for c in chunks for s in c.request_columns["span_id"]}
    hosted = truth.requests.filter(truth.requests["device_id"].is_null())
    assert hosted.num_rows > 0 and hosted["energy_j"].null_count == hosted.num_rows
    hosted_routes = set(hosted["route"].to_pylist())
    assert hosted_routes <= {"groq-70b", "cerebras-70b", "groq-8b", "batch-api"}
    self_hosted = truth.requests.filter(truth.requests["device_id"].is_valid())
    energy = self_hosted["energy_j"].to_numpy()
    split = self_hosted["prefill_energy_j"].to_numpy() + self_hosted["decode_energy_j"].to_numpy()
    assert np.all(energy > 0) and np.allclose(energy, split)
    dev = truth.devices.to_pydict()
    assert np.allclose(
        np.array(dev["total_energy_j"]),
        np.array(dev["idle_energy_j"]) + np.array(dev["active_energy_j"]),
    )
    assert truth.metadata["seed"] == 2
    assert truth.metadata["decode_weight"]["chat-h100"] > 1
    assert len(truth.metadata["devices"]) == 14


def test_nothing_is_left_behind_on_error(tmp_path: Path) -> None:
    path = tmp_path / "truth.parquet"
    sim = Simulation(start_unix_s=MONDAY, horizon_s=600, seed=1)
    with pytest.raises(RuntimeError), GroundTruthWriter(path, sim.metadata()) as w:
        w.write(next(iter(sim.chunks())))
        raise RuntimeError("ingest failed")
    assert list(tmp_path.iterdir()) == []


def test_default_path_sits_next_to_a_duckdb_warehouse(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/data/wl.duckdb"
    assert (
        default_ground_truth_path(url, tmp_path)
        == tmp_path / "data" / "wl.duckdb.groundtruth.parquet"
    )
    pg = "postgresql+psycopg://postgres@127.0.0.1/wl"
    assert default_ground_truth_path(pg, tmp_path) == tmp_path / "simulate.groundtruth.parquet"


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from wattledger.errors import WattledgerError

    with pytest.raises(WattledgerError, match="Cannot write the ground truth"):
        GroundTruthWriter(blocker / "sub" / "t.parquet", {})
