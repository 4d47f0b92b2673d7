"""SDK test fixtures (helpers live in sdk_support.py).

- ``sdk``: ``wattledger.init`` with an ``InMemorySpanExporter`` behind the SDK's real
  queue/processor, a private ``TracerProvider`` and a :class:`FakeClock`.
- ``otlp_receiver``: a real OTLP/HTTP endpoint recording every request.
- ``openai_server``: an OpenAI-compatible server sending JSON and real SSE streams.
- An autouse fixture shuts the SDK down after every test, so no state leaks between tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_support import (
    FakeClock,
    OpenAIServer,
    OtlpReceiver,
    Sdk,
    run_otlp_receiver,
    start_openai_server,
)

import wattledger
from wattledger.collectors.sdk import _runtime, _state


@pytest.fixture(autouse=True)
def _reset_sdk() -> Iterator[None]:
    yield
    wattledger.shutdown(timeout_s=2.0)
    _runtime._LAST_STATS[0] = None
    assert _runtime._RUNTIME is None
    assert _state.STATE.defaults == {}


@pytest.fixture
def sdk() -> Sdk:
    exporter = InMemorySpanExporter()
    clock = FakeClock()
    assert wattledger.init(
        "test-service",
        span_exporter=exporter,
        set_global=False,
        metrics=False,
        clock_ns=clock,
        resource_attributes={"wattledger.site": "lab-1"},
    )
    return Sdk(exporter, clock)


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    with run_otlp_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def openai_server() -> Iterator[OpenAIServer]:
    with start_openai_server() as server:
        yield server
