"""Fixtures for ingest tests: a migrated warehouse engine and a running receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ingest_helpers import RunningServer, add_key, settings_for
from sqlalchemy import Engine

from wattledger.ingest import IngestService
from wattledger.models import make_engine


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated warehouse, once per backend."""
    e = make_engine(migrated_url)
    yield e
    e.dispose()


@pytest.fixture
def serve(
    migrated_url: str, engine: Engine, tmp_path: Path
) -> Iterator[Callable[..., RunningServer]]:
    """Start receivers on the test warehouse: ``serve(**ingest_settings)``."""
    running: list[RunningServer] = []

    def start(**ingest: Any) -> RunningServer:
        settings = settings_for(migrated_url, tmp_path / f"data{len(running)}", **ingest)
        server = RunningServer(IngestService(settings, engine)).__enter__()
        running.append(server)
        return server

    yield start
    for s in reversed(running):
        s.__exit__(None, None, None)


@pytest.fixture
def key(engine: Engine) -> str:
    """An API key of tenant ``acme``."""
    return add_key(engine, "acme")
