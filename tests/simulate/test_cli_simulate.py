"""``wattledger simulate``: modes, clear errors, and the backfill's use of the ingest contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from wattledger.cli import main
from wattledger.cli import simulate as cli_simulate
from wattledger.collectors import semconv as sc
from wattledger.collectors.simulate.groundtruth import read_ground_truth
from wattledger.migrations import runner


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattledger", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )


def test_exactly_one_mode_is_required() -> None:
    assert run("simulate").returncode == 2
    r = run("simulate", "--endpoint", "http://127.0.0.1:9", "--backfill-days", "1")
    text = " ".join(r.stderr.replace("│", " ").split())
    assert r.returncode == 2 and "exactly one of --endpoint (live) and --backfill-days" in text


def test_bad_fleet_file_is_a_clear_error(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[workloads.chat]\ntrace = "conv"\nservice = "s"\nroutes = { nowhere = 1 }\n')
    r = run("simulate", "--backfill-days", "1", "--fleet", str(fleet))
    assert r.returncode == 1
    assert "routes to 'nowhere', which is neither a pool nor a hosted route" in r.stderr
    assert r.stderr.count("\n") == 2 and "Hint:" in r.stderr


class ContractRecorder:
    """Stand-in for the ingest column mapping (wattledger.ingest) until it lands.

    Builds Arrow tables from the columns as the contract describes and records the calls, so
    the test checks what the command sends and in which order.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def request_table(self, columns: dict[str, np.ndarray], *, tenant: str) -> pa.Table:
        table = pa.table({k: pa.array(v, from_pandas=True) for k, v in columns.items()})
        self.calls.append(("request_table", tenant))
        return table

    def sample_tables(
        self, columns: dict[str, np.ndarray], *, tenant: str
    ) -> tuple[pa.Table, pa.Table]:
        samples = pa.table({k: pa.array(v) for k, v in columns.items()})
        devices = pa.table({"device_id": pa.array(np.unique(columns[sc.HW_ID]).tolist())})
        self.calls.append(("sample_tables", tenant))
        return samples, devices

    def write_requests(self, engine: object, table: pa.Table) -> None:
        self.calls.append(("write_requests", table))

    def write_samples(self, engine: object, samples: pa.Table, devices: pa.Table) -> None:
        self.calls.append(("write_samples", devices))


def test_backfill_maps_chunks_through_the_ingest_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"duckdb:///{tmp_path}/wl.duckdb"
    runner.upgrade(url)
    rec = ContractRecorder()
    names = ("request_table", "sample_tables", "write_requests", "write_samples")
    api = SimpleNamespace(**{k: getattr(rec, k) for k in names})
    monkeypatch.setattr(cli_simulate, "_ingest_api", lambda: api)
    with pytest.raises(SystemExit) as e:
        main([
            "simulate", "--backfill-days", "0.05", "--database-url", url, "--seed", "3",
            "--start", "2023-11-13T14:00:00", "--tenant", "acme", "--json",
        ])  # fmt: skip
    assert e.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "backfill" and out["requests"] > 1000
    assert {t for name, t in rec.calls if name in ("request_table", "sample_tables")} == {"acme"}
    written = [t for name, t in rec.calls if name == "write_requests"]
    assert sum(t.num_rows for t in written) == out["requests"]
    # A device's readings (and so its device row) are written before its requests.
    seen_devices: set[str] = set()
    for name, arg in rec.calls:
        if name == "write_samples":
            seen_devices |= set(arg["device_id"].to_pylist())
        elif name == "write_requests" and sc.WL_DEVICE_ID in arg.column_names:
            assert set(arg[sc.WL_DEVICE_ID].to_pylist()) <= seen_devices
    truth = read_ground_truth(Path(out["ground_truth"]))
    assert Path(out["ground_truth"]) == tmp_path / "wl.duckdb.groundtruth.parquet"
    assert truth.requests.num_rows == out["requests"]


def test_backfill_needs_a_migrated_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_simulate, "_ingest_api", lambda: ContractRecorder())
    with pytest.raises(SystemExit) as e:
        main(
            [
                "simulate",
                "--backfill-days",
                "0.01",
                "--database-url",
                f"duckdb:///{tmp_path}/x.duckdb",
            ]
        )
    assert e.value.code == 1
    assert not (tmp_path / "x.duckdb.groundtruth.parquet").exists()


def test_prefetch_keeps_order_and_raises_producer_errors() -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("overloaded")

    got = []
    with pytest.raises(ValueError, match="overloaded"):
        for x in cli_simulate._prefetch(items()):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
    assert list(cli_simulate._prefetch(iter(range(100)), depth=1)) == list(range(100))
