"""A real ingest on a fresh DuckDB file, served on 127.0.0.1 in this process (for benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import Engine

from wattledger.config import load_settings
from wattledger.ingest import IngestService
from wattledger.ingest.auth import create_key
from wattledger.migrations import runner
from wattledger.models import make_engine


@dataclass
class LocalIngest:
    """Where to send (``endpoint``, ``api_key``) and the warehouse behind it."""

    endpoint: str
    api_key: str
    engine: Engine
    service: IngestService

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every accepted row is committed."""
        if not self.service.writer.wait_idle(timeout_s):
            raise SystemExit("the ingest writer did not catch up")


@contextlib.contextmanager
def local_ingest(workdir: Path, tenant: str = "bench") -> Iterator[LocalIngest]:
    """Migrate ``workdir/warehouse.duckdb``, serve ingest on it, yield, stop the server."""
    url = f"duckdb:///{workdir}/warehouse.duckdb"
    runner.upgrade(url)
    engine = make_engine(url)
    settings = load_settings(
        database_url=url,
        data_dir=workdir / "data",
        ingest={"flush_interval_s": 0.05, "stats_log_interval_s": 0},
    )
    service = IngestService(settings, engine)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(service.app, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("the ingest server did not start")
        time.sleep(0.01)
    try:
        yield LocalIngest(endpoint, create_key(engine, tenant).key, engine, service)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        engine.dispose()
