"""Fleet-wide recommendations are marked ``*``, not ``default``.

``default`` is also a tenant anyone can be given (``keys create --tenant default``, the
insecure-mode tenant), so a dashboard user bound to it saw every fleet-wide recommendation,
other tenants' routes included. ``*`` is the marker prices already use for "every tenant";
tenant names cannot contain it. Every recommendation stored before this revision was computed
over the whole fleet (the job never set a tenant), so all of them move to ``*``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 07:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RECS = sa.table("recommendations", sa.column("tenant", sa.String(100)))


def upgrade() -> None:
    op.execute(_RECS.update().where(_RECS.c.tenant == "default").values(tenant="*"))


def downgrade() -> None:
    op.execute(_RECS.update().where(_RECS.c.tenant == "*").values(tenant="default"))
