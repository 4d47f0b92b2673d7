"""Slow and greedy clients against a real ``wattledger ingest serve`` (docs/operations.md,
"Connections"): slow headers, a ``Content-Length`` larger than the body, a body that trickles,
more connections than descriptors, more bodies in flight than the budget.

Each client here is a raw socket, as an attacker's would be; each server is the CLI in a
subprocess with small limits set through the documented ``WATTLEDGER_INGEST__*`` variables.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests.hardening.support import span_bodies
from tests.pipeline.support import free_port, subprocess_env, wait_until_written, wattledger_server
from wattledger.migrations import runner
from wattledger.models import make_engine

PROTOBUF = "application/x-protobuf"


@contextlib.contextmanager
def ingest(
    tmp_path: Path, open_files: int | None = None, **limits: str
) -> Iterator[tuple[str, int, Path]]:
    url = f"duckdb:///{tmp_path}/w.duckdb"
    runner.upgrade(url)
    port = free_port()
    env = subprocess_env(
        tmp_path, **{f"WATTLEDGER_INGEST__{k.upper()}": v for k, v in limits.items()}
    )
    log = tmp_path / "ingest.log"
    with wattledger_server(
        url, ["ingest", "serve", "--insecure-no-auth"], port, env, log, open_files=open_files
    ):
        yield url, port, log


def connect(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def answer(sock: socket.socket, timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Read until the server closes; the status, headers and body it sent (0 if none)."""
    sock.settimeout(timeout_s)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    sock.close()
    if not data:
        return 0, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def headers_for(length: int, ctype: str = PROTOBUF) -> bytes:
    return (
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def post(port: int, data: bytes, timeout_s: float = 5.0) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/v1/traces",
        content=data,
        headers={"Content-Type": PROTOBUF},
        timeout=timeout_s,
    )


def stored_spans(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return int(c.execute(sa.text("SELECT count(*) FROM inference_requests")).scalar_one())
    finally:
        engine.dispose()


def test_slow_headers_short_bodies_and_trickles_are_cut_off(tmp_path: Path) -> None:
    with ingest(tmp_path, header_timeout_s="1", body_idle_timeout_s="1", body_timeout_s="3") as (
        url,
        port,
        log,
    ):
        started = time.monotonic()
        silent = connect(port)  # opens and sends nothing
        slow_headers = connect(port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
        short_body = connect(port, headers_for(1000) + b"0123456789")  # 990 bytes never come

        for sock, what in ((silent, "headers"), (slow_headers, "headers")):
            status, headers, body = answer(sock)
            assert status == 408, what
            assert headers["connection"] == "close"
            assert "within 1 s" in json.loads(body)["message"]
        status, headers, body = answer(short_body)
        assert status == 408
        assert headers["content-type"] == PROTOBUF  # an OTLP Status in the request's format
        assert b"no body data for 1 s" in body
        assert time.monotonic() - started < 8  # cut off, not held for ever

        # One byte every 0.4 s never pauses past the idle timeout, but the body must be
        # complete within 3 s.
        trickle = connect(port, headers_for(1000, "application/json"))
        trickle.settimeout(0.4)
        with contextlib.suppress(OSError):
            for _ in range(20):
                trickle.sendall(b" ")
                with contextlib.suppress(TimeoutError):
                    if trickle.recv(1, socket.MSG_PEEK):
                        break
        status, _, body = answer(trickle)
        assert status == 408
        assert json.loads(body)["message"].startswith("body not complete within 3 s")

        # Meanwhile, and after, a client that sends promptly is served and its data kept.
        bodies = span_bodies(2, per_body=5)
        assert all(post(port, b.data).status_code == 200 for b in bodies)
        wait_until_written(port)
    assert stored_spans(url) == 10


def test_past_the_connection_cap_a_new_connection_gets_503_with_retry_after(
    tmp_path: Path,
) -> None:
    with ingest(tmp_path, max_connections="10", header_timeout_s="60", retry_after_s="3") as (
        url,
        port,
        _,
    ):
        held = [connect(port, b"POST /v1/traces HTTP/1.1\r\n") for _ in range(10)]
        time.sleep(0.5)  # all ten accepted
        status, headers, body = answer(connect(port), timeout_s=5)
        assert status == 503
        assert headers["retry-after"] == "3"
        assert json.loads(body) == {"code": 14, "message": "too many connections; retry later"}
        for sock in held[:3]:
            sock.close()
        time.sleep(0.5)
        body = span_bodies(1, per_body=4)[0]
        assert post(port, body.data).status_code == 200  # a slot freed is a slot served
        wait_until_written(port)
        for sock in held[3:]:
            sock.close()
    assert stored_spans(url) == 4


def test_bodies_in_flight_past_the_budget_get_503_before_they_are_read(tmp_path: Path) -> None:
    mib = 1024 * 1024
    with ingest(
        tmp_path,
        max_body_bytes=str(mib),
        max_inflight_body_bytes=str(2 * mib),
        body_idle_timeout_s="60",
        retry_after_s="1",
    ) as (url, port, _):
        # Two clients announce 1 MiB bodies and send a little: 2 MiB held, the budget.
        held = [connect(port, headers_for(mib) + b"\0" * 1000) for _ in range(2)]
        time.sleep(0.5)
        body = span_bodies(1, per_body=4)[0]
        refused = post(port, body.data)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        for sock in held:
            sock.close()
        time.sleep(0.5)  # their reservations are returned with their connections
        assert post(port, body.data).status_code == 200
        wait_until_written(port)
    assert stored_spans(url) == 4


def test_300_slow_connections_under_256_descriptors_do_not_starve_valid_clients(
    tmp_path: Path,
) -> None:
    # The header timeout is long enough that all 300 are open at once even on a loaded
    # machine (with 2 s, the first ones were cut off before the last connected, the cap was
    # never reached and no 503 was seen: a flaky run, not a defect).
    with ingest(tmp_path, open_files=256, header_timeout_s="8", retry_after_s="1") as (
        url,
        port,
        log,
    ):
        slow = []
        for _ in range(300):
            with contextlib.suppress(OSError):  # refused ones may be closed before we write
                slow.append(connect(port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n"))
        # A valid exporter retries on 503 as OTLP exporters do; every attempt is answered
        # promptly (no hang) and one is accepted within the header timeout or so.
        body = span_bodies(1, per_body=3)[0]
        deadline = time.monotonic() + 45
        codes = []
        while time.monotonic() < deadline:
            r = post(port, body.data, timeout_s=5)  # raises, failing the test, on a hang
            codes.append(r.status_code)
            if r.status_code == 200:
                break
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            time.sleep(1)
        assert codes[-1] == 200, codes
        answers = [answer(s, timeout_s=10)[0] for s in slow]
        assert set(answers) <= {0, 408, 503}  # each cut off or refused, none left hanging
        assert 503 in answers  # the cap was reached, and past it refused at once
        wait_until_written(port)
        text = log.read_text()
    # 256 files less a reserve of 64 and a listen backlog of (256 - 64) / 4.
    assert "ingest accepts at most 144 connections at once" in text
    assert "Too many open files" not in text
    assert stored_spans(url) == 3
