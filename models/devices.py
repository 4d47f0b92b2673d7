"""Devices and their power samples: the measured side of the ledger."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from wattledger.models.base import Base, time_index, utcnow

#: How an energy figure was obtained. ``counter``: a hardware energy counter (NVML total energy,
#: AMD SMI accumulator, RAPL energy_uj). ``power``: integrated power samples. ``modeled``: an
#: estimate (published per-token energy, TDP × utilization), never a measurement.
ENERGY_METHODS = ("counter", "power", "modeled")


class Device(Base):
    """One physical or logical accelerator, CPU package or hosted-API route.

    ``device_id`` is stable across restarts: the GPU UUID (``hw.id``) where there is one,
    else ``<node>:<source>:<index>``; hosted APIs use ``hosted:<provider>``.
    """

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), default="default")
    vendor: Mapped[str] = mapped_column(String(50))
    """``nvidia``, ``amd``, ``intel``, or a hosted provider such as ``groq``."""
    hardware_model: Mapped[str] = mapped_column(String(100))
    """Normalised model name, e.g. ``H100-SXM``, ``MI300X``."""
    node: Mapped[str | None] = mapped_column(String(200))
    """Host or Kubernetes node name."""
    device_index: Mapped[int | None]
    uuid: Mapped[str | None] = mapped_column(String(100))
    site: Mapped[str | None] = mapped_column(String(100))
    """Data-centre/site key for energy tariffs and grid intensity."""
    power_source: Mapped[str] = mapped_column(String(30))
    """Where readings come from: ``nvml``, ``amdsmi``, ``rapl``, ``prometheus``, ``modeled``…"""
    tdp_w: Mapped[float | None]
    """Thermal design power, watts."""
    idle_power_w: Mapped[float | None]
    """Idle baseline power, watts; measured or from the hardware catalog."""
    hourly_cost_usd: Mapped[Decimal | None]
    """Overrides ``hardware_rates`` for this device, US dollars per device-hour."""
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PowerSample(Base):
    """One power/energy reading of one device at one instant. Append-only.

    ``energy_counter_j`` is the device's cumulative energy counter in joules, already corrected
    for wraparound by the collector; null where the device has no counter. ``power_w`` is the
    instantaneous (or driver-averaged) power in watts.
    """

    __tablename__ = "power_samples"
    __table_args__ = (
        CheckConstraint("power_w IS NULL OR power_w >= 0", name="power_nonnegative"),
        CheckConstraint(
            "energy_counter_j IS NULL OR energy_counter_j >= 0", name="energy_nonnegative"
        ),
        CheckConstraint(
            "utilization_ratio IS NULL OR (utilization_ratio >= 0 AND utilization_ratio <= 1)",
            name="utilization_ratio_range",
        ),
        time_index("ts"),
    )

    device_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("devices.device_id"), primary_key=True
    )
    ts: Mapped[dt.datetime] = mapped_column(primary_key=True)
    """Sample time, UTC."""
    source: Mapped[str] = mapped_column(String(30), primary_key=True)
    """The source that produced it (``nvml``, ``amdsmi``, ``rapl``, ``dcgm``, ``modeled``…)."""
    tenant: Mapped[str] = mapped_column(String(100), default="default")
    method: Mapped[str] = mapped_column(String(10), default="power")
    """``counter``, ``power`` or ``modeled`` (see :data:`ENERGY_METHODS`)."""
    power_w: Mapped[float | None]
    energy_counter_j: Mapped[float | None]
    utilization_ratio: Mapped[float | None]
    """Compute utilization, 0..1."""
    memory_used_bytes: Mapped[int | None]
    temperature_c: Mapped[float | None]
