"""The whole product in one flow, on DuckDB and on PostgreSQL:

SDK (in this process, official OTLP exporter) and the fleet simulator (live, over OTLP) →
``wattledger ingest serve`` (a real process, API key) → ``wattledger analytics run`` →
``wattledger recommend`` → the dashboard's data (its query functions, through the source the
dashboard resolves: the mart snapshot on DuckDB, a read-only role on PostgreSQL) →
``wattledger report send`` to a real SMTP server (aiosmtpd).

Energy is checked against the simulator's ground truth; money against a contract price (what
``wattledger prices set`` records); every downstream figure against the one before it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

import wattledger
from tests.conftest import _admin_conninfo
from tests.pipeline.support import (
    free_port,
    fresh_warehouse,
    subprocess_env,
    wait_until_written,
    wattledger_server,
)
from tests.pipeline.support import wattledger as run_cli
from wattledger.analytics.marts import MART_TABLES, snapshot_engine
from wattledger.analytics.prices import set_contract_price
from wattledger.analytics.queries import dashboard as q
from wattledger.analytics.reports.weekly import Week
from wattledger.collectors.simulate.groundtruth import read_ground_truth
from wattledger.config import Settings
from wattledger.dashboard.source import refresh_snapshot, resolve_source
from wattledger.ingest.auth import create_key
from wattledger.migrations import runner
from wattledger.models import make_engine

ROLES_SQL = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "postgres-roles.sql"
SPEED, DURATION_S, RATE = 240.0, 5.0, 0.5  # 20 simulated minutes of the demo fleet
SDK_SERVICE, SDK_MODEL = "checkout-api", "wl-e2e-model"
PRICE_IN, PRICE_OUT = Decimal("0.50"), Decimal("1.50")  # USD per 1M tokens (contract)
SDK_REQUESTS = [(100 + 7 * i, 20 + 3 * i) for i in range(30)]  # (input, output) tokens
TENANT = "acme"


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            message_from_bytes(envelope.original_content, policy=policy.default)  # type: ignore[arg-type]
        )
        return "250 Message accepted for delivery"


@dataclass
class Flow:
    backend: str
    url: str
    start: dt.datetime
    end: dt.datetime
    truth: Any
    env: dict[str, str]
    recommend: dict[str, Any]
    dashboard_engine: sa.Engine
    email: EmailMessage


def _readonly_role(url: str) -> Iterator[str]:
    """Run docs/deploy/postgres-roles.sql for a fresh role; its URL; the role is dropped after."""
    role = f"wl_dash_{uuid.uuid4().hex[:10]}"
    database = make_url(url).database
    sql = ROLES_SQL.read_text()
    sql = sql.replace(':"dashboard_role"', f'"{role}"').replace(':"database"', f'"{database}"')
    owner = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]
    try:
        yield make_url(url).set(username=role).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def flow(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flow]:
    tmp = tmp_path_factory.mktemp(f"flow-{request.param}")
    with fresh_warehouse(request.param, tmp) as url:
        yield from _run_flow(request.param, url, tmp)


def _run_flow(backend: str, url: str, tmp: Path) -> Iterator[Flow]:
    runner.upgrade(url)
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        env = subprocess_env(
            tmp,
            WATTLEDGER_DATABASE_URL=url,
            WATTLEDGER_REPORT__SMTP_HOST="127.0.0.1",
            WATTLEDGER_REPORT__SMTP_PORT=str(smtp.port),
            WATTLEDGER_REPORT__SECURITY="none",
            WATTLEDGER_REPORT__FROM_ADDRESS="wattledger@example.com",
        )
        # Setup in-process (the CLI commands are thin wrappers around these; a CLI start costs
        # seconds on a loaded machine): an API key for the tenant, a contract price.
        engine = make_engine(url)
        key = create_key(engine, TENANT).key
        set_contract_price(
            engine, provider="groq", llm_model=SDK_MODEL,
            input_per_mtok_usd=PRICE_IN, output_per_mtok_usd=PRICE_OUT,
        )  # fmt: skip
        engine.dispose()
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        start = now - dt.timedelta(minutes=40)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with wattledger_server(url, ["ingest", "serve"], port, env, tmp / "ingest.log"):
            run_cli(
                "simulate", "--endpoint", endpoint, "--api-key", key,
                "--speed", str(SPEED), "--duration-s", str(DURATION_S), "--rate", str(RATE),
                "--seed", "21", "--start", start.isoformat(),
                "--ground-truth", str(tmp / "truth.parquet"), env=env,
            )  # fmt: skip
            # The SDK, in this process, through the official OTLP/HTTP exporter.
            assert wattledger.init(
                SDK_SERVICE, endpoint=endpoint, api_key=key, workload="support",
                metrics=False, set_global=False,
            )  # fmt: skip
            try:
                for n_in, n_out in SDK_REQUESTS:
                    with wattledger.track(model=SDK_MODEL, provider="groq") as t:
                        t.first_token()
                        t.usage(input_tokens=n_in, output_tokens=n_out)
            finally:
                wattledger.shutdown(timeout_s=30.0)  # flushes every span
            wait_until_written(port)
        end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        run_cli("analytics", "run", "--until", end.isoformat(), "--json", env=env)
        recommend = json.loads(
            run_cli("recommend", "--at", end.isoformat(), "--json", env=env).stdout
        )
        week = Week.containing(start)
        run_cli(
            "report", "send", "--week", week.iso, "--tenant", TENANT,
            "--to", "finance@example.com", env=env,
        )  # fmt: skip
        assert len(inbox.messages) == 1
        # The dashboard's source, as `wattledger dashboard` resolves it.
        settings = Settings(database_url=url, data_dir=tmp / "data")
        roles = None
        if backend == "duckdb":
            assert refresh_snapshot(settings) is not None
            source = resolve_source(settings)
            assert source.kind == "snapshot" and source.url
            engine = snapshot_engine(make_url(source.url).database)  # type: ignore[arg-type]
        else:
            roles = _readonly_role(url)
            ro_url = next(roles)
            assert resolve_source(Settings(database_url=ro_url)).kind == "postgresql"
            engine = make_engine(ro_url, read_only=True)
        try:
            yield Flow(
                backend, url, start, end, read_ground_truth(tmp / "truth.parquet"), env,
                recommend, engine, inbox.messages[0],
            )  # fmt: skip
        finally:
            engine.dispose()
            if roles is not None:
                roles.close()
    finally:
        smtp.stop()


def _warehouse(flow: Flow, sql: str, **params: Any) -> list[Any]:
    engine = make_engine(flow.url)
    try:
        with engine.connect() as c:
            return list(c.execute(sa.text(sql), params).all())
    finally:
        engine.dispose()


def _dash(flow: Flow, select: sa.Select) -> list[Any]:
    with flow.dashboard_engine.connect() as c:
        return list(c.execute(select).mappings().all())


def _window(flow: Flow) -> q.RollupFilter:
    day = flow.start.replace(hour=0, minute=0)
    return q.RollupFilter(day - dt.timedelta(days=1), flow.end + dt.timedelta(days=1))


def test_every_request_arrives_once_and_is_costed(flow: Flow) -> None:
    truth_ids = set(
        zip(
            flow.truth.requests["trace_id"].to_pylist(),
            flow.truth.requests["span_id"].to_pylist(),
            strict=True,
        )
    )
    rows = _warehouse(flow, "SELECT trace_id, span_id, service, tenant FROM inference_requests")
    sim = {(r[0], r[1]) for r in rows if r[2] != SDK_SERVICE}
    sdk = [r for r in rows if r[2] == SDK_SERVICE]
    assert len(truth_ids) > 1000
    assert sim == truth_ids  # the simulated requests, no more, no fewer
    assert len(sdk) == len(SDK_REQUESTS)
    assert {r[3] for r in rows} == {TENANT}  # the API key's tenant, on every row
    (costed,) = _warehouse(flow, "SELECT count(*) FROM request_costs")[0]
    assert costed == len(rows)


def test_energy_matches_the_simulators_ground_truth(flow: Flow) -> None:
    ours = {
        (r[0], r[1]): (r[2], r[3])
        for r in _warehouse(
            flow,
            "SELECT trace_id, span_id, energy_j, energy_source FROM request_costs "
            "WHERE energy_source IN ('counter', 'power')",
        )
    }
    t = flow.truth.requests
    pairs = [
        (ours[k][0], e)
        for k, e in zip(
            zip(t["trace_id"].to_pylist(), t["span_id"].to_pylist(), strict=True),
            t["energy_j"].to_pylist(),
            strict=True,
        )
        if k in ours and e > 0
    ]
    assert len(pairs) > 500
    o, g = np.array(pairs, dtype=float).T
    # Issue #7 targets: per-request median error ≤ 5 %, total within 1 % on measured devices.
    assert float(np.median(np.abs(o - g) / g)) <= 0.05
    assert abs(o.sum() / g.sum() - 1) <= 0.01
    # The dashboard's fleet page: measured device energy = the devices' true energy.
    devices = _dash(flow, q.device_summary(_window(flow).start, _window(flow).end))
    measured = sum(d["device_energy_measured_j"] for d in devices)
    true_total = sum(flow.truth.devices["total_energy_j"].to_pylist())
    assert measured == pytest.approx(true_total, rel=0.01)
    # Conservation on the same page: attributed + idle = measured.
    attributed = sum(d["attributed_j"] + d["idle_j"] for d in devices)
    assert attributed == pytest.approx(measured, rel=1e-6)


def test_sdk_requests_cost_the_contract_price(flow: Flow) -> None:
    expected = sum(
        (n_in * PRICE_IN + n_out * PRICE_OUT) / 1_000_000 for n_in, n_out in SDK_REQUESTS
    )
    (api,) = _warehouse(
        flow,
        "SELECT sum(c.cost_api_usd) FROM request_costs c JOIN inference_requests r "
        "USING (trace_id, span_id) WHERE r.service = :s",
        s=SDK_SERVICE,
    )[0]
    assert Decimal(api) == pytest.approx(expected, abs=Decimal("1e-9"))
    rows = {r["service"]: r for r in _dash(flow, q.spend_by_service(_window(flow)))}
    assert rows[SDK_SERVICE]["requests"] == len(SDK_REQUESTS)
    assert Decimal(rows[SDK_SERVICE]["cost_api_usd"]) == pytest.approx(
        expected, abs=Decimal("1e-9")
    )
    assert rows[SDK_SERVICE]["output_tokens"] == sum(o for _, o in SDK_REQUESTS)


def test_dashboard_totals_equal_the_warehouse(flow: Flow) -> None:
    (totals,) = _dash(flow, q.period_totals(_window(flow)))
    (n, cost, out_tokens) = _warehouse(
        flow,
        "SELECT count(*), sum(c.cost_total_usd), sum(r.output_tokens) FROM request_costs c "
        "JOIN inference_requests r USING (trace_id, span_id)",
    )[0]
    assert totals["requests"] == n
    assert totals["output_tokens"] == out_tokens
    assert Decimal(totals["cost_total_usd"]) == pytest.approx(Decimal(cost), abs=Decimal("1e-6"))
    assert totals["energy_measured_j"] > 0 and totals["tokens_per_j"] > 0


def test_recommendations_reach_the_dashboard_and_the_report(flow: Flow) -> None:
    recs = flow.recommend["recommendations"]
    assert recs, "the demo fleet has idle capacity to consolidate at least"
    shown = _dash(flow, q.recommendations())
    assert {r["recommendation_id"] for r in recs} == {r["recommendation_id"] for r in shown}
    body = flow.email.get_body(preferencelist=("plain",))
    assert body is not None
    text = " ".join(body.get_content().split())
    # The report was sent for one tenant; recommendations are fleet-wide (docs/security.md), so
    # a tenant's report points to the all-tenants report instead of listing them as its own.
    section = text.split("TOP RECOMMENDATIONS", 1)[1]
    assert "listed only in the all-tenants report" in section
    assert "/month" not in section  # no recommendation line


@pytest.mark.xfail(
    strict=True,
    reason="recommendations are stored with tenant 'default' whatever the data's tenant, so a "
    "tenant-filtered dashboard and a tenant's weekly report show none of them",
)
def test_recommendations_carry_the_tenant_of_their_data(flow: Flow) -> None:
    assert {r["tenant"] for r in flow.recommend["recommendations"]} == {TENANT}
    assert _dash(flow, q.recommendations(tenants=(TENANT,)))


def test_the_emailed_report_matches_the_dashboard(flow: Flow) -> None:
    msg = flow.email
    assert msg["To"] == "finance@example.com"
    (attachment,) = [p for p in msg.iter_attachments() if p.get_content_type() == "text/csv"]
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    week = Week.containing(flow.start)
    assert rows and {r["tenant"] for r in rows} == {TENANT}
    (totals,) = _dash(
        flow, q.period_totals(q.RollupFilter(week.start, week.end, tenants=(TENANT,)))
    )
    assert sum(int(r["requests"]) for r in rows) == totals["requests"] > 1000
    assert sum(Decimal(r["cost_total_usd"]) for r in rows) == pytest.approx(
        Decimal(totals["cost_total_usd"]), abs=Decimal("1e-6")
    )
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None and week.iso in body.get_content()


def test_the_dashboard_reads_marts_only(flow: Flow) -> None:
    """PostgreSQL: the role from docs/deploy/postgres-roles.sql may read the marts and nothing
    else. DuckDB: the snapshot the dashboard opens holds the marts and nothing else."""
    marts = {t.name for t in MART_TABLES}
    if flow.backend == "postgres":
        sql = (
            "SELECT table_name FROM information_schema.role_table_grants "
            "WHERE grantee = current_user AND privilege_type = 'SELECT'"
        )
    else:
        sql = "SELECT table_name FROM information_schema.tables"
    assert {r[0] for r in _dash_raw(flow, sql)} == marts
    with pytest.raises(sa.exc.DBAPIError, match="permission denied|does not exist"):
        _dash_raw(flow, "SELECT count(*) FROM inference_requests")


def _dash_raw(flow: Flow, sql: str) -> list[Any]:
    with flow.dashboard_engine.connect() as c:
        return list(c.execute(sa.text(sql)).all())
