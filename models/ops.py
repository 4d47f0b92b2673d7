"""Operational tables: recommendations, report runs, API keys and job watermarks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wattledger.models.base import Base, time_index, utcnow
from wattledger.models.pricing import ALL_TENANTS


class Recommendation(Base):
    """A proposed change of routing or capacity, with its savings and evidence.

    ``recommendation_id`` is a deterministic hash of kind, workload and routes, so re-running on
    the same data gives the same ids. Savings are per month: US dollars (with a confidence
    interval), kilowatt-hours and kilograms CO2e. ``basis`` is ``measured`` or ``predicted``
    (what-if planner), never mixed.
    """

    __tablename__ = "recommendations"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('reroute', 'consolidate', 'split-prefill-decode', 'right-size')",
            name="kind_known",
        ),
        CheckConstraint("basis IN ('measured', 'predicted')", name="basis_known"),
        time_index("created_at"),
    )

    recommendation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), default=ALL_TENANTS)
    """``*`` for a recommendation over the whole fleet (never a tenant name: API keys and
    dashboard users cannot be bound to it); a tenant's own otherwise."""
    kind: Mapped[str] = mapped_column(String(30))
    workload: Mapped[str] = mapped_column(String(100))
    from_route: Mapped[str] = mapped_column(String(400))
    to_route: Mapped[str | None] = mapped_column(String(400))
    share_to_move: Mapped[float | None]
    """Fraction of the workload's traffic to move, 0..1."""
    savings_usd_month: Mapped[Decimal | None]
    savings_usd_month_low: Mapped[Decimal | None]
    savings_usd_month_high: Mapped[Decimal | None]
    savings_kwh_month: Mapped[float | None]
    savings_kg_co2e_month: Mapped[float | None]
    ttft_p95_before_s: Mapped[float | None]
    ttft_p95_after_s: Mapped[float | None]
    itl_p95_before_s: Mapped[float | None]
    itl_p95_after_s: Mapped[float | None]
    samples_from: Mapped[int | None]
    samples_to: Mapped[int | None]
    basis: Mapped[str] = mapped_column(String(10), default="measured")
    risks: Mapped[str | None] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    """``open``, ``applied`` (traffic moved) or ``dismissed``."""
    realised_savings_usd_month: Mapped[Decimal | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReportRun(Base):
    """One attempt-tracked weekly report for one ISO week and recipient list.

    The key makes sends idempotent: a second scheduled run in the same week finds the row
    ``sent`` and does nothing.
    """

    __tablename__ = "report_runs"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_known"),
    )

    iso_week: Mapped[str] = mapped_column(String(10), primary_key=True)
    """ISO week, e.g. ``2026-W46``."""
    recipients_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Hash of the sorted recipient list (the addresses themselves are in ``recipients``)."""
    tenant: Mapped[str] = mapped_column(String(100), default="default")
    recipients: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]


class ApiKey(Base):
    """An ingest API key. Only a hash is stored; the key is shown once at creation.

    ``key_id`` is the public prefix of the key (used to find the row); ``key_hash`` is a
    salted hash of the whole key, compared in constant time.
    """

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str] = mapped_column(String(100))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]


class Watermark(Base):
    """How far a job has processed: the job's name and the newest time it has fully covered."""

    __tablename__ = "watermarks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value_ts: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
