"""Google Cloud TPUs through the ``tpu-info`` CLI: duty cycle in, modeled power out.

TPUs expose no power reading. ``tpu-info`` (``pip install tpu-info``; Google's
cloud-accelerator-diagnostics) prints, per chip, the libtpu runtime's duty cycle (the share of
time the TensorCores were busy) and HBM use, as Rich tables::

    TPU Chips
    ┏━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┓
    ┃ Chip        ┃ Type         ┃ Devices ┃ PID     ┃
    ┡━━━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━┩
    │ /dev/vfio/0 │ TPU v6e chip │ 1       │ 1469584 │
    ...
    TPU Runtime Utilization
    ┃ Chip ┃ HBM Usage (GiB)       ┃ Duty cycle ┃
    │ 0    │ 18.45 GiB / 31.25 GiB │    100.00% │

:class:`TpuInfoSource` runs it every ``interval_s`` off the sampling thread, parses those two
tables (column names differ between releases: ``Device``/``Chip``, ``HBM usage``/``HBM Usage
(GiB)``; a chip with two cores shows its duty cycle on the first core's row) and models each
chip's power from its duty cycle between the catalog's idle and TDP figures
(:mod:`~wattledger.collectors.sources.utilization`). Readings are ``method="modeled"``.

When no framework holds the TPU, libtpu serves no metrics (``Libtpu metrics unavailable``) and
the duty cycle is ``N/A``: a chip no process holds (``PID`` ``None``) is idle, so it is modeled
at idle power; a chip a process holds whose duty cycle is unknown gets no reading (and one
WARNING) rather than a guess.

GKE's ``kubernetes.io/container/accelerator/duty_cycle`` is the same libtpu figure, exported to
Cloud Monitoring rather than to the node, so the collector reads it here, at the source.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wattledger.collectors.sources.base import (
    DeviceInfo,
    EnergyReading,
    OnceLogger,
    SourceError,
    SourceUnavailable,
)
from wattledger.collectors.sources.counters import DEFAULT_MAX_GAP_S, PowerIntegrator
from wattledger.collectors.sources.toolproc import PeriodicCommand, find_tool
from wattledger.collectors.sources.utilization import PowerFigures, catalog_power_figures

logger = logging.getLogger(__name__)
GIB = 2**30
_INSTALL_FIX = (
    "Install Google's tpu-info CLI on the TPU VM (`pip install tpu-info`), or pass its path: "
    "--source tpu=/path/to/tpu-info. See docs/collector.md#tpu-and-neuron."
)
#: Characters of Rich's table and panel borders (unicode boxes and the ASCII fallback).
_VERTICAL = re.compile(r"[│┃|]")
_BORDER = set("━─┏┳┓┡╇┩└┴┘┌┬┐├┼┤╭╮╰╯═╔╦╗╚╩╝+-=:| ")


@dataclass(frozen=True, slots=True)
class TpuChip:
    """One chip as ``tpu-info`` reports it.

    Attributes:
        index: Position in the ``TPU Chips`` table (0-based).
        path: Device path, e.g. ``/dev/vfio/0``.
        chip_type: ``TPU v6e`` (the tool's ``TPU v6e chip`` without ``chip``).
        pid: The process holding the chip, or None.
        duty_cycle_ratio: Busy share 0..1 over libtpu's last window, or None when unknown.
        hbm_used_bytes: HBM in use, bytes (from GiB with two decimals), or None.
        hbm_total_bytes: HBM size, bytes, or None.
    """

    index: int
    path: str
    chip_type: str
    pid: int | None
    duty_cycle_ratio: float | None
    hbm_used_bytes: int | None = None
    hbm_total_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class TpuInfoReport:
    """What one ``tpu-info`` run said.

    Attributes:
        chips: The chips, in the tool's order.
        metrics_unavailable: libtpu served no runtime metrics (no framework holds the TPU).
        warnings: Text of the warning panels the tool printed.
    """

    chips: tuple[TpuChip, ...]
    metrics_unavailable: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _tables(text: str) -> tuple[dict[str, list[list[str]]], list[str]]:
    """Rich tables by title (header row first) and the text of panels, from tpu-info's output."""
    tables: dict[str, list[list[str]]] = {}
    panels: list[str] = []
    title: str | None = None
    rows: list[list[str]] | None = None
    in_panel = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        first = line[0]
        is_border = set(line) <= _BORDER
        if in_panel:
            if first in "╰+" and is_border:
                in_panel = False
            elif _VERTICAL.match(first):
                panels.append(_VERTICAL.sub(" ", line).strip())
            continue
        if first in "╭+" and not is_border:  # a panel's top border carries its title
            in_panel = True
            continue
        if is_border:
            if first in "┏+┌" and title is not None and rows is None:
                rows = tables.setdefault(title, [])
            continue
        if _VERTICAL.match(first):
            if rows is None:  # a table without a title line we know: still read it
                rows = tables.setdefault(title or "", [])
            rows.append([c.strip() for c in _VERTICAL.split(line)[1:-1]])
            continue
        title, rows = line, None  # a line of text outside any box: the next table's title
    return tables, panels


def _column(header: list[str], *words: str) -> int | None:
    for i, name in enumerate(header):
        if any(w in name.lower() for w in words):
            return i
    return None


def _percent(cell: str) -> float | None:
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*%", cell.strip())
    return float(match.group(1)) / 100.0 if match else None


def _hbm(cell: str) -> tuple[int | None, int | None]:
    match = re.fullmatch(r"([0-9.]+)\s*GiB\s*/\s*([0-9.]+)\s*GiB", cell.strip())
    if not match:
        return None, None
    return int(float(match.group(1)) * GIB), int(float(match.group(2)) * GIB)


def parse_tpu_info(text: str) -> TpuInfoReport:
    """Parse the output of a plain ``tpu-info`` run.

    Raises:
        SourceUnavailable: the tool found no TPU chips.
        ValueError: the output has no ``TPU Chips`` table (not tpu-info, or a format this
            version does not know).
    """
    if "No TPU chips found" in text:
        raise SourceUnavailable("tpu-info found no TPU chips on this host.")
    tables, panels = _tables(text)
    chips_table = tables.get("TPU Chips")
    if not chips_table or len(chips_table) < 2:
        raise ValueError("no 'TPU Chips' table in the output of tpu-info")
    header, *chip_rows = chips_table
    i_chip, i_type = _column(header, "chip"), _column(header, "type")
    i_devices, i_pid = _column(header, "devices"), _column(header, "pid")
    if i_chip is None or i_type is None:
        raise ValueError(f"unexpected 'TPU Chips' columns {header}")
    runtime = tables.get("TPU Runtime Utilization") or tables.get("TPU Duty Cycle") or []
    usage: list[tuple[float | None, tuple[int | None, int | None]]] = []
    if len(runtime) >= 2:
        r_header, *r_rows = runtime
        i_duty, i_hbm = _column(r_header, "duty"), _column(r_header, "hbm")
        for row in r_rows:
            duty = _percent(row[i_duty]) if i_duty is not None and i_duty < len(row) else None
            hbm = _hbm(row[i_hbm]) if i_hbm is not None and i_hbm < len(row) else (None, None)
            usage.append((duty, hbm))
    chips = []
    for index, row in enumerate(chip_rows):
        per_chip = 1
        if i_devices is not None and row[i_devices].isdigit():
            per_chip = max(int(row[i_devices]), 1)
        rows = usage[index * per_chip : (index + 1) * per_chip]
        duty = next((d for d, _ in rows if d is not None), None)
        used = [u for _, (u, _t) in rows if u is not None]
        total = [t for _, (_u, t) in rows if t is not None]
        pid_text = row[i_pid] if i_pid is not None and i_pid < len(row) else ""
        chips.append(
            TpuChip(
                index=index,
                path=row[i_chip],
                chip_type=re.sub(r"\s*chip$", "", row[i_type]).strip(),
                pid=int(pid_text) if pid_text.isdigit() else None,
                duty_cycle_ratio=duty,
                hbm_used_bytes=sum(used) if used else None,
                hbm_total_bytes=sum(total) if total else None,
            )
        )
    # Older releases print the warning as a plain line, newer ones in a panel.
    unavailable = "libtpu metrics unavailable" in text.lower()
    return TpuInfoReport(tuple(chips), unavailable, tuple(panels))


@dataclass
class _Chip:
    info: DeviceInfo
    figures: PowerFigures
    integrator: PowerIntegrator


class TpuInfoSource:
    """TPU chips with power modeled from their duty cycle (``method="modeled"``).

    Args:
        command: The ``tpu-info`` executable (a name on ``PATH`` or a path).
        interval_s: Seconds between runs of the tool (it takes about a second).
        timeout_s: Longest one run may take.
        stale_s: A report older than this gives no readings (the tool stopped working).
        clock_ns: Monotonic clock.
        host: Host name used in device ids (``<host>:tpu:<chip>``).
        max_gap_s: Longest power-integration gap.
        background: Rerun the tool in a thread (False in tests, which call :meth:`refresh`).

    Raises:
        SourceUnavailable: the tool is missing, finds no chips, or the catalog has no power
            figures for the chip type.
        SourceError: the tool fails or prints something this parser does not understand.
    """

    name = "tpu"

    def __init__(
        self,
        command: str = "tpu-info",
        *,
        interval_s: float = 5.0,
        timeout_s: float = 30.0,
        stale_s: float | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        host: str | None = None,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
        background: bool = True,
    ) -> None:
        path = find_tool(command)
        if path is None:
            raise SourceUnavailable(f"{command} was not found.", hint=_INSTALL_FIX)
        self._clock_ns = clock_ns
        self._once = OnceLogger(logger)
        self.stale_s = stale_s if stale_s is not None else 3 * interval_s + timeout_s
        # Rich wraps cells to the terminal width; a wide virtual terminal keeps rows whole.
        self._runner: PeriodicCommand[TpuInfoReport] = PeriodicCommand(
            [path],
            parse_tpu_info,
            interval_s=interval_s,
            timeout_s=timeout_s,
            clock_ns=clock_ns,
            env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
        )
        try:
            report = self._runner.run_once()
        except SourceError as e:
            if not e.hint:
                e.hint = _INSTALL_FIX
            raise
        except ValueError as e:
            raise SourceError(
                f"{command} printed output this collector cannot read ({e}).",
                hint="Check that `tpu-info` works in a shell; report the output if it does.",
            ) from e
        host = host or socket.gethostname()
        self._chips: list[_Chip] = []
        for chip in report.chips:
            figures = catalog_power_figures(chip.chip_type)
            if figures is None:
                raise SourceUnavailable(
                    f"The hardware catalog has no idle and TDP figures for {chip.chip_type!r}, "
                    "so its power cannot be modeled.",
                    hint="Add the part to catalog/data/hardware.toml (docs/catalog.md).",
                )
            info = DeviceInfo(
                device_id=f"{host}:tpu:{chip.index}",
                source=self.name,
                hw_type="gpu",
                vendor=figures.vendor,
                model=chip.chip_type,
                name=f"tpu{chip.index}",
                index=chip.index,
                tdp_w=figures.tdp_w,
                idle_power_w=figures.idle_power_w,
                uncertainty_ratio=figures.uncertainty_ratio,
            )
            self._chips.append(_Chip(info, figures, PowerIntegrator(max_gap_s)))
        logger.info(
            "tpu-info: %d chip(s) (%s); power is modeled from duty cycle.",
            len(self._chips),
            ", ".join(sorted({c.info.model for c in self._chips})) or "none",
        )
        if background:
            self._runner.start()

    def refresh(self) -> TpuInfoReport:
        """Run the tool now (tests; the background thread does this every ``interval_s``)."""
        return self._runner.run_once()

    def devices(self) -> Sequence[DeviceInfo]:
        """One device per chip."""
        return [c.info for c in self._chips]

    def read(self) -> list[EnergyReading]:
        """Modeled power and energy of each chip from the latest ``tpu-info`` report."""
        t_ns = self._clock_ns()
        latest = self._runner.latest()
        if latest is None or (t_ns - latest[1]) / 1e9 > self.stale_s:
            self._once.log(
                logging.WARNING,
                ("stale",),
                "tpu-info has given no report for over %.0f s; TPU power is not reported "
                "until it does.",
                self.stale_s,
            )
            return []
        self._once.forget(("stale",))
        report, _ = latest
        by_index = {c.index: c for c in report.chips}
        out = []
        for chip in self._chips:
            seen = by_index.get(chip.info.index)
            if seen is None:
                continue
            duty = seen.duty_cycle_ratio
            if duty is None and seen.pid is None:
                duty = 0.0  # no process holds the chip: it is idle
            if duty is None:
                self._once.log(
                    logging.WARNING,
                    (chip.info.device_id, "no_duty"),
                    "TPU %s is held by PID %s but libtpu reports no duty cycle (%s); its power "
                    "is not modeled until it does. Is the framework's libtpu recent enough?",
                    seen.path,
                    seen.pid,
                    "; ".join(report.warnings) or "no runtime metrics",
                )
                continue
            power_w = chip.figures.power_w(duty)
            out.append(
                EnergyReading(
                    device_id=chip.info.device_id,
                    energy_j=chip.integrator.update(power_w, t_ns),
                    power_w=power_w,
                    monotonic_ns=t_ns,
                    method="modeled",
                    utilization_ratio=duty,
                    memory_used_bytes=seen.hbm_used_bytes,
                    memory_total_bytes=seen.hbm_total_bytes,
                )
            )
        return out

    def close(self) -> None:
        """Stop rerunning the tool."""
        self._runner.close()


__all__ = ["TpuChip", "TpuInfoReport", "TpuInfoSource", "parse_tpu_info"]
