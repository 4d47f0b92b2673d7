"""The per-device energy ledger written by attribution: one row per device and hour."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from wattledger.models.base import Base, time_index, utcnow


class DeviceEnergyHourly(Base):
    """How one device's energy in one UTC hour was accounted for.

    ``measured_j`` = ``attributed_j`` + ``idle_j`` (conservation). ``idle_j`` is the energy not
    attributed to requests (baseline under active requests plus all energy while none was
    active); ``unallocated_idle_j`` is the part of it in an hour where no request started, so it
    could not be spread over any request (pure idle waste). All energies in joules, times in
    seconds; ``method`` is ``counter``, ``power`` or ``modeled``.
    """

    __tablename__ = "device_energy_hourly"
    __table_args__ = (
        CheckConstraint("measured_j >= 0", name="measured_nonnegative"),
        time_index("bucket_start"),
    )

    device_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("devices.device_id"), primary_key=True
    )
    bucket_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    measured_j: Mapped[float]
    attributed_j: Mapped[float]
    idle_j: Mapped[float]
    unallocated_idle_j: Mapped[float]
    active_s: Mapped[float]
    """Seconds with at least one request active."""
    idle_s: Mapped[float]
    coverage_s: Mapped[float]
    """Seconds of the hour covered by samples."""
    mean_power_w: Mapped[float | None]
    mean_utilization_ratio: Mapped[float | None]
    requests: Mapped[int]
    """Requests that started on the device in this hour."""
    gaps: Mapped[int]
    idle_power_w: Mapped[float | None]
    """The idle baseline used, watts."""
    idle_source: Mapped[str | None] = mapped_column(String(12))
    """Its evidence: ``counter``, ``gauge``, ``configured``, ``catalog`` or ``none`` (0 W)."""
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
