"""``[analytics]`` settings: attribution, cost and rollup jobs (``WATTLEDGER_ANALYTICS__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnalyticsSettings(BaseModel):
    """How the analytics jobs attribute energy and when they run.

    Attributes:
        interval_s: Seconds between scheduled analytics runs in ``wattledger serve``.
        lateness_s: How late a span or sample may arrive and still be attributed; buckets
            inside this window are re-derived when late data lands.
    """

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(default=60.0, gt=0)
    lateness_s: float = Field(default=900.0, ge=0)
