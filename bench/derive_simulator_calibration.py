"""Derive the simulator's small calibration tables from the public measurements.

Reads the ML.ENERGY leaderboard v2 configuration files and SplitwiseSim's ``perf_model.csv``
(see ``collectors/simulate/data/LICENSES.md`` for sources and licenses) and writes
``collectors/simulate/data/calibration_mlenergy.csv`` and ``calibration_splitwise.csv``, and
the what-if planner's check set ``catalog/data/mlenergy_v2.csv`` (every v2 configuration).
Run it again only when the source data changes::

    .venv/bin/python bench/derive_simulator_calibration.py /work/shared/data
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "collectors" / "simulate" / "data"
CATALOG_OUT = Path(__file__).resolve().parents[1] / "catalog" / "data"
GPUS = {"A100-SXM4-40GB": "A100-40GB-SXM", "H100 80GB HBM3": "H100-SXM"}
MODELS = {
    "Meta-Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "Meta-Llama-3.1-70B-Instruct": "llama-3.1-70b",
}


def _measured(d: dict[str, object], path: Path, root: Path) -> dict[str, object]:
    """The measured fields of one ML.ENERGY configuration file, rounded as stored."""
    return {
        "max_batch_size": d["Max BS (reqs)"],
        "avg_batch_size": round(d["Avg BS (reqs)"], 3),  # type: ignore[call-overload]
        "avg_output_tokens": round(d["Avg Output Tokens"], 3),  # type: ignore[call-overload]
        "tpot_s": round(d["Avg TPOT (s)"], 6),  # type: ignore[call-overload]
        "output_tokens_per_s": round(d["Token tput (tok/s)"], 3),  # type: ignore[call-overload]
        "energy_per_request_j": round(d["Energy/req (J)"], 4),  # type: ignore[call-overload]
        "source_file": str(path.relative_to(root)),
    }


def derive_mlenergy(root: Path) -> list[dict[str, object]]:
    """One row per ML.ENERGY v2 chat configuration of Llama 3.1 8B/70B on A100/H100."""
    rows = []
    base = root / "mlenergy-leaderboard-v2" / "llm_text_generation" / "chat"
    for gpu_dir, hardware in GPUS.items():
        for model_dir, llm_model in MODELS.items():
            for path in sorted((base / gpu_dir / "meta-llama" / model_dir).glob("*.json")):
                d = json.loads(path.read_text())
                rows.append(
                    {
                        "hardware": hardware,
                        "llm_model": llm_model,
                        "tensor_parallel": d["TP"],
                        **_measured(d, path, root),
                    }
                )
    rows.sort(key=lambda r: (r["hardware"], r["llm_model"], r["max_batch_size"]))
    return rows


def derive_mlenergy_all(root: Path) -> list[dict[str, object]]:
    """One row per ML.ENERGY v2 configuration file, chat and code, every model and GPU."""
    rows = []
    base = root / "mlenergy-leaderboard-v2" / "llm_text_generation"
    for path in sorted(base.glob("*/*/*/*/*.json")):
        d = json.loads(path.read_text())
        task, gpu_dir = path.relative_to(base).parts[:2]
        rows.append(
            {
                "task": task,
                "gpu": d["GPU"],
                "hardware": GPUS[gpu_dir],
                "model_id": d["Model"],
                "tensor_parallel": d["TP"],
                "pipeline_parallel": d["PP"],
                **_measured(d, path, root),
            }
        )
    return rows


def derive_splitwise(root: Path) -> list[dict[str, object]]:
    """Median prefill/decode time per Llama-2-70B configuration with 128 output tokens."""
    groups: dict[tuple[str, int, int, int], list[dict[str, str]]] = defaultdict(list)
    with (root / "perf_model.csv").open() as f:
        for r in csv.DictReader(f):
            if r["model"] != "llama2-70b" or r["hardware"] == "h100-80gb-pcap":
                continue
            if int(r["token_size"]) != 128:
                continue
            key = (
                r["hardware"],
                int(r["tensor_parallel"]),
                int(r["prompt_size"]),
                int(r["batch_size"]),
            )
            groups[key].append(r)
    rows = []
    for (hw, tp, prompt, batch), rs in sorted(groups.items()):
        power = [float(r["average_power"]) for r in rs if float(r["average_power"]) > 0]
        rows.append(
            {
                "hardware": {"a100-80gb": "A100-80GB-SXM", "h100-80gb": "H100-SXM"}[hw],
                "llm_model": "llama-2-70b",
                "tensor_parallel": tp,
                "prompt_tokens": prompt,
                "batch_size": batch,
                "prefill_s": round(statistics.median(float(r["prompt_time"]) for r in rs) / 1e3, 6),
                "decode_step_s": round(
                    statistics.median(float(r["token_time"]) for r in rs) / 1e3, 6
                ),
                "avg_power_fraction_of_tdp": round(statistics.median(power), 4) if power else "",
                "samples": len(rs),
            }
        )
    return rows


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    """Write both calibration tables from the data folder given as the first argument."""
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")
    _write(OUT / "calibration_mlenergy.csv", derive_mlenergy(root))
    _write(OUT / "calibration_splitwise.csv", derive_splitwise(root))
    _write(CATALOG_OUT / "mlenergy_v2.csv", derive_mlenergy_all(root))


if __name__ == "__main__":
    main()
