"""``[dashboard]`` settings: the Streamlit dashboard (``WATTLEDGER_DASHBOARD__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wattledger.dashboard.passwords import parse_hash


class DashboardSettings(BaseModel):
    """How ``wattledger dashboard`` listens, protects and reads the warehouse.

    Attributes:
        host: Interface to bind. Keep 127.0.0.1 unless a proxy fronts it.
        port: TCP port of the dashboard.
        password_hash: Require this password (a hash from ``wattledger dashboard
            hash-password``); no password when unset.
        cache_ttl_s: Seconds a query result is reused before the dashboard reads again.
        marts_path: The read-only mart snapshot read on DuckDB warehouses; default
            ``<data_dir>/marts.duckdb``. PostgreSQL warehouses are read directly.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=1, le=65535)
    password_hash: str | None = None
    cache_ttl_s: float = Field(default=60.0, gt=0)
    marts_path: Path | None = None

    @field_validator("password_hash")
    @classmethod
    def _valid_hash(cls, value: str | None) -> str | None:
        if value:
            parse_hash(value)  # raises ValueError naming the expected format
        return value or None

    def snapshot_path(self, data_dir: Path) -> Path:
        """Where the mart snapshot is read from: ``marts_path`` or ``data_dir/marts.duckdb``."""
        return (self.marts_path or data_dir / "marts.duckdb").expanduser()
