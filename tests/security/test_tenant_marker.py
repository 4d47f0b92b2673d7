"""The fleet-wide marker ``*`` is not a tenant anyone can be given, and installs migrate to it.

Seen (issue 16 item 4): ``keys create --tenant default`` worked while ``default`` also marked
fleet-wide recommendations, so a dashboard bound to tenant ``default`` saw all of them.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from wattledger.cli import app
from wattledger.ingest.auth import create_key
from wattledger.models import make_engine
from wattledger.models.ops import Recommendation


@pytest.mark.parametrize("name", ["*", " *", "*default"])
def test_the_fleet_marker_cannot_be_a_tenant(migrated_url: str, name: str) -> None:
    engine = make_engine(migrated_url)
    try:
        with pytest.raises(ValueError, match="is not valid"):
            create_key(engine, name)
    finally:
        engine.dispose()
    out = CliRunner().invoke(
        app, ["keys", "create", "--tenant", name], env={"WATTLEDGER_DATABASE_URL": migrated_url}
    )
    assert out.exit_code != 0
    assert "is not valid" in (out.output + str(out.exception))


def test_a_recommendation_without_a_tenant_is_fleet_wide() -> None:
    column = Recommendation.__table__.c.tenant
    assert column.default is not None and column.default.arg == "*"


def test_migration_0003_moves_fleet_wide_recommendations_to_the_marker(tmp_path) -> None:
    from wattledger.migrations.runner import downgrade, upgrade
    from wattledger.models.engine import make_engine as engine_for

    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    upgrade(url, "0002")
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO recommendations (recommendation_id, tenant, kind, workload, "
                    "from_route, basis, status, explanation, created_at, updated_at) VALUES "
                    "('r1', 'default', 'reroute', 'chat', 'a', 'measured', 'open', 'x', "
                    "now(), now())"
                )
            )
        upgrade(url, "head")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT tenant FROM recommendations")).scalar() == "*"
        downgrade(url, "0002")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT tenant FROM recommendations")).scalar() == (
                "default"
            )
    finally:
        engine.dispose()
