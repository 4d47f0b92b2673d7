"""``[dashboard]`` settings: the Streamlit dashboard (``WATTLEDGER_DASHBOARD__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wattledger.dashboard.passwords import parse_hash


def _check_hash(value: str | None) -> str | None:
    if value:
        parse_hash(value)  # raises ValueError naming the expected format
    return value or None


class DashboardUser(BaseModel):
    """One sign-in of ``[dashboard.users.<name>]``.

    Attributes:
        password_hash: The user's password hash (``wattledger dashboard hash-password``).
        tenant: The only tenant this user may read; unset = every tenant (an operator).
    """

    model_config = ConfigDict(extra="forbid")

    password_hash: str
    tenant: str | None = None

    @field_validator("password_hash")
    @classmethod
    def _valid_hash(cls, value: str) -> str:
        if not value:
            raise ValueError("empty; create one with `wattledger dashboard hash-password`")
        parse_hash(value)
        return value


class DashboardSettings(BaseModel):
    """How ``wattledger dashboard`` listens, protects and reads the warehouse.

    Attributes:
        host: Interface to bind. Keep 127.0.0.1 unless a proxy fronts it.
        port: TCP port of the dashboard.
        password_hash: Require this password (a hash from ``wattledger dashboard
            hash-password``); no password when unset.
        users: Named sign-ins, each with its own password hash and optionally bound to one
            tenant. When set, the dashboard asks for a user name and password
            (``password_hash`` is then not used).
        tenant: Bind the whole dashboard to this tenant: every query is restricted to it and
            data that cannot be split by tenant is hidden.
        cache_ttl_s: Seconds a PostgreSQL query result is reused before the dashboard reads
            again (a snapshot's results last until a new snapshot is published).
        marts_path: The read-only mart snapshot read on DuckDB warehouses; default
            ``<data_dir>/marts.duckdb``. PostgreSQL warehouses are read directly.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=1, le=65535)
    password_hash: str | None = None
    users: dict[str, DashboardUser] = Field(default_factory=dict)
    tenant: str | None = None
    cache_ttl_s: float = Field(default=60.0, gt=0)
    marts_path: Path | None = None

    @field_validator("password_hash")
    @classmethod
    def _valid_hash(cls, value: str | None) -> str | None:
        return _check_hash(value)

    @field_validator("tenant")
    @classmethod
    def _valid_tenant(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("empty; name a tenant or remove the setting")
        return value

    @model_validator(mode="after")
    def _users_within_tenant(self) -> DashboardSettings:
        if self.tenant is None:
            return self
        for name, user in self.users.items():
            if user.tenant not in (None, self.tenant):
                raise ValueError(
                    f"user {name!r} is bound to tenant {user.tenant!r} but the dashboard is "
                    f"bound to {self.tenant!r}; remove one of the two"
                )
        return self

    def snapshot_path(self, data_dir: Path) -> Path:
        """Where the mart snapshot is read from: ``marts_path`` or ``data_dir/marts.duckdb``."""
        return (self.marts_path or data_dir / "marts.duckdb").expanduser()
