"""Hourly and daily rollups: what the dashboard, reports and recommendations read.

Dimension columns are never null (``''`` means not reported) so they can form the key.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from wattledger.models.base import Base, utcnow


class _RollupColumns:
    """Columns shared by every rollup grain."""

    bucket_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    """Start of the time bucket, UTC."""
    service: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    workload: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    hardware_model: Mapped[str] = mapped_column(String(100), primary_key=True)
    llm_model: Mapped[str] = mapped_column(String(200), primary_key=True)
    quantization: Mapped[str] = mapped_column(String(30), primary_key=True)

    requests: Mapped[int] = mapped_column(default=0)
    error_requests: Mapped[int] = mapped_column(default=0)
    unpriced_requests: Mapped[int] = mapped_column(default=0)
    input_tokens: Mapped[int] = mapped_column(default=0)
    cached_input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    energy_measured_j: Mapped[float] = mapped_column(default=0.0)
    """Direct energy from counters or integrated power, joules."""
    energy_modeled_j: Mapped[float] = mapped_column(default=0.0)
    """Direct energy that was modeled, joules; never added silently to measured."""
    idle_energy_j: Mapped[float] = mapped_column(default=0.0)
    energy_j_low: Mapped[float | None]
    """Sum of the requests' lower bounds on direct energy, joules (null: none known)."""
    energy_j_high: Mapped[float | None]
    """Sum of the requests' upper bounds on direct energy, joules (null: none known)."""
    cost_api_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_hardware_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_energy_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_idle_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_total_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_per_mtok_input_usd: Mapped[Decimal | None]
    cost_per_mtok_output_usd: Mapped[Decimal | None]
    cost_per_mtok_blended_usd: Mapped[Decimal | None]
    tokens_per_j: Mapped[float | None]
    """Output tokens per joule of direct + idle energy."""
    co2e_g: Mapped[float] = mapped_column(default=0.0)
    ttft_p50_s: Mapped[float | None]
    ttft_p95_s: Mapped[float | None]
    ttft_p99_s: Mapped[float | None]
    itl_p50_s: Mapped[float | None]
    itl_p95_s: Mapped[float | None]
    itl_p99_s: Mapped[float | None]
    mean_batch_size: Mapped[float | None]
    output_tokens_per_s: Mapped[float | None]
    slo_met_requests: Mapped[int | None]
    """Requests inside the workload's TTFT and ITL SLO; null when it has no SLO."""
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RollupHourly(_RollupColumns, Base):
    """One hour of one service × tenant × workload × provider × hardware × model × quantization."""

    __tablename__ = "rollup_hourly"


class RollupDaily(_RollupColumns, Base):
    """One UTC day of the same dimensions as :class:`RollupHourly`."""

    __tablename__ = "rollup_daily"
