"""Initial schema: devices, samples, requests, prices, costs, rollups and operations tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:14:21.085423
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postgres() -> bool:
    # Time-range indexes exist on PostgreSQL only; see wattledger.models.base.time_index.
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('key_hash', sa.String(length=200), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.TIMESTAMP(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_api_keys'))
    )
    op.create_table('devices',
    sa.Column('device_id', sa.String(length=200), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('vendor', sa.String(length=50), nullable=False),
    sa.Column('hardware_model', sa.String(length=100), nullable=False),
    sa.Column('node', sa.String(length=200), nullable=True),
    sa.Column('device_index', sa.BigInteger(), nullable=True),
    sa.Column('uuid', sa.String(length=100), nullable=True),
    sa.Column('site', sa.String(length=100), nullable=True),
    sa.Column('power_source', sa.String(length=30), nullable=False),
    sa.Column('tdp_w', sa.Double(), nullable=True),
    sa.Column('idle_power_w', sa.Double(), nullable=True),
    sa.Column('hourly_cost_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('first_seen_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_devices'))
    )
    op.create_table('energy_tariffs',
    sa.Column('site', sa.String(length=100), nullable=False),
    sa.Column('valid_from', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('valid_to', sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('usd_per_kwh', sa.Numeric(precision=18, scale=8), nullable=False),
    sa.Column('pue', sa.Double(), nullable=False),
    sa.Column('grid_gco2e_per_kwh', sa.Double(), nullable=True),
    sa.CheckConstraint('pue >= 1', name=op.f('ck_energy_tariffs_pue_at_least_one')),
    sa.PrimaryKeyConstraint('site', 'valid_from', name=op.f('pk_energy_tariffs'))
    )
    op.create_table('hardware_rates',
    sa.Column('hardware_model', sa.String(length=100), nullable=False),
    sa.Column('site', sa.String(length=100), nullable=False),
    sa.Column('valid_from', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('valid_to', sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('usd_per_device_hour', sa.Numeric(precision=18, scale=8), nullable=False),
    sa.PrimaryKeyConstraint('hardware_model', 'site', 'valid_from', name=op.f('pk_hardware_rates'))
    )
    op.create_table('prices',
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('llm_model', sa.String(length=200), nullable=False),
    sa.Column('origin', sa.String(length=10), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('valid_from', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('valid_to', sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('input_per_mtok_usd', sa.Numeric(precision=18, scale=8), nullable=False),
    sa.Column('output_per_mtok_usd', sa.Numeric(precision=18, scale=8), nullable=False),
    sa.Column('cached_input_per_mtok_usd', sa.Numeric(precision=18, scale=8), nullable=True),
    sa.Column('updated_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.CheckConstraint("origin IN ('list', 'contract')", name=op.f('ck_prices_origin_known')),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_prices_valid_range')),
    sa.PrimaryKeyConstraint('provider', 'llm_model', 'origin', 'tenant', 'valid_from', name=op.f('pk_prices'))
    )
    op.create_table('recommendations',
    sa.Column('recommendation_id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('workload', sa.String(length=100), nullable=False),
    sa.Column('from_route', sa.String(length=400), nullable=False),
    sa.Column('to_route', sa.String(length=400), nullable=True),
    sa.Column('share_to_move', sa.Double(), nullable=True),
    sa.Column('savings_usd_month', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('savings_usd_month_low', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('savings_usd_month_high', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('savings_kwh_month', sa.Double(), nullable=True),
    sa.Column('savings_kg_co2e_month', sa.Double(), nullable=True),
    sa.Column('ttft_p95_before_s', sa.Double(), nullable=True),
    sa.Column('ttft_p95_after_s', sa.Double(), nullable=True),
    sa.Column('itl_p95_before_s', sa.Double(), nullable=True),
    sa.Column('itl_p95_after_s', sa.Double(), nullable=True),
    sa.Column('samples_from', sa.BigInteger(), nullable=True),
    sa.Column('samples_to', sa.BigInteger(), nullable=True),
    sa.Column('basis', sa.String(length=10), nullable=False),
    sa.Column('risks', sa.Text(), nullable=True),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('realised_savings_usd_month', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('created_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('updated_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.CheckConstraint("basis IN ('measured', 'predicted')", name=op.f('ck_recommendations_basis_known')),
    sa.CheckConstraint("kind IN ('reroute', 'consolidate', 'split-prefill-decode', 'right-size')", name=op.f('ck_recommendations_kind_known')),
    sa.PrimaryKeyConstraint('recommendation_id', name=op.f('pk_recommendations'))
    )
    if _postgres():
        op.create_index(op.f('ix_recommendations_created_at'), 'recommendations', ['created_at'], unique=False)
    op.create_table('report_runs',
    sa.Column('iso_week', sa.String(length=10), nullable=False),
    sa.Column('recipients_key', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.BigInteger(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('sent_at', sa.TIMESTAMP(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f('ck_report_runs_status_known')),
    sa.PrimaryKeyConstraint('iso_week', 'recipients_key', name=op.f('pk_report_runs'))
    )
    op.create_table('rollup_daily',
    sa.Column('bucket_start', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('workload', sa.String(length=100), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('hardware_model', sa.String(length=100), nullable=False),
    sa.Column('llm_model', sa.String(length=200), nullable=False),
    sa.Column('quantization', sa.String(length=30), nullable=False),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('error_requests', sa.BigInteger(), nullable=False),
    sa.Column('unpriced_requests', sa.BigInteger(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('energy_measured_j', sa.Double(), nullable=False),
    sa.Column('energy_modeled_j', sa.Double(), nullable=False),
    sa.Column('idle_energy_j', sa.Double(), nullable=False),
    sa.Column('cost_api_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_hardware_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_energy_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_idle_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_total_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_per_mtok_input_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('cost_per_mtok_output_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('cost_per_mtok_blended_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('tokens_per_j', sa.Double(), nullable=True),
    sa.Column('co2e_g', sa.Double(), nullable=False),
    sa.Column('ttft_p50_s', sa.Double(), nullable=True),
    sa.Column('ttft_p95_s', sa.Double(), nullable=True),
    sa.Column('ttft_p99_s', sa.Double(), nullable=True),
    sa.Column('itl_p50_s', sa.Double(), nullable=True),
    sa.Column('itl_p95_s', sa.Double(), nullable=True),
    sa.Column('itl_p99_s', sa.Double(), nullable=True),
    sa.Column('mean_batch_size', sa.Double(), nullable=True),
    sa.Column('output_tokens_per_s', sa.Double(), nullable=True),
    sa.Column('slo_met_requests', sa.BigInteger(), nullable=True),
    sa.Column('computed_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('bucket_start', 'service', 'tenant', 'workload', 'provider', 'hardware_model', 'llm_model', 'quantization', name=op.f('pk_rollup_daily'))
    )
    op.create_table('rollup_hourly',
    sa.Column('bucket_start', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('workload', sa.String(length=100), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('hardware_model', sa.String(length=100), nullable=False),
    sa.Column('llm_model', sa.String(length=200), nullable=False),
    sa.Column('quantization', sa.String(length=30), nullable=False),
    sa.Column('requests', sa.BigInteger(), nullable=False),
    sa.Column('error_requests', sa.BigInteger(), nullable=False),
    sa.Column('unpriced_requests', sa.BigInteger(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('energy_measured_j', sa.Double(), nullable=False),
    sa.Column('energy_modeled_j', sa.Double(), nullable=False),
    sa.Column('idle_energy_j', sa.Double(), nullable=False),
    sa.Column('cost_api_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_hardware_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_energy_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_idle_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_total_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_per_mtok_input_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('cost_per_mtok_output_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('cost_per_mtok_blended_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('tokens_per_j', sa.Double(), nullable=True),
    sa.Column('co2e_g', sa.Double(), nullable=False),
    sa.Column('ttft_p50_s', sa.Double(), nullable=True),
    sa.Column('ttft_p95_s', sa.Double(), nullable=True),
    sa.Column('ttft_p99_s', sa.Double(), nullable=True),
    sa.Column('itl_p50_s', sa.Double(), nullable=True),
    sa.Column('itl_p95_s', sa.Double(), nullable=True),
    sa.Column('itl_p99_s', sa.Double(), nullable=True),
    sa.Column('mean_batch_size', sa.Double(), nullable=True),
    sa.Column('output_tokens_per_s', sa.Double(), nullable=True),
    sa.Column('slo_met_requests', sa.BigInteger(), nullable=True),
    sa.Column('computed_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('bucket_start', 'service', 'tenant', 'workload', 'provider', 'hardware_model', 'llm_model', 'quantization', name=op.f('pk_rollup_hourly'))
    )
    op.create_table('watermarks',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value_ts', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('updated_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_watermarks'))
    )
    op.create_table('inference_requests',
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('span_id', sa.String(length=16), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('team', sa.String(length=100), nullable=True),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('workload', sa.String(length=100), nullable=True),
    sa.Column('operation', sa.String(length=50), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('llm_model', sa.String(length=200), nullable=False),
    sa.Column('request_model', sa.String(length=200), nullable=True),
    sa.Column('quantization', sa.String(length=30), nullable=True),
    sa.Column('lora_adapter', sa.String(length=200), nullable=True),
    sa.Column('tensor_parallel_size', sa.BigInteger(), nullable=True),
    sa.Column('speculative_decoding', sa.String(length=100), nullable=True),
    sa.Column('device_id', sa.String(length=200), nullable=True),
    sa.Column('node', sa.String(length=200), nullable=True),
    sa.Column('start_ts', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('first_token_ts', sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('end_ts', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('duration_s', sa.Double(), nullable=False),
    sa.Column('ttft_s', sa.Double(), nullable=True),
    sa.Column('itl_mean_s', sa.Double(), nullable=True),
    sa.Column('itl_p50_s', sa.Double(), nullable=True),
    sa.Column('itl_p95_s', sa.Double(), nullable=True),
    sa.Column('itl_max_s', sa.Double(), nullable=True),
    sa.Column('itl_count', sa.BigInteger(), nullable=True),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('batch_size', sa.BigInteger(), nullable=True),
    sa.Column('quality_score', sa.Double(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('error_type', sa.String(length=200), nullable=True),
    sa.Column('producer', sa.String(length=200), nullable=True),
    sa.Column('ingested_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('ok', 'error')", name=op.f('ck_inference_requests_status_known')),
    sa.CheckConstraint('cached_input_tokens >= 0', name=op.f('ck_inference_requests_cached_tokens_nonnegative')),
    sa.CheckConstraint('end_ts >= start_ts', name=op.f('ck_inference_requests_end_after_start')),
    sa.CheckConstraint('input_tokens >= 0', name=op.f('ck_inference_requests_input_tokens_nonnegative')),
    sa.CheckConstraint('output_tokens >= 0', name=op.f('ck_inference_requests_output_tokens_nonnegative')),
    sa.CheckConstraint('ttft_s IS NULL OR ttft_s >= 0', name=op.f('ck_inference_requests_ttft_nonnegative')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.device_id'], name=op.f('fk_inference_requests_device_id_devices')),
    sa.PrimaryKeyConstraint('trace_id', 'span_id', name=op.f('pk_inference_requests'))
    )
    if _postgres():
        op.create_index(op.f('ix_inference_requests_device_id_start_ts'), 'inference_requests', ['device_id', 'start_ts'], unique=False)
    if _postgres():
        op.create_index(op.f('ix_inference_requests_start_ts'), 'inference_requests', ['start_ts'], unique=False)
    op.create_table('power_samples',
    sa.Column('device_id', sa.String(length=200), nullable=False),
    sa.Column('ts', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('tenant', sa.String(length=100), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('power_w', sa.Double(), nullable=True),
    sa.Column('energy_counter_j', sa.Double(), nullable=True),
    sa.Column('utilization_ratio', sa.Double(), nullable=True),
    sa.Column('memory_used_bytes', sa.BigInteger(), nullable=True),
    sa.Column('temperature_c', sa.Double(), nullable=True),
    sa.CheckConstraint('energy_counter_j IS NULL OR energy_counter_j >= 0', name=op.f('ck_power_samples_energy_nonnegative')),
    sa.CheckConstraint('power_w IS NULL OR power_w >= 0', name=op.f('ck_power_samples_power_nonnegative')),
    sa.CheckConstraint('utilization_ratio IS NULL OR (utilization_ratio >= 0 AND utilization_ratio <= 1)', name=op.f('ck_power_samples_utilization_ratio_range')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.device_id'], name=op.f('fk_power_samples_device_id_devices')),
    sa.PrimaryKeyConstraint('device_id', 'ts', 'source', name=op.f('pk_power_samples'))
    )
    if _postgres():
        op.create_index(op.f('ix_power_samples_ts'), 'power_samples', ['ts'], unique=False)
    op.create_table('request_costs',
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('span_id', sa.String(length=16), nullable=False),
    sa.Column('start_ts', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('energy_j', sa.Double(), nullable=True),
    sa.Column('energy_source', sa.String(length=10), nullable=True),
    sa.Column('idle_share_j', sa.Double(), nullable=False),
    sa.Column('device_time_s', sa.Double(), nullable=False),
    sa.Column('cost_api_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_hardware_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_energy_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_idle_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('cost_total_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('price_status', sa.String(length=10), nullable=False),
    sa.Column('co2e_g', sa.Double(), nullable=True),
    sa.Column('computed_at', sa.TIMESTAMP(timezone=True), nullable=False),
    sa.CheckConstraint("energy_source IS NULL OR energy_source IN ('counter', 'power', 'modeled')", name=op.f('ck_request_costs_energy_source_known')),
    sa.CheckConstraint("price_status IN ('priced', 'unpriced')", name=op.f('ck_request_costs_price_status_known')),
    sa.ForeignKeyConstraint(['trace_id', 'span_id'], ['inference_requests.trace_id', 'inference_requests.span_id'], name=op.f('fk_request_costs_trace_id_inference_requests')),
    sa.PrimaryKeyConstraint('trace_id', 'span_id', name=op.f('pk_request_costs'))
    )
    if _postgres():
        op.create_index(op.f('ix_request_costs_start_ts'), 'request_costs', ['start_ts'], unique=False)


def downgrade() -> None:
    if _postgres():
        op.drop_index(op.f('ix_request_costs_start_ts'), table_name='request_costs')
    op.drop_table('request_costs')
    if _postgres():
        op.drop_index(op.f('ix_power_samples_ts'), table_name='power_samples')
    op.drop_table('power_samples')
    if _postgres():
        op.drop_index(op.f('ix_inference_requests_start_ts'), table_name='inference_requests')
    if _postgres():
        op.drop_index(op.f('ix_inference_requests_device_id_start_ts'), table_name='inference_requests')
    op.drop_table('inference_requests')
    op.drop_table('watermarks')
    op.drop_table('rollup_hourly')
    op.drop_table('rollup_daily')
    op.drop_table('report_runs')
    if _postgres():
        op.drop_index(op.f('ix_recommendations_created_at'), table_name='recommendations')
    op.drop_table('recommendations')
    op.drop_table('prices')
    op.drop_table('hardware_rates')
    op.drop_table('energy_tariffs')
    op.drop_table('devices')
    op.drop_table('api_keys')
