"""wattledger: energy-aware FinOps telemetry for AI inference on heterogeneous hardware.

The public facade. Instrument a service with the SDK (``wattledger.init``, ``wattledger.track``;
see the README), run the platform with the ``wattledger`` command.
"""

from __future__ import annotations

from wattledger._version import __version__

__all__ = ["__version__"]
