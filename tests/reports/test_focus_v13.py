"""``wattledger export focus --focus-version 1.3|1.2`` through the real CLI, on analysed fleets.

Two warehouses: the known fleet of :mod:`tests.reports.dataset` (hosted OpenAI, slowco and Groq
traffic, one self-hosted H100 workload), and a small one built here in which two tenants and
two workloads share one measured GPU, so the FOCUS 1.3 split cost allocation has something to
split. The 1.2 export is the origin charges' reference: FOCUS 1.3 "Data Generator-Calculated
Split Cost Allocation Handling" requires the allocated charges' costs and quantities to add up
to the origin's and their unit prices to be the origin's.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.analytics.fleet import Req, add_device, add_price, add_requests, add_samples
from tests.reports import dataset
from tests.reports.conftest import Fleet
from tests.security.cli_support import Result, run_cli
from wattledger.analytics.focus import COLUMNS, SCHEMAS
from wattledger.analytics.focus_allocation import ALLOCATED_METHOD_ID, allocated_ratios
from wattledger.analytics.jobs import run_analytics
from wattledger.migrations import runner
from wattledger.models import make_engine

WEEK = ("--from", "2026-11-16", "--to", "2026-11-23")
ALLOCATED = (
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
)
ORIGIN = ("ChargePeriodStart", "BillingAccountId", "ResourceId")
#: Ratios are shares of the cost parts, each stored to 1e-6 USD per request, so they match
#: part ÷ BilledCost to about 1e-10 (and sum to 1 exactly).
TOLERANCE = Decimal("1e-9")


def export(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> Result:
    r = run_cli(capsys, url, "export", "focus", *args)
    assert r.returncode == 0, r.stderr
    return r


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def parquet_rows(
    capsys: pytest.CaptureFixture[str], url: str, path: Path, *args: str
) -> list[dict[str, Any]]:
    r = export(capsys, url, *args, "--out", str(path))
    version = "1.2" if "1.2" in args else "1.3"
    assert f"FOCUS {version} charges to {path}" in r.stderr
    table = pq.read_table(path)
    assert table.schema.names == SCHEMAS[version].names
    for field in SCHEMAS[version]:  # Parquet keeps timestamp[s] as milliseconds
        typ = table.schema.field(field.name).type
        assert typ.tz == "UTC" if pa.types.is_timestamp(typ) else typ == field.type, field
    return table.to_pylist()


def details(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["AllocatedMethodDetails"], parse_float=Decimal)


def origins(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in ORIGIN)].append(r)
    return groups


# --- the known fleet: both versions, both formats ------------------------------------------


def test_both_versions_csv_and_parquet_through_the_cli(
    capsys: pytest.CaptureFixture[str], fleet: Fleet, tmp_path: Path
) -> None:
    default = csv_rows(export(capsys, fleet.url, *WEEK).stdout)
    v13 = csv_rows(export(capsys, fleet.url, *WEEK, "--focus-version", "1.3").stdout)
    v12 = csv_rows(export(capsys, fleet.url, *WEEK, "--focus-version", "1.2").stdout)
    assert default == v13 and v13 and v12
    assert list(v13[0]) == list(COLUMNS["1.3"]) and list(v12[0]) == list(COLUMNS["1.2"])
    assert not set(ALLOCATED) & set(v12[0])

    p13 = parquet_rows(capsys, fleet.url, tmp_path / "w.parquet", *WEEK)
    p12 = parquet_rows(capsys, fleet.url, tmp_path / "w12.parquet", *WEEK, "--focus-version", "1.2")
    assert len(p13) == len(v13) and len(p12) == len(v12)
    # The same money either way; 1.3 only splits self-hosted charges further.
    for name in ("BilledCost", "EffectiveCost", "ListCost", "ConsumedQuantity"):
        assert sum(r[name] for r in p13) == sum(r[name] for r in p12), name
    assert sum(Decimal(r["BilledCost"]) for r in v13) == sum(r["BilledCost"] for r in p13)


def test_allocated_columns_of_a_self_hosted_and_a_hosted_charge(
    capsys: pytest.CaptureFixture[str], fleet: Fleet, tmp_path: Path
) -> None:
    rows = parquet_rows(capsys, fleet.url, tmp_path / "w.parquet", *WEEK)
    (gpu,) = [r for r in rows if r["x_HardwareModel"] == "H100-SXM"]
    openai = [r for r in rows if r["ResourceId"] == "openai/hosted/m"]
    assert openai and sum(r["BilledCost"] for r in openai) == 400 * dataset.OPENAI_EACH

    # Self-hosted: the acme batch workload's share of the H100 route (all of it, here).
    assert gpu["AllocatedMethodId"] == ALLOCATED_METHOD_ID
    assert gpu["AllocatedResourceId"] == "acme/chat-api/batch"
    assert gpu["AllocatedResourceName"] == "chat-api/batch"
    assert json.loads(gpu["AllocatedTags"]) == {
        "wattledger/service": "chat-api",
        "wattledger/workload": "batch",
    }
    doc = details(gpu)
    assert doc["x_RatioBasis"] == "Cost"
    parts = {e["x_CostPart"]: e for e in doc["Elements"]}
    assert list(parts) == ["Hardware", "Energy", "Idle"]
    assert parts["Hardware"] == {
        "AllocatedRatio": parts["Hardware"]["AllocatedRatio"],
        "UsageUnit": "Device-Seconds",
        "x_CostPart": "Hardware",
    }
    assert parts["Energy"]["UsageUnit"] == parts["Idle"]["UsageUnit"] == "Joules"
    energy_j, idle_j = (float(parts[p]["UsageQuantity"]) for p in ("Energy", "Idle"))
    assert energy_j == pytest.approx(gpu["x_EnergyMeasuredJoules"], abs=1e-6)
    assert idle_j == pytest.approx(gpu["x_IdleEnergyJoules"], abs=1e-6)
    assert energy_j + idle_j == pytest.approx(fleet.gpu_j, rel=1e-6)
    for part, cost in (
        ("Hardware", "x_HardwareCost"),
        ("Energy", "x_EnergyCost"),
        ("Idle", "x_IdleCost"),
    ):
        share = gpu[cost] / gpu["BilledCost"]
        assert abs(parts[part]["AllocatedRatio"] - share) < TOLERANCE, part
    assert sum(e["AllocatedRatio"] for e in doc["Elements"]) == 1
    assert gpu["ServiceProviderName"] == gpu["HostProviderName"] == "Self-hosted"
    assert gpu["ProviderName"] == gpu["InvoiceIssuerName"] == "Self-hosted"
    assert gpu["PublisherName"] == "vllm"
    assert gpu["ResourceId"] == "vllm/H100-SXM/llama-3.1-8b"
    assert gpu["ResourceName"] == "llama-3.1-8b via vllm on H100-SXM"

    # Hosted: priced per token by OpenAI, no split; OpenAI serves, hosts and invoices it.
    for r in openai:
        assert all(r[name] is None for name in ALLOCATED), r
        assert {r[k] for k in ("ServiceProviderName", "HostProviderName", "ProviderName")} == {
            "openai"
        }
        assert r["InvoiceIssuerName"] == r["PublisherName"] == "openai"
        assert (r["x_Service"], r["x_Workload"]) == ("chat-api", "chat")


def test_provider_names_for_your_own_hardware_on_a_rented_host(
    capsys: pytest.CaptureFixture[str], fleet: Fleet, tmp_path: Path
) -> None:
    default = export(capsys, fleet.url, *WEEK)
    assert "--self-hosted-name" in default.stderr  # says the default name is a stand-in
    r = export(
        capsys,
        fleet.url,
        *WEEK,
        "--self-hosted-name",
        "Acme Platform",
        "--host-provider-name",
        "Example Cloud",
    )
    assert "--self-hosted-name" not in r.stderr
    rows = csv_rows(r.stdout)
    (gpu,) = [r for r in rows if r["x_HardwareModel"]]
    assert gpu["ServiceProviderName"] == gpu["ProviderName"] == "Acme Platform"
    assert gpu["InvoiceIssuerName"] == "Acme Platform"
    assert gpu["HostProviderName"] == "Example Cloud"
    hosted = [r for r in rows if not r["x_HardwareModel"]]
    assert all(r["HostProviderName"] == r["ServiceProviderName"] != "" for r in hosted)
    assert "Example Cloud" not in json.dumps(hosted)


def test_tenant_filter_still_isolates(capsys: pytest.CaptureFixture[str], fleet: Fleet) -> None:
    everyone = csv_rows(export(capsys, fleet.url, *WEEK).stdout)
    beta = csv_rows(export(capsys, fleet.url, *WEEK, "--tenant", "beta").stdout)
    assert beta and {r["BillingAccountId"] for r in beta} == {"beta"}
    assert beta == [r for r in everyone if r["BillingAccountId"] == "beta"]
    assert not any("acme" in json.dumps(r) or "openai" in json.dumps(r) for r in beta)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("fleet", ["duckdb"], indirect=True)
def test_unknown_focus_version_is_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], fleet: Fleet, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"charges.{fmt}"
    for args in [["--out", str(out)], *([[]] if fmt == "csv" else [])]:  # file, and stdout
        r = run_cli(capsys, fleet.url, "export", "focus", *WEEK, "--focus-version", "1.1", *args)
        assert r.returncode == 1 and r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 2 and "--focus-version '1.1'" in lines[0], r.stderr
        assert lines[1].startswith("Hint:") and "1.3 or 1.2" in lines[1]
        assert "Traceback" not in r.stderr
        assert not out.exists() and list(tmp_path.iterdir()) == []


# --- two tenants and two workloads on one GPU ---------------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """acme's chat and batch and beta's batch on one measured H100 (all of it in one day),
    plus one acme request to OpenAI; analysed with the known fleet's settings."""
    url = f"duckdb:///{tmp_path_factory.mktemp('shared')}/warehouse.duckdb"
    runner.upgrade(url)
    engine = make_engine(url)
    add_price(engine, "openai", "m", "1.00", "2.00")
    add_device(engine, "gpu-a")
    add_samples(engine, "gpu-a", [(600.0, 900.0), (1200.0, 1500.0), (4000.0, 4300.0)])
    add_requests(
        engine,
        [
            Req(1, 600.0, 1.0, 900.0, 1000, 2000, workload="chat"),
            Req(2, 1200.0, 1.0, 1500.0, 1000, 2000, workload="batch"),
            Req(3, 4000.0, 1.0, 4300.0, 1000, 2000, tenant="beta", workload="batch"),
            Req(4, 4000.0, 1.0, 4300.0, 500, 1000, workload="batch"),
            Req(5, 100.0, 0.5, 104.0, 500, 200, device_id=None, provider="openai", llm_model="m"),
        ],
    )
    run_analytics(engine, dataset.SETTINGS, now=dataset.WEEK.end)
    engine.dispose()
    yield url


def test_shared_gpu_split_by_tenant_and_workload(
    capsys: pytest.CaptureFixture[str], shared: str, tmp_path: Path
) -> None:
    day = ("--from", "2026-11-16", "--to", "2026-11-17")
    rows = parquet_rows(capsys, shared, tmp_path / "d.parquet", *day)
    v12 = parquet_rows(capsys, shared, tmp_path / "d12.parquet", *day, "--focus-version", "1.2")
    gpu = [r for r in rows if r["x_HardwareModel"]]
    assert sorted(r["AllocatedResourceId"] for r in gpu) == [
        "acme/chat-api/batch",
        "acme/chat-api/chat",
        "beta/chat-api/batch",
    ]
    by_origin = origins(gpu)
    assert len(by_origin) == 2  # the route's cost for acme, and for beta
    reference = {tuple(r[k] for k in ORIGIN): r for r in v12}
    for key, allocated in by_origin.items():
        origin = reference[key]
        total = origin["BilledCost"]
        assert total > 0
        # Costs and quantities add up to the origin's; unit prices are the origin's.
        for name in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
            assert sum(r[name] for r in allocated) == origin[name], name
        for name in ("PricingQuantity", "ConsumedQuantity"):
            assert sum(r[name] for r in allocated) == origin[name], name
        assert {r["ListUnitPrice"] for r in allocated} == {origin["ListUnitPrice"]}
        assert {r["ContractedUnitPrice"] for r in allocated} == {origin["ContractedUnitPrice"]}
        # Each part's ratio is that part of the charge over the origin's cost; all sum to 1.
        ratios = []
        for r in allocated:
            parts = {e["x_CostPart"]: e["AllocatedRatio"] for e in details(r)["Elements"]}
            for part, cost in (
                ("Hardware", "x_HardwareCost"),
                ("Energy", "x_EnergyCost"),
                ("Idle", "x_IdleCost"),
            ):
                assert abs(parts[part] - r[cost] / total) < TOLERANCE, (key, part)
            assert abs(sum(parts.values()) - r["BilledCost"] / total) < TOLERANCE
            ratios += parts.values()
        assert sum(ratios) == 1
    acme_chat, acme_batch = (
        next(r for r in gpu if r["AllocatedResourceId"] == f"acme/chat-api/{w}")
        for w in ("chat", "batch")
    )
    # Batch ran twice as long on the GPU as chat, so it took more of acme's route cost.
    assert acme_batch["BilledCost"] > acme_chat["BilledCost"] > 0
    (hosted,) = [r for r in rows if not r["x_HardwareModel"]]
    assert all(hosted[name] is None for name in ALLOCATED)

    beta = csv_rows(export(capsys, shared, *day, "--tenant", "beta").stdout)
    everyone = csv_rows(export(capsys, shared, *day).stdout)
    assert beta == [r for r in everyone if r["BillingAccountId"] == "beta"]
    (beta_row,) = beta
    # beta's ratios describe beta's own charge only: they sum to 1 and say nothing of acme.
    ratios = [e["AllocatedRatio"] for e in details(beta_row)["Elements"]]
    assert sum(ratios) == 1 and "acme" not in json.dumps(beta_row)


def test_ratios_of_an_origin_that_cost_nothing() -> None:
    """No hardware rate and no tariff: the split falls back to energy, then to requests, and
    the rounded ratios still sum to exactly 1 (thirds do not)."""
    zero = {
        "cost_hardware_usd": Decimal(0),
        "cost_energy_usd": Decimal(0),
        "cost_idle_usd": Decimal(0),
        "energy_measured_j": 0.0,
        "energy_modeled_j": 0.0,
        "idle_energy_j": 0.0,
        "requests": 1,
    }
    basis, ratios = allocated_ratios([{**zero, "energy_measured_j": 30.0}, zero])
    assert basis == "Energy" and ratios == [[0, 1, 0], [0, 0, 0]]
    basis, ratios = allocated_ratios([zero, zero, zero])
    assert basis == "Requests" and sum(map(sum, ratios)) == 1
    assert {r[0] for r in ratios} <= {Decimal("0.333333333333"), Decimal("0.333333333334")}
    third = {**zero, "cost_hardware_usd": Decimal("0.01")}
    basis, ratios = allocated_ratios([third, third, third])
    assert basis == "Cost" and sum(map(sum, ratios)) == 1


def test_a_day_without_charges_writes_the_header(
    capsys: pytest.CaptureFixture[str], shared: str
) -> None:
    r = run_cli(capsys, shared, "export", "focus", "--from", "2030-01-01", "--to", "2030-01-02")
    assert r.returncode == 0 and "No charges" in r.stderr
    assert r.stdout.strip() == ",".join(COLUMNS["1.3"])
