"""wattledger: energy-aware FinOps telemetry for AI inference on heterogeneous hardware.

The public facade. Instrument a service with the SDK (``wattledger.init``, ``wattledger.track``;
see docs/sdk.md), run the platform with the ``wattledger`` command.

The SDK names are loaded on first use, so ``import wattledger`` stays cheap (it does not
import OpenTelemetry until you call one of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wattledger._version import __version__

if TYPE_CHECKING:
    from wattledger.collectors.sdk import (
        SdkStats,
        Tracked,
        current,
        flush,
        init,
        instrument_openai,
        shutdown,
        stats,
        track,
        track_stream,
    )

_SDK_NAMES = frozenset(
    {
        "SdkStats",
        "Tracked",
        "current",
        "flush",
        "init",
        "instrument_openai",
        "shutdown",
        "stats",
        "track",
        "track_stream",
    }
)

__all__ = [
    "SdkStats",
    "Tracked",
    "__version__",
    "current",
    "flush",
    "init",
    "instrument_openai",
    "shutdown",
    "stats",
    "track",
    "track_stream",
]


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        from wattledger.collectors import sdk

        value = getattr(sdk, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wattledger' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SDK_NAMES})
