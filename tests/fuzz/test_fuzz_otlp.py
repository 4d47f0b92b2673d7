"""OTLP decoding and mapping under random and mutated input.

Properties, for trace and metric export requests built with the official protobuf classes and
for random byte mutations of their bodies:

- decoding raises nothing but :class:`~wattledger.ingest.otlp.DecodeError`;
- whenever the vectorised trace decoder accepts a body, the reference decoder gives the same
  columns (and the same mapped rows);
- mapping never raises, its counts add up (stored + rejected + not GenAI = received), and
  every stored row satisfies the warehouse's constraints: it is written into a real DuckDB
  warehouse (in a transaction rolled back afterwards) without a constraint violation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from sqlalchemy import Engine

from tests.fuzz.profiles import fuzz
from tests.fuzz.strategies import T0, metric_requests, mutated, trace_requests
from wattledger.ingest.mapping import requests as rq
from wattledger.ingest.mapping.requests import map_requests
from wattledger.ingest.mapping.samples import map_samples
from wattledger.ingest.otlp import DecodeError, _fast_traces, metrics, traces
from wattledger.ingest.schema import DEVICE_SCHEMA, REQUEST_SCHEMA, SAMPLE_SCHEMA
from wattledger.ingest.store import write_batch
from wattledger.migrations import runner
from wattledger.models import make_engine


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"duckdb:///{tmp_path_factory.mktemp('fuzz')}/w.duckdb"
    runner.upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    Path(url.removeprefix("duckdb:///")).unlink()


def _norm(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def rows_of(columns: dict[str, Any], n: int, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Columns as one dict per row of the values present (NaN made comparable)."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, col in columns.items():
        if key in skip:
            continue
        values = col.to_pylist() if isinstance(col, pa.Array | pa.ChunkedArray) else list(col)
        assert len(values) == n, key
        for row, v in zip(out, values, strict=True):
            if v is not None:
                row[key] = _norm(v)
    return out


def mapped_rows(columns: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
    m = map_requests(columns, tenant="t")
    return [_norm(r) for r in m.table.drop(["ingested_at"]).to_pylist()], m.rejected, m.non_genai


def check_trace_body(body: bytes, warehouse: Engine | None = None) -> None:
    """The properties every protobuf trace body must have."""
    try:
        decoded = traces.decode_protobuf(body)
    except DecodeError:
        with pytest.raises(DecodeError):  # the reference decoder refuses it too
            traces.parse_protobuf(body)
        return
    try:
        fast = _fast_traces.decode(body)
    except _fast_traces.NotCanonical:
        fast = None
    try:
        reference = traces.decode_reference(traces.parse_protobuf(body))
    except DecodeError:
        # Only the fast path accepts a body the reference refuses, when the corruption is in
        # an attribute value it never reads: a known divergence, pinned by
        # test_corruption_in_an_unread_attribute_is_refused below.
        assert fast is not None
        check_mapping(fast.columns, fast.count, warehouse)
        return
    assert decoded.count == reference.count
    if fast is not None:
        assert fast.count == reference.count
        # The fast path reads chunk events only for spans without a TTFT attribute; all else
        # must be identical.
        skip = (rq.FIRST_CHUNK_TIME,)
        assert rows_of(fast.columns, fast.count, skip) == rows_of(
            reference.columns, reference.count, skip
        )
        fast_chunks = rows_of(fast.columns, fast.count)
        ref_chunks = rows_of(reference.columns, reference.count)
        for f, r in zip(fast_chunks, ref_chunks, strict=True):
            if rq.FIRST_CHUNK_TIME in f:
                assert f[rq.FIRST_CHUNK_TIME] == r.get(rq.FIRST_CHUNK_TIME)
        assert mapped_rows(fast.columns) == mapped_rows(reference.columns)
    check_mapping(decoded.columns, decoded.count, warehouse)


def check_mapping(columns: dict[str, Any], count: int, warehouse: Engine | None) -> None:
    m = map_requests(columns, tenant="acme")
    assert m.received == count
    assert m.table.num_rows + m.rejected + m.non_genai == count
    assert sum(m.rejected_by_reason.values()) == m.rejected
    assert (m.first_error is None) == (m.rejected == 0)
    t = m.table
    assert t.schema.equals(REQUEST_SCHEMA)
    for f in REQUEST_SCHEMA:
        if not f.nullable:
            assert t[f.name].null_count == 0, f.name
    assert set(t["tenant"].to_pylist()) <= {"acme"}
    for row in t.to_pylist():
        assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16
        assert row["end_ts"] >= row["start_ts"]
        assert row["ttft_s"] is None or row["ttft_s"] >= 0
        assert min(row["input_tokens"], row["output_tokens"], row["cached_input_tokens"]) >= 0
        assert row["quality_score"] is None or 0 <= row["quality_score"] <= 1
        assert row["status"] in ("ok", "error")
    if warehouse is not None and t.num_rows:
        # De-duplicate the batch's keys first, as the writer does, then let the database judge.
        with warehouse.connect() as conn:
            tx = conn.begin()
            try:
                result = write_batch(conn, t, None, None)
                assert result.requests.written + result.requests.duplicates == t.num_rows
            finally:
                tx.rollback()


@fuzz(60)
@given(trace_requests())
def test_generated_trace_requests(warehouse: Engine, req: Any) -> None:
    check_trace_body(req.SerializeToString(), warehouse)


@fuzz(60)
@given(st.data())
def test_mutated_trace_bodies(data: st.DataObject) -> None:
    body = data.draw(trace_requests()).SerializeToString()
    check_trace_body(data.draw(mutated(body)))


@fuzz(30)
@given(st.binary(max_size=300))
def test_random_bytes_as_traces(body: bytes) -> None:
    check_trace_body(body)


def check_metric_columns(columns: dict[str, Any], count: int, warehouse: Engine | None) -> None:
    ms = map_samples(columns, tenant="acme")
    assert ms.received == count
    assert ms.ignored + ms.rejected <= count
    assert sum(ms.rejected_by_reason.values()) == ms.rejected
    accepted = count - ms.ignored - ms.rejected
    assert ms.samples.num_rows <= accepted and ms.devices.num_rows <= max(accepted, 0)
    assert ms.samples.schema.equals(SAMPLE_SCHEMA) and ms.devices.schema.equals(DEVICE_SCHEMA)
    for row in ms.samples.to_pylist():
        assert row["tenant"] == "acme" and row["device_id"]
        assert row["power_w"] is None or (row["power_w"] >= 0 and math.isfinite(row["power_w"]))
        assert row["energy_counter_j"] is None or row["energy_counter_j"] >= 0
        u = row["utilization_ratio"]
        assert u is None or 0 <= u <= 1
        assert row["method"] in ("counter", "power", "modeled")
    if warehouse is not None and (ms.samples.num_rows or ms.devices.num_rows):
        with warehouse.connect() as conn:
            tx = conn.begin()
            try:
                write_batch(conn, None, ms.samples, ms.devices)
            finally:
                tx.rollback()


def check_metric_body(body: bytes, fmt: str, warehouse: Engine | None = None) -> None:
    try:
        points = metrics.decode(body, fmt)
    except DecodeError:
        return
    check_metric_columns(points.columns, points.count, warehouse)


@fuzz(60)
@given(metric_requests())
def test_generated_metric_requests(warehouse: Engine, req: Any) -> None:
    check_metric_body(req.SerializeToString(), "protobuf", warehouse)


@fuzz(40)
@given(st.data())
def test_mutated_metric_bodies(data: st.DataObject) -> None:
    body = data.draw(metric_requests()).SerializeToString()
    check_metric_body(data.draw(mutated(body)), "protobuf")


@pytest.mark.xfail(
    strict=True,
    reason="the vectorised trace decoder (ingest/otlp/_fast_traces.py) never parses attribute "
    "values it does not read, so it accepts a body whose unread attribute value is corrupt, "
    "which the reference decoder refuses with 400; found by test_mutated_trace_bodies",
)
def test_corruption_in_an_unread_attribute_is_refused() -> None:
    span = Span(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=T0, end_time_unix_nano=T0
    )
    span.attributes.append(KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="c")))
    # One more attribute: "x" = an AnyValue holding field number 0, invalid on the wire.
    bad_kv = b"\x0a\x01x\x12\x02\x00\x00"
    raw_span = span.SerializeToString() + b"\x4a" + bytes([len(bad_kv)]) + bad_kv
    m = _fast_traces._M  # the fast path's own schema, with spans as raw bytes
    body = m["Request"](
        resource_spans=[m["ResourceSpans"](scope_spans=[m["ScopeSpans"](spans=[raw_span])])]
    ).SerializeToString()
    with pytest.raises(DecodeError):
        traces.parse_protobuf(body)  # the reference decoder: corrupt
    with pytest.raises(DecodeError):
        traces.decode_protobuf(body)
