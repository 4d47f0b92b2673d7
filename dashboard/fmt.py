"""How numbers read on the dashboard: money as money, every quantity with its unit.

Pure functions (no Streamlit), so pages and tests format the same way.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

J_PER_KWH = 3.6e6
J_PER_WH = 3600.0


def usd(value: Decimal | float | int | None, *, exact_below: str = "0.0995") -> str:
    """US dollars: ``$1,234.56``; amounts under ``exact_below`` keep three significant digits.

    ``$0.58``, ``$0.0572``, ``$0.000123``. ``None`` (not priced, no tokens) reads ``n/a``.
    Prices per 1M tokens pass ``exact_below="9.995"`` (``$0.412``, ``$2.50``).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    d = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    sign = "-" if d < 0 else ""
    d = abs(d)
    if d == 0 or d >= Decimal(exact_below):
        return f"{sign}${d.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    q = d.quantize(Decimal(1).scaleb(d.adjusted() - 2), rounding=ROUND_HALF_UP)
    text = f"{q:f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{q:.2f}"
    return f"{sign}${text}"


def usd_per_mtok(value: Decimal | float | None) -> str:
    """Cost per one million tokens, e.g. ``$0.412 / 1M tokens``."""
    return "n/a" if _missing(value) else f"{usd_mtok(value)} / 1M tokens"


def usd_mtok(value: Decimal | float | None) -> str:
    """A price per 1M tokens: cents from $10 up, else three significant digits."""
    return usd(value, exact_below="9.995")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def count(value: int | float | None, unit: str = "") -> str:
    """A whole number with thousands separators and an optional unit: ``1,234 requests``."""
    if _missing(value):
        return "n/a"
    text = f"{round(float(value)):,}"  # type: ignore[arg-type]
    return f"{text} {unit}".rstrip()


def energy(joules: float | None) -> str:
    """Energy in the unit that reads best: ``12.3 kWh``, ``456 Wh`` or ``78.9 J``."""
    if _missing(joules):
        return "n/a"
    j = float(joules)  # type: ignore[arg-type]
    if abs(j) >= J_PER_KWH:
        return f"{j / J_PER_KWH:,.1f} kWh"
    if abs(j) >= J_PER_WH:
        return f"{j / J_PER_WH:,.1f} Wh"
    return f"{j:,.1f} J"


def kwh(joules: float | None) -> float | None:
    """Joules as kilowatt-hours (for tables and charts whose header says kWh)."""
    return None if _missing(joules) else float(joules) / J_PER_KWH  # type: ignore[arg-type]


def tokens_per_j(value: float | None) -> str:
    """Output tokens per joule, three significant digits: ``2.41 tokens/J``."""
    return "n/a" if _missing(value) else f"{float(value):.3g} tokens/J"  # type: ignore[arg-type]


def sig(value: float | None, digits: int = 3) -> str:
    """A plain number to ``digits`` significant digits: ``0.00524``, ``2.41``, ``1,240``."""
    if _missing(value):
        return "n/a"
    v = float(value)  # type: ignore[arg-type]
    return f"{v:,.0f}" if abs(v) >= 10 ** (digits - 1) else f"{v:.{digits}g}"


def ms(seconds: float | None) -> str:
    """A latency in milliseconds: ``245 ms``."""
    return "n/a" if _missing(seconds) else f"{float(seconds) * 1000:,.0f} ms"  # type: ignore[arg-type]


def pct(ratio: float | None, digits: int = 1) -> str:
    """A ratio as a percentage: ``97.3 %``."""
    return "n/a" if _missing(ratio) else f"{float(ratio) * 100:.{digits}f} %"  # type: ignore[arg-type]


def provenance(measured_j: float, modeled_j: float) -> str:
    """How an energy figure was obtained: ``measured``, ``modeled`` or ``mixed (12 % modeled)``.

    Measured means hardware energy counters or integrated power samples; modeled means an
    estimate (published per-token energy, TDP × utilization).
    """
    measured, modeled = float(measured_j or 0.0), float(modeled_j or 0.0)
    if measured <= 0 and modeled <= 0:
        return "no energy data"
    if modeled <= 0:
        return "measured"
    if measured <= 0:
        return "modeled"
    return f"mixed ({modeled / (measured + modeled) * 100:.0f} % modeled)"


def delta_pct(current: float | Decimal | None, previous: float | Decimal | None) -> str | None:
    """Change from ``previous`` to ``current`` as ``+12.3 %``; ``None`` when not comparable."""
    if _missing(current) or _missing(previous) or not previous:
        return None
    change = (float(current) - float(previous)) / abs(float(previous))  # type: ignore[arg-type]
    return f"{change * 100:+.1f} %"


def route_label(provider: str, hardware_model: str, llm_model: str, quantization: str) -> str:
    """``provider/hardware/model[@quantization]`` (``hosted`` for APIs), as in recommendations."""
    base = f"{provider}/{hardware_model or 'hosted'}/{llm_model}"
    return f"{base}@{quantization}" if quantization else base
