"""Sources that need no hardware: a synthetic one and a replay of recorded readings.

* :class:`FakeSource` draws the power you give it (a constant, one per device, or a function
  of time) and integrates it exactly into an energy counter. Demo mode, benchmarks and tests
  use it like any other source (``name = "fake"``).
* :class:`ReplaySource` replays a CSV of recorded readings against the clock, looping, so a
  trace captured on real hardware can drive the collector anywhere.

Both take the clock as an argument, so tests move time by hand.
"""

from __future__ import annotations

import bisect
import csv
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wattledger.collectors.sources.base import DeviceInfo, EnergyReading, HwType
from wattledger.collectors.sources.counters import PowerIntegrator
from wattledger.errors import ConfigError

Watts = float | Callable[[float], float]


class FakeSource:
    """Synthetic devices drawing given power; energy is its integral (``method="counter"``).

    Args:
        watts: Power per device: one value or function of seconds-since-start for all
            devices, or a sequence with one per device.
        devices: Number of devices (ignored when ``watts`` is a sequence).
        clock_ns: Monotonic clock.
        host: Host name used in device ids (``<host>:fake:<index>``).
        utilization: Utilization ratio reported for every device.
        hw_type: ``gpu``, ``cpu`` or ``memory``.
        model: Reported model name.
    """

    name = "fake"

    def __init__(
        self,
        watts: Watts | Sequence[Watts] = 300.0,
        *,
        devices: int = 1,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        host: str | None = None,
        utilization: float | None = 0.5,
        hw_type: HwType = "gpu",
        model: str = "Fake GPU",
    ) -> None:
        per = list(watts) if isinstance(watts, Sequence) else [watts] * devices
        host = host or socket.gethostname()
        self._clock_ns = clock_ns
        self._start_ns = clock_ns()
        self._watts = per
        self._utilization = utilization
        self._infos = [
            DeviceInfo(
                device_id=f"{host}:fake:{i}",
                source=self.name,
                hw_type=hw_type,
                vendor="fake",
                model=model,
                name=f"fake{i}",
                index=i,
            )
            for i in range(len(per))
        ]
        self._integrators = [PowerIntegrator(max_gap_s=float("inf")) for _ in per]
        for integrator, w in zip(self._integrators, per, strict=True):
            integrator.update(self._power(w, 0.0), self._start_ns)

    @staticmethod
    def _power(w: Watts, t_s: float) -> float:
        return float(w(t_s)) if callable(w) else float(w)

    def devices(self) -> Sequence[DeviceInfo]:
        """The synthetic devices."""
        return list(self._infos)

    def read(self) -> list[EnergyReading]:
        """Power now and the energy drawn since the source was created."""
        t_ns = self._clock_ns()
        t_s = (t_ns - self._start_ns) / 1e9
        out = []
        for info, w, integrator in zip(self._infos, self._watts, self._integrators, strict=True):
            power_w = self._power(w, t_s)
            out.append(
                EnergyReading(
                    device_id=info.device_id,
                    energy_j=integrator.update(power_w, t_ns),
                    power_w=power_w,
                    monotonic_ns=t_ns,
                    method="counter",
                    utilization_ratio=self._utilization,
                )
            )
        return out

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class _Trace:
    info: DeviceInfo
    t_s: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)
    utilization: list[float | None] = field(default_factory=list)
    integrator: PowerIntegrator = field(default_factory=lambda: PowerIntegrator(float("inf")))


class ReplaySource:
    """Replays recorded power against the clock, looping at the end of the trace.

    Build it with :meth:`from_csv`. Energy is the trapezoid integral of the replayed power
    (``method="power"``), as it would be for a device without a counter.
    """

    name = "fake"

    def __init__(
        self,
        traces: Sequence[_Trace],
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        loop: bool = True,
    ) -> None:
        if not traces or any(len(t.t_s) < 2 for t in traces):
            raise ConfigError(
                "A replay needs at least two readings per device.",
                hint="Columns: t_s,device_id,power_w[,utilization_ratio].",
            )
        self._traces = list(traces)
        self._clock_ns = clock_ns
        self._start_ns = clock_ns()
        self._loop = loop

    @classmethod
    def from_csv(
        cls,
        path: Path,
        *,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        loop: bool = True,
        model: str = "Replayed GPU",
    ) -> ReplaySource:
        """Load ``t_s,device_id,power_w[,utilization_ratio]`` rows (sorted by ``t_s``).

        Raises:
            ConfigError: the file is missing, lacks a column, or has a non-numeric value.
        """
        traces: dict[str, _Trace] = {}
        try:
            with open(path, newline="") as fh:
                for lineno, row in enumerate(csv.DictReader(fh), start=2):
                    try:
                        device = row["device_id"]
                        t_s, power = float(row["t_s"]), float(row["power_w"])
                        util = row.get("utilization_ratio")
                        utilization = float(util) if util not in (None, "") else None
                    except (KeyError, TypeError, ValueError) as e:
                        raise ConfigError(
                            f"{path}:{lineno}: bad replay row ({e}).",
                            hint="Columns: t_s,device_id,power_w[,utilization_ratio].",
                        ) from e
                    trace = traces.get(device)
                    if trace is None:
                        info = DeviceInfo(device, "fake", "gpu", "replay", model, device)
                        trace = traces[device] = _Trace(info)
                    trace.t_s.append(t_s)
                    trace.power_w.append(power)
                    trace.utilization.append(utilization)
        except OSError as e:
            raise ConfigError(f"Cannot read replay file {path}: {e.strerror}.") from e
        return cls(list(traces.values()), clock_ns=clock_ns, loop=loop)

    def devices(self) -> Sequence[DeviceInfo]:
        """The devices found in the recording."""
        return [t.info for t in self._traces]

    def read(self) -> list[EnergyReading]:
        """The recorded power at the current point of the replay."""
        t_ns = self._clock_ns()
        elapsed = (t_ns - self._start_ns) / 1e9
        out = []
        for trace in self._traces:
            t0, t1 = trace.t_s[0], trace.t_s[-1]
            at = t0 + (elapsed % (t1 - t0) if self._loop else min(elapsed, t1 - t0))
            i = max(bisect.bisect_right(trace.t_s, at) - 1, 0)
            j = min(i + 1, len(trace.t_s) - 1)
            span = trace.t_s[j] - trace.t_s[i]
            frac = (at - trace.t_s[i]) / span if span > 0 else 0.0
            power = trace.power_w[i] + (trace.power_w[j] - trace.power_w[i]) * frac
            out.append(
                EnergyReading(
                    device_id=trace.info.device_id,
                    energy_j=trace.integrator.update(power, t_ns),
                    power_w=power,
                    monotonic_ns=t_ns,
                    method="power",
                    utilization_ratio=trace.utilization[i],
                )
            )
        return out

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["FakeSource", "ReplaySource"]
