"""Column plumbing shared by the request and sample mappings: typed arrays and rejections.

Input columns arrive as Arrow arrays (from the OTLP decoder) or Python sequences (from bulk
loaders), and attribute values may have any OpenTelemetry type. Each helper turns one input
column into a typed Arrow array on a vectorised fast path, falls back to a per-value path only
when the fast one refuses the data, and records every present-but-unusable value as a rejection
of its row, so a row is stored whole or not at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ColumnInput: TypeAlias = Sequence[Any] | pa.Array | pa.ChunkedArray

_INT64_MAX = 2**63 - 1


@dataclass
class Rejections:
    """Which rows are rejected, why (counted by reason), and the first problem in row order."""

    n: int
    eligible: np.ndarray | None = None
    """Rows that may be rejected at all (default: every row)."""
    mask: np.ndarray = field(init=False)
    by_reason: dict[str, int] = field(default_factory=dict)
    _first: tuple[int, str] | None = None
    _adds: list[tuple[np.ndarray, str, Callable[[int], str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mask = np.zeros(self.n, dtype=bool)

    def add(self, bad: np.ndarray, reason: str, describe: Callable[[int], str]) -> None:
        """Reject the rows where ``bad`` is true; ``describe(row)`` explains the first of them."""
        new = bad & ~self.mask
        if self.eligible is not None:
            new &= self.eligible
        if not new.any():
            return
        rows = np.flatnonzero(new)
        self.mask |= new
        self.by_reason[reason] = self.by_reason.get(reason, 0) + len(rows)
        self._adds.append((rows, reason, describe))
        first = int(rows[0])
        if self._first is None or first < self._first[0]:
            self._first = (first, describe(first))

    @property
    def count(self) -> int:
        """Rows rejected."""
        return int(self.mask.sum())

    @property
    def first_message(self) -> str | None:
        """The problem of the first rejected row, in input order."""
        return self._first[1] if self._first else None

    def segment(self, lo: int, hi: int) -> tuple[int, dict[str, int], str | None]:
        """Rejections among rows ``lo..hi-1``: (count, by reason, first problem in row order)."""
        by_reason: dict[str, int] = {}
        first: tuple[int, Callable[[int], str]] | None = None
        for rows, reason, describe in self._adds:
            a, b = np.searchsorted(rows, (lo, hi))
            if b > a:
                by_reason[reason] = by_reason.get(reason, 0) + int(b - a)
                if first is None or rows[a] < first[0]:
                    first = (int(rows[a]), describe)
        return (
            sum(by_reason.values()),
            by_reason,
            first[1](first[0]) if first is not None else None,
        )


class Columns:
    """Read-only access to input columns by key; every column must have the same length."""

    def __init__(self, columns: Mapping[str, ColumnInput], length_key: str) -> None:
        if length_key not in columns:
            raise ValueError(f"columns must include {length_key!r}")
        self._raw = columns
        self.n = len(columns[length_key])
        for key, values in columns.items():
            if len(values) != self.n:
                raise ValueError(
                    f"column {key!r} has {len(values)} values but {length_key!r} has {self.n}; "
                    "every column needs one value per row (None where absent)"
                )

    def get(self, key: str) -> ColumnInput | None:
        """The column for ``key``, or None when absent (all values null)."""
        return self._raw.get(key)

    def values(self, key: str) -> ColumnInput:
        """The column for ``key``, or an all-null column when absent."""
        v = self._raw.get(key)
        return pa.nulls(self.n) if v is None else v

    def first(self, *keys: str) -> list[tuple[str, ColumnInput]]:
        """The present columns among ``keys``, in the given (priority) order."""
        return [(k, v) for k in keys if (v := self._raw.get(k)) is not None]


def _as_arrow(values: ColumnInput) -> pa.Array | None:
    """``values`` as one Arrow array, or None when Arrow cannot type them (mixed types)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        return values
    kinds = {type(v) for v in values if v is not None}
    if bool in kinds and len(kinds) > 1:
        # Arrow turns a bool after a float into 0.0/1.0 (a bool after an int is an error):
        # typed per value instead, so ``False`` is "not a number" whatever precedes it.
        return None
    try:
        return pa.array(values, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        return None


def _pylist(values: ColumnInput) -> list[Any]:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.to_pylist()
    return list(values)


def _slow(
    values: ColumnInput, coerce: Callable[[Any], Any], arrow_type: pa.DataType
) -> tuple[pa.Array, np.ndarray]:
    out: list[Any] = []
    bad: list[bool] = []
    for v in _pylist(values):
        if v is None:
            out.append(None)
            bad.append(False)
            continue
        try:
            c = coerce(v)
        except _Missing:  # NaN: not measured, stored as NULL
            out.append(None)
            bad.append(False)
            continue
        except (ValueError, TypeError, OverflowError):
            c = None
        out.append(c)
        bad.append(c is None)
    return pa.array(out, arrow_type), np.array(bad, dtype=bool)


class _Missing(Exception):
    """A value that means "absent" (NaN), not an invalid one."""


def _to_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if -_INT64_MAX <= v <= _INT64_MAX else None
    if isinstance(v, float):
        return int(v) if math.isfinite(v) and v.is_integer() and abs(v) <= _INT64_MAX else None
    if isinstance(v, str):
        s = v.strip()
        try:
            return _to_int(int(s))
        except ValueError:
            return _to_int(float(s))
    return None


def _to_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and math.isnan(v):
        raise _Missing
    if isinstance(v, int | float):
        f = float(v)
    elif isinstance(v, str):
        f = float(v.strip())
    else:
        return None
    return f if math.isfinite(f) else None


def _to_str(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return None


def _no_bad(n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool)


def int_column(values: ColumnInput) -> tuple[pa.Array, np.ndarray]:
    """``values`` as int64, and a mask of present values that are not integers."""
    arr = _as_arrow(values)
    if arr is not None:
        t = arr.type
        if pa.types.is_null(t):
            return pa.nulls(len(arr), pa.int64()), _no_bad(len(arr))
        if pa.types.is_integer(t):
            try:
                return arr.cast(pa.int64()), _no_bad(len(arr))
            except pa.ArrowInvalid:
                pass  # uint64 beyond int64: per value
        elif pa.types.is_floating(t):
            ok = pc.and_(pc.is_finite(arr), pc.equal(pc.floor(arr), arr))
            if pc.all(ok).as_py() is not False:
                try:
                    return arr.cast(pa.int64()), _no_bad(len(arr))
                except pa.ArrowInvalid:
                    pass
    return _slow(values, _to_int, pa.int64())


def float_column(values: ColumnInput) -> tuple[pa.Array, np.ndarray]:
    """``values`` as float64, and a mask of present values that are not finite numbers."""
    arr = _as_arrow(values)
    if arr is not None:
        t = arr.type
        if pa.types.is_null(t):
            return pa.nulls(len(arr), pa.float64()), _no_bad(len(arr))
        if pa.types.is_floating(t) or pa.types.is_integer(t):
            f = arr.cast(pa.float64(), safe=False)
            # NaN means "not measured" (bulk loaders use it for missing values): store NULL.
            # Infinities are invalid.
            nan = pc.is_nan(f).fill_null(False)
            if pc.any(nan).as_py():
                f = pc.if_else(nan, pa.scalar(None, pa.float64()), f)
            finite = pc.is_finite(f).fill_null(True)
            bad = ~finite.to_numpy(zero_copy_only=False)
            if bad.any():
                f = pc.if_else(finite, f, pa.scalar(None, pa.float64()))
            return f, bad
    return _slow(values, _to_float, pa.float64())


def string_column(values: ColumnInput) -> tuple[pa.Array, np.ndarray]:
    """``values`` as UTF-8 strings, and a mask of present values that are not scalars."""
    arr = _as_arrow(values)
    if arr is not None:
        t = arr.type
        if pa.types.is_null(t):
            return pa.nulls(len(arr), pa.string()), _no_bad(len(arr))
        if pa.types.is_string(t):
            return arr, _no_bad(len(arr))
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return arr.cast(pa.string()), _no_bad(len(arr))
    return _slow(values, _to_str, pa.string())


def unstorable_mask(arr: pa.Array | None) -> np.ndarray | None:
    """True where a string cannot be stored on every backend: it holds a NUL character
    (PostgreSQL's text refuses U+0000) or is not valid UTF-8 (no backend takes it).

    None when every value is storable (the common case costs one scan of the data buffer).
    """
    if arr is None or len(arr) == 0 or not pa.types.is_string(arr.type):
        return None
    _, offsets_buf, data = arr.buffers()
    if data is None:
        return None
    offsets = np.frombuffer(offsets_buf, np.int32, len(arr) + 1, arr.offset * 4)
    used = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]]
    if not (used == 0).any() and _valid_utf8(arr):
        return None
    bad = true_mask(pc.match_substring(arr, "\x00"))
    if not _valid_utf8(arr):
        bad = bad | np.array([_bad_utf8(v) for v in arr.cast(pa.binary()).to_pylist()])
    return bad


def _valid_utf8(arr: pa.Array) -> bool:
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _bad_utf8(v: bytes | None) -> bool:
    if v is None:
        return False
    try:
        v.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def present_mask(values: ColumnInput) -> np.ndarray:
    """True where ``values`` has a value (of any type)."""
    arr = _as_arrow(values)
    if arr is not None:
        return arr.is_valid().to_numpy(zero_copy_only=False)
    return np.array([v is not None for v in _pylist(values)], dtype=bool)


def max_byte_length(arr: pa.Array) -> int:
    """Longest value of a string array in bytes (an upper bound of its length in characters),
    read from the offsets buffer without a compute call."""
    if len(arr) == 0:
        return 0
    if not pa.types.is_string(arr.type):
        return int(pc.max(pc.binary_length(arr)).as_py() or 0)
    offsets = np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, arr.offset * 4)
    return int(np.diff(offsets).max())


def numbers(arr: pa.Array) -> np.ndarray:
    """A numeric array as float64 numpy, nulls as NaN (NaN compares false with everything)."""
    return arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def null_mask(arr: pa.Array) -> np.ndarray:
    """True where ``arr`` is null."""
    return arr.is_null().to_numpy(zero_copy_only=False)


def true_mask(arr: pa.Array) -> np.ndarray:
    """True where the boolean ``arr`` is true (null counts as false)."""
    return arr.fill_null(False).to_numpy(zero_copy_only=False)


def coalesce(*arrays: pa.Array | None) -> pa.Array | None:
    """The first non-null value across ``arrays`` row by row; None when all are absent."""
    present = [a for a in arrays if a is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return pc.coalesce(*present)


def describe_value(v: Any, limit: int = 60) -> str:
    """A short ``repr`` of an offending value for error messages."""
    r = repr(v)
    return r if len(r) <= limit else r[: limit - 3] + "..."
