"""Through real HTTP, against ``wattledger ingest serve`` subprocesses, on DuckDB and PostgreSQL:

- a row's tenant always comes from the API key, never from a span, resource or point
  attribute, and one tenant cannot overwrite another's rows by resending their ids;
- no key, database password or dashboard password hash appears in the server's output (run
  with ``--verbose``, so at DEBUG), in its error answers or in its ``/metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import sqlalchemy as sa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy.engine import make_url

from tests.pipeline.support import free_port, subprocess_env, wait_until_written, wattledger_server
from tests.security.otlp_support import send_power, send_spans
from wattledger.dashboard.passwords import hash_password
from wattledger.ingest.auth import create_key, revoke_key
from wattledger.migrations import runner
from wattledger.models import make_engine

PG_PASSWORD = "Pg-Secret-pw-77"
DASHBOARD_PASSWORD = "dash-Secret-9f2c"
CLAIMS = {"wattledger.tenant": "beta", "tenant": "beta", "tenant.id": "beta"}


def near_miss(key: str) -> str:
    return key[:-1] + ("A" if key[-1] != "A" else "B")


def with_password(url: str) -> str:
    """The PostgreSQL URL with a password (ignored by the server's trust auth, but present)."""
    if not url.startswith("postgresql"):
        return url
    return make_url(url).set(password=PG_PASSWORD).render_as_string(hide_password=False)


def genai(i: int, **extra: object) -> dict[str, object]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 100 + i,
        "gen_ai.usage.output_tokens": 10 + i,
        **extra,
    }


def test_tenant_comes_from_the_key_and_no_secret_is_shown(db_url: str, tmp_path: Path) -> None:
    url = with_password(db_url)
    runner.upgrade(url)
    engine = make_engine(url)
    acme, beta = create_key(engine, "acme"), create_key(engine, "beta")
    revoked = create_key(engine, "acme")
    revoke_key(engine, revoked.key_id)
    engine.dispose()
    dash_hash = hash_password(DASHBOARD_PASSWORD)
    env = subprocess_env(
        tmp_path,
        WATTLEDGER_DASHBOARD__PASSWORD_HASH=dash_hash,
        WATTLEDGER_INGEST__FLUSH_INTERVAL_S="0.05",
        WATTLEDGER_INGEST__AUTH_CACHE_TTL_S="0",
    )
    port = free_port()
    log = tmp_path / "ingest.log"
    answers: list[bytes] = []
    with wattledger_server(url, ["--verbose", "ingest", "serve"], port, env, log):
        endpoint = f"http://127.0.0.1:{port}"
        body = ExportTraceServiceRequest().SerializeToString()
        for bad in (near_miss(acme.key), acme.key[:-3], "wlk_nonsense", revoked.key, "x"):
            for ctype, data in (("application/x-protobuf", body), ("application/json", b"{}")):
                r = httpx.post(
                    f"{endpoint}/v1/traces",
                    content=data,
                    headers={"content-type": ctype, "authorization": f"Bearer {bad}"},
                )
                assert r.status_code == 401, (bad, r.status_code)
                answers.append(r.content)
        # A key never verifies on a second try either, nor spans with it.
        assert not send_spans(
            endpoint, near_miss(acme.key), [genai(0)], resource={"service.name": "x"}, id_base=900
        )

        # acme's spans and power points all claim to be beta's, on the span and the resource.
        resource = {"service.name": "chat-api", **CLAIMS}
        spans = [genai(i, **CLAIMS, **{"wattledger.team": "team-b"}) for i in range(5)]
        assert send_spans(endpoint, acme.key, spans, resource=resource, id_base=100)
        send_power(
            endpoint,
            acme.key,
            250.0,
            point={"hw.id": "gpu-sec-0", "hw.type": "gpu", **CLAIMS},
            resource={"host.name": "node-a", **CLAIMS},
        )
        wait_until_written(port)
        # beta resends acme's trace and span ids with other values: it must not take them over.
        evil = [genai(i, **{"gen_ai.usage.input_tokens": 999_999}) for i in range(5)]
        assert send_spans(endpoint, beta.key, evil, resource={"service.name": "evil"}, id_base=100)
        send_power(
            endpoint,
            beta.key,
            999.0,
            point={"hw.id": "gpu-sec-0", "hw.type": "gpu", "hw.vendor": "evil"},
            resource={"host.name": "node-evil"},
        )
        wait_until_written(port)
        answers.append(httpx.get(f"{endpoint}/metrics").content)

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            requests = conn.execute(
                sa.text(
                    "SELECT tenant, team, service, input_tokens FROM inference_requests "
                    "ORDER BY input_tokens"
                )
            ).all()
            samples = conn.execute(
                sa.text("SELECT tenant, power_w FROM power_samples ORDER BY power_w")
            ).all()
            devices = conn.execute(
                sa.text("SELECT device_id, tenant, vendor FROM devices ORDER BY device_id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in requests] == [
        ("acme", "team-b", "chat-api", 100 + i) for i in range(5)
    ]
    assert {(r.tenant, r.power_w) for r in samples} == {("acme", 250.0), ("beta", 999.0)}
    assert [tuple(r) for r in devices] == [("gpu-sec-0", "acme", "unknown")]

    output = log.read_text(errors="replace")
    assert "ingest ready" in output  # the log was captured at all
    everything = output + "\n".join(a.decode(errors="replace") for a in answers)
    secrets = {
        "acme key": acme.key,
        "acme secret": acme.key[17:],
        "beta secret": beta.key[17:],
        "near-miss secret": near_miss(acme.key)[17:],
        "revoked secret": revoked.key[17:],
        "dashboard hash": dash_hash.rsplit("$", 1)[1],
        "dashboard password": DASHBOARD_PASSWORD,
    }
    if url.startswith("postgresql"):
        secrets["database password"] = PG_PASSWORD
        assert "***" in output  # the URL is shown, masked
    for what, secret in secrets.items():
        assert secret not in everything, f"{what} leaked"
    # The refusals still say what to do.
    messages = {json.loads(a)["message"] for a in answers if a.startswith(b"{")}
    assert any("wattledger keys create" in m for m in messages)
