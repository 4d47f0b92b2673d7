"""The planner against published measurements: ML.ENERGY leaderboard v2, family held out.

``data/mlenergy_v2.csv`` holds every v2 configuration (chat and code tasks, 22 open models,
A100-SXM4-40GB and H100 80GB, vLLM 0.5.4, TP 1-8, PP 1-2, batch 8-1536; derived by
``bench/derive_simulator_calibration.py``, license in ``data/LICENSES.md``). For each row the
planner predicts time per output token and GPU energy per output token at the measured average
batch and output length.

**No fitting on the family predicted.** The engine profile's free parameters
(:data:`FREE`: step, per-sequence and TP overheads, the fraction of peak bandwidth decode
reaches) are fitted by least squares on the log errors of every *other* model family, then the
held-out family is predicted (:func:`leave_one_family_out`). The errors reported are those
predictions'. The power model (shared with the fleet simulator) is not fitted; the mean prompt
length of each task, which the leaderboard does not publish, is assumed (:data:`INPUT_TOKENS`).
The shipped ``vllm-0.5`` profile holds the fit on all families (:func:`fit`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wattledger.catalog.roofline import PerfModel, steady_state
from wattledger.catalog.specs import DATA_DIR, Catalog, Sourced, load_catalog

MEASUREMENTS = DATA_DIR / "mlenergy_v2.csv"
#: The engine the leaderboard ran (vLLM 0.5.4) and the profile fitted to it.
ENGINE = "vllm-0.5"
#: The engine profile's parameters that are fitted, with their bounds.
FREE: dict[str, tuple[float, float]] = {
    "engine.step_overhead_s": (1e-3, 0.05),
    "engine.per_seq_overhead_s": (1e-6, 1e-3),
    "engine.tp_overhead_s_per_doubling": (1e-4, 0.05),
    "engine.mbu": (0.3, 0.95),
}
#: Mean prompt length assumed per task (not published per configuration): ShareGPT chat prompts
#: with the leaderboard's system prompt, and short code-completion prompts.
INPUT_TOKENS = {"chat": 250.0, "code": 150.0}


@dataclass(frozen=True)
class Row:
    """One measured configuration."""

    task: str
    hardware: str
    model_id: str
    model: str
    family: str
    tp: int
    pp: int
    batch: float
    output_tokens: float
    tpot_s: float
    energy_per_output_token_j: float


def load(catalog: Catalog | None = None, path: Path = MEASUREMENTS) -> tuple[list[Row], list[str]]:
    """The measured rows whose model the catalog knows, and the model ids it does not."""
    from wattledger.catalog.predict import model_key

    catalog = catalog or load_catalog()
    rows, unknown = [], []
    with path.open() as f:
        for r in csv.DictReader(f):
            try:
                key = model_key(catalog, r["model_id"])
            except Exception:  # noqa: BLE001 - reported as unknown
                unknown.append(r["model_id"])
                continue
            out = float(r["avg_output_tokens"])
            rows.append(
                Row(
                    task=r["task"],
                    hardware=r["hardware"],
                    model_id=r["model_id"],
                    model=key,
                    family=catalog.models[key].family or key,
                    tp=int(r["tensor_parallel"]),
                    pp=int(r["pipeline_parallel"]),
                    batch=float(r["avg_batch_size"]),
                    output_tokens=out,
                    tpot_s=float(r["tpot_s"]),
                    energy_per_output_token_j=float(r["energy_per_request_j"]) / out,
                )
            )
    return rows, sorted(set(unknown))


def _with(catalog: Catalog, params: dict[str, float]) -> Catalog:
    """``catalog`` with the ``ENGINE`` profile's and power model's free parameters replaced."""
    engine = catalog.engines[ENGINE]
    eng = {
        k.split(".", 1)[1]: getattr(engine, k.split(".", 1)[1]).model_copy(update={"value": v})
        for k, v in params.items()
        if k.startswith("engine.")
    }
    pw = {
        k.split(".", 1)[1]: getattr(catalog.power, k.split(".", 1)[1]).model_copy(
            update={"value": v}
        )
        for k, v in params.items()
        if k.startswith("power.")
    }
    engines = {**catalog.engines, ENGINE: engine.model_copy(update=eng)}
    return catalog.model_copy(
        update={"engines": engines, "power": catalog.power.model_copy(update=pw)}
    )


def defaults(catalog: Catalog | None = None) -> dict[str, float]:
    """The shipped values of the free parameters."""
    catalog = catalog or load_catalog()
    engine, power = catalog.engines[ENGINE], catalog.power
    out = {}
    for k in FREE:
        part, name = k.split(".", 1)
        out[k] = getattr(engine if part == "engine" else power, name).value
    return out


def _steady(cat: Catalog, engine: str, r: Row) -> tuple[float, float]:
    """(TPOT, J per output token) of one measured configuration under ``engine``'s profile."""
    perf = PerfModel(
        cat.devices[r.hardware],
        cat.models[r.model],
        cat.quantizations["bf16"],
        cat.engines[engine],
        cat.power,
        r.tp,
        pp=r.pp,
        comm_model=True,
    )
    s = steady_state(perf, r.batch, INPUT_TOKENS[r.task], r.output_tokens)
    return s.tpot_s, s.energy_per_output_token_j


def predict(
    rows: Iterable[Row], params: dict[str, float], catalog: Catalog | None = None
) -> list[tuple[float, float]]:
    """(predicted TPOT, predicted J per output token) per row with ``params``."""
    cat = _with(catalog or load_catalog(), params)
    return [_steady(cat, ENGINE, r) for r in rows]


def errors(rows: list[Row], preds: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Signed relative errors (predicted / measured - 1) of TPOT and energy per row."""
    return [
        (p[0] / r.tpot_s - 1.0, p[1] / r.energy_per_output_token_j - 1.0)
        for r, p in zip(rows, preds, strict=True)
    ]


def fit(
    rows: list[Row], start: dict[str, float], catalog: Catalog | None = None
) -> dict[str, float]:
    """Least-squares fit of :data:`FREE` on the log errors of ``rows`` (each family weighted
    equally, so a family with many rows does not dominate)."""
    from scipy.optimize import least_squares

    catalog = catalog or load_catalog()
    names = list(FREE)
    lo = np.log([FREE[n][0] for n in names])
    hi = np.log([FREE[n][1] for n in names])
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.family] = counts.get(r.family, 0) + 1
    w = np.sqrt(np.array([1.0 / counts[r.family] for r in rows]))

    def residuals(x: np.ndarray) -> np.ndarray:
        params = dict(zip(names, np.exp(x), strict=True))
        preds = predict(rows, params, catalog)
        res = [
            (math.log(p[0] / r.tpot_s), math.log(p[1] / r.energy_per_output_token_j))
            for r, p in zip(rows, preds, strict=True)
        ]
        arr = np.array(res)
        return np.concatenate([arr[:, 0] * w, arr[:, 1] * w])

    x0 = np.clip(np.log([start[n] for n in names]), lo + 1e-9, hi - 1e-9)
    sol = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1, max_nfev=60)
    return dict(zip(names, (float(v) for v in np.exp(sol.x)), strict=True))


@dataclass
class HeldOut:
    """Leave-one-family-out result: per-row predictions and the parameters of each fold."""

    rows: list[Row]
    predictions: list[tuple[float, float]]
    params: dict[str, dict[str, float]]

    def abs_errors(self) -> np.ndarray:
        """|relative error| per row: columns TPOT, energy per output token."""
        return np.abs(np.array(errors(self.rows, self.predictions)))

    def medians(self) -> tuple[float, float]:
        """Median |error| of TPOT and of energy per output token."""
        e = self.abs_errors()
        return float(np.median(e[:, 0])), float(np.median(e[:, 1]))

    def table(self) -> list[dict[str, Any]]:
        """One row per measured configuration with measured, predicted and the error."""
        out = []
        for r, p in zip(self.rows, self.predictions, strict=True):
            out.append(
                {
                    "task": r.task,
                    "hardware": r.hardware,
                    "model": r.model,
                    "tp": r.tp,
                    "pp": r.pp,
                    "batch": r.batch,
                    "tpot_s": r.tpot_s,
                    "predicted_tpot_s": p[0],
                    "energy_per_output_token_j": r.energy_per_output_token_j,
                    "predicted_energy_per_output_token_j": p[1],
                }
            )
        return out


def leave_one_family_out(rows: list[Row] | None = None, catalog: Catalog | None = None) -> HeldOut:
    """Predict every family with parameters fitted on all the others."""
    catalog = catalog or load_catalog()
    if rows is None:
        rows, _ = load(catalog)
    start = defaults(catalog)
    preds: dict[int, tuple[float, float]] = {}
    params: dict[str, dict[str, float]] = {}
    for family in sorted({r.family for r in rows}):
        train = [r for r in rows if r.family != family]
        test = [(i, r) for i, r in enumerate(rows) if r.family == family]
        fitted = fit(train, start, catalog)
        params[family] = fitted
        for (i, _), p in zip(test, predict([r for _, r in test], fitted, catalog), strict=True):
            preds[i] = p
    return HeldOut(rows, [preds[i] for i in range(len(rows))], params)


def as_sourced(value: float, source: str) -> Sourced:
    """A fitted number as a catalog entry (always a guess: it is fitted, not published)."""
    return Sourced(value=value, source=source, guess=True)


def route_calibration(
    engine: str = "vllm", rows: list[Row] | None = None, catalog: Catalog | None = None
) -> dict[str, dict[str, float]]:
    """What the fleet's calibration does for a planner profile that was not fitted to the data.

    Each route (model x GPU) is predicted with ``engine``'s profile as shipped, then scaled by
    the geometric mean of measured / predicted over every *other* route (the planner's
    leave-one-route-out calibration). Returns the median |error| per metric, uncalibrated and
    calibrated.
    """
    catalog = catalog or load_catalog()
    if rows is None:
        rows, _ = load(catalog)
    preds = [_steady(catalog, engine, r) for r in rows]
    logs = np.array(
        [
            (math.log(r.tpot_s / p[0]), math.log(r.energy_per_output_token_j / p[1]))
            for r, p in zip(rows, preds, strict=True)
        ]
    )
    routes = [(r.model, r.hardware) for r in rows]
    by_route: dict[tuple[str, str], list[int]] = {}
    for i, k in enumerate(routes):
        by_route.setdefault(k, []).append(i)
    route_means = {k: logs[idx].mean(axis=0) for k, idx in by_route.items()}
    raw, cal = [], []
    for i, (r, p) in enumerate(zip(rows, preds, strict=True)):
        others = [v for k, v in route_means.items() if k != routes[i]]
        f = np.exp(np.mean(others, axis=0))
        meas = (r.tpot_s, r.energy_per_output_token_j)
        raw.append([abs(p[j] / meas[j] - 1) for j in (0, 1)])
        cal.append([abs(p[j] * f[j] / meas[j] - 1) for j in (0, 1)])
    raw_m, cal_m = np.median(raw, axis=0), np.median(cal, axis=0)
    return {
        "uncalibrated": {"tpot": float(raw_m[0]), "energy": float(raw_m[1])},
        "calibrated": {"tpot": float(cal_m[0]), "energy": float(cal_m[1])},
    }
