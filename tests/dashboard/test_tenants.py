"""Tenant scoping (a bound dashboard never shows another tenant's rows) and injection safety.

The demo warehouse holds two tenants with distinct traffic: ``acme`` (three quarters of the
hosted requests and the whole self-hosted pool) and ``globex`` (the rest).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import (
    APP,
    default_range,
    htmls,
    kpis,
    open_filters,
    scalar,
    shown_table,
    snapshot_engine,
    table_of,
)
from wattledger.analytics.queries import dashboard as queries
from wattledger.analytics.queries.dashboard import RollupFilter
from wattledger.config import load_settings
from wattledger.dashboard import fmt
from wattledger.dashboard.launch import dashboard_env
from wattledger.dashboard.passwords import hash_password

PAGES = ("overview", "vendors", "workloads", "recommendations", "fleet", "reports")
INJECTION = "x' OR '1'='1"
SPEND = "Spend, fully loaded (USD)"


def _spend(snapshot: Path, tenant: str | None) -> object:
    start, end = default_range(snapshot)
    where = "" if tenant is None else "AND tenant = :t"
    return scalar(
        snapshot,
        "SELECT sum(cost_total_usd) FROM rollup_daily WHERE bucket_start >= :s "
        f"AND bucket_start < :e {where}",
        s=start,
        e=end,
        t=tenant,
    )


def _everything_shown(at: AppTest) -> str:
    """All text a page shows: HTML, Markdown, captions, alerts, widget labels, table data."""
    parts = [*htmls(at.main), *htmls(at.sidebar)]
    for kind in ("markdown", "caption", "info", "warning", "error", "title", "subheader"):
        parts += [str(e.value) for e in at.get(kind)]
    for frame in at.dataframe:
        parts.append(frame.value.to_csv())
    return "\n".join(parts)


def _run(page: str, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(APP, default_timeout=60).run()
    return at.switch_page(f"app_pages/{page}.py").run()


@pytest.mark.parametrize(("tenant", "other"), [("acme", "globex"), ("globex", "acme")])
def test_a_bound_dashboard_never_shows_another_tenants_numbers(
    demo: Path, monkeypatch, tenant: str, other: str
) -> None:
    mine, theirs, total = _spend(demo, tenant), _spend(demo, other), _spend(demo, None)
    assert mine and theirs and len({mine, theirs, total}) == 3  # distinct values
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__TENANT", tenant)
    at = _run("overview")
    assert not at.exception, [e.value for e in at.exception]
    assert kpis(at)[SPEND].value == fmt.usd(mine)
    # The tenant filter offers only the bound tenant.
    open_filters(at)
    box = at.sidebar.multiselect(key="filters.tenants")
    assert box.options == [tenant] and box.disabled
    services = shown_table(at, "overview.services")
    assert set(services["Tenant"]) == {tenant}
    # A forged session value for the other tenant changes nothing: queries are scoped below
    # the widgets.
    at.session_state["filters.saved.filters.tenants"] = [other]
    at.run()
    assert kpis(at)[SPEND].value == fmt.usd(mine)
    for page in PAGES:
        _run(page, at)
        assert not at.exception, (page, [e.value for e in at.exception])
        shown = _everything_shown(at)
        assert other not in shown, page
        assert fmt.usd(theirs) not in shown and fmt.usd(total) not in shown, page
    # Interactive tables hold the exact rows: still only this tenant's.
    services = table_of(_run("overview", at), "overview.services")
    assert set(services["Tenant"]) == {tenant}
    assert abs(float(pd.to_numeric(services["Spend (USD)"]).sum()) - float(mine)) < 1e-6


def test_fleet_wide_data_is_hidden_from_a_bound_dashboard(demo: Path, monkeypatch) -> None:
    # Recommendations of the demo are fleet-wide ("*"); its devices and report runs belong to
    # the demo's tenant "default", not to globex.
    assert scalar(demo, "SELECT count(*) FROM devices WHERE tenant = 'globex'") == 0
    assert scalar(demo, "SELECT count(*) FROM recommendations") > 0
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__TENANT", "globex")
    at = _run("fleet")
    assert "No self-hosted devices" in at.info[0].value and not kpis(at)
    assert any("registered by tenant globex" in b for b in htmls(at.main))
    at = _run("recommendations", at)
    assert "No recommendations with these statuses" in at.info[0].value
    assert any("computed over the whole fleet are not" in b for b in htmls(at.main))
    at = _run("reports", at)
    assert "No weekly report has been sent yet" in at.info[0].value


def test_a_dashboard_bound_to_the_tenant_named_default_sees_no_fleet_wide_card(
    demo: Path, monkeypatch
) -> None:
    """Issue 16 item 4: ``default`` was also the fleet-wide marker, so a user bound to it saw
    every fleet-wide recommendation. The marker is ``*`` now, which no tenant can be named."""
    assert scalar(demo, "SELECT count(*) FROM recommendations WHERE tenant = '*'") > 0
    assert scalar(demo, "SELECT count(*) FROM recommendations WHERE tenant = 'default'") == 0
    # What a dashboard bound to ``default`` asks for: the recommendations of that tenant.
    engine = snapshot_engine(demo)
    try:
        with engine.connect() as conn:
            mine = conn.execute(queries.recommendations(tenants=("default",))).all()
            fleet = conn.execute(queries.recommendations()).all()
    finally:
        engine.dispose()
    assert fleet and not mine
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__TENANT", "default")
    at = _run("recommendations")
    assert not at.exception
    shown = _everything_shown(at)
    assert not any(r.recommendation_id in shown or r.explanation in shown for r in fleet)


def test_users_are_bound_to_their_tenant(demo: Path, monkeypatch) -> None:
    users = {
        "ana": {"password_hash": hash_password("ana-pw"), "tenant": "globex"},
        "ops": {"password_hash": hash_password("ops-pw")},
    }
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__USERS", json.dumps(users))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not kpis(at) and at.text_input(key="auth.name")

    def sign_in(name: str, password: str) -> None:
        at.text_input(key="auth.name").input(name)
        at.text_input(key="auth.password").input(password)
        at.button(key="auth.submit").click().run()

    sign_in("ana", "ops-pw")  # another user's password
    assert "Wrong user name or password" in at.error[0].value and not kpis(at)
    sign_in("nobody", "ana-pw")
    assert "Wrong user name or password" in at.error[0].value and not kpis(at)
    sign_in("ana", "ana-pw")
    assert not at.exception and kpis(at)[SPEND].value == fmt.usd(_spend(demo, "globex"))
    assert "acme" not in _everything_shown(_run("vendors", at))
    at.sidebar.button(key="auth.sign_out").click().run()
    sign_in("ops", "ops-pw")  # no tenant: the whole fleet
    assert kpis(_run("overview", at))[SPEND].value == fmt.usd(_spend(demo, None))


def test_tenant_settings_are_checked_and_passed_to_the_dashboard_process(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__TENANT", "acme")
    users = {"ana": {"password_hash": hash_password("pw"), "tenant": "acme"}}
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__USERS", json.dumps(users))
    env = dashboard_env(load_settings())
    assert env["WATTLEDGER_DASHBOARD__TENANT"] == "acme"
    assert json.loads(env["WATTLEDGER_DASHBOARD__USERS"]) == users
    users["ana"]["tenant"] = "globex"  # contradicts the dashboard's own binding
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__USERS", json.dumps(users))
    with pytest.raises(Exception, match="user 'ana' is bound to tenant 'globex'"):
        load_settings()


def test_filter_values_are_bound_parameters(demo: Path, monkeypatch) -> None:
    start, end = default_range(demo)
    f = RollupFilter(start, end, services=(INJECTION,), tenants=(INJECTION,))
    select = queries.period_totals(f)
    sql = str(select.compile(dialect=sa.dialects.postgresql.dialect()))
    assert INJECTION not in sql and "'1'='1" not in sql
    assert "IN (__[POSTCOMPILE_service_1])" in sql  # an expanding bound parameter
    params = select.compile().params.values()
    assert any(INJECTION in (v if isinstance(v, (list, tuple)) else [v]) for v in params)
    # Through the page: a forged filter value matches nothing and breaks nothing.
    at = _run("overview")
    at.session_state["filters.saved.filters.services"] = [INJECTION]
    at.run()
    assert not at.exception and not at.error
    assert "No requests match the filters" in at.info[0].value and not kpis(at)


def test_a_tenant_binding_is_a_bound_parameter_too(demo: Path, monkeypatch) -> None:
    monkeypatch.setenv("WATTLEDGER_DASHBOARD__TENANT", INJECTION)
    for page in PAGES:
        at = _run(page)
        assert not at.exception and not at.error, page
        assert not kpis(at), page  # no rows of any tenant
        if page != "reports":
            assert "no rollups yet" in " ".join(i.value for i in at.info), page
