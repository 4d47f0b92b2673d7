"""Fakes of the hardware boundary, shipped for tests, the demo and the dashboard fixtures.

* :class:`FakeNvml` (``fakes.nvml``): a ``pynvml``-shaped module that raises the real
  nvidia-ml-py exception classes (needs ``nvidia-ml-py`` installed).
* :class:`FakeAmdSmi` (``fakes.amdsmi``): an ``amdsmi``-shaped module (ROCm cannot be
  installed without the hardware, so its exceptions are reproduced from the interface).
* :class:`FakeRapl` (``fakes.sysfs``): a powercap RAPL tree in a directory.
* :class:`FakeTool` (``fakes.tools``): an executable standing in for ``tpu-info`` or
  ``neuron-monitor``, printing what the real tool prints.
"""

from __future__ import annotations

from typing import Any

from wattledger.collectors.sources.fakes.amdsmi import FakeAmdGpu, FakeAmdSmi
from wattledger.collectors.sources.fakes.sysfs import FakeRapl, FakeRaplZone
from wattledger.collectors.sources.fakes.tools import FakeTool


def __getattr__(name: str) -> Any:
    # FakeNvml imports the real pynvml (for its exception classes): load it on first use.
    if name in ("FakeNvml", "FakeGpu", "FakeMigInstance"):
        from wattledger.collectors.sources.fakes import nvml

        return getattr(nvml, name)
    raise AttributeError(name)


__all__ = [
    "FakeAmdGpu",
    "FakeAmdSmi",
    "FakeGpu",
    "FakeMigInstance",
    "FakeNvml",
    "FakeRapl",
    "FakeRaplZone",
    "FakeTool",
]
