"""The simulator's ground truth: what every request and device really consumed.

Written to one Parquet file next to the warehouse, never into it, so analytics cannot read it
by accident and tests can compare what analytics attributes against it. Rows of two kinds:

* ``kind = "request"``: one per simulated request, keyed by ``trace_id``/``span_id``, with
  ``energy_j`` = its true energy above the device's idle baseline (split into
  ``prefill_energy_j`` and ``decode_energy_j``); null for hosted routes, whose hardware is
  not visible.
* ``kind = "device"``: one per device and hour, with ``idle_energy_j`` (idle power x time),
  ``active_energy_j`` (energy above idle) and ``total_energy_j`` (their sum, which equals the
  device's counter delta over the hour) and ``busy_s``.

The schema metadata (``wattledger.groundtruth``) holds the seed, period, fleet and the decode
work weight of every pool (docs/simulator.md#ground-truth defines the split precisely).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wattledger.collectors.simulate.backfill import Chunk
from wattledger.errors import WattledgerError

METADATA_KEY = b"wattledger.groundtruth"
SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("device_id", pa.string()),
        ("route", pa.string()),
        ("workload", pa.string()),
        ("start_time_unix_nano", pa.int64()),
        ("end_time_unix_nano", pa.int64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("energy_j", pa.float64()),
        ("prefill_energy_j", pa.float64()),
        ("decode_energy_j", pa.float64()),
        ("idle_energy_j", pa.float64()),
        ("active_energy_j", pa.float64()),
        ("total_energy_j", pa.float64()),
        ("busy_s", pa.float64()),
        ("energy_method", pa.string()),
    ]
)


def _codec(column: str) -> str:
    return "none" if column in ("trace_id", "span_id") else "lz4"


_LOW_CARDINALITY = ["kind", "device_id", "route", "workload", "energy_method"]
_DEVICE_RENAMES = {
    "period_start_unix_nano": "start_time_unix_nano",
    "period_end_unix_nano": "end_time_unix_nano",
}


def _array(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    """An Arrow array; fixed-width ASCII strings (the hex ids) without a per-item loop."""
    if values.dtype.kind == "U" and len(values):
        width = values.dtype.itemsize // 4
        codes = values.view(np.uint32).reshape(len(values), width)
        if codes.max() < 128 and codes.min() > 0:
            offsets = np.arange(0, width * (len(values) + 1), width, dtype=np.int32)
            data = codes.astype(np.uint8).tobytes()
            return pa.StringArray.from_buffers(
                len(values), pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)
            )
    if values.dtype == object and len(values):
        first = values[0]
        if first is None and all(v is None for v in values[:: max(1, len(values) // 64)]):
            if not any(v is not None for v in values):
                return pa.nulls(len(values), type=type_)
        elif first is not None and bool((values == first).all()):
            zeros = np.zeros(len(values), dtype=np.int8)
            return pa.DictionaryArray.from_arrays(zeros, [first]).cast(type_)
        return pa.array(values, type=type_)
    return pa.array(values, type=type_, from_pandas=True)


def _table(kind: str, columns: dict[str, np.ndarray], schema: pa.Schema) -> pa.Table:
    n = len(next(iter(columns.values()))) if columns else 0
    arrays = []
    for fld in schema:
        if fld.name == "kind":
            arrays.append(
                pa.DictionaryArray.from_arrays(np.zeros(n, np.int8), [kind]).cast(pa.string())
            )
        elif fld.name in columns:
            arrays.append(_array(columns[fld.name], fld.type))
        else:
            arrays.append(pa.nulls(n, type=fld.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class GroundTruthWriter:
    """Append chunks to a ground-truth file; the file appears only when :meth:`commit` runs.

    Use as a context manager: it commits on success and removes the partial file on error.
    """

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        self._schema = SCHEMA.with_metadata({METADATA_KEY: json.dumps(metadata).encode()})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
                self._tmp,
                self._schema,
                # Random hex ids do not compress: skip the codec for them.
                compression={f.name: _codec(f.name) for f in SCHEMA},
                use_dictionary=_LOW_CARDINALITY,
                write_statistics=["start_time_unix_nano", "device_id", "kind"],
            )
        except OSError as e:
            raise WattledgerError(
                f"Cannot write the ground truth to {self.path}: {e.strerror or e}.",
                hint="Pass --ground-truth with a writable path.",
            ) from e
        self.requests = 0

    def write(self, chunk: Chunk) -> None:
        """Append the truth of one chunk."""
        assert self._writer is not None, "writer already closed"
        if chunk.truth_request_columns and len(chunk.truth_request_columns["trace_id"]):
            self._writer.write_table(_table("request", chunk.truth_request_columns, self._schema))
            self.requests += len(chunk.truth_request_columns["trace_id"])
        if chunk.truth_device_columns and len(chunk.truth_device_columns["device_id"]):
            cols = {_DEVICE_RENAMES.get(k, k): v for k, v in chunk.truth_device_columns.items()}
            self._writer.write_table(_table("device", cols, self._schema))

    def commit(self) -> Path:
        """Finish the file and move it into place atomically."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> GroundTruthWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth file read back: request rows, device-hour rows and the run's metadata."""

    requests: pa.Table
    devices: pa.Table
    metadata: dict[str, Any]


_REQUEST_COLUMNS = [
    "trace_id", "span_id", "device_id", "route", "workload", "start_time_unix_nano",
    "end_time_unix_nano", "input_tokens", "output_tokens", "energy_j", "prefill_energy_j",
    "decode_energy_j",
]  # fmt: skip
_DEVICE_COLUMNS = [
    "device_id", "start_time_unix_nano", "end_time_unix_nano", "idle_energy_j",
    "active_energy_j", "total_energy_j", "busy_s", "energy_method",
]  # fmt: skip


def read_ground_truth(path: Path) -> GroundTruth:
    """Read a ground-truth file written by :class:`GroundTruthWriter`."""
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
    kind = table["kind"].to_numpy(zero_copy_only=False)
    return GroundTruth(
        requests=table.filter(pa.array(kind == "request")).select(_REQUEST_COLUMNS),
        devices=table.filter(pa.array(kind == "device")).select(_DEVICE_COLUMNS),
        metadata=meta,
    )


def default_ground_truth_path(database_url: str, data_dir: Path) -> Path:
    """``<warehouse file>.groundtruth.parquet`` for DuckDB, else one in ``data_dir``."""
    prefix = "duckdb:///"
    if database_url.startswith(prefix) and database_url[len(prefix) :] not in ("", ":memory:"):
        return Path(database_url[len(prefix) :]).with_name(
            Path(database_url[len(prefix) :]).name + ".groundtruth.parquet"
        )
    return data_dir / "simulate.groundtruth.parquet"
