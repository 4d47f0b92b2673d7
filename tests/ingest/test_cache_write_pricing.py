"""Cache writes priced at the provider's cache-write rate, end to end (issue 21).

Seen: the SDK emitted ``gen_ai.usage.cache_creation.input_tokens``, ingest mapped neither it nor
the current ``gen_ai.usage.cache_write.input_tokens``, and cache writes were priced as plain
input. Anthropic charges a 5-minute cache write at 1.25x the input price (Claude Sonnet: $3.75
against $3 per 1M input tokens, $0.30 per 1M cache reads).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from ingest_helpers import T0_NS, make_spans, post, protobuf_body, rows

from wattledger.analytics.jobs import run_analytics
from wattledger.analytics.prices import EPOCH, set_contract_price
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.ingest.mapping.requests import map_requests

BASE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4",
    "gen_ai.usage.output_tokens": 1_000_000,
}


def test_cache_writes_are_stored_and_priced_at_the_cache_write_rate(serve, engine, key):
    server = serve()
    spans = make_spans(
        [
            # current name: 4M input = 1M uncached + 1M read + 2M written
            {
                **BASE,
                "gen_ai.usage.input_tokens": 4_000_000,
                "gen_ai.usage.cache_read.input_tokens": 1_000_000,
                "gen_ai.usage.cache_write.input_tokens": 2_000_000,
            },
            # the older name, still sent by some producers
            {
                **BASE,
                "gen_ai.usage.input_tokens": 2_000_000,
                "gen_ai.usage.cache_creation.input_tokens": 2_000_000,
            },
            # no cache at all
            {**BASE, "gen_ai.usage.input_tokens": 1_000_000},
        ]
    )
    r = post(server.url, "/v1/traces", protobuf_body(spans), key)
    assert r.status_code == 200, r.text
    server.flush()
    stored = {
        x["input_tokens"]: x
        for x in rows(engine, "SELECT * FROM inference_requests ORDER BY input_tokens")
    }
    assert stored[4_000_000]["cache_write_input_tokens"] == 2_000_000
    assert stored[4_000_000]["cached_input_tokens"] == 1_000_000
    assert stored[2_000_000]["cache_write_input_tokens"] == 2_000_000
    assert stored[1_000_000]["cache_write_input_tokens"] is None

    set_contract_price(
        engine,
        provider="anthropic",
        llm_model="claude-sonnet-4",
        input_per_mtok_usd=Decimal("3"),
        output_per_mtok_usd=Decimal("15"),
        cached_input_per_mtok_usd=Decimal("0.30"),
        cache_write_per_mtok_usd=Decimal("3.75"),
        valid_from=EPOCH,
    )
    start = dt.datetime.fromtimestamp(T0_NS / 1e9, dt.UTC)
    run_analytics(engine, AnalyticsSettings(), now=start + dt.timedelta(hours=2))
    with engine.connect() as conn:
        cost = {
            row.input_tokens: row.cost_api_usd
            for row in conn.execute(
                sa.text(
                    "SELECT r.input_tokens, c.cost_api_usd FROM request_costs c JOIN "
                    "inference_requests r USING (trace_id, span_id)"
                )
            )
        }
    # 1M x $3 + 1M x $0.30 + 2M x $3.75 + 1M out x $15, exact NUMERIC
    assert cost[4_000_000] == Decimal("3") + Decimal("0.30") + Decimal("7.50") + Decimal("15")
    assert cost[2_000_000] == Decimal("7.50") + Decimal("15")
    assert cost[1_000_000] == Decimal("3") + Decimal("15")


def test_without_a_cache_write_rate_writes_cost_the_input_rate(serve, engine, key):
    server = serve()
    spans = make_spans(
        [
            {
                **BASE,
                "gen_ai.usage.input_tokens": 2_000_000,
                "gen_ai.usage.cache_write.input_tokens": 1_000_000,
            }
        ]
    )
    assert post(server.url, "/v1/traces", protobuf_body(spans), key).status_code == 200
    server.flush()
    set_contract_price(
        engine,
        provider="anthropic",
        llm_model="claude-sonnet-4",
        input_per_mtok_usd=Decimal("3"),
        output_per_mtok_usd=Decimal("15"),
        valid_from=EPOCH,
    )
    start = dt.datetime.fromtimestamp(T0_NS / 1e9, dt.UTC)
    run_analytics(engine, AnalyticsSettings(), now=start + dt.timedelta(hours=2))
    (c,) = rows(engine, "SELECT cost_api_usd FROM request_costs")
    assert c["cost_api_usd"] == Decimal("6") + Decimal("15")


def test_cache_reads_and_writes_beyond_the_input_are_refused_by_name() -> None:
    mapped = map_requests(
        {
            "trace_id": ["a" * 32],
            "span_id": ["b" * 16],
            "name": ["chat"],
            "start_time_unix_nano": [T0_NS],
            "end_time_unix_nano": [T0_NS + 10**9],
            "status_code": [0],
            "gen_ai.operation.name": ["chat"],
            "gen_ai.provider.name": ["anthropic"],
            "gen_ai.request.model": ["claude"],
            "gen_ai.usage.input_tokens": [100],
            "gen_ai.usage.cache_read.input_tokens": [60],
            "gen_ai.usage.cache_write.input_tokens": [50],
        },
        tenant="acme",
    )
    assert mapped.rejected == 1 and mapped.table.num_rows == 0
    assert "gen_ai.usage.cache_write.input_tokens" in (mapped.first_error or "")
