"""Energy and tokens per joule carry their range where it is wider than ±5 % (issue 17)."""

from __future__ import annotations

from decimal import Decimal

from wattledger.dashboard import frames


def _row(low: float | None, high: float | None) -> dict[str, object]:
    return {
        "energy_measured_j": 3.6e6,
        "energy_modeled_j": 0.0,
        "idle_energy_j": 3.6e6,
        "energy_j_low": low,
        "energy_j_high": high,
        "input_tokens": 1_000,
        "output_tokens": 7_200_000,
        "cost_total_usd": Decimal("1.00"),
        "cost_per_mtok_blended_usd": Decimal("0.14"),
        "tokens_per_j": 1.0,
    }


def test_a_wide_range_is_shown_on_energy_and_tokens_per_joule() -> None:
    kpis = {k.label: k for k in frames.overview_kpis(_row(1.8e6, 5.4e6), _row(None, None), 7)}
    # direct 1 kWh in 0.5–1.5 kWh, idle 1 kWh: total 1.5–2.5 kWh
    assert kpis["Energy (kWh)"].note == "energy: measured; range 1.50–2.50"
    assert kpis["Output tokens per J"].note == "energy: measured; range 0.8–1.33"


def test_a_narrow_or_unknown_range_is_not_shown() -> None:
    for low, high in ((3.5e6, 3.7e6), (None, None)):
        kpis = {k.label: k for k in frames.overview_kpis(_row(low, high), _row(None, None), 7)}
        assert "range" not in (kpis["Energy (kWh)"].note or "")
        assert frames.energy_range_j(_row(low, high)) is None
