"""Grid carbon intensity that follows the hour: load a provider's export for a site.

Two export shapes are read, as their users download them:

* **Electricity Maps** hourly CSV (the "past data" download): ``Datetime (UTC)``, ``Country``,
  ``Zone name``, ``Zone id``, ``Carbon intensity gCO₂eq/kWh (direct)``, ``Carbon intensity
  gCO₂eq/kWh (Life cycle)``, ``Carbon-free energy percentage (CFE%)``, … (older files spell
  ``Carbon Intensity`` and ``(LCA)``). The life-cycle figure is used unless ``signal="direct"``.
* **WattTime** historical CSV: ``point_time`` (ISO 8601, UTC) and ``value``, the marginal
  operating emissions rate in lbs CO2 per MWh (``co2_moer``) at 5-minute resolution; converted
  to g/kWh (× 0.453592) and averaged per hour.

Rows are upserted per (site, UTC hour) in one transaction: a re-load replaces the hours it
covers and nothing else. Bad files are refused whole, naming the line and the fix.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import Engine

from wattledger.errors import WattledgerError
from wattledger.models import GridIntensityHourly

#: grams per pound: lbs CO2/MWh -> g CO2/kWh is x 453.592 / 1000.
G_PER_KWH_PER_LBS_PER_MWH = 0.453592
#: Upper bound of any real grid (coal-only grids are about 1,000-1,100 g/kWh).
MAX_G_PER_KWH = 3000.0


@dataclass(frozen=True)
class Loaded:
    """What a load did."""

    site: str
    hours: int
    first_hour: dt.datetime
    last_hour: dt.datetime
    mean_gco2e_per_kwh: float
    source: str


def _norm(name: str) -> str:
    return " ".join(name.replace("₂", "2").lower().split())


def _time(text: str, line: int, path: str) -> dt.datetime:
    raw = text.strip().replace("Z", "+00:00")
    try:
        t = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise WattledgerError(
            f"{path} line {line}: {text!r} is not a date and time.",
            hint="Times must be ISO 8601 in UTC, e.g. 2026-11-02 13:00:00.",
        ) from None
    t = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    return t.replace(minute=0, second=0, microsecond=0)


def _value(text: str, line: int, path: str, what: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        v = float(text)
    except ValueError:
        raise WattledgerError(f"{path} line {line}: {what} {text!r} is not a number.") from None
    if not math.isfinite(v) or v < 0:
        raise WattledgerError(f"{path} line {line}: {what} {v} is not a non-negative number.")
    return v


def parse(
    text: str, path: str = "file", signal: Literal["lifecycle", "direct"] = "lifecycle"
) -> tuple[dict[dt.datetime, float], str]:
    """Hourly g CO2e/kWh from an Electricity Maps or WattTime CSV, and the source label."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = {_norm(c): c for c in reader.fieldnames or []}
    em_time = columns.get("datetime (utc)")
    em_life = columns.get("carbon intensity gco2eq/kwh (life cycle)") or columns.get(
        "carbon intensity gco2eq/kwh (lca)"
    )
    em_direct = columns.get("carbon intensity gco2eq/kwh (direct)")
    if em_time and (em_life or em_direct):
        column = em_direct if signal == "direct" else (em_life or em_direct)
        source, factor, time_col = f"electricitymaps {signal}", 1.0, em_time
        if signal == "lifecycle" and not em_life:
            source = "electricitymaps direct"
    elif "point_time" in columns and "value" in columns:
        column, time_col = columns["value"], columns["point_time"]
        source, factor = "watttime co2_moer", G_PER_KWH_PER_LBS_PER_MWH
    else:
        raise WattledgerError(
            f"{path} is neither an Electricity Maps nor a WattTime export "
            f"(columns: {', '.join(reader.fieldnames or []) or 'none'}).",
            hint="Electricity Maps: 'Datetime (UTC)' and 'Carbon intensity gCO₂eq/kWh (Life "
            "cycle)'; WattTime: 'point_time' and 'value' (lbs/MWh).",
        )
    sums: dict[dt.datetime, list[float]] = defaultdict(list)
    for line, row in enumerate(reader, start=2):
        hour = _time(row.get(time_col) or "", line, path)
        value = _value(row.get(column) or "", line, path, column)
        if value is None:
            continue  # a gap in the export: the tariff's constant covers that hour
        g = value * factor
        if g > MAX_G_PER_KWH:
            raise WattledgerError(
                f"{path} line {line}: {g:,.0f} g/kWh is above any real grid "
                f"({MAX_G_PER_KWH:,.0f}).",
                hint="Check the unit: WattTime 'value' is lbs/MWh, Electricity Maps g/kWh.",
            )
        sums[hour].append(g)
    if not sums:
        raise WattledgerError(f"{path} holds no carbon intensity values.")
    return {h: sum(v) / len(v) for h, v in sums.items()}, source


def load(
    engine: Engine,
    site: str,
    path: Path,
    signal: Literal["lifecycle", "direct"] = "lifecycle",
) -> Loaded:
    """Parse ``path`` and upsert its hours for ``site`` (see the module docstring)."""
    if not site or len(site) > 100:
        raise WattledgerError("--site must be 1..100 characters.", hint="Use the devices' site.")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WattledgerError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise WattledgerError(f"{path} is a directory, not a CSV file.") from None
    except UnicodeDecodeError:
        raise WattledgerError(f"{path} is not UTF-8 text.", hint="Export it as CSV.") from None
    hours, source = parse(text, str(path), signal)
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"site": site, "hour_start": h, "gco2e_per_kwh": g, "source": source, "loaded_at": now}
        for h, g in sorted(hours.items())
    ]
    t = GridIntensityHourly.__table__
    with engine.begin() as conn:
        for i in range(0, len(rows), 1000):
            chunk = rows[i : i + 1000]
            conn.execute(
                sa.delete(t).where(
                    t.c.site == site, t.c.hour_start.in_([r["hour_start"] for r in chunk])
                )
            )
            conn.execute(sa.insert(t), chunk)
    return Loaded(
        site=site,
        hours=len(rows),
        first_hour=rows[0]["hour_start"],
        last_hour=rows[-1]["hour_start"],
        mean_gco2e_per_kwh=sum(r["gco2e_per_kwh"] for r in rows) / len(rows),
        source=source,
    )
