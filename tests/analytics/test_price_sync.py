"""`wattledger prices sync` as a user runs it: list prices with their source and check date,
cache-write rates where the provider has one, and a warning for contract rates nobody renewed."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal

import genai_prices
import sqlalchemy as sa

from wattledger.analytics.prices import price_rows, set_contract_price
from wattledger.models import Price, make_engine


def sync(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattledger", "--database-url", url, "prices", "sync", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_list_prices_carry_source_check_date_and_cache_write(migrated_url: str) -> None:
    r = sync(migrated_url, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["genai_prices_version"] == genai_prices.__version__
    assert result["prices"] > 500 and result["stale_contracts"] == []
    engine = make_engine(migrated_url)
    try:
        rows = price_rows(engine, "anthropic")
    finally:
        engine.dispose()
    assert rows and all(r["origin"] == "list" for r in rows)
    for r in rows:
        assert r["source"].startswith(f"genai-prices {genai_prices.__version__}: https://")
        assert r["updated_at"] > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    # Anthropic charges cache writes above the input rate: the rate is loaded, not dropped.
    written = [r for r in rows if r["cache_write_per_mtok_usd"] is not None]
    assert written and all(r["cache_write_per_mtok_usd"] > r["input_per_mtok_usd"] for r in written)


def contract(engine: object, output_usd: str) -> None:
    """A groq/llama-3.1-8b-instant contract at $0.04 input and ``output_usd`` output."""
    set_contract_price(
        engine,  # type: ignore[arg-type]
        provider="groq",
        llm_model="llama-3.1-8b-instant",
        input_per_mtok_usd=Decimal("0.04"),
        output_per_mtok_usd=Decimal(output_usd),
    )


def test_an_old_contract_rate_is_named(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        contract(engine, "0.06")
        with engine.begin() as conn:
            conn.execute(
                sa.update(Price)
                .where(Price.origin == "contract")
                .values(updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=200))
            )
    finally:
        engine.dispose()
    r = sync(migrated_url)
    assert r.returncode == 0, r.stderr
    assert "contract rate groq/llama-3.1-8b-instant" in r.stderr and "200 days ago" in r.stderr
    quiet = sync(migrated_url, "--max-age-days", "365", "--json")
    assert json.loads(quiet.stdout)["stale_contracts"] == []


def test_prices_list_reads_like_a_price_list(migrated_url: str) -> None:
    """Issue 22: `prices list` printed "$8.00000000/M … 1970-01-01..open" with no header."""
    engine = make_engine(migrated_url)
    try:
        contract(engine, "8")
    finally:
        engine.dispose()
    r = subprocess.run(
        [sys.executable, "-m", "wattledger", "--database-url", migrated_url, "prices", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()[:2]
    assert header.split()[:5] == ["provider", "model", "origin", "input/1M", "output/1M"]
    assert "$0.04" in row and "$8.00" in row and "0000" not in row
    assert "always" in row and "1970" not in row and "contract" in row
