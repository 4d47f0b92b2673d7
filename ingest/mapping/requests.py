"""GenAI request spans → ``inference_requests`` rows: the one place the mapping lives.

Input is a column dict keyed by OpenTelemetry attribute names (what the OTLP decoder produces,
and what bulk loaders such as the fleet simulator build without protobuf); output is an Arrow
table with exactly the warehouse columns (:data:`~wattledger.ingest.schema.REQUEST_SCHEMA`).
Everything is vectorised with Arrow compute, so ten million rows map in seconds.

Keys (all optional unless noted; a missing key means all null):

- ``trace_id`` (required, 32 hex), ``span_id`` (16 hex), ``start_time_unix_nano``,
  ``end_time_unix_nano`` (int ns), ``status_code`` (0 unset, 1 ok, 2 error);
- ``resource.service.name``, ``resource.host.name``, ``scope.name`` (the producer);
- ``first_chunk_time_unix_nano``: time of the first ``gen_ai.content.completion.chunk`` event;
- span attributes by name, current and older spellings (:data:`REQUEST_ATTRIBUTE_KEYS`).

Rules: a row is GenAI iff it has ``gen_ai.operation.name`` or a provider
(``gen_ai.provider.name``/``gen_ai.system``); others are counted and dropped. A present value
that cannot be used (wrong type, negative tokens, too long for its column, bad ids or times)
rejects its row whole. Message content is never read: no key maps to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wattledger.collectors import semconv as sc
from wattledger.ingest.mapping._arrays import (
    ColumnInput,
    Columns,
    Rejections,
    coalesce,
    describe_value,
    float_column,
    int_column,
    max_byte_length,
    numbers,
    present_mask,
    string_column,
    true_mask,
    unstorable_mask,
)
from wattledger.ingest.mapping.providers import resolve_providers
from wattledger.ingest.schema import REQUEST_SCHEMA, REQUESTS_TABLE, TIMESTAMP, max_lengths
from wattledger.models import bounds

TRACE_ID = "trace_id"
SPAN_ID = "span_id"
START_TIME = "start_time_unix_nano"
END_TIME = "end_time_unix_nano"
STATUS_CODE = "status_code"
RESOURCE_SERVICE_NAME = "resource.service.name"
RESOURCE_HOST_NAME = "resource.host.name"
SCOPE_NAME = "scope.name"
FIRST_CHUNK_TIME = "first_chunk_time_unix_nano"
#: OpenLLMetry's older spelling of the operation (``chat``, ``completion``).
LLM_REQUEST_TYPE = "llm.request.type"

# column -> attribute keys, first present wins (current name before its older spelling)
_STRINGS: dict[str, tuple[str, ...]] = {
    "team": (sc.WL_TEAM,),
    "workload": (sc.WL_WORKLOAD,),
    "request_model": (sc.GEN_AI_REQUEST_MODEL,),
    "quantization": (sc.WL_QUANTIZATION,),
    "lora_adapter": (sc.WL_LORA_ADAPTER,),
    "speculative_decoding": (sc.WL_SPECULATIVE_DECODING,),
    "device_id": (sc.WL_DEVICE_ID,),
    "node": (RESOURCE_HOST_NAME, sc.WL_NODE, sc.HOST_NAME),
    "error_type": (sc.ERROR_TYPE,),
    "producer": (SCOPE_NAME,),
}
_INTS: dict[str, tuple[str, ...]] = {
    "tensor_parallel_size": (sc.WL_TENSOR_PARALLEL_SIZE,),
    "itl_count": (sc.WL_ITL_COUNT,),
    "input_tokens": (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_PROMPT_TOKENS),
    "cached_input_tokens": (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,),
    "cache_write_input_tokens": (
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    ),
    "output_tokens": (sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_USAGE_COMPLETION_TOKENS),
    "batch_size": (sc.WL_BATCH_SIZE,),
}
_FLOATS: dict[str, tuple[str, ...]] = {
    "itl_mean_s": (sc.WL_ITL_MEAN_S,),
    "itl_p50_s": (sc.WL_ITL_P50_S,),
    "itl_p95_s": (sc.WL_ITL_P95_S,),
    "itl_max_s": (sc.WL_ITL_MAX_S,),
    "quality_score": (sc.WL_QUALITY_SCORE,),
}
#: Upper bound of each numeric column (inclusive; every one is also >= 0): see ``bounds``.
_UPPER: dict[str, float] = {
    "tensor_parallel_size": bounds.MAX_TENSOR_PARALLEL_SIZE,
    "itl_count": bounds.MAX_ITL_COUNT,
    "input_tokens": bounds.MAX_TOKENS,
    "cached_input_tokens": bounds.MAX_TOKENS,
    "cache_write_input_tokens": bounds.MAX_TOKENS,
    "output_tokens": bounds.MAX_TOKENS,
    "batch_size": bounds.MAX_BATCH_SIZE,
    "itl_mean_s": bounds.MAX_DURATION_S,
    "itl_p50_s": bounds.MAX_DURATION_S,
    "itl_p95_s": bounds.MAX_DURATION_S,
    "itl_max_s": bounds.MAX_DURATION_S,
    "quality_score": 1.0,
}
_OTHER_STRING_KEYS: dict[str, tuple[str, ...]] = {
    "service": (RESOURCE_SERVICE_NAME,),
    "operation": (sc.GEN_AI_OPERATION_NAME, LLM_REQUEST_TYPE),
    "provider": (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM, sc.SERVER_ADDRESS),
    "llm_model": (sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_MODEL),
}
_TTFT_KEYS = (sc.WL_TTFT_S, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
_PROVIDER_KEYS = (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM)
_MODEL_KEYS = (sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_MODEL)
_OPERATION_KEYS = (sc.GEN_AI_OPERATION_NAME, LLM_REQUEST_TYPE)

#: Span/resource attribute names the mapping reads; the decoder extracts exactly these.
REQUEST_ATTRIBUTE_KEYS: frozenset[str] = frozenset(
    {k for keys in (*_STRINGS.values(), *_INTS.values(), *_FLOATS.values()) for k in keys}
    | set(_TTFT_KEYS + _PROVIDER_KEYS + _MODEL_KEYS + _OPERATION_KEYS)
    | {sc.SERVER_ADDRESS, sc.GEN_AI_OPENAI_API_BASE}
) - {RESOURCE_HOST_NAME, SCOPE_NAME}

_LENGTHS = max_lengths(REQUESTS_TABLE)
_NS_PER_US = 1000
# Times outside 2000-01-01 .. 2200-01-01 are garbage (zero, seconds sent as nanoseconds, ...).
_MIN_NS = 946_684_800 * 10**9
_MAX_NS = 7_258_118_400 * 10**9
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class MappedRequests:
    """The result of mapping one batch of spans.

    Attributes:
        table: Valid GenAI rows with exactly the ``inference_requests`` columns.
        received: Rows in the input.
        non_genai: Rows dropped because they are not GenAI spans.
        rejected: Rows refused as invalid.
        rejected_by_reason: Rejected rows counted by reason (``bad_id``, ``bad_time``…).
        first_error: The first problem, in input order, naming the row and the fix.
    """

    table: pa.Table
    received: int
    non_genai: int
    rejected: int
    rejected_by_reason: dict[str, int]
    first_error: str | None
    parts: tuple[MappedRequests, ...] = ()
    """With ``segments``: one result per segment, its table a slice of ``table``."""


class _Row:
    """Names a row in messages by its span and trace id, read lazily.

    With ``starts`` (the first row of each segment), items are numbered within their segment.
    """

    def __init__(self, cols: Columns, starts: np.ndarray | None = None) -> None:
        self._cols = cols
        self._starts = starts
        self._ids: tuple[list[object], list[object]] | None = None

    def __call__(self, i: int) -> str:
        if self._ids is None:
            t, s = self._cols.get(TRACE_ID), self._cols.get(SPAN_ID)
            n = self._cols.n
            self._ids = (
                list(t) if t is not None else [None] * n,
                list(s) if s is not None else [None] * n,
            )
        t_id, s_id = self._ids[0][i], self._ids[1][i]
        item = i
        if self._starts is not None:
            item = i - int(self._starts[np.searchsorted(self._starts, i, "right") - 1])
        return f"span {_pyval(s_id)} of trace {_pyval(t_id)} (item {item})"


def _pyval(v: object) -> str:
    v = v.as_py() if isinstance(v, pa.Scalar) else v
    return v.hex() if isinstance(v, bytes) else str(v)


def _typed(
    cols: Columns,
    keys: tuple[str, ...],
    convert: object,
    rej: Rejections,
    row: _Row,
    expected: str,
) -> pa.Array | None:
    arrays = []
    for key, values in cols.first(*keys):
        arr, bad = convert(values)  # type: ignore[operator]
        if bad.any():
            vals = values

            def describe(i: int, key: str = key, vals: ColumnInput = vals) -> str:
                return (
                    f"{row(i)}: attribute {key} has value {describe_value(_pyval(vals[i]))}, "
                    f"expected {expected}"
                )

            rej.add(bad, "bad_type", describe)
        arrays.append(arr)
    return coalesce(*arrays)


def _check_length(
    column: str, arr: pa.Array | None, keys: tuple[str, ...], rej: Rejections, row: _Row
) -> None:
    limit = _LENGTHS.get(column)
    if arr is None or limit is None or max_byte_length(arr) <= limit:
        return
    too_long = true_mask(pc.greater(pc.utf8_length(arr), limit))
    if too_long.any():
        rej.add(
            too_long,
            "too_long",
            lambda i: (
                f"{row(i)}: {' or '.join(keys)} is longer than {limit} characters "
                f"(the {column} column's limit)"
            ),
        )


def _check_storable(
    arr: pa.Array | None, keys: tuple[str, ...], rej: Rejections, row: _Row
) -> None:
    bad = unstorable_mask(arr)
    if bad is not None:
        rej.add(
            bad,
            "bad_string",
            lambda i: (
                f"{row(i)}: {' or '.join(keys)} holds a NUL character or invalid UTF-8, "
                "which cannot be stored; send text without U+0000"
            ),
        )


_HEX = np.zeros(256, dtype=bool)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = True


def _valid_hex(arr: pa.Array, hex_len: int) -> np.ndarray:
    """True where a value is exactly ``hex_len`` lower-case hex digits, not all zero."""
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=bool)
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4)
    ok = (np.diff(offsets) == hex_len) & arr.is_valid().to_numpy(zero_copy_only=False)
    if not ok.any():
        return ok
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    rows = np.flatnonzero(ok)
    chars = data[offsets[rows][:, None] + np.arange(hex_len)]
    ok[rows] = _HEX[chars].all(axis=1) & (chars != ord("0")).any(axis=1)
    return ok


def _ids(cols: Columns, key: str, hex_len: int, rej: Rejections, row: _Row) -> pa.Array:
    values = cols.get(key)
    if values is None:
        arr = pa.nulls(cols.n, pa.string())
    else:
        arr, bad = string_column(values)
        rej.add(bad, "bad_id", lambda i: f"{row(i)}: {key} is not a hex string")
    ok = _valid_hex(arr, hex_len)
    if not ok.all() and not pa.types.is_null(arr.type):
        # OTLP/JSON ids are case-insensitive: retry the failures lower-cased.
        arr = pc.ascii_lower(arr)
        ok = _valid_hex(arr, hex_len)
    rej.add(
        ~ok,
        "bad_id",
        lambda i: f"{row(i)}: {key} must be {hex_len} hex digits and not all zero",
    )
    return arr


def _times(cols: Columns, rej: Rejections, row: _Row) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for key in (START_TIME, END_TIME):
        values = cols.get(key)
        if values is None:
            arr, bad = pa.nulls(cols.n, pa.int64()), np.zeros(cols.n, dtype=bool)
        else:
            arr, bad = int_column(values)
        ns = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        bad |= (ns < _MIN_NS) | (ns > _MAX_NS)
        rej.add(
            bad,
            "bad_time",
            lambda i, key=key: (
                f"{row(i)}: {key} is missing or not a time between "
                "2000 and 2200 in nanoseconds since the epoch"
            ),
        )
        out.append(ns)
    start, end = out
    rej.add(end < start, "bad_time", lambda i: f"{row(i)}: the span ends before it starts")
    rej.add(
        end - start > bounds.MAX_DURATION_S * 1e9,
        "bad_time",
        lambda i: f"{row(i)}: the span lasts longer than {bounds.MAX_DURATION_S:g} s",
    )
    return start, end


def _to_ts(ns: np.ndarray) -> pa.Array:
    return pa.array(ns // _NS_PER_US, pa.int64()).cast(TIMESTAMP)


def _nonnegative(
    name: str, arr: pa.Array | None, rej: Rejections, row: _Row, upper: float | None = None
) -> None:
    if arr is None or arr.null_count == len(arr):
        return
    x = numbers(arr)
    mask = x < 0
    what = "negative"
    if upper is not None:
        mask |= x > upper
        what = f"outside 0..{upper:g}"
    rej.add(mask, "bad_value", lambda i: f"{row(i)}: {name} is {what}")


def _cached_within_input(
    cached: pa.Array | None,
    written: pa.Array | None,
    input_tokens: pa.Array | None,
    rej: Rejections,
    row: _Row,
) -> None:
    """Cache reads and cache writes are parts of the input tokens: more of them than input
    tokens would price the rest below zero (a negative cost)."""
    if cached is None and written is None:
        return
    n = len(cached if cached is not None else written)  # type: ignore[arg-type]
    total = np.zeros(n) if input_tokens is None else np.nan_to_num(numbers(input_tokens), nan=0.0)
    read = np.zeros(n) if cached is None else np.nan_to_num(numbers(cached), nan=0.0)
    wrote = np.zeros(n) if written is None else np.nan_to_num(numbers(written), nan=0.0)
    rej.add(
        read + wrote > total,
        "bad_value",
        lambda i: (
            f"{row(i)}: cache reads ({sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS} = {read[i]:.0f}) "
            f"and writes ({sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS} = {wrote[i]:.0f}) are more "
            f"than the input tokens ({total[i]:.0f}); both are counted within "
            f"{sc.GEN_AI_USAGE_INPUT_TOKENS}"
        ),
    )


def map_requests(
    columns: Mapping[str, ColumnInput],
    *,
    tenant: str,
    provider_hosts: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
    segments: Sequence[int] | None = None,
) -> MappedRequests:
    """Map span columns to ``inference_requests`` rows, keeping only valid GenAI spans.

    Args:
        columns: Column dict keyed as described in the module docstring.
        tenant: Tenant stamped on every row (the API key's).
        provider_hosts: Extra ``host suffix -> provider`` pairs checked before the built-in
            :data:`~wattledger.collectors.semconv.PROVIDER_HOSTS`.
        now: Ingestion time stamped on the rows (default: now, UTC).
        segments: Row counts of consecutive segments (e.g. the request bodies decoded
            together); each gets its own result in ``parts``, numbered from its first row.

    Raises:
        ValueError: the columns are malformed (no ``trace_id``, unequal lengths, segments
            that do not add up) or the tenant is empty or too long.
    """
    if not tenant or len(tenant) > _LENGTHS["tenant"]:
        raise ValueError(f"tenant must be 1..{_LENGTHS['tenant']} characters, got {tenant!r}")
    cols = Columns(columns, TRACE_ID)
    n = cols.n
    starts = None
    if segments is not None:
        if sum(segments) != n or any(c < 0 for c in segments):
            raise ValueError(f"segments {list(segments)} do not add up to the {n} rows")
        starts = np.cumsum([0, *segments])[:-1]
    genai = np.zeros(n, dtype=bool)
    for _, values in cols.first(*_OPERATION_KEYS, *_PROVIDER_KEYS):
        genai |= present_mask(values)
    # Only GenAI rows can be rejected: problems of dropped rows are not the sender's concern.
    rej = Rejections(n, eligible=genai)
    row = _Row(cols, starts)

    def strings(keys: tuple[str, ...]) -> pa.Array | None:
        return _typed(cols, keys, string_column, rej, row, "a string")

    operation = strings(_OPERATION_KEYS)
    provider_attr = strings(_PROVIDER_KEYS)

    trace_id = _ids(cols, TRACE_ID, 32, rej, row)
    span_id = _ids(cols, SPAN_ID, 16, rej, row)
    start_ns, end_ns = _times(cols, rej, row)

    out: dict[str, pa.Array] = {}
    for column, keys in _STRINGS.items():
        out[column] = strings(keys)
    for column, keys in _INTS.items():
        arr = _typed(cols, keys, int_column, rej, row, "an integer")
        _nonnegative(" or ".join(keys), arr, rej, row, _UPPER[column])
        out[column] = arr
    for column, keys in _FLOATS.items():
        arr = _typed(cols, keys, float_column, rej, row, "a number")
        _nonnegative(" or ".join(keys), arr, rej, row, _UPPER[column])
        out[column] = arr
    _cached_within_input(
        out["cached_input_tokens"], out["cache_write_input_tokens"], out["input_tokens"], rej, row
    )

    ttft = _typed(cols, _TTFT_KEYS, float_column, rej, row, "a number of seconds")
    chunk = cols.get(FIRST_CHUNK_TIME)
    if chunk is not None:
        chunk_ns, bad = int_column(chunk)
        rej.add(bad, "bad_type", lambda i: f"{row(i)}: {FIRST_CHUNK_TIME} is not an integer")
        delta_ns = pc.subtract(chunk_ns, pa.array(start_ns, pa.int64()))
        from_event = pc.divide(delta_ns.cast(pa.float64(), safe=False), 1e9)
        ttft = coalesce(ttft, from_event)
    _nonnegative("time to first token", ttft, rej, row, bounds.MAX_DURATION_S)

    service = strings((RESOURCE_SERVICE_NAME,))
    model = strings(_MODEL_KEYS)
    server = strings((sc.SERVER_ADDRESS,))
    api_base = strings((sc.GEN_AI_OPENAI_API_BASE,))
    provider = resolve_providers(provider_attr, server, api_base, n, provider_hosts)

    def filled(arr: pa.Array | None, default: str) -> pa.Array:
        return pa.repeat(default, n) if arr is None else arr.fill_null(default)

    status_code, bad = int_column(cols.values(STATUS_CODE))
    rej.add(bad, "bad_type", lambda i: f"{row(i)}: status code is not an integer")
    error = pc.equal(status_code.fill_null(0), 2)
    if out["error_type"] is not None:
        error = pc.or_(error, pc.is_valid(out["error_type"]))

    start_ts = _to_ts(start_ns)
    first_token_ts = None
    if ttft is not None:
        seconds = numbers(ttft)
        known = ~np.isnan(seconds) & (seconds >= 0) & (seconds < 1e6)
        first_us = start_ns // _NS_PER_US + np.rint(np.where(known, seconds, 0) * 1e6).astype(
            np.int64
        )
        first_token_ts = pa.array(first_us, pa.int64(), mask=~known).cast(TIMESTAMP)

    ingested = now or dt.datetime.now(dt.UTC)
    out.update(
        trace_id=trace_id,
        span_id=span_id,
        tenant=pa.repeat(tenant, n),
        service=filled(service, "unknown_service"),
        operation=filled(operation, _UNKNOWN),
        provider=provider,
        llm_model=filled(model, _UNKNOWN),
        start_ts=start_ts,
        first_token_ts=first_token_ts,
        end_ts=_to_ts(end_ns),
        duration_s=pa.array((end_ns - start_ns) / 1e9, pa.float64()),
        ttft_s=ttft,
        status=pc.if_else(error, "error", "ok"),
        ingested_at=pa.repeat(pa.scalar(ingested, TIMESTAMP), n),
    )
    for name in ("input_tokens", "cached_input_tokens", "output_tokens"):
        tokens = out[name]
        out[name] = pa.repeat(0, n).cast(pa.int64()) if tokens is None else tokens.fill_null(0)
    for column, arr in out.items():
        names = _STRINGS.get(column) or _OTHER_STRING_KEYS.get(column)
        if names:
            _check_length(column, arr, names, rej, row)
            _check_storable(arr, names, rej, row)

    keep = genai & ~rej.mask
    table = _assemble(out, n).filter(pa.array(keep))
    return MappedRequests(
        table=table,
        received=n,
        non_genai=int((~genai).sum()),
        rejected=rej.count,
        rejected_by_reason=dict(rej.by_reason),
        first_error=rej.first_message,
        parts=() if segments is None else _split(table, keep, genai, rej, segments),
    )


def _split(
    table: pa.Table,
    keep: np.ndarray,
    genai: np.ndarray,
    rej: Rejections,
    segments: Sequence[int],
) -> tuple[MappedRequests, ...]:
    parts, lo, at = [], 0, 0
    for count in segments:
        hi = lo + count
        kept = int(keep[lo:hi].sum())
        rejected, by_reason, first = rej.segment(lo, hi)
        parts.append(
            MappedRequests(
                table=table.slice(at, kept),
                received=count,
                non_genai=int((~genai[lo:hi]).sum()),
                rejected=rejected,
                rejected_by_reason=by_reason,
                first_error=first,
            )
        )
        lo, at = hi, at + kept
    return tuple(parts)


def _assemble(out: dict[str, pa.Array | None], n: int) -> pa.Table:
    arrays = []
    for f in REQUEST_SCHEMA:
        arr = out.get(f.name)
        if arr is None:
            arr = pa.nulls(n, f.type)
        elif arr.type != f.type:
            arr = arr.cast(f.type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=REQUEST_SCHEMA)


def request_table_from_columns(
    columns: Mapping[str, ColumnInput],
    *,
    tenant: str,
    provider_hosts: Mapping[str, str] | None = None,
    on_invalid: Literal["raise", "drop"] = "raise",
) -> pa.Table:
    """Map span columns to an Arrow table with exactly the ``inference_requests`` columns.

    The public entry for bulk loaders (e.g. the fleet simulator's backfill); the OTLP receiver
    uses the same code through :func:`map_requests`. Pass the result to
    :func:`~wattledger.ingest.write_requests`.

    Args:
        columns: Keys as in this module's docstring: ``trace_id``, ``span_id``,
            ``start_time_unix_nano``, ``end_time_unix_nano``, ``status_code``,
            ``resource.service.name``, ``resource.host.name`` and attribute names such as
            ``gen_ai.provider.name`` or ``wattledger.ttft_s``; values are sequences or Arrow
            arrays of equal length, None where absent.
        tenant: Tenant stamped on every row.
        provider_hosts: Extra ``host suffix -> provider`` pairs.
        on_invalid: ``raise`` (default) raises on any invalid or non-GenAI row, naming the
            first; ``drop`` silently leaves them out.

    Raises:
        ValueError: malformed columns, or (with ``on_invalid="raise"``) invalid rows.
    """
    mapped = map_requests(columns, tenant=tenant, provider_hosts=provider_hosts)
    if on_invalid == "raise":
        if mapped.rejected:
            raise ValueError(
                f"{mapped.rejected} of {mapped.received} rows are invalid; first: "
                f"{mapped.first_error}"
            )
        if mapped.non_genai:
            raise ValueError(
                f"{mapped.non_genai} of {mapped.received} rows are not GenAI spans: give each "
                f"{sc.GEN_AI_OPERATION_NAME} or {sc.GEN_AI_PROVIDER_NAME}"
            )
    return mapped.table
