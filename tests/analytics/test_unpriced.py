"""Unpriced requests are said, not shown as free (issue 22): `analytics run` counts them and
the cost per 1M tokens of a group with no priced request is n/a, not $0.00."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from tests.analytics.fleet import T0, Req, add_price, add_requests
from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.queries.dashboard import RollupFilter, route_summary
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.dashboard import fmt
from wattledger.models import make_engine


@pytest.fixture
def engine(migrated_url: str):
    e = make_engine(migrated_url)
    yield e
    e.dispose()


def test_unpriced_requests_are_counted_and_cost_per_token_is_na(engine: Engine) -> None:
    add_price(engine, "groq", "m", "0.05", "0.08")
    add_requests(
        engine,
        [
            Req(
                1, 60, 0.2, 62, 1_000_000, 1_000_000, device_id=None, provider="groq", llm_model="m"
            ),
            Req(2, 70, 0.2, 72, 500, 500, device_id=None, provider="nobody", llm_model="x"),
            Req(3, 80, 0.2, 82, 500, 500, device_id=None, provider="nobody", llm_model="x"),
        ],
    )
    result = run_analytics(engine, AnalyticsSettings(), now=T0 + dt.timedelta(hours=1))
    assert result.unpriced_requests == 2
    with engine.connect() as conn:
        rows = {
            r.provider: r
            for r in conn.execute(route_summary(RollupFilter(T0, T0 + dt.timedelta(hours=1))))
        }
    assert rows["nobody"].cost_per_mtok_blended_usd is None
    assert fmt.usd_mtok(rows["nobody"].cost_per_mtok_blended_usd) == "n/a"
    assert float(rows["groq"].cost_per_mtok_blended_usd) == pytest.approx(0.065)
