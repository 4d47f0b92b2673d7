"""Render a :class:`~.weekly.WeeklyReport` as an email: HTML, plain text, PNG charts and CSV.

Rendering is separate from sending (:mod:`.send`). The HTML uses tables and inline styles only
(no scripts, no ``<style>`` block) so it renders in common mail clients; charts are inline PNGs
referenced by ``cid:`` in the email, or embedded as ``data:`` URIs in a browser preview. The
message is ``multipart/mixed``: ``multipart/alternative`` (text, then ``multipart/related``
HTML + images), then the week's daily rollup rows as a CSV attachment.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import jinja2

from wattledger.analytics.reports import charts
from wattledger.analytics.reports.weekly import Totals, WeeklyReport, change

DATA = Path(__file__).parent / "data"
_HTML = jinja2.Environment(
    loader=jinja2.FileSystemLoader(DATA), autoescape=True, undefined=jinja2.StrictUndefined
)
_TEXT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(DATA), autoescape=False, undefined=jinja2.StrictUndefined
)
CHARTS = {"daily_cost": "Daily spend by cost part", "efficiency": "Tokens per joule"}


def usd(value: Decimal | None) -> str:
    """Dollars for people: ``$12,345``, ``$12.35``, or four decimals below one dollar."""
    if value is None:
        return "n/a"
    sign, v = ("-" if value < 0 else ""), abs(value)
    if v >= 1000:
        return f"{sign}${v:,.0f}"
    return f"{sign}${v:,.2f}" if v >= 1 else f"{sign}${v:.4f}"


def pct(value: float | None) -> str:
    """A relative change as ``+12.5%``; ``n/a`` when undefined (e.g. nothing last week)."""
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def kwh(energy_j: float) -> str:
    """Joules as kilowatt-hours, three decimals."""
    return f"{energy_j / 3.6e6:,.3f} kWh"


def per_j(value: float | None) -> str:
    """Tokens per joule, two decimals."""
    return "n/a" if value is None else f"{value:,.2f}"


def _tone(delta: float | None, higher_is_better: bool | None) -> str:
    if delta is None or higher_is_better is None or delta == 0:
        return "neutral"
    return "good" if (delta > 0) == higher_is_better else "bad"


def _kpi(
    label: str, now: Any, before: Any, fmt: Any, better: bool | None, basis: str | None = None
) -> dict[str, Any]:
    delta = change(now, before)
    return {
        "label": label,
        "value": fmt(now),
        "previous": fmt(before),
        "change": pct(delta),
        "tone": _tone(delta, better),
        "basis": basis,
    }


def _kpis(this: Totals, prev: Totals) -> list[dict[str, Any]]:
    return [
        _kpi("Spend (fully loaded)", this.cost_total_usd, prev.cost_total_usd, usd, False),
        _kpi("Tokens (input + output)", this.tokens, prev.tokens, "{:,}".format, None),
        _kpi("Energy", this.energy_j, prev.energy_j, kwh, False, this.energy_basis),
        _kpi(
            "Blended cost per 1M tokens", this.cost_per_mtok_usd, prev.cost_per_mtok_usd, usd, False
        ),
        _kpi(
            "Output tokens per joule",
            this.tokens_per_j,
            prev.tokens_per_j,
            per_j,
            True,
            this.energy_basis,
        ),
        _kpi("Requests", this.requests, prev.requests, "{:,}".format, None),
        _kpi("CO2e", this.co2e_g, prev.co2e_g, lambda g: f"{g / 1000:,.3f} kg", False),
    ]


def _energy_note(t: Totals) -> str:
    share = t.measured_share
    mix = (
        f"{share * 100:.0f}% measured, {(1 - share) * 100:.0f}% modeled"
        if share is not None
        else "no direct energy recorded"
    )
    return (
        f"Energy basis: {mix} (direct energy: measured {kwh(t.energy_measured_j)}, modeled "
        f"{kwh(t.energy_modeled_j)}); idle {kwh(t.idle_energy_j)}. Measured = hardware energy "
        "counters or integrated power samples; modeled = configured estimates."
    )


def context(report: WeeklyReport, images: dict[str, str]) -> dict[str, Any]:
    """Template variables for both the HTML and the text version."""
    this, week = report.this, report.week
    last_day = week.end - dt.timedelta(days=1)
    drivers = [
        (
            title,
            [
                {
                    "label": d.label,
                    "cost": usd(d.cost_usd),
                    "share": f"{d.share * 100:.1f}%",
                    "change": pct(d.change),
                    "tone": _tone(d.change, False),
                }
                for d in report.drivers.get(key, [])
            ],
        )
        for key, title in (("service", "service"), ("workload", "workload"), ("route", "route"))
    ]
    efficiency = [
        {
            "label": e.label,
            "tokens_per_j": per_j(e.totals.tokens_per_j),
            "cost_per_mtok": usd(e.totals.cost_per_mtok_usd),
            "energy": kwh(e.totals.energy_j),
            "basis": e.totals.energy_basis,
        }
        for e in report.efficiency
    ]
    slos = []
    for s in report.slos:
        t = s.target
        target = ", ".join(
            part
            for part in (
                f"TTFT ≤ {t.ttft_p95_s:g} s" if t and t.ttft_p95_s else "",
                f"ITL ≤ {t.itl_p95_s:g} s" if t and t.itl_p95_s else "",
            )
            if part
        )
        worst = " / ".join(
            f"{v:.3f} s" if v is not None else "n/a"
            for v in (s.worst_ttft_p95_s, s.worst_itl_p95_s)
        )
        share = s.share_met
        slos.append(
            {
                "workload": s.workload or "(not reported)",
                "target": target or "configured",
                "met": f"{share * 100:.1f}% of {s.requests:,}" if share is not None else "n/a",
                "worst": worst,
                "breached": s.breached,
            }
        )
    recs = []
    for r in report.recommendations:
        low, high = r.get("savings_usd_month_low"), r.get("savings_usd_month_high")
        recs.append(
            {
                "kind": r["kind"],
                "workload": r["workload"],
                "move": r["from_route"] + (f" → {r['to_route']}" if r.get("to_route") else ""),
                "saving": usd(r.get("savings_usd_month")),
                "interval": f"({usd(low)}–{usd(high)})" if low is not None else "",
                "basis": r.get("basis") or "measured",
                "explanation": r.get("explanation") or "",
            }
        )
    unpriced = (
        f"{this.unpriced_requests:,} requests had no price or rate: their cost is missing from "
        "these figures, not zero. Set prices with `wattledger prices set`."
        if this.unpriced_requests
        else ""
    )
    return {
        "week": week,
        "scope": "All tenants" if report.tenant == "*" else f"Tenant {report.tenant}",
        "period": f"{week.start:%a %d %b} – {last_day:%a %d %b %Y}",
        "previous_iso": week.previous.iso,
        "subject": subject(report),
        "kpis": _kpis(this, report.previous),
        "energy_note": _energy_note(this),
        "unpriced": unpriced,
        "drivers": drivers,
        "efficiency": efficiency,
        "slos": slos,
        "recommendations": recs,
        "recommendations_note": (
            "Recommendations are computed over the whole fleet, not per tenant, so they are "
            "listed only in the all-tenants report."
            if report.tenant != "*"
            else "No open recommendations."
        ),
        "images": images,
        "footer": (
            f"Attached: {csv_filename(report)}, the week's daily rollup rows. Money in US dollars, "
            "fully loaded (hosted API + hardware time + energy + idle share); days are UTC. "
            "Generated by wattledger."
        ),
    }


def subject(report: WeeklyReport) -> str:
    """``wattledger weekly report 2026-W46 (acme): $1,234 (+5.0% WoW)``."""
    scope = "" if report.tenant == "*" else f" ({report.tenant})"
    delta = change(report.this.cost_total_usd, report.previous.cost_total_usd)
    return (
        f"wattledger weekly report {report.week.iso}{scope}: "
        f"{usd(report.this.cost_total_usd)} ({pct(delta)} WoW)"
    )


def csv_filename(report: WeeklyReport) -> str:
    """``wattledger-rollup-2026-W46.csv`` (with ``-<tenant>`` for one tenant)."""
    scope = "" if report.tenant == "*" else f"-{report.tenant}"
    return f"wattledger-rollup-{report.week.iso}{scope}.csv"


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def rollup_csv(report: WeeklyReport) -> bytes:
    """The week's ``rollup_daily`` rows as UTF-8 CSV with a header; UTC ISO 8601 times."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(report.rollup_columns)
    for row in report.rollup_rows:
        writer.writerow([_csv_value(v) for v in row])
    return buf.getvalue().encode()


@dataclass
class RenderedReport:
    """A rendered weekly report, ready to become an email or a preview file."""

    report: WeeklyReport
    subject: str
    text: str
    images: dict[str, bytes]
    csv_name: str
    csv_bytes: bytes

    def html(self, image_src: dict[str, str]) -> str:
        """The HTML version with each chart's ``src`` from ``image_src`` (by chart name)."""
        return _HTML.get_template("weekly.html").render(context(self.report, image_src))

    def preview_html(self) -> str:
        """Self-contained HTML for a browser: charts as ``data:`` URIs."""
        return self.html(
            {
                name: "data:image/png;base64," + base64.b64encode(png).decode()
                for name, png in self.images.items()
            }
        )

    def to_message(
        self, from_address: str, recipients: list[str], *, domain: str = "wattledger.local"
    ) -> EmailMessage:
        """The MIME message: text + HTML with ``cid:`` charts, and the CSV attached."""
        # Short ids keep each header on one line (a folded Content-ID confuses some clients).
        cids = {name: f"<{name}.{uuid.uuid4().hex[:16]}@{domain}>" for name in self.images}
        msg = EmailMessage()
        msg["Subject"] = self.subject
        msg["From"] = from_address
        msg["To"] = ", ".join(recipients)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = f"<report-{self.report.week.iso}.{uuid.uuid4().hex[:20]}@{domain}>"
        msg.set_content(self.text)
        msg.add_alternative(
            self.html({name: f"cid:{cid[1:-1]}" for name, cid in cids.items()}), subtype="html"
        )
        html_part = msg.get_payload()[1]  # type: ignore[index]
        assert isinstance(html_part, EmailMessage)
        for name, png in self.images.items():
            html_part.add_related(
                png,
                maintype="image",
                subtype="png",
                cid=cids[name],
                disposition="inline",
                filename=f"{name}.png",
            )
        msg.add_attachment(self.csv_bytes, maintype="text", subtype="csv", filename=self.csv_name)
        return msg


def render(report: WeeklyReport) -> RenderedReport:
    """Draw the charts and render the text version; the HTML is rendered on demand."""
    days = [report.week.start + dt.timedelta(days=i) for i in range(7)]
    images = {
        "daily_cost": charts.daily_cost_png(days, dict(report.daily)),
        "efficiency": charts.efficiency_png(report.efficiency),
    }
    text = _TEXT.get_template("weekly.txt").render(
        context(report, {name: f"[chart: {alt}]" for name, alt in CHARTS.items()})
    )
    return RenderedReport(
        report=report,
        subject=subject(report),
        text=text,
        images=images,
        csv_name=csv_filename(report),
        csv_bytes=rollup_csv(report),
    )
