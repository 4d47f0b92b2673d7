"""Many ingest replicas on one PostgreSQL database: concurrent senders to all of them, and the
same batch sent to two replicas at once (an exporter retry that lands on another replica), end
with exactly one row per span and per sample, none lost."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.hardening.support import (
    Sender,
    fresh_pg_database,
    sample_bodies,
    span_bodies,
    stored,
)
from tests.pipeline.support import free_port, subprocess_env, wait_until_written, wattledger_server
from wattledger.ingest.auth import create_key
from wattledger.migrations import runner
from wattledger.models import make_engine

pytestmark = pytest.mark.postgres


def test_three_replicas_store_every_row_once(tmp_path: Path) -> None:
    with fresh_pg_database() as url:
        runner.upgrade(url)  # once, before the replicas start (see docs/operations.md)
        engine = make_engine(url)
        key = create_key(engine, "acme").key
        engine.dispose()
        ports = [free_port() for _ in range(3)]
        servers = [
            wattledger_server(
                url,
                ["ingest", "serve"],
                port,
                subprocess_env(tmp_path / f"r{i}", WATTLEDGER_INGEST__FLUSH_INTERVAL_S="0.05"),
                tmp_path / f"replica-{i}.log",
            )
            for i, port in enumerate(ports)
        ]
        for i in range(3):
            (tmp_path / f"r{i}").mkdir()
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        traces = span_bodies(90, per_body=40)
        metrics = [b for tag in range(3) for b in sample_bodies(20, devices=4, tag=tag)]
        # The same bodies again, sent to *another* replica at the same time as the first copy.
        doubled = traces[:30] + metrics[:20]
        with servers[0], servers[1], servers[2]:
            sender = Sender(urls, key)
            threads = sender.run(traces + metrics, threads=6)
            dup = Sender(urls, key)

            def twice() -> None:
                for i, body in enumerate(doubled):
                    pair = [
                        threading.Thread(target=dup.send, args=(body, i)),
                        threading.Thread(target=dup.send, args=(body, i + 1)),
                    ]
                    for t in pair:
                        t.start()
                    for t in pair:
                        t.join()

            dup_thread = threading.Thread(target=twice)
            dup_thread.start()
            for t in [*threads, dup_thread]:
                t.join(timeout=120)
            for port in ports:
                wait_until_written(port)
        spans, samples = stored(url)
    sent_spans = set().union(*(b.keys for b in traces))
    sent_samples = set().union(*(b.keys for b in metrics))
    assert sender.codes.get(200) == len(traces) + len(metrics), sender.codes
    assert dup.codes.get(200) == 2 * len(doubled), dup.codes
    assert len(spans) == len(set(spans)) == len(sent_spans), "a span lost or stored twice"
    assert set(spans) == sent_spans
    assert len(samples) == len(set(samples)) == len(sent_samples), "a sample lost or twice"
    assert set(samples) == sent_samples
    logs = "".join((tmp_path / f"replica-{i}.log").read_text() for i in range(3))
    assert "refused a batch" not in logs and "Traceback" not in logs, logs[-3000:]


def test_replicas_started_together_on_a_new_database_all_come_up(tmp_path: Path) -> None:
    """``serve`` upgrades the schema at start; three replicas started at once on an empty
    database take turns (a migration lock), so none fails on a half-created schema."""
    with fresh_pg_database() as url:
        ports = [free_port() for _ in range(3)]
        procs = []
        try:
            for i, port in enumerate(ports):
                (tmp_path / f"r{i}").mkdir()
                with (tmp_path / f"serve-{i}.log").open("wb") as log:
                    procs.append(
                        subprocess.Popen(
                            [
                                sys.executable,
                                "-m",
                                "wattledger",
                                "--database-url",
                                url,
                                "serve",
                                "--no-scheduler",
                                "--insecure-no-auth",
                                "--port",
                                str(port),
                            ],
                            env=subprocess_env(tmp_path / f"r{i}"),
                            stdout=log,
                            stderr=log,
                        )
                    )
            deadline = time.monotonic() + 120
            ready: set[int] = set()
            while len(ready) < 3:
                for i, (proc, port) in enumerate(zip(procs, ports, strict=True)):
                    assert proc.poll() is None, (tmp_path / f"serve-{i}.log").read_text()[-3000:]
                    with contextlib.suppress(httpx.HTTPError):
                        r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                        if r.status_code == 200:
                            ready.add(i)
                assert time.monotonic() < deadline, "not every replica became ready"
                time.sleep(0.2)
            assert runner.status(url).current == runner.status(url).head
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                assert proc.wait(timeout=60) == 0  # graceful stop
