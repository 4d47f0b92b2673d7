"""Formatting, passwords and the Pareto front: pure functions with known answers."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattledger.config import load_settings
from wattledger.dashboard import fmt
from wattledger.dashboard.frames import pareto_front
from wattledger.dashboard.passwords import hash_password, parse_hash, verify_password
from wattledger.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1234.565"), "$1,234.57"),
        (Decimal("0.58"), "$0.58"),
        (Decimal("0.0042"), "$0.0042"),
        (Decimal("0.000123456"), "$0.000123"),
        (Decimal("0.0572"), "$0.0572"),
        (Decimal("0.09"), "$0.09"),
        (Decimal("0"), "$0.00"),
        (Decimal("-12.5"), "-$12.50"),
        (Decimal("0.996"), "$1.00"),
        (0.25, "$0.25"),
        (None, "n/a"),
        (float("nan"), "n/a"),
    ],
)
def test_usd(value, text: str) -> None:
    assert fmt.usd(value) == text


@given(st.decimals(min_value=Decimal("0.0000001"), max_value=Decimal("1e9"), places=10))
def test_amounts_are_accurate_to_three_digits_or_a_cent(value: Decimal) -> None:
    shown = Decimal(fmt.usd(value).lstrip("$").replace(",", ""))
    assert abs(shown - value) <= max(value * Decimal("0.005"), Decimal("0.005"))


def test_units_are_always_shown() -> None:
    assert fmt.energy(7.2e6) == "2.0 kWh"
    assert fmt.energy(7200) == "2.0 Wh"
    assert fmt.energy(12.34) == "12.3 J"
    assert fmt.tokens_per_j(2.4139) == "2.41 tokens/J"
    assert fmt.ms(0.2456) == "246 ms"
    assert fmt.pct(0.9731) == "97.3 %"
    assert fmt.usd_per_mtok(Decimal("0.4123")) == "$0.412 / 1M tokens"
    assert fmt.usd_mtok(Decimal("2.5")) == "$2.50" and fmt.usd_mtok(12.345) == "$12.35"
    assert fmt.count(1234567, "requests") == "1,234,567 requests"
    assert fmt.sig(0.0052412) == "0.00524" and fmt.sig(1240.2) == "1,240"


def test_provenance_labels() -> None:
    assert fmt.provenance(10.0, 0.0) == "measured"
    assert fmt.provenance(0.0, 5.0) == "modeled"
    assert fmt.provenance(90.0, 10.0) == "mixed (10 % modeled)"
    assert fmt.provenance(0.0, 0.0) == "no energy data"


def test_delta() -> None:
    assert fmt.delta_pct(110, 100) == "+10.0 %"
    assert fmt.delta_pct(Decimal("90"), Decimal("100")) == "-10.0 %"
    assert fmt.delta_pct(5, 0) is None and fmt.delta_pct(None, 3) is None


def test_pareto_front() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 2.5, 1.0, None], "y": [5.0, 2.0, 1.0, 3.0, 6.0, 0.1]})
    assert pareto_front(df, "x", "y").tolist() == [True, True, True, False, False, False]


def test_password_hash_round_trip() -> None:
    h = hash_password("correct horse")
    assert h.startswith("scrypt$16384$8$1$") and "correct" not in h
    assert verify_password("correct horse", h)
    assert not verify_password("correct horsE", h)
    assert hash_password("x", salt=b"s" * 16) == hash_password("x", salt=b"s" * 16)
    assert hash_password("x") != hash_password("x")  # random salt
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


@pytest.mark.parametrize(
    "bad",
    ["abc", "scrypt$3$8$1$AA==$AA==", "bcrypt$16384$8$1$AA==$AA==", "scrypt$16384$8$1$!!$AA=="],
)
def test_malformed_hash_is_rejected_at_startup(bad: str, monkeypatch) -> None:
    with pytest.raises(ValueError, match="not a wattledger password hash"):
        parse_hash(bad)
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__PASSWORD_HASH", bad)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "dashboard.password_hash" in e.value.message
    assert "wattledger dashboard hash-password" in e.value.message


def test_dashboard_settings_from_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__PORT", "8600")
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__CACHE_TTL_S", "5")
    s = load_settings()
    assert s.dashboard.port == 8600 and s.dashboard.cache_ttl_s == 5.0
    assert s.dashboard.snapshot_path(s.data_dir) == s.data_dir / "marts.duckdb"
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__MARTS_PATH", str(tmp_path / "m.duckdb"))
    s = load_settings()
    assert s.dashboard.snapshot_path(s.data_dir) == tmp_path / "m.duckdb"
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__PORT", "0")
    with pytest.raises(ConfigError, match="dashboard.port"):
        load_settings()
