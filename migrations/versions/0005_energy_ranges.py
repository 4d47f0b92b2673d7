"""Energy ranges and idle provenance: each request's and rollup's direct energy carries the
range it can lie in, and each device-hour records the idle baseline used and its evidence.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RANGED = ("request_costs", "rollup_hourly", "rollup_daily")


def upgrade() -> None:
    for table in _RANGED:
        op.add_column(table, sa.Column("energy_j_low", sa.Double(), nullable=True))
        op.add_column(table, sa.Column("energy_j_high", sa.Double(), nullable=True))
    op.add_column("device_energy_hourly", sa.Column("idle_power_w", sa.Double(), nullable=True))
    op.add_column(
        "device_energy_hourly", sa.Column("idle_source", sa.String(length=12), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("device_energy_hourly", "idle_source")
    op.drop_column("device_energy_hourly", "idle_power_w")
    for table in reversed(_RANGED):
        op.drop_column(table, "energy_j_high")
        op.drop_column(table, "energy_j_low")
