"""The what-if planner: predict a route nobody runs yet, calibrated on routes the fleet runs.

For hardware × model × quantization in the simulator's catalog, the roofline model
(:mod:`wattledger.catalog.roofline`) predicts, at the workload's median token mix and a
batch size chosen to meet the ITL objective: TTFT (prefill time), ITL (time per output token in
steady state), direct energy per output token, throughput, and from them tokens per joule and
fully-loaded cost per 1M tokens (hardware $/hour ÷ throughput + energy × tariff × PUE).

**Calibration.** For every self-hosted route the fleet measured, the model predicts the same
three numbers at that route's own token mix and batch (requests in flight per device); the
geometric mean of measured ÷ predicted per metric is the calibration factor. The planner's error
is reported honestly: each measured route is predicted with factors fitted on the *other*
routes (leave-one-out), and the median absolute percentage error per metric is shown.
Predictions are labelled ``predicted`` and never mixed with measured figures.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from sqlalchemy import Engine

from wattledger.analytics.queries.whatif import measured_routes, workload_token_mix
from wattledger.analytics.rates import effective_hardware_rates, effective_tariffs
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.errors import WattledgerError

METRICS = ("ttft_s", "itl_s", "direct_j_per_output_token")
BATCHES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
DEFAULT_BATCH = 32


@dataclass
class Calibration:
    """Measured ÷ predicted per metric, and the leave-one-out error of the calibrated model."""

    factors: dict[str, float]
    held_out_mape: dict[str, float | None]
    routes: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Prediction:
    """A predicted route. Every number is ``predicted``; none is a measurement."""

    workload: str
    hardware: str
    llm_model: str
    quantization: str
    batch: int
    input_tokens: float
    output_tokens: float
    ttft_s: float
    itl_s: float
    output_tokens_per_s: float
    direct_j_per_output_token: float
    tokens_per_j: float
    cost_per_mtok_usd: Decimal | None
    usd_per_hour: Decimal | None
    usd_per_hour_source: str
    meets_slo: bool | None
    calibration: Calibration
    basis: str = "predicted"


def _perf(hardware: str, llm_model: str, quantization: str):  # type: ignore[no-untyped-def]
    from wattledger.catalog.specs import load_catalog
    from wattledger.catalog.roofline import PerfModel

    catalog = load_catalog()

    def pick(name: str, table: dict, kind: str) -> str:  # type: ignore[type-arg]
        from wattledger.analytics.weights import catalog_key
        from wattledger.hardware import catalog_key as hardware_key

        key = hardware_key(name) if table is catalog.devices else catalog_key(table, name)
        if key is not None:
            return key
        raise WattledgerError(
            f"Unknown {kind} {name!r} for the what-if planner.",
            hint=f"Known: {', '.join(sorted(table))}. Add it to the simulator catalog "
            "(collectors/simulate/data/) with sources.",
        )

    hw = pick(hardware, catalog.devices, "hardware")
    model = pick(llm_model, catalog.models, "model")
    quant = pick(quantization, catalog.quantizations, "quantization")
    return PerfModel.from_catalog(catalog, hw, model, quant), catalog, hw


def raw_prediction(perf, input_tokens: float, output_tokens: float, batch: float) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Uncalibrated TTFT, ITL, direct energy per output token and throughput at ``batch``."""
    from wattledger.catalog.roofline import steady_state

    steady = steady_state(perf, batch, input_tokens, output_tokens)
    dynamic = steady.energy_per_output_token_j - perf.idle_power_w / steady.output_tokens_per_s
    return {
        "ttft_s": float(perf.prefill(input_tokens).time_s),
        "itl_s": steady.tpot_s,
        "direct_j_per_output_token": max(dynamic, 1e-9),
        "output_tokens_per_s": steady.output_tokens_per_s,
    }


def calibrate(engine: Engine, settings: AnalyticsSettings, now: dt.datetime) -> Calibration:
    """Fit calibration factors on the fleet's measured routes (see the module docstring)."""
    start = now - dt.timedelta(days=settings.recommend.lookback_days)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(measured_routes(start, now))]
    points = []
    for r in rows:
        try:
            perf, _, _ = _perf(r["hardware_model"], r["llm_model"], r["quantization"] or "bf16")
        except WattledgerError:
            continue
        if not r["requests"] or r["requests"] < settings.recommend.min_requests:
            continue
        batch = max(1.0, float(r["requests_in_flight"] or 1) / max(int(r["devices"]), 1))
        pred = raw_prediction(perf, float(r["input_tokens"]), float(r["output_tokens"]), batch)
        measured = {
            m: r[f"{m[:-2]}_p50_s"] if m != "direct_j_per_output_token" else r[m] for m in METRICS
        }
        points.append(
            {
                "route": f"{r['hardware_model']}/{r['llm_model']}",
                "measured": measured,
                "predicted": pred,
            }
        )
    factors: dict[str, float] = {}
    errors: dict[str, float | None] = {}
    for m in METRICS:
        ratios = [
            math.log(p["measured"][m] / p["predicted"][m])
            for p in points
            if p["measured"][m] and p["predicted"][m] and p["measured"][m] > 0
        ]
        factors[m] = math.exp(float(np.mean(ratios))) if ratios else 1.0
        if len(ratios) >= 2:
            apes = []
            for i, p in enumerate(points):
                others = [x for j, x in enumerate(ratios) if j != i]
                f = math.exp(float(np.mean(others)))
                apes.append(abs(p["predicted"][m] * f - p["measured"][m]) / p["measured"][m])
            errors[m] = float(np.median(apes))
        else:
            errors[m] = None
    return Calibration(
        factors,
        errors,
        [
            {
                "route": p["route"],
                **{f"measured_{m}": p["measured"][m] for m in METRICS},
                **{f"predicted_{m}": p["predicted"][m] for m in METRICS},
            }
            for p in points
        ],
    )


def predict(
    engine: Engine,
    settings: AnalyticsSettings,
    *,
    workload: str,
    hardware: str,
    llm_model: str,
    quantization: str = "bf16",
    now: dt.datetime,
    batch: int | None = None,
) -> Prediction:
    """Predict ``workload`` served by ``llm_model`` at ``quantization`` on ``hardware``."""
    perf, catalog, hw = _perf(hardware, llm_model, quantization)
    start = now - dt.timedelta(days=settings.recommend.lookback_days)
    with engine.connect() as conn:
        mix = conn.execute(workload_token_mix(workload, start, now)).one()
        tariffs = [
            t
            for t in effective_tariffs(conn)
            if t["site"] == "*" and t["valid_from"] <= now < t["valid_to"]
        ]
        rates = [
            r
            for r in effective_hardware_rates(conn)
            if r["hardware_model"] == hw and r["valid_from"] <= now < r["valid_to"]
        ]
    if not mix.requests:
        raise WattledgerError(
            f"No requests for workload {workload!r} in the last "
            f"{settings.recommend.lookback_days:g} days to take its token mix from.",
            hint="Check the workload name (`wattledger recommend --explain` lists routes).",
        )
    cal = calibrate(engine, settings, now)
    slo = settings.slos.get(workload)
    inp, out = float(mix.input_tokens), float(mix.output_tokens)

    def calibrated(b: float) -> dict[str, float]:
        raw = raw_prediction(perf, inp, out, b)
        return {m: raw[m] * cal.factors.get(m, 1.0) if m in METRICS else raw[m] for m in raw}

    fits = [b for b in BATCHES if b * (inp + out) <= perf.kv_capacity_tokens]
    if not fits:
        raise WattledgerError(
            f"{llm_model} at {quantization} does not fit on {hw} with room for one "
            f"{inp + out:.0f}-token sequence.",
            hint="Try a smaller quantization (fp8, int4) or more memory.",
        )
    if batch is None:
        chosen = min(DEFAULT_BATCH, fits[-1])
        if slo and slo.itl_p95_s:
            ok = [b for b in fits if calibrated(b)["itl_s"] <= slo.itl_p95_s]
            chosen = ok[-1] if ok else fits[0]
        batch = chosen
    p = calibrated(batch)
    idle_w = perf.idle_power_w
    total_j = p["direct_j_per_output_token"] + idle_w / p["output_tokens_per_s"]
    if rates:
        usd_h, usd_src = Decimal(rates[-1]["usd_per_device_hour"]), "your hardware rate"
    else:
        usd_h = Decimal(str(catalog.devices[hw].price_usd_per_hour.value))
        usd_src = "catalog list price (a guess; set yours with `wattledger prices hardware`)"
    tokens_per_s = p["output_tokens_per_s"] * (inp + out) / out
    cost = usd_h * perf.tp / Decimal(3600) / Decimal(str(tokens_per_s)) * Decimal(1_000_000)
    if tariffs:
        t = tariffs[0]
        j_per_token = total_j * out / (inp + out)
        cost += (
            Decimal(str(j_per_token))
            * Decimal(t["usd_per_kwh"])
            * Decimal(str(t["pue"]))
            / Decimal(3_600_000)
            * Decimal(1_000_000)
        )
    meets = None
    if slo:
        meets = (slo.ttft_p95_s is None or p["ttft_s"] <= slo.ttft_p95_s) and (
            slo.itl_p95_s is None or p["itl_s"] <= slo.itl_p95_s
        )
    return Prediction(
        workload=workload,
        hardware=hw,
        llm_model=llm_model,
        quantization=quantization,
        batch=int(batch),
        input_tokens=inp,
        output_tokens=out,
        ttft_s=p["ttft_s"],
        itl_s=p["itl_s"],
        output_tokens_per_s=p["output_tokens_per_s"],
        direct_j_per_output_token=p["direct_j_per_output_token"],
        tokens_per_j=1.0 / total_j,
        cost_per_mtok_usd=round(cost, 4),
        usd_per_hour=usd_h,
        usd_per_hour_source=usd_src,
        meets_slo=meets,
        calibration=cal,
    )
