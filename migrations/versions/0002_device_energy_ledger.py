"""Device energy ledger: per device and hour, measured = attributed + idle.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:25:19.150077
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('device_energy_hourly',
    sa.Column('device_id', sa.String(length=200), nullable=False),
    sa.Column('bucket_start', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('measured_j', sa.Double(), nullable=False),
    sa.Column('attributed_j', sa.Double(), nullable=False),
    sa.Column('idle_j', sa.Double(), nullable=False),
    sa.Column('unallocated_idle_j', sa.Double(), nullable=False),
    sa.Column('active_s', sa.Double(), nullable=False),
    sa.Column('idle_s', sa.Double(), nullable=False),
    sa.Column('coverage_s', sa.Double(), nullable=False),
    sa.Column('mean_power_w', sa.Double(), nullable=True),
    sa.Column('mean_utilization_ratio', sa.Double(), nullable=True),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('gaps', sa.BigInteger(), nullable=False),
    sa.Column('computed_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.CheckConstraint('measured_j >= 0', name=op.f('ck_device_energy_hourly_measured_nonnegative')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.device_id'], name=op.f('fk_device_energy_hourly_device_id_devices')),
    sa.PrimaryKeyConstraint('device_id', 'bucket_start', name=op.f('pk_device_energy_hourly'))
    )
    if op.get_bind().dialect.name == "postgresql":  # time index: PostgreSQL only
        op.create_index(op.f('ix_device_energy_hourly_bucket_start'), 'device_energy_hourly', ['bucket_start'], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # time index: PostgreSQL only
        op.drop_index(op.f('ix_device_energy_hourly_bucket_start'), table_name='device_energy_hourly')
    op.drop_table('device_energy_hourly')
