"""Arrow schemas of the warehouse tables ingest writes, derived from the SQLAlchemy models.

Mapping functions return tables with exactly these columns, in this order, so a batch goes into
the warehouse with one ``INSERT … SELECT`` (DuckDB) or one ``COPY`` (PostgreSQL) and no renaming.
Deriving them from the models means a new column cannot be forgotten here.
"""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import BigInteger, Boolean, Float, Integer, Numeric, String, Table, Text

from wattledger.models import Device, InferenceRequest, PowerSample, UTCDateTime

#: Timestamps are microseconds since the epoch, UTC: the finest resolution PostgreSQL stores.
TIMESTAMP = pa.timestamp("us", tz="UTC")


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema matching ``table``'s columns, types, order and nullability.

    Raises:
        TypeError: a column has a type ingest does not know how to carry.
    """
    fields = []
    for column in table.columns:
        col_type = column.type
        arrow_type: pa.DataType
        if isinstance(col_type, UTCDateTime):
            arrow_type = TIMESTAMP
        elif isinstance(col_type, Numeric) and not isinstance(col_type, Float):
            arrow_type = pa.decimal128(col_type.precision or 38, col_type.scale or 0)
        elif isinstance(col_type, Float):
            arrow_type = pa.float64()
        elif isinstance(col_type, BigInteger | Integer):
            arrow_type = pa.int64()
        elif isinstance(col_type, Boolean):
            arrow_type = pa.bool_()
        elif isinstance(col_type, String | Text):
            arrow_type = pa.string()
        else:
            raise TypeError(f"column {table.name}.{column.name} has unsupported type {col_type!r}")
        fields.append(pa.field(column.name, arrow_type, nullable=bool(column.nullable)))
    return pa.schema(fields)


def max_lengths(table: Table) -> dict[str, int]:
    """Declared ``VARCHAR(n)`` lengths of ``table``'s string columns, by column name."""
    return {
        c.name: int(c.type.length)
        for c in table.columns
        if isinstance(c.type, String) and c.type.length is not None
    }


REQUESTS_TABLE: Table = InferenceRequest.__table__  # type: ignore[assignment]
SAMPLES_TABLE: Table = PowerSample.__table__  # type: ignore[assignment]
DEVICES_TABLE: Table = Device.__table__  # type: ignore[assignment]

#: ``inference_requests`` as Arrow.
REQUEST_SCHEMA = arrow_schema(REQUESTS_TABLE)
#: ``power_samples`` as Arrow.
SAMPLE_SCHEMA = arrow_schema(SAMPLES_TABLE)
#: ``devices`` as Arrow.
DEVICE_SCHEMA = arrow_schema(DEVICES_TABLE)
