"""Regenerate the ``tpu-info`` and ``neuron-monitor`` recordings in this folder (see README.md).

Usage: python tests/collectors/data/make_tool_outputs.py

No TPU or Neuron host is reachable from the test machines, so these are rendered, not captured:

* ``tpu-info`` prints Rich tables. The tables below are built with Rich itself (the library
  tpu-info renders with) from tpu-info's own table titles, column names, cell formats and
  warning panels, as in ``tpu_info/cli.py`` and ``tpu_info/cli_helper.py`` of
  github.com/AI-Hypercomputer/cloud-accelerator-diagnostics (Apache-2.0, Copyright 2023
  Google LLC): ``TPU Chips`` (Chip, Type = ``str(TpuChip)`` = ``TPU v6e chip``, Devices, PID),
  ``TPU Runtime Utilization`` (``Chip``/``HBM Usage (GiB)``/``Duty cycle`` in current
  releases, ``Device``/``HBM usage``/``Duty cycle`` in older ones; ``f"{gib:.2f} GiB /
  {gib:.2f} GiB"`` and ``f"{pct:.2f}%"`` cells, ``N/A`` without libtpu metrics), the
  ``Runtime Utilization Status`` panel, ``TensorCore Utilization``. Values follow the README's
  example (a v6e-4 host, 31.25 GiB HBM per chip).
* ``neuron-monitor`` prints one JSON document per report. The documents follow the JSON
  output format in the Neuron Monitor User Guide (aws-neuron/aws-neuron-sdk,
  ``tools/neuron-sys-tools/neuron-monitor-user-guide.rst``, documentation licensed CC BY-SA
  4.0): ``neuron_runtime_data[].report.neuroncore_counters.neuroncores_in_use`` with
  ``neuroncore_utilization`` in percent (and the ``v3d`` per-physical-core block on Trn2),
  ``memory_used.neuron_runtime_used_bytes.usage_breakdown.neuroncore_memory_usage``,
  ``instance_info`` and ``neuron_hardware_info`` (inf2.xlarge: one ``inferentia2`` device,
  2 NeuronCores, 32 GiB; trn2.48xlarge: 16 ``trainium2`` devices, 4 logical NeuronCores each
  with LNC=2, 96 GiB). Each runtime lists cores it does not use with 0 %, as captured output
  from inf1 hosts shows. The recordings themselves are our own numbers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

HERE = Path(__file__).parent
GIB = 1 << 30


class _AsciiStdout(io.StringIO):
    """A stdout whose encoding is ASCII (``LANG=C``): Rich falls back to ASCII boxes."""

    encoding = "ascii"


def _render(items: list[Any], *, ascii_only: bool = False) -> str:
    out: io.StringIO = _AsciiStdout() if ascii_only else io.StringIO()
    console = Console(file=out, width=200, color_system=None, force_terminal=False)
    for item in items:
        console.print(item)
    return out.getvalue()


def _table(
    title: str, columns: list[str], rows: list[list[str]], right: int | None = None
) -> Table:
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if i == right else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _hbm(used_gib: float, total_gib: float = 31.25) -> str:
    used, total = int(used_gib * GIB), int(total_gib * GIB)
    return f"{used / GIB:.2f} GiB / {total / GIB:.2f} GiB"


def tpu_v6e_busy() -> str:
    """Current tpu-info on a v6e-4 host serving a model: four chips held by one process."""
    chips = [[f"/dev/vfio/{i}", "TPU v6e chip", "1", "1469584"] for i in range(4)]
    duty = [100.0, 100.0, 37.5, 0.0]
    used = [18.45, 10.40, 10.40, 10.40]
    runtime = [[str(i), _hbm(used[i]), f"{duty[i]:.2f}%"] for i in range(4)]
    tensorcore = [[str(i), f"{v}%"] for i, v in enumerate([13.6, 14.81, 5.02, 0.0])]
    latency_warning = Panel(
        "[yellow]WARNING:[/yellow] Buffer Transfer Latency metrics unavailable. Did you start a"
        " MULTI_SLICE workload with `TPU_RUNTIME_METRICS_PORTS=8431,8432,8433,8434`?",
        title="[b]Buffer Transfer Latency Status[/b]",
        border_style="yellow",
    )
    return _render(
        [
            Text("Libtpu version: 0.0.19.dev20250721+nightly\nAccelerator type: v6e\n"),
            _table("TPU Chips", ["Chip", "Type", "Devices", "PID"], chips),
            _table(
                "TPU Runtime Utilization", ["Chip", "HBM Usage (GiB)", "Duty cycle"], runtime, 2
            ),
            _table("TensorCore Utilization", ["Core ID", "TensorCore Utilization"], tensorcore, 1),
            latency_warning,
            _table("TPU Buffer Transfer Latency", ["Buffer Size", "P50", "P90", "P95", "P999"], []),
        ]
    )


def tpu_v5e_no_workload(*, ascii_only: bool = False, held: bool = False) -> str:
    """An older tpu-info on a v5e-8 host with no framework running: libtpu serves nothing."""
    pid = "2210" if held else "None"
    chips = [[f"/dev/vfio/{i}", "TPU v5e chip", "1", pid] for i in range(8)]
    runtime = [[str(i), "N/A", "N/A"] for i in range(8)]
    warning = Panel(
        "[yellow]WARNING:[/yellow] Libtpu metrics unavailable. Is there a framework using the"
        " TPU? See [link=https://github.com/google/cloud-accelerator-diagnostics/tree/main/"
        "tpu_info]tpu_info docs[/link] for more information.",
        title="[b]Runtime Utilization Status[/b]",
        border_style="yellow",
    )
    tensorcore = Panel(
        "[yellow]WARNING: ImportError: No module named 'libtpu'. libtpu SDK not available.[/]",
        title="[b]TensorCore Status[/b]",
        border_style="yellow",
    )
    return _render(
        [
            _table("TPU Chips", ["Chip", "Type", "Devices", "PID"], chips),
            warning,
            _table("TPU Runtime Utilization", ["Device", "HBM usage", "Duty cycle"], runtime, 2),
            tensorcore,
        ],
        ascii_only=ascii_only,
    )


def _instance(instance_type: str) -> dict[str, Any]:
    return {
        "instance_name": "",
        "instance_id": "i-0dd3c47dea213fd30",
        "instance_type": instance_type,
        "instance_availability_zone": "us-east-1d",
        "instance_availability_zone_id": "use1-az6",
        "instance_region": "us-east-1",
        "ami_id": "ami-0fd664467b3cf8dfd",
        "subnet_id": "subnet-07d275b496c32dd6f",
        "error": "",
    }


def _memory(cores: dict[int, int]) -> dict[str, Any]:
    per_core = {
        str(c): {
            "constants": b // 2,
            "model_code": 176285056,
            "model_shared_scratchpad": 0,
            "runtime_memory": 0,
            "tensors": b - b // 2,
        }
        for c, b in cores.items()
    }
    device = sum(sum(v.values()) for v in per_core.values())
    return {
        "period": 1.00001,
        "neuron_runtime_used_bytes": {
            "host": 1166249984,
            "neuron_device": device,
            "usage_breakdown": {
                "host": {
                    "application_memory": 1165201408,
                    "constants": 0,
                    "dma_buffers": 1048576,
                    "tensors": 0,
                },
                "neuroncore_memory_usage": per_core,
            },
        },
        "loaded_models": [],
        "error": "",
    }


def _runtime(pid: int, cores: dict[int, float], memory: dict[int, int], v3d: bool = False):
    in_use: dict[str, Any] = {}
    for core, util in cores.items():
        entry: dict[str, Any] = {"neuroncore_utilization": util, "flops": int(util * 1.9e10)}
        if v3d:
            entry["v3d"] = {
                f"nc_v3.{2 * core}": {"neuroncore_utilization": util},
                f"nc_v3.{2 * core + 1}": {"neuroncore_utilization": util},
            }
        in_use[str(core)] = entry
    return {
        "pid": pid,
        "address": "",
        "neuron_runtime_tag": str(pid),
        "error": "",
        "report": {
            "neuroncore_counters": {
                "period": 1.000113182,
                "neuroncores_in_use": in_use,
                "error": "",
            },
            "memory_used": _memory(memory),
        },
    }


def _hardware(kind: str, count: int, per_device: int, memory: int, lnc: int = 1) -> dict[str, Any]:
    version = {"inferentia2": ("v3", "v2"), "trainium2": ("v4", "v3d")}[kind]
    return {
        "neuron_device_type": kind,
        "neuron_device_version": version[0],
        "neuroncore_version": version[1],
        "neuron_device_count": count,
        "neuron_device_memory_size": memory,
        "neuroncore_per_device_count": per_device,
        "logical_neuroncore_config": lnc,
        "error": "",
    }


def neuron_inf2() -> list[dict[str, Any]]:
    """inf2.xlarge: a busy report (one runtime on core 0), then one with no runtime left."""
    hw = _hardware("inferentia2", 1, 2, 34359738368)
    busy = {
        "neuron_runtime_data": [_runtime(2199, {0: 89.40087251059674, 1: 0}, {0: 141649980})],
        "system_data": {},
        "instance_info": _instance("inf2.xlarge"),
        "neuron_hardware_info": hw,
    }
    idle = {**busy, "neuron_runtime_data": []}
    return [busy, idle]


def neuron_trn2() -> list[dict[str, Any]]:
    """trn2.48xlarge (LNC=2): two runtimes, each on two cores of its own device."""
    hw = _hardware("trainium2", 16, 4, 103079215104, lnc=2)
    first = _runtime(3001, {0: 42.01, 1: 63.0, 4: 0, 5: 0}, {0: 2 * GIB, 1: 2 * GIB}, v3d=True)
    second = _runtime(3002, {0: 0, 1: 0, 4: 100.0, 5: 80.0}, {4: 3 * GIB, 5: 3 * GIB}, v3d=True)
    return [
        {
            "neuron_runtime_data": [first, second],
            "system_data": {},
            "instance_info": _instance("trn2.48xlarge"),
            "neuron_hardware_info": hw,
        }
    ]


def neuron_no_driver() -> dict[str, Any]:
    """What neuron-monitor reports on an instance without a loaded Neuron driver."""
    return {
        "neuron_runtime_data": [],
        "system_data": {},
        "instance_info": _instance("inf2.xlarge"),
        "neuron_hardware_info": {
            "neuron_device_count": 0,
            "neuroncore_per_device_count": 0,
            "error": "open /sys/devices/virtual/neuron_device: no such file or directory",
        },
    }


def main() -> None:
    """Write every recording."""
    (HERE / "tpu_info_v6e_busy.txt").write_text(tpu_v6e_busy())
    (HERE / "tpu_info_v5e_no_workload.txt").write_text(tpu_v5e_no_workload())
    (HERE / "tpu_info_v5e_no_workload_ascii.txt").write_text(
        tpu_v5e_no_workload(ascii_only=True, held=True)
    )
    (HERE / "tpu_info_no_chips.txt").write_text("No TPU chips found.\n")
    for name, docs in (("inf2", neuron_inf2()), ("trn2", neuron_trn2())):
        lines = "".join(json.dumps(d) + "\n" for d in docs)
        (HERE / f"neuron_monitor_{name}.jsonl").write_text(lines)
    (HERE / "neuron_monitor_no_driver.jsonl").write_text(json.dumps(neuron_no_driver()) + "\n")


if __name__ == "__main__":
    main()
