"""The what-if planner: predict a route, calibrated on the routes the fleet runs.

The physics is the catalog's (:func:`wattledger.catalog.predict.predict_route`): a model at a
precision on ``gpus`` devices, at a batch, with its memory fit checked. This module adds what
only the warehouse knows:

* **the token mix** of a workload (median input and output tokens) when none is given;
* **calibration**: for every self-hosted route the fleet measured (energy from a counter or a
  power gauge), the roofline predicts the same route at that route's token mix and batch; the
  geometric mean of measured / predicted per metric is the factor applied to predictions. The
  batch a route ran at is its requests in flight per device over the time its requests actually
  cover (not the lookback window, which a young warehouse does not fill). The factors' worth is
  shown honestly: each measured route is predicted with factors fitted on the *other* routes
  (leave-one-route-out) and the median error is given with and without calibration. A metric
  whose factor does not lower that held-out error is left uncalibrated (factor 1): TTFT on a
  busy fleet includes queueing the roofline does not model, and its factor often does worse;
* **prices**: your hardware rate (else the catalog's list price, a guess) and tariff, at the
  stated utilisation;
* **measured figures** beside the prediction when the fleet already runs the route.

Every predicted number is labelled ``predicted``; measured ones ``measured``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Engine

from wattledger.analytics.queries.whatif import measured_routes, workload_token_mix
from wattledger.analytics.rates import effective_hardware_rates, effective_tariffs
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.catalog.predict import (
    hardware_key,
    hosted_price_usd_per_mtok,
    model_key,
    predict_route,
    quantization_key,
    system_key,
)
from wattledger.catalog.specs import load_catalog
from wattledger.errors import ConfigError, WattledgerError

#: Metrics calibrated against the fleet (measured vs predicted, same names in both).
METRICS = ("ttft_s", "time_per_output_token_s", "dynamic_energy_per_output_token_j")


@dataclass
class Calibration:
    """Measured / predicted per metric, and the held-out error with and without it."""

    factors: dict[str, float]
    held_out_mape: dict[str, float | None]
    uncalibrated_mape: dict[str, float | None]
    routes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``assumptions.calibration`` of ``whatif --json``)."""
        return {
            "factors": self.factors,
            "held_out_mape": self.held_out_mape,
            "uncalibrated_mape": self.uncalibrated_mape,
            "routes": self.routes,
            "evidence": f"{len(self.routes)} measured self-hosted route(s) in the warehouse",
        }


def _hardware(name: str) -> str:
    """Catalog key for a device name as users or collectors spell it."""
    from wattledger.hardware import catalog_key

    return catalog_key(name) or hardware_key(load_catalog(), name)


def _measured_points(engine: Engine, settings: AnalyticsSettings, now: dt.datetime) -> list[dict]:  # type: ignore[type-arg]
    start = now - dt.timedelta(days=settings.recommend.lookback_days)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(measured_routes(start, now))]
    points = []
    for r in rows:
        if not r["requests"] or r["requests"] < settings.recommend.min_requests:
            continue
        try:
            hw = _hardware(r["hardware_model"])
            model = model_key(load_catalog(), r["llm_model"])
        except ConfigError:
            continue
        covered_s = _covered_s(r)
        devices = max(int(r["devices"]), 1)
        batch = max(1.0, float(r["busy_s"] or 0.0) / covered_s / devices)
        quant = r["quantization"] or "bf16"
        try:
            pred = predict_route(
                model,
                hw,
                quantization=quant,
                input_tokens=max(float(r["input_tokens"]), 1.0),
                output_tokens=max(float(r["output_tokens"]), 1.0),
                batch=batch,
            )
        except ConfigError:
            continue
        measured = {
            "ttft_s": _pos(r["ttft_p50_s"]),
            "time_per_output_token_s": _pos(r["itl_p50_s"]),
            "dynamic_energy_per_output_token_j": _pos(r["direct_j_per_output_token"]),
        }
        predicted = {m: getattr(pred, m) for m in METRICS}
        points.append(
            {
                "route": f"{hw}/{model}@{quant}",
                "hardware": hw,
                "model": model,
                "quantization": quantization_key(load_catalog(), quant),
                "requests": int(r["requests"]),
                "batch": round(batch, 2),
                "covered_s": covered_s,
                "cost_per_mtok_usd": r["cost_per_mtok_usd"],
                "measured": measured,
                "predicted": predicted,
            }
        )
    return points


def _covered_s(r: dict[str, Any]) -> float:
    """Seconds the route's requests cover: first start to last end (at least one request)."""
    first, last = r["first_start_ts"], r["last_end_ts"]
    span = (last - first).total_seconds() if first is not None and last is not None else 0.0
    return max(span, float(r["max_duration_s"] or 0.0), 1.0)


def _pos(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v > 0 and math.isfinite(v) else None


def _mape(points: list[dict], metric: str, factor_of) -> float | None:  # type: ignore[no-untyped-def,type-arg]
    apes = []
    for i, p in enumerate(points):
        meas, pred = p["measured"][metric], p["predicted"][metric]
        if meas is None or not pred:
            continue
        apes.append(abs(pred * factor_of(i) - meas) / meas)
    return float(np.median(apes)) if apes else None


def calibrate(engine: Engine, settings: AnalyticsSettings, now: dt.datetime) -> Calibration:
    """Fit calibration factors on the fleet's measured routes (see the module docstring)."""
    points = _measured_points(engine, settings, now)
    factors: dict[str, float] = {}
    held: dict[str, float | None] = {}
    raw: dict[str, float | None] = {}
    for m in METRICS:
        logs = {
            i: math.log(p["measured"][m] / p["predicted"][m])
            for i, p in enumerate(points)
            if p["measured"][m] and p["predicted"][m]
        }
        factors[m] = math.exp(float(np.mean(list(logs.values())))) if logs else 1.0

        def others(i: int, logs: dict[int, float] = logs) -> float:
            rest = [v for j, v in logs.items() if j != i]
            return math.exp(float(np.mean(rest))) if rest else 1.0

        held[m] = _mape(points, m, others) if len(logs) >= 2 else None
        raw[m] = _mape(points, m, lambda i: 1.0)
        if held[m] is None or raw[m] is None or held[m] >= raw[m]:  # type: ignore[operator]
            factors[m] = 1.0  # a factor that does not beat none on held-out routes is dropped
            held[m] = raw[m]
    return Calibration(factors, held, raw, points)


def _price(conn, hw: str, now: dt.datetime) -> tuple[Decimal, str]:  # type: ignore[no-untyped-def]
    rates = [
        r
        for r in effective_hardware_rates(conn)
        if r["hardware_model"] == hw and r["valid_from"] <= now < r["valid_to"]
    ]
    if rates:
        return Decimal(rates[-1]["usd_per_device_hour"]), "your hardware rate"
    spec = load_catalog().devices[hw]
    return (
        Decimal(str(spec.price_usd_per_hour.value)),
        "catalog list price (a guess; set yours with `wattledger prices hardware`)",
    )


def _hosted(
    catalog: Any, system: str, model: str, input_tokens: float | None, output_tokens: float | None
) -> dict[str, Any]:
    """A hosted system (Groq, Cerebras): modeled energy, published speed, list price."""
    if input_tokens is None or output_tokens is None:
        raise WattledgerError("Give --input-tokens and --output-tokens for a hosted system.")
    route = predict_route(
        model, system, input_tokens=input_tokens, output_tokens=output_tokens, catalog=catalog
    )
    out = route.as_dict()
    price = hosted_price_usd_per_mtok(
        catalog, route.assumptions["provider"], model, input_tokens, output_tokens
    )
    out["cost_per_mtok_usd"] = None if price is None else str(round(Decimal(str(price[0])), 4))
    out["cost_source"] = "the provider's list price" if price else "no list price in the catalog"
    out["measured"] = None
    return out


def predict(
    engine: Engine | None,
    settings: AnalyticsSettings,
    *,
    hardware: str,
    llm_model: str,
    now: dt.datetime,
    workload: str | None = None,
    quantization: str = "bf16",
    gpus: int = 1,
    pp: int = 1,
    parallelism: str = "tp",
    kv_cache_dtype: str = "auto",
    input_tokens: float | None = None,
    output_tokens: float | None = None,
    batch: float | None = None,
    concurrency: float | None = None,
    utilisation: float = 1.0,
    engine_profile: str = "vllm",
    calibrated: bool = True,
) -> dict[str, Any]:
    """Predict a route; the JSON object ``wattledger whatif --json`` prints.

    ``engine`` may be None (no warehouse): then the token counts must be given and nothing is
    calibrated or priced from the warehouse.

    Raises:
        NoFit: the configuration does not fit (``str(e)`` is the reason).
        WattledgerError: bad names or inputs, or a workload without requests.
    """
    if not 0 < utilisation <= 1:
        raise WattledgerError(
            f"--utilisation must be in (0, 1], not {utilisation:g}.",
            hint="It is the share of the hour the replica serves at the batch.",
        )
    catalog = load_catalog()
    if system_key(catalog, hardware) is not None:
        return _hosted(catalog, hardware, llm_model, input_tokens, output_tokens)
    hw = _hardware(hardware)
    mix_source = "--input-tokens/--output-tokens"
    if input_tokens is None or output_tokens is None:
        if workload is None or engine is None:
            raise WattledgerError(
                "Give --input-tokens and --output-tokens, or --workload to take the token mix "
                "from the warehouse."
            )
        start = now - dt.timedelta(days=settings.recommend.lookback_days)
        with engine.connect() as conn:
            mix = conn.execute(workload_token_mix(workload, start, now)).one()
        if not mix.requests:
            raise WattledgerError(
                f"No requests for workload {workload!r} in the last "
                f"{settings.recommend.lookback_days:g} days to take its token mix from.",
                hint="Check the workload name (`wattledger recommend --explain` lists routes), "
                "or give --input-tokens and --output-tokens.",
            )
        input_tokens = input_tokens or max(float(mix.input_tokens), 1.0)
        output_tokens = output_tokens or max(float(mix.output_tokens), 1.0)
        mix_source = f"median of {mix.requests} '{workload}' requests in the warehouse"
    slo = settings.slos.get(workload) if workload else None
    cal = calibrate(engine, settings, now) if engine is not None and calibrated else None
    factors = cal.factors if cal and cal.routes else {}

    def run(b: float | None, c: float | None = None):  # type: ignore[no-untyped-def]
        return predict_route(
            llm_model,
            hw,
            gpus=gpus,
            pp=pp,
            parallelism=parallelism,
            quantization=quantization,
            kv_cache_dtype=kv_cache_dtype,
            input_tokens=float(input_tokens),  # type: ignore[arg-type]
            output_tokens=float(output_tokens),  # type: ignore[arg-type]
            batch=b,
            concurrency=c,
            engine=engine_profile,
            catalog=catalog,
        )

    route = run(batch, concurrency)
    if batch is None and concurrency is None and slo and slo.itl_p95_s:
        tpot_f = factors.get("time_per_output_token_s", 1.0)
        for b in sorted({1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0}):
            try:
                trial = run(b)
            except ConfigError:
                break
            if trial.time_per_output_token_s * tpot_f <= slo.itl_p95_s or b == 1.0:
                route = trial
                route.assumptions["batch_source"] = (
                    f"the largest batch whose predicted ITL meets the '{workload}' SLO "
                    f"({slo.itl_p95_s:g} s)"
                )
    out = route.as_dict()
    a = out["assumptions"]
    a["token_mix_source"] = mix_source
    b = a["batch"]
    tpot = route.time_per_output_token_s * factors.get("time_per_output_token_s", 1.0)
    ttft = route.ttft_s * factors.get("ttft_s", 1.0)
    dyn = route.dynamic_energy_per_output_token_j * factors.get(
        "dynamic_energy_per_output_token_j", 1.0
    )
    tput = b / tpot
    idle_w = a["idle_power_w"]
    total = dyn + idle_w / tput
    out.update(
        time_per_output_token_s=tpot,
        ttft_s=ttft,
        output_tokens_per_s=tput,
        dynamic_energy_per_output_token_j=dyn,
        energy_per_output_token_j=total,
        output_tokens_per_j=1.0 / total,
        power_w=total * tput,
    )
    a["calibration"] = (
        cal.as_dict()
        if cal
        else {"factors": {}, "evidence": "none (no warehouse, or --no-calibrate)"}
    )
    a["utilisation"] = utilisation
    a["utilisation_note"] = (
        "saturated: the replica always holds the batch, so the cost is a floor"
        if utilisation == 1.0
        else f"the replica serves at this batch {utilisation:.0%} of the time and idles otherwise"
    )
    # Cost per 1M tokens (input and output) at the stated utilisation.
    tokens_per_s = tput * (input_tokens + output_tokens) / output_tokens
    usd_h, usd_src = Decimal(str(catalog.devices[hw].price_usd_per_hour.value)), "catalog"
    tariff = None
    if engine is not None:
        with engine.connect() as conn:
            usd_h, usd_src = _price(conn, hw, now)
            tariffs = [
                t
                for t in effective_tariffs(conn)
                if t["site"] == "*" and t["valid_from"] <= now < t["valid_to"]
            ]
            tariff = tariffs[0] if tariffs else None
    else:
        usd_src = "catalog list price (a guess; set yours with `wattledger prices hardware`)"
    served_s = Decimal(str(tokens_per_s * utilisation))
    cost = usd_h * route.gpus / Decimal(3600) / served_s * Decimal(1_000_000)
    if tariff is not None:
        j_per_token = (
            (dyn + idle_w / (tput * utilisation)) * output_tokens / (input_tokens + output_tokens)
        )
        cost += (
            Decimal(str(j_per_token))
            * Decimal(tariff["usd_per_kwh"])
            * Decimal(str(tariff["pue"]))
            / Decimal(3_600_000)
            * Decimal(1_000_000)
        )
    out["cost_per_mtok_usd"] = str(round(cost, 4))
    # A contract rate is stored NUMERIC(18, 8): "3.79", not "3.79000000".
    out["usd_per_device_hour"] = f"{usd_h.quantize(Decimal('0.0001')).normalize():f}"
    out["usd_per_device_hour_source"] = usd_src
    out["workload"] = workload
    out["meets_slo"] = (
        None
        if slo is None
        else (slo.ttft_p95_s is None or ttft <= slo.ttft_p95_s)
        and (slo.itl_p95_s is None or tpot <= slo.itl_p95_s)
    )
    same = [
        p
        for p in (cal.routes if cal else [])
        if p["hardware"] == hw
        and p["model"] == route.model
        and p["quantization"] == route.quantization
    ]
    out["measured"] = (
        {
            "basis": "measured",
            **same[0]["measured"],
            "batch": same[0]["batch"],
            "requests": same[0]["requests"],
            "cost_per_mtok_usd": (
                None if same[0]["cost_per_mtok_usd"] is None else str(same[0]["cost_per_mtok_usd"])
            ),
        }
        if same
        else None
    )
    return out


def route_use(row: Any) -> dict[str, Any] | None:
    """Roofline use of one route-summary row (provider, hardware_model, llm_model,
    quantization, requests, input/output tokens, mean_batch_size, itl_p50_s, ttft_p50_s); None
    for hosted routes and routes the catalog does not know. A route that reports no batch size
    is taken at batch 1, a lower bound (``batch_source`` says so)."""
    from wattledger.catalog.predict import achieved_utilisation

    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    requests = get("requests") or 0
    if not get("hardware_model") or not requests:
        return None
    batch = _pos(get("mean_batch_size"))
    got = achieved_utilisation(
        str(get("hardware_model")),
        str(get("llm_model")),
        str(get("quantization") or "bf16"),
        batch=batch or 1.0,
        itl_s=_pos(get("itl_p50_s")) or 0.0,
        ttft_s=_pos(get("ttft_p50_s")),
        input_tokens=float(get("input_tokens") or 0) / requests,
        output_tokens=float(get("output_tokens") or 0) / requests,
    )
    if got is None:
        return None
    got["batch_source"] = "reported" if batch else "not reported: 1 (a lower bound)"
    got["itl_p50_s"] = _pos(get("itl_p50_s"))
    return got


def fleet_roofline_use(
    engine: Engine, settings: AnalyticsSettings, now: dt.datetime
) -> list[dict[str, Any]]:
    """:func:`route_use` for every self-hosted route of the lookback window."""
    from wattledger.analytics.queries.dashboard import RollupFilter, route_summary

    start = now - dt.timedelta(days=settings.recommend.lookback_days)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(route_summary(RollupFilter(start, now)))]
    out = []
    for r in rows:
        if (use := route_use(r)) is not None:
            keys = ("provider", "hardware_model", "llm_model", "quantization", "requests")
            out.append({**{k: r[k] for k in keys}, **use})
    return out
