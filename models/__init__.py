"""The warehouse: SQLAlchemy 2 typed tables and engine setup.

Every table lives in one module by concern; import them from here::

    from wattledger.models import InferenceRequest, PowerSample, make_engine
"""

from wattledger.models.base import Base, Money, PricePerMTok, UTCDateTime, utcnow
from wattledger.models.costs import QuarantineHourly, RequestCost
from wattledger.models.devices import ENERGY_METHODS, Device, PowerSample
from wattledger.models.energy import DeviceEnergyHourly
from wattledger.models.engine import (
    backend_name,
    check_connection,
    explain_connection_error,
    make_engine,
    redact,
    session_factory,
)
from wattledger.models.ops import ApiKey, Recommendation, ReportRun, Watermark
from wattledger.models.pricing import (
    ALL_SITES,
    ALL_TENANTS,
    EnergyTariff,
    GridIntensityHourly,
    HardwareRate,
    Price,
)
from wattledger.models.requests import InferenceRequest
from wattledger.models.rollups import RollupDaily, RollupHourly

__all__ = [
    "ALL_SITES",
    "ALL_TENANTS",
    "ENERGY_METHODS",
    "ApiKey",
    "GridIntensityHourly",
    "Base",
    "Device",
    "DeviceEnergyHourly",
    "EnergyTariff",
    "HardwareRate",
    "InferenceRequest",
    "Money",
    "PowerSample",
    "Price",
    "PricePerMTok",
    "QuarantineHourly",
    "Recommendation",
    "ReportRun",
    "RequestCost",
    "RollupDaily",
    "RollupHourly",
    "UTCDateTime",
    "Watermark",
    "backend_name",
    "check_connection",
    "explain_connection_error",
    "make_engine",
    "redact",
    "session_factory",
    "utcnow",
]
