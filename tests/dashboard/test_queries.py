"""Dashboard queries: portable SQL, run on DuckDB and the real PostgreSQL, with known answers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.base import PGDialect

from wattledger.analytics.queries import dashboard as q
from wattledger.models import (
    Device,
    DeviceEnergyHourly,
    Recommendation,
    RollupDaily,
    RollupHourly,
    make_engine,
    session_factory,
)

DAY = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
F = q.RollupFilter(DAY, DAY + dt.timedelta(days=1))


def _rollup(cls, hour: int, provider: str, hw: str, requests: int, ttft_p95: float | None, **kw):
    base = dict(
        bucket_start=DAY + dt.timedelta(hours=hour) if cls is RollupHourly else DAY,
        service="svc",
        tenant="acme",
        workload="chat",
        provider=provider,
        hardware_model=hw,
        llm_model="m",
        quantization="",
        requests=requests,
        input_tokens=1000 * requests,
        output_tokens=500 * requests,
        energy_measured_j=100.0 * requests if hw else 0.0,
        energy_modeled_j=0.0 if hw else 10.0 * requests,
        idle_energy_j=50.0 * requests if hw else 0.0,
        cost_total_usd=Decimal("0.001") * requests,
        ttft_p95_s=ttft_p95,
        slo_met_requests=requests - 1,
    )
    base.update(kw)
    return cls(**base)


@pytest.fixture
def engine(migrated_url: str):
    e = make_engine(migrated_url)
    with session_factory(e).begin() as s:
        s.add_all(
            [
                _rollup(RollupHourly, 0, "vllm", "H100-SXM", 10, 0.2),
                _rollup(RollupHourly, 1, "vllm", "H100-SXM", 30, 0.6),
                _rollup(RollupHourly, 2, "vllm", "H100-SXM", 5, None),
                _rollup(RollupHourly, 0, "groq", "", 20, 0.1, slo_met_requests=None),
                _rollup(RollupDaily, 0, "vllm", "H100-SXM", 45, 0.5),
                _rollup(RollupDaily, 0, "groq", "", 20, 0.1),
                _rollup(
                    RollupDaily, 0, "groq", "", 7, 0.1, bucket_start=DAY - dt.timedelta(days=1)
                ),
                Device(
                    device_id="gpu-0",
                    vendor="nvidia",
                    hardware_model="H100-SXM",
                    power_source="nvml",
                    tenant="acme",
                ),
                Recommendation(
                    recommendation_id="a",
                    kind="reroute",
                    workload="chat",
                    from_route="x",
                    to_route="y",
                    savings_usd_month=Decimal("5"),
                    basis="measured",
                    status="open",
                ),
                Recommendation(
                    recommendation_id="b",
                    kind="consolidate",
                    workload="*",
                    from_route="p",
                    savings_usd_month=Decimal("9"),
                    basis="measured",
                    status="applied",
                ),
            ]
        )
    with session_factory(e).begin() as s:
        for hour, method in ((0, "counter"), (1, "modeled")):
            s.add(
                DeviceEnergyHourly(
                    device_id="gpu-0",
                    bucket_start=DAY + dt.timedelta(hours=hour),
                    method=method,
                    measured_j=1000.0,
                    attributed_j=600.0,
                    idle_j=400.0,
                    unallocated_idle_j=100.0 * hour,
                    active_s=1800.0,
                    idle_s=1800.0,
                    coverage_s=3600.0,
                    mean_power_w=300.0,
                    mean_utilization_ratio=0.5,
                    requests=3,
                    gaps=0,
                )
            )
    yield e
    e.dispose()


def _rows(engine, select) -> list[sa.Row]:
    with engine.connect() as c:
        return list(c.execute(select))


QUERIES = {
    "period_totals": (F,),
    "daily_totals": (F,),
    "spend_by_service": (F,),
    "route_summary": (F,),
    "hardware_efficiency": (F,),
    "workload_slo": (F,),
    "latency_hours": (F,),
    "filter_options": (),
    "data_extent": (),
    "recommendations": (),
    "device_hours": (F.start, F.end),
    "device_summary": (F.start, F.end),
    "report_runs": (),
    "quarantined_requests": (F.start, F.end),
}


def test_every_query_is_covered_and_compiles_for_both_dialects() -> None:
    public = {
        n
        for n, f in vars(q).items()
        if callable(f)
        and getattr(f, "__module__", "") == q.__name__
        and not n.startswith("_")
        and n != "RollupFilter"
    }
    assert public == set(QUERIES)
    import duckdb_engine

    for name, args in QUERIES.items():
        select = getattr(q, name)(*args)
        for dialect in (postgresql.dialect(), duckdb_engine.Dialect()):
            sql = str(select.compile(dialect=dialect))
            assert "SELECT" in sql, name
        assert isinstance(postgresql.dialect(), PGDialect)
        # Every output column has a name a page can address.
        assert all(c.name for c in select.selected_columns), name


def test_every_query_runs(engine) -> None:
    for name, args in QUERIES.items():
        _rows(engine, getattr(q, name)(*args))


def test_totals_and_ratios(engine) -> None:
    (row,) = _rows(engine, q.period_totals(F))
    assert row.requests == 65 and isinstance(row.requests, int)
    assert row.input_tokens == 65_000 and row.output_tokens == 32_500
    assert row.cost_total_usd == Decimal("0.065")
    # 0.065 USD over 97,500 tokens → 0.6667 USD per 1M tokens.
    assert row.cost_per_mtok_blended_usd == pytest.approx(
        Decimal("0.6666666667"), abs=Decimal("1e-9")
    )
    assert row.energy_measured_j == 4500.0 and row.energy_modeled_j == 200.0
    assert row.tokens_per_j == pytest.approx(32_500 / (4500 + 200 + 2250))
    prev = _rows(engine, q.period_totals(F.shifted(-dt.timedelta(days=1))))[0]
    assert prev.requests == 7


def test_route_latency_is_request_weighted_over_hours_that_have_it(engine) -> None:
    rows = {r.provider: r for r in _rows(engine, q.route_summary(F))}
    # vLLM: hours with 10 requests at 0.2 s and 30 at 0.6 s; the hour without TTFT is ignored.
    assert rows["vllm"].ttft_p95_s == pytest.approx((10 * 0.2 + 30 * 0.6) / 40)
    assert rows["vllm"].ttft_p95_worst_hour_s == pytest.approx(0.6)
    assert rows["vllm"].requests == 45


def test_slo_counts_only_rows_with_an_slo(engine) -> None:
    (row,) = _rows(engine, q.workload_slo(F))
    assert row.requests == 65
    assert row.slo_judged_requests == 45 and row.slo_met_requests == 42


def test_filters_restrict_every_dimension(engine) -> None:
    f = q.RollupFilter(F.start, F.end, providers=("groq",), hardware=("",))
    (row,) = _rows(engine, q.period_totals(f))
    assert row.requests == 20
    none = q.RollupFilter(F.start, F.end, tenants=("nobody",))
    assert _rows(engine, q.period_totals(none))[0].requests == 0
    assert _rows(engine, q.period_totals(none))[0].cost_per_mtok_blended_usd is None


def test_device_summary_keeps_methods_apart(engine) -> None:
    (row,) = _rows(engine, q.device_summary(F.start, F.end))
    assert row.device_energy_measured_j == 1000.0 and row.device_energy_modeled_j == 1000.0
    assert row.counter_hours == 1 and row.modeled_hours == 1 and row.power_hours == 0
    assert row.unallocated_idle_j == 100.0 and row.hours == 2
    assert _rows(engine, q.device_summary(F.start, F.end, hardware=("MI300X",))) == []


def test_recommendations_by_status_largest_saving_first(engine) -> None:
    assert [r.recommendation_id for r in _rows(engine, q.recommendations())] == ["b", "a"]
    assert [r.recommendation_id for r in _rows(engine, q.recommendations(("open",)))] == ["a"]


def test_extent(engine) -> None:
    (row,) = _rows(engine, q.data_extent())
    assert row.first_day == DAY - dt.timedelta(days=1) and row.last_day == DAY
    assert row.rollup_rows == 3 and row.watermark_ts is None
