"""Alembic environment: runs migrations on the engine handed over by the runner."""

from __future__ import annotations

from typing import Any

from alembic import context

import wattledger.migrations.runner  # noqa: F401  (registers the DuckDB implementation; DuckDB drift is

#   compared in migrations/drift.py because Alembic cannot reflect DuckDB)
from wattledger.models import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Keep migrations independent of model code: UTCDateTime is a plain TIMESTAMPTZ in SQL.
    if type_ == "type" and type(obj).__name__ == "UTCDateTime":
        return "sa.TIMESTAMP(timezone=True)"
    return False


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    owned = engine is None
    if owned:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_item=_render_item,
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run `wattledger db upgrade`.")
run_migrations_online()
