"""Rebuild ``energy_catalog.json`` from the ML.ENERGY leaderboard v2 data (Apache-2.0).

Usage: python build_energy_catalog.py /path/to/mlenergy-leaderboard-v2 > energy_catalog.json

Each leaderboard file is one measured configuration (model, GPU, batch size, tensor/pipeline
parallelism) with ``Energy/req (J)`` and ``Avg Output Tokens``; energy per output token is
their ratio (the ML.ENERGY convention: whole-GPU energy in steady state / output tokens). The
catalog keeps, per model x GPU x task, the median over measured batch sizes and the range.
Cite: Chung et al., "The ML.ENERGY Benchmark", NeurIPS Datasets and Benchmarks 2025.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

GPU_KEYS = {"A100-SXM4-40GB": "A100-SXM4-40GB", "H100 80GB HBM3": "H100-SXM-80GB"}


def build(root: Path) -> dict[str, object]:
    """The catalog document for the leaderboard tree at ``root``."""
    groups: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for path in sorted(root.glob("llm_text_generation/*/*/*/*/bs*+tp*+pp*.json")):
        task = path.parts[-5]
        gpu = GPU_KEYS[path.parts[-4]]
        row = json.loads(path.read_text())
        out_tokens = float(row["Avg Output Tokens"])
        if out_tokens <= 0:
            continue
        groups.setdefault((row["Model"], gpu, task), []).append(
            {
                "j_per_token": float(row["Energy/req (J)"]) / out_tokens,
                "tp": float(row["TP"]),
                "tok_s": float(row["Token tput (tok/s)"]),
            }
        )
    entries = []
    for (model, gpu, task), rows in sorted(groups.items()):
        jpt = [r["j_per_token"] for r in rows]
        entries.append(
            {
                "llm_model": model,
                "hardware": gpu,
                "task": task,
                "tensor_parallel": int(statistics.median(r["tp"] for r in rows)),
                "joules_per_output_token": round(statistics.median(jpt), 5),
                "joules_per_output_token_min": round(min(jpt), 5),
                "joules_per_output_token_max": round(max(jpt), 5),
                "configurations": len(rows),
            }
        )
    return {
        "source": "ML.ENERGY leaderboard v2 (github.com/ml-energy/leaderboard-v2 @ c3af7f31), "
        "Apache-2.0; Chung et al., NeurIPS Datasets and Benchmarks 2025",
        "method": "median over batch sizes of Energy/req (J) / Avg Output Tokens",
        "entries": entries,
    }


if __name__ == "__main__":
    json.dump(build(Path(sys.argv[1])), sys.stdout, indent=1)
    sys.stdout.write("\n")
