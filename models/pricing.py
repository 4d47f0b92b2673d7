"""Price lists, energy tariffs and hardware rates, each valid over a time range."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from wattledger.models.base import Base, PricePerMTok, utcnow

#: The tenant value for a price or rate that applies to every tenant.
ALL_TENANTS = "*"
#: The site value for a tariff or rate that applies everywhere.
ALL_SITES = "*"


class Price(Base):
    """A hosted-API price per one million tokens, in US dollars.

    ``origin`` is ``list`` (from genai-prices) or ``contract`` (set by the user); a contract rate
    wins over a list price valid at the same time. ``valid_to`` null means open-ended.
    """

    __tablename__ = "prices"
    __table_args__ = (
        CheckConstraint("origin IN ('list', 'contract')", name="origin_known"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_range"),
    )

    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    llm_model: Mapped[str] = mapped_column(String(200), primary_key=True)
    origin: Mapped[str] = mapped_column(String(10), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), primary_key=True, default=ALL_TENANTS)
    valid_from: Mapped[dt.datetime] = mapped_column(primary_key=True)
    valid_to: Mapped[dt.datetime | None]
    input_per_mtok_usd: Mapped[Decimal] = mapped_column(PricePerMTok)
    output_per_mtok_usd: Mapped[Decimal] = mapped_column(PricePerMTok)
    cached_input_per_mtok_usd: Mapped[Decimal | None] = mapped_column(PricePerMTok)
    #: Price of input tokens written to the provider's cache (None: the input price applies).
    cache_write_per_mtok_usd: Mapped[Decimal | None] = mapped_column(PricePerMTok)
    #: Where the price comes from: ``genai-prices <version>: <provider pricing page>`` for list
    #: prices, ``contract`` for rates set with ``prices set``; ``updated_at`` is when it was
    #: loaded or set (its check date).
    source: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EnergyTariff(Base):
    """Energy price, PUE and grid carbon intensity for a site over a time range.

    ``usd_per_kwh`` is US dollars per kilowatt-hour; ``pue`` the facility's power usage
    effectiveness (≥ 1); ``grid_gco2e_per_kwh`` grams CO2-equivalent per kilowatt-hour.
    """

    __tablename__ = "energy_tariffs"
    __table_args__ = (CheckConstraint("pue >= 1", name="pue_at_least_one"),)

    site: Mapped[str] = mapped_column(String(100), primary_key=True, default=ALL_SITES)
    valid_from: Mapped[dt.datetime] = mapped_column(primary_key=True)
    valid_to: Mapped[dt.datetime | None]
    usd_per_kwh: Mapped[Decimal] = mapped_column(PricePerMTok)
    pue: Mapped[float] = mapped_column(default=1.0)
    grid_gco2e_per_kwh: Mapped[float | None]


class GridIntensityHourly(Base):
    """Grid carbon intensity of a site for one UTC hour, loaded from a provider's export.

    ``source`` names the file format and signal (``electricitymaps lifecycle``, ``watttime
    co2_moer``). Where an hour has no row, the site tariff's constant ``grid_gco2e_per_kwh``
    applies.
    """

    __tablename__ = "grid_intensity_hourly"
    __table_args__ = (CheckConstraint("gco2e_per_kwh >= 0", name="intensity_nonnegative"),)

    site: Mapped[str] = mapped_column(String(100), primary_key=True)
    hour_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    gco2e_per_kwh: Mapped[float]
    source: Mapped[str] = mapped_column(String(100))
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HardwareRate(Base):
    """What one device-hour of a hardware model costs at a site, in US dollars."""

    __tablename__ = "hardware_rates"

    hardware_model: Mapped[str] = mapped_column(String(100), primary_key=True)
    site: Mapped[str] = mapped_column(String(100), primary_key=True, default=ALL_SITES)
    valid_from: Mapped[dt.datetime] = mapped_column(primary_key=True)
    valid_to: Mapped[dt.datetime | None]
    usd_per_device_hour: Mapped[Decimal] = mapped_column(PricePerMTok)
