"""The idempotent ``INSERT … SELECT`` statements both backends run, built with SQLAlchemy Core.

Rows are first made visible to the database under a staging name (an Arrow view on DuckDB, a
temporary table filled by ``COPY`` on PostgreSQL); these statements then move them into the
warehouse tables. ``ON CONFLICT DO NOTHING`` on the natural keys makes a retried batch a no-op,
and the devices upsert fills in what a sample knows without erasing what an operator set.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Dialect

from wattledger.ingest.schema import DEVICES_TABLE, REQUESTS_TABLE, SAMPLES_TABLE

#: Placeholder for a devices column that nobody has reported yet.
UNKNOWN = "unknown"


def staging(name: str, table: sa.Table) -> sa.TableClause:
    """A lightweight table named ``name`` with ``table``'s columns, for ``FROM`` clauses."""
    return sa.table(name, *(sa.column(c.name) for c in table.columns))


def insert_ignore(target: sa.Table, source: sa.TableClause) -> sa.Insert:
    """``INSERT INTO target SELECT * FROM source ON CONFLICT DO NOTHING``."""
    names = [c.name for c in target.columns]
    select = sa.select(*(source.c[n] for n in names))
    return pg_insert(target).from_select(names, select).on_conflict_do_nothing()


def placeholder_devices(requests: sa.TableClause) -> sa.Insert:
    """Create a ``devices`` row for every device a request names that is not known yet.

    ``inference_requests.device_id`` references ``devices``; a span may arrive before the
    collector's first sample of its device. The placeholder says ``unknown`` until then.
    """
    d = DEVICES_TABLE.c
    select = (
        sa.select(
            requests.c.device_id,
            sa.func.max(requests.c.tenant),
            sa.literal(UNKNOWN),
            sa.literal(UNKNOWN),
            sa.literal(UNKNOWN),
            sa.func.min(requests.c.start_ts),
            sa.func.max(requests.c.start_ts),
        )
        .where(requests.c.device_id.is_not(None))
        .group_by(requests.c.device_id)
    )
    cols = [
        d.device_id,
        d.tenant,
        d.vendor,
        d.hardware_model,
        d.power_source,
        d.first_seen_at,
        d.last_seen_at,
    ]
    return pg_insert(DEVICES_TABLE).from_select(cols, select).on_conflict_do_nothing()


def upsert_devices(source: sa.TableClause) -> sa.Insert:
    """Insert devices, or update known ones with what the new rows say.

    Known values win over ``unknown``; columns the rows leave null keep their value; the first
    and last sighting widen; ``tenant`` and ``hourly_cost_usd`` are never touched, and rows of
    another tenant leave the device as it is.
    """
    names = [c.name for c in DEVICES_TABLE.columns]
    stmt = pg_insert(DEVICES_TABLE).from_select(names, sa.select(*(source.c[n] for n in names)))
    new, old = stmt.excluded, DEVICES_TABLE.c

    def known(col: str) -> sa.ColumnElement[str]:
        return sa.case((new[col] != UNKNOWN, new[col]), else_=old[col])

    return stmt.on_conflict_do_update(
        index_elements=[old.device_id],
        set_={
            "vendor": known("vendor"),
            "hardware_model": known("hardware_model"),
            "power_source": known("power_source"),
            **{
                c: sa.func.coalesce(new[c], old[c])
                for c in ("node", "device_index", "uuid", "site", "tdp_w", "idle_power_w")
            },
            "first_seen_at": sa.func.least(old.first_seen_at, new.first_seen_at),
            "last_seen_at": sa.func.greatest(old.last_seen_at, new.last_seen_at),
        },
        where=old.tenant == new.tenant,  # another tenant's key never rewrites this device
    )


@dataclass(frozen=True)
class Statements:
    """The compiled SQL for one dialect and one set of staging names."""

    placeholder_devices: str
    insert_requests: str
    upsert_devices: str
    insert_samples: str

    @classmethod
    def compile(cls, dialect: Dialect, requests: str, samples: str, devices: str) -> Statements:
        """Compile every statement for ``dialect`` with the given staging relation names."""

        def sql(stmt: sa.Insert) -> str:
            return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

        req = staging(requests, REQUESTS_TABLE)
        return cls(
            placeholder_devices=sql(placeholder_devices(req)),
            insert_requests=sql(insert_ignore(REQUESTS_TABLE, req)),
            upsert_devices=sql(upsert_devices(staging(devices, DEVICES_TABLE))),
            insert_samples=sql(insert_ignore(SAMPLES_TABLE, staging(samples, SAMPLES_TABLE))),
        )
