"""The wattledger SDK: LLM requests as OpenTelemetry GenAI spans, at negligible overhead.

Three lines instrument a service (see docs/sdk.md)::

    import wattledger
    wattledger.init("my-service", endpoint="http://localhost:4318")
    with wattledger.track(model="llama-3.1-8b", provider="vllm") as t: ...

Public API (re-exported by :mod:`wattledger`): :func:`init`, :func:`shutdown`, :func:`flush`,
:func:`stats`, :func:`track`, :func:`track_stream`, :func:`current`,
:func:`instrument_openai`, and the types :class:`Tracked`, :class:`SdkStats`.

Nothing here raises into the host application, and nothing blocks it: spans go to a bounded
queue exported by a background thread; what cannot be delivered is counted (``stats()``).
There is no exception tree: SDK failures are logged (rate-limited) and counted, never raised.
"""

from __future__ import annotations

from wattledger.collectors.sdk._openai import instrument_openai
from wattledger.collectors.sdk._runtime import flush, init, shutdown, stats
from wattledger.collectors.sdk._stats import SdkStats
from wattledger.collectors.sdk._stream import AsyncTrackedStream, TrackedStream, track_stream
from wattledger.collectors.sdk._track import Tracked, current, track

__all__ = [
    "AsyncTrackedStream",
    "SdkStats",
    "Tracked",
    "TrackedStream",
    "current",
    "flush",
    "init",
    "instrument_openai",
    "shutdown",
    "stats",
    "track",
    "track_stream",
]
