"""The public write API bulk loaders use: idempotent, on DuckDB and PostgreSQL."""

from __future__ import annotations

import pyarrow as pa
import pytest
from ingest_helpers import T0_NS, rows

from wattledger.ingest import (
    REQUEST_SCHEMA,
    WriteResult,
    request_table_from_columns,
    sample_tables_from_columns,
    write_requests,
    write_samples,
)


def _requests(n: int, device: str | None = None) -> pa.Table:
    return request_table_from_columns(
        {
            "trace_id": [f"{i + 1:032x}" for i in range(n)],
            "span_id": [f"{i + 1:016x}" for i in range(n)],
            "start_time_unix_nano": [T0_NS + i for i in range(n)],
            "end_time_unix_nano": [T0_NS + 10**9 + i for i in range(n)],
            "gen_ai.provider.name": ["groq"] * n,
            "gen_ai.request.model": ["llama"] * n,
            "gen_ai.usage.output_tokens": list(range(n)),
            "wattledger.device.id": [device] * n,
            "wattledger.team": [""] * n,  # an empty string is a value, not NULL
        },
        tenant="acme",
    )


def test_write_requests_is_idempotent(engine) -> None:  # type: ignore[no-untyped-def]
    table = _requests(1000, device="GPU-7")
    assert write_requests(engine, table) == WriteResult(written=1000, duplicates=0)
    both = pa.concat_tables([table.slice(0, 10), _requests(1010).slice(1000)])
    assert write_requests(engine, both) == WriteResult(written=10, duplicates=10)
    (r,) = rows(
        engine,
        "SELECT count(*) AS n, sum(output_tokens) AS t, "
        "count(device_id) AS d, min(team) AS team FROM inference_requests",
    )
    assert (r["n"], r["t"], r["d"], r["team"]) == (1010, sum(range(1010)), 1000, "")
    assert rows(engine, "SELECT device_id, vendor FROM devices") == [
        {"device_id": "GPU-7", "vendor": "unknown"}
    ]


def test_write_samples_upserts_devices_then_samples(engine) -> None:  # type: ignore[no-untyped-def]
    write_requests(engine, _requests(1, device="GPU-7"))  # a placeholder device first
    samples, devices = sample_tables_from_columns(
        {
            "metric": ["hw.power", "hw.energy", "hw.power"],
            "time_unix_nano": [T0_NS, T0_NS, T0_NS + 10**9],
            "value": [300.0, 10.0, 310.0],
            "hw.id": ["GPU-7"] * 3,
            "hw.vendor": ["nvidia"] * 3,
            "hw.model": ["H100-SXM"] * 3,
            "wattledger.power.source": ["nvml"] * 3,
        },
        tenant="acme",
    )
    assert write_samples(engine, samples, devices) == WriteResult(2, 0, 1)
    assert write_samples(engine, samples, devices) == WriteResult(0, 2, 1)
    (d,) = rows(engine, "SELECT vendor, hardware_model, power_source FROM devices")
    assert d == {"vendor": "nvidia", "hardware_model": "H100-SXM", "power_source": "nvml"}


def test_tables_without_the_warehouse_columns_are_refused(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="lacks column"):
        write_requests(engine, pa.table({"trace_id": ["a"]}))
    assert write_requests(engine, REQUEST_SCHEMA.empty_table()) == WriteResult(0, 0)
