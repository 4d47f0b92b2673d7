"""The FinOps Foundation's FOCUS validator on the exports, where one is installed.

``focus-validator`` 2.x needs Python ≥ 3.12, and wattledger's environment is 3.11, so it is
not a dev dependency: set ``WATTLEDGER_FOCUS_VALIDATOR`` to the ``focus-validator`` of a
separate 3.12 environment to run these (docs/focus.md "Validation" says how). It runs offline
for FOCUS 1.2, whose rules it ships; 1.3 rules it would download from GitHub, so the 1.3
export is checked rule by rule in ``test_focus_rules_v13.py`` instead.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.reports import dataset
from tests.reports.conftest import Fleet
from wattledger.analytics.focus import focus_table, write_focus
from wattledger.models import make_engine

VALIDATOR = os.environ.get("WATTLEDGER_FOCUS_VALIDATOR", "")
pytestmark = [
    pytest.mark.skipif(
        not VALIDATOR,
        reason="WATTLEDGER_FOCUS_VALIDATOR is not set (a focus-validator 2.x, docs/focus.md)",
    ),
    pytest.mark.parametrize("fleet", ["duckdb"], indirect=True),
]
#: The only rules the 1.2 export fails: the RECOMMENDED InvoiceId column is left out, since
#: a hosted API's charge is on an invoice whose id wattledger does not know, and InvoiceId
#: "MUST NOT be null when the charge is associated with ... an issued invoice".
INVOICE_ID_ABSENT = {
    "CostAndUsage-D-033-O",
    *(f"InvoiceId-C-00{i}-{k}" for i, k in enumerate("OMMCCC")),
}
SUMMARY = re.compile(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)")


def validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    python = Path(VALIDATOR).with_name("python")
    # 2.2.1 opens its ISO 4217 list by a path relative to its site-packages directory.
    site = subprocess.run(
        [str(python), "-c", "import focus_validator, pathlib; "
         "print(pathlib.Path(focus_validator.__file__).parents[1])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return subprocess.run(
        [VALIDATOR, "--data-file", str(path), "--validate-version", version, "--block-download",
         "--output-type", "console"],
        capture_output=True, text=True, cwd=site, timeout=600,
    )  # fmt: skip


def export(fleet: Fleet, path: Path, version: str) -> Path:
    engine = make_engine(fleet.url)
    with engine.connect() as conn:
        table = focus_table(conn, dataset.WEEK.previous.start, dataset.WEEK.end, version=version)
    engine.dispose()
    return write_focus(table, path, "csv")


def test_focus_1_2_export_fails_no_rule_but_the_absent_invoice_id(
    fleet: Fleet, tmp_path: Path
) -> None:
    r = validate(export(fleet, tmp_path / "focus12.csv", "1.2"), "1.2")
    assert r.returncode == 0, r.stderr[-2000:]
    total, passed, failed, _ = map(int, SUMMARY.search(r.stdout).groups())  # type: ignore[union-attr]
    failures = set(re.findall(r"❌ (\S+): FAIL", r.stdout))
    assert failures == INVOICE_ID_ABSENT and failed == len(failures), r.stdout[-3000:]
    assert passed >= 100 and total > passed


def test_the_validator_ships_no_focus_1_3_rules(fleet: Fleet, tmp_path: Path) -> None:
    """When a release ships them, this fails: then validate the 1.3 export with it too."""
    r = validate(export(fleet, tmp_path / "focus13.csv", "1.3"), "1.3")
    assert r.returncode != 0 and "not supported" in r.stdout + r.stderr
