"""Cache-write tokens: requests record the input tokens written to a provider's cache, and
prices carry the cache-write rate, so cache writes are no longer priced as plain input. Prices
also say where they come from (``source``). Grid carbon intensity can follow the hour
(``grid_intensity_hourly``), and each request's CO2e says which intensity it used.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _has_column(table: str, column: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = :table AND column_name = :column"
        ),
        {"table": table, "column": column},
    )
    return bool(found.scalar())


def upgrade() -> None:
    # A DuckDB downgrade keeps this column (see below), so a later upgrade finds it there.
    if not _has_column("inference_requests", "cache_write_input_tokens"):
        op.add_column(
            "inference_requests",
            sa.Column("cache_write_input_tokens", sa.BigInteger(), nullable=True),
        )
    op.add_column(
        "prices",
        sa.Column("cache_write_per_mtok_usd", sa.Numeric(precision=18, scale=8), nullable=True),
    )
    op.add_column("prices", sa.Column("source", sa.String(length=300), nullable=True))
    op.add_column("request_costs", sa.Column("co2e_source", sa.String(length=12), nullable=True))
    op.create_table(
        "grid_intensity_hourly",
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("hour_start", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("gco2e_per_kwh", sa.Double(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("loaded_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.CheckConstraint(
            "gco2e_per_kwh >= 0", name=op.f("ck_grid_intensity_hourly_intensity_nonnegative")
        ),
        sa.PrimaryKeyConstraint("site", "hour_start", name=op.f("pk_grid_intensity_hourly")),
    )


def downgrade() -> None:
    op.drop_table("grid_intensity_hourly")
    op.drop_column("request_costs", "co2e_source")
    op.drop_column("prices", "source")
    op.drop_column("prices", "cache_write_per_mtok_usd")
    if op.get_bind().dialect.name == "duckdb":
        # DuckDB cannot drop a column of a table another table's foreign key references
        # (request_costs -> inference_requests). The nullable column stays; version 0005 code
        # never reads or writes it.
        return
    op.drop_column("inference_requests", "cache_write_input_tokens")
