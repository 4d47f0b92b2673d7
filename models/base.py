"""The declarative ``Base`` every warehouse table derives from, and the column types we share.

- ``datetime`` columns are ``TIMESTAMP WITH TIME ZONE`` and always hold UTC (:class:`UTCDateTime`
  rejects naive values rather than guessing their zone).
- ``Decimal`` columns are ``NUMERIC(20, 10)``: money to a ten-billionth of a dollar, because a
  single request's energy cost is often below a micro-dollar.
- Constraint names follow one convention so Alembic can create, compare and drop them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Index, MetaData, Numeric, TypeDecorator
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Money: NUMERIC(20, 10), in US dollars.
Money = Numeric(20, 10, asdecimal=True)
#: Prices per one million tokens: NUMERIC(18, 8), in US dollars.
PricePerMTok = Numeric(18, 8, asdecimal=True)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that stores and returns timezone-aware UTC datetimes."""

    impl = TIMESTAMP(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: wattledger stores UTC-aware datetimes")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base: shared metadata, naming convention and Python→SQL type map."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        Decimal: Money,
        int: BigInteger(),
    }


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def time_index(*columns: str) -> Index:
    """A B-tree index for time-range scans, created on PostgreSQL only.

    DuckDB prunes time ranges with its per-row-group min/max zonemaps and does not use an ART
    index for range scans, while every ART index slows bulk inserts; so there we create none.
    """
    return Index(None, *columns).ddl_if(dialect="postgresql")
