"""The SDK's one piece of process state, read on every tracked request.

Until :func:`wattledger.init` runs, the tracer is OpenTelemetry's global proxy: spans are
no-ops unless the application configured OpenTelemetry itself, in which case they go to its
provider. This module imports only the OpenTelemetry API, so ``track`` stays cheap to import.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from wattledger._version import __version__
from wattledger.collectors import semconv

if TYPE_CHECKING:
    from wattledger.collectors.sdk._metrics import RequestInstruments


def default_tracer() -> trace.Tracer:
    """The tracer from OpenTelemetry's global provider (a proxy until one is set)."""
    return trace.get_tracer(semconv.SCOPE_NAME, __version__, schema_url=semconv.SCHEMA_URL)


class State:
    """What ``track`` needs at run time; replaced wholesale by ``init`` and ``shutdown``.

    Attributes:
        tracer: Creates the request spans.
        clock_ns: Monotonic clock in nanoseconds used for every duration (TTFT, gaps, span
            length); tests inject a controlled one through ``init(clock_ns=...)``.
        defaults: Span attributes every request starts with (e.g. the init-level workload).
        instruments: GenAI client histograms when ``request_metrics`` is on, else None.
    """

    __slots__ = ("tracer", "clock_ns", "defaults", "instruments")

    def __init__(
        self,
        tracer: trace.Tracer | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        defaults: dict[str, Any] | None = None,
        instruments: RequestInstruments | None = None,
    ) -> None:
        self.tracer = tracer if tracer is not None else default_tracer()
        self.clock_ns = clock_ns
        self.defaults = defaults or {}
        self.instruments = instruments


STATE = State()


def reset() -> None:
    """Back to the unconfigured state (global proxy tracer, real clock, no defaults)."""
    global STATE
    STATE = State()


def install(state: State) -> None:
    """Make ``state`` the one ``track`` uses from now on."""
    global STATE
    STATE = state
