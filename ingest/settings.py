"""``[ingest]`` settings: the OTLP/HTTP receiver (``WATTLEDGER_INGEST__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IngestSettings(BaseModel):
    """How ``wattledger ingest serve`` listens and authenticates.

    Attributes:
        host: Interface to bind. Keep 127.0.0.1 unless a proxy or collector fronts it.
        port: TCP port; 4318 is the OTLP/HTTP default.
        max_body_bytes: Largest accepted request body after decompression; larger gets 413.
        insecure_no_auth: Accept data without an API key. For local demos only.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=4318, ge=1, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    insecure_no_auth: bool = False
