"""``[collector]`` settings: the sidecar power collector (``WATTLEDGER_COLLECTOR__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CollectorSettings(BaseModel):
    """How ``wattledger collect`` samples devices and where it sends them.

    Attributes:
        interval_s: Seconds between samples.
        endpoint: OTLP/HTTP base URL of the ingest service.
        sources: Power sources to use; ``auto`` probes everything the node has.
    """

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(default=0.5, gt=0)
    endpoint: str = "http://localhost:4318"
    sources: list[str] = Field(default_factory=lambda: ["auto"])
