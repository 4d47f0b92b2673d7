"""The weekly emailed cost report: gather (weekly), render (HTML/text/PNG/CSV), send (SMTP).

Names are loaded on first use (PEP 562), so ``wattledger.config`` can import
:mod:`.settings` without pulling in the database, Jinja2 or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RenderedReport": "render",
    "render": "render",
    "ReportSettings": "settings",
    "SendOutcome": "send",
    "recipients_key": "send",
    "send_report": "send",
    "Totals": "weekly",
    "Week": "weekly",
    "WeeklyReport": "weekly",
    "gather_weekly": "weekly",
    "build_report": "job",
    "run_weekly_reports": "job",
    "targets": "job",
    "add_report_job": "schedule",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
