"""Derived per-request energy and cost, written by the attribution job."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from wattledger.models.base import Base, time_index, utcnow


class RequestCost(Base):
    """Energy attributed to one request and what it cost, split into parts.

    ``energy_j`` is the request's direct share of device energy above idle, joules, from
    ``energy_source`` (``counter``, ``power`` or ``modeled``). ``idle_share_j`` is its share of
    the device's idle energy in the period, kept apart so fully-loaded figures can include it.
    ``price_status`` is ``priced``, or ``unpriced`` when no price or rate applied: an unpriced
    request never counts as free.
    """

    __tablename__ = "request_costs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["trace_id", "span_id"],
            ["inference_requests.trace_id", "inference_requests.span_id"],
        ),
        CheckConstraint(
            "energy_source IS NULL OR energy_source IN ('counter', 'power', 'modeled')",
            name="energy_source_known",
        ),
        CheckConstraint("price_status IN ('priced', 'unpriced')", name="price_status_known"),
        time_index("start_ts"),
    )

    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    span_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    start_ts: Mapped[dt.datetime]
    """Copied from the request, so cost scans by time need no join."""
    energy_j: Mapped[float | None]
    energy_source: Mapped[str | None] = mapped_column(String(10))
    energy_j_low: Mapped[float | None]
    """The least direct energy consistent with the device's samples, joules (null: unknown)."""
    energy_j_high: Mapped[float | None]
    """The most direct energy consistent with the device's samples, joules (null: unknown)."""
    idle_share_j: Mapped[float] = mapped_column(default=0.0)
    device_time_s: Mapped[float] = mapped_column(default=0.0)
    """The request's share of device time, seconds (for the hardware-rate part)."""
    cost_api_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_hardware_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_energy_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_idle_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost_total_usd: Mapped[Decimal] = mapped_column(default=Decimal(0))
    """Fully loaded: api + hardware + energy + idle."""
    price_status: Mapped[str] = mapped_column(String(10), default="priced")
    co2e_g: Mapped[float | None]
    #: Where the grid intensity behind ``co2e_g`` came from: ``hourly`` (a loaded export for
    #: the request's site and hour) or ``constant`` (the site tariff's figure); None: no CO2e.
    co2e_source: Mapped[str | None] = mapped_column(String(12))
    """Grams CO2-equivalent from energy × PUE × grid intensity."""
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class QuarantineHourly(Base):
    """Requests analytics could not cost, per tenant, UTC hour (of their start) and reason.

    ``tokens_out_of_bounds``: a token count outside the ingest bounds (``models/bounds.py``),
    stored before ingest checked them. Such a request has no ``request_costs`` row, so it is
    in no cost or energy figure; this table is how ``analytics run``, ``doctor`` and the Fleet
    page can say so.
    """

    __tablename__ = "quarantine_hourly"
    __table_args__ = (time_index("bucket_start"),)

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    bucket_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    requests: Mapped[int]
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
