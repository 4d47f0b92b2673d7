"""Quarantined requests per tenant, hour and reason, so they can be shown, not only logged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantine_hourly",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("bucket_start", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "bucket_start", "reason", name=op.f("pk_quarantine_hourly")
        ),
    )
    if op.get_bind().dialect.name == "postgresql":  # time index: PostgreSQL only
        op.create_index(
            op.f("ix_quarantine_hourly_bucket_start"), "quarantine_hourly", ["bucket_start"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(op.f("ix_quarantine_hourly_bucket_start"), table_name="quarantine_hourly")
    op.drop_table("quarantine_hourly")
