"""The small shim where DuckDB and PostgreSQL differ, and shared SQL expressions.

Everything else in analytics stays in the subset both dialects share: ``date_trunc``,
``FILTER (WHERE …)``, ``percentile_cont … WITHIN GROUP``, CTEs and window functions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

#: One millionth, as an exact NUMERIC (token counts × price per 1M tokens stay exact).
PER_MILLION = sa.literal(Decimal("0.000001"), sa.Numeric(7, 6))


def epoch_s(column: Any) -> ColumnElement[float]:
    """Seconds since the Unix epoch of a timestamp, as DOUBLE on both backends."""
    return sa.cast(sa.extract("epoch", column), sa.Double)


def trunc(unit: str, column: Any) -> ColumnElement[Any]:
    """``date_trunc(unit, column)`` in UTC (sessions run in UTC on both backends)."""
    return sa.func.date_trunc(unit, column, type_=column.type)


def percentile(fraction: float, column: Any) -> ColumnElement[float]:
    """Continuous percentile of ``column`` within each group (NULLs ignored)."""
    return sa.func.percentile_cont(fraction).within_group(column)
