"""Predict one route from the catalog alone: a model at a precision on N devices, at a batch.

This is the what-if planner's physics, with no warehouse: :func:`predict_route` resolves the
names (catalog keys, Hugging Face ids, hosted-API aliases), checks that the weights and the KV
cache of every sequence fit in memory (the reason is given when they do not), runs the roofline's
steady state (:func:`wattledger.catalog.roofline.steady_state`) and states every assumption it
made. ``wattledger.analytics.whatif`` adds the fleet's calibration, prices and measured figures.

Every figure here is ``predicted``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from wattledger.catalog.roofline import PerfModel, steady_state
from wattledger.catalog.specs import Catalog, DeviceSpec, ModelSpec, load_catalog
from wattledger.errors import ConfigError

#: Batches tried when none is given (the largest that fits and the engine allows, up to 32).
BATCHES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
DEFAULT_BATCH = 32
#: Precision names users type -> catalog quantization keys.
QUANT_ALIASES = {
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "bf16",
    "float16": "bf16",
    "fp8": "fp8",
    "fp8_e4m3": "fp8",
    "int4": "int4",
    "w4a16": "int4",
    "awq": "int4",
    "gptq": "int4",
    "fp4": "fp4",
    "nvfp4": "fp4",
    "mxfp4": "mxfp4",
}
#: A hosted system's energy per token is known to a factor of two at best (its aggregate
#: throughput is not published): the range stated with it, as a multiple of the point.
HOSTED_RANGE = (0.5, 2.0)
#: KV-cache dtypes -> bytes per element.
KV_DTYPES = {"auto": None, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0}


class NoFit(ConfigError):
    """The configuration does not fit in memory (or the model's context); ``reason`` says why."""


@dataclass
class RoutePrediction:
    """One predicted route; ``assumptions`` holds everything the numbers depend on."""

    model: str
    hardware: str
    gpus: int
    quantization: str
    fits: bool
    energy_per_output_token_j: float
    dynamic_energy_per_output_token_j: float
    time_per_output_token_s: float
    ttft_s: float
    output_tokens_per_s: float
    power_w: float
    assumptions: dict[str, Any] = field(default_factory=dict)
    basis: str = "predicted"

    def as_dict(self) -> dict[str, Any]:
        """The JSON object ``wattledger whatif --json`` prints (before prices are added)."""
        return {
            "basis": self.basis,
            "model": self.model,
            "hardware": self.hardware,
            "gpus": self.gpus,
            "quantization": self.quantization,
            "fits": self.fits,
            "energy_per_output_token_j": self.energy_per_output_token_j,
            "dynamic_energy_per_output_token_j": self.dynamic_energy_per_output_token_j,
            "time_per_output_token_s": self.time_per_output_token_s,
            "ttft_s": self.ttft_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_j": 1.0 / self.energy_per_output_token_j,
            "power_w": self.power_w,
            "assumptions": self.assumptions,
        }


def _norm(name: str) -> str:
    return name.strip().lower()


def model_key(catalog: Catalog, name: str) -> str:
    """The catalog key of a model from its key, Hugging Face id (with or without the org) or a
    hosted API's name; :class:`ConfigError` naming close matches when none matches."""
    wanted = _norm(name)
    short = wanted.rsplit("/", 1)[-1]
    for key, spec in catalog.models.items():
        names = {_norm(key), _norm(spec.name), *(_norm(a) for a in spec.aliases)}
        if wanted in names:
            return key
    for key, spec in catalog.models.items():  # "Llama-3.1-8B-Instruct" without its org
        names = {_norm(spec.name), *(_norm(a) for a in spec.aliases)}
        if short in {n.rsplit("/", 1)[-1] for n in names}:
            return key
    raise ConfigError(
        f"Unknown model {name!r}.",
        hint="Give a catalog key, a Hugging Face id or a hosted API's model name "
        f"(`wattledger whatif --list-models`); close: {_close(wanted, catalog.models)}.",
    )


def hardware_key(catalog: Catalog, name: str) -> str:
    """The catalog key of a device from its key, name or an alias (``H100`` is the SXM part)."""
    wanted = _norm(name)
    for key, spec in catalog.devices.items():
        if wanted in {_norm(key), _norm(spec.name), *(_norm(a) for a in spec.aliases)}:
            return key
    raise ConfigError(
        f"Unknown hardware {name!r}.",
        hint=f"Known: {', '.join(sorted(catalog.devices))}.",
    )


def system_key(catalog: Catalog, name: str) -> str | None:
    """The catalog key of a hosted system (``groq-lpu``, ``cerebras-wse3``, or its provider)."""
    wanted = _norm(name)
    for key, spec in catalog.systems.items():
        if wanted in {_norm(key), _norm(spec.name), _norm(spec.provider)}:
            return key
    return None


def _hosted(
    catalog: Catalog, system: str, model: str, input_tokens: float, output_tokens: float
) -> RoutePrediction:
    """A hosted system from its published per-stream speed and its system power (modeled)."""
    spec = catalog.systems[system]
    key = model_key(catalog, model)
    if key not in spec.aggregate_output_tokens_per_s or key not in spec.stream_output_tokens_per_s:
        raise ConfigError(
            f"No published throughput for {key} on {spec.name}.",
            hint=f"Known there: {', '.join(sorted(spec.stream_output_tokens_per_s))}.",
        )
    aggregate = spec.aggregate_output_tokens_per_s[key]
    stream = spec.stream_output_tokens_per_s[key]
    energy = spec.system_power_w.value / aggregate.value
    return RoutePrediction(
        model=key,
        hardware=system,
        gpus=1,
        quantization="as served",
        fits=True,
        energy_per_output_token_j=energy,
        dynamic_energy_per_output_token_j=energy,
        time_per_output_token_s=1.0 / stream.value,
        ttft_s=0.0,
        output_tokens_per_s=aggregate.value,
        power_w=spec.system_power_w.value,
        basis="modeled",
        assumptions={
            "system": spec.name,
            "provider": spec.provider,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "system_power_w": {
                "value": spec.system_power_w.value,
                "source": spec.system_power_w.source,
                "guess": spec.system_power_w.guess,
            },
            "aggregate_output_tokens_per_s": {
                "value": aggregate.value,
                "source": aggregate.source,
                "guess": aggregate.guess,
            },
            "stream_output_tokens_per_s": {"value": stream.value, "source": stream.source},
            "method": "modeled: system power / aggregate output tokens per second (no meter)",
            "energy_per_output_token_j_range": [
                energy * HOSTED_RANGE[0],
                energy * HOSTED_RANGE[1],
            ],
            "batch": None,
            "memory": None,
        },
    )


def hosted_price_usd_per_mtok(
    catalog: Catalog, provider: str, model: str, input_tokens: float, output_tokens: float
) -> tuple[float, str] | None:
    """The list price per 1M tokens (input and output blended at the mix) of ``model`` at a
    hosted ``provider``, with its source; None when the catalog has no price."""
    key = model_key(catalog, model)
    for prov in catalog.providers.values():
        if _norm(prov.provider_name) != _norm(provider):
            continue
        for m in prov.models.values():
            try:
                served = model_key(catalog, m.served_model)
            except ConfigError:
                continue
            if served == key:
                total = input_tokens + output_tokens
                usd = (
                    m.input_usd_per_mtok.value * input_tokens
                    + m.output_usd_per_mtok.value * output_tokens
                ) / total
                return usd, m.output_usd_per_mtok.source
    return None


def quantization_key(catalog: Catalog, name: str) -> str:
    """The catalog key of a precision (``bf16``, ``fp8``, ``mxfp4``, ``int4``...)."""
    key = QUANT_ALIASES.get(_norm(name), _norm(name))
    if key not in catalog.quantizations:
        known = ", ".join(sorted(catalog.quantizations))
        raise ConfigError(f"Unknown quantization {name!r}.", hint=f"Use one of: {known}.")
    return key


def _close(wanted: str, table: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(wanted, [k.lower() for k in table], n=3, cutoff=0.5)
    return ", ".join(close) or "none"


def perf_model(
    catalog: Catalog,
    hardware: str,
    model: str,
    quantization: str,
    *,
    gpus: int = 1,
    pp: int = 1,
    parallelism: str = "tp",
    kv_cache_dtype: str = "auto",
    engine: str = "vllm",
) -> PerfModel:
    """The roofline of ``model`` at ``quantization`` on ``gpus`` devices (keys or aliases)."""
    if gpus < 1 or pp < 1:
        raise ConfigError(f"--gpus must be at least 1, not {gpus}.")
    if gpus % pp:
        raise ConfigError(f"{gpus} devices cannot form {pp} equal pipeline stages.")
    if parallelism not in ("tp", "ep"):
        raise ConfigError(f"Unknown parallelism {parallelism!r}.", hint="Use tp or ep.")
    if kv_cache_dtype not in KV_DTYPES:
        raise ConfigError(
            f"Unknown KV-cache dtype {kv_cache_dtype!r}.",
            hint=f"Use one of: {', '.join(KV_DTYPES)}.",
        )
    if engine not in catalog.engines:
        raise ConfigError(
            f"Unknown engine profile {engine!r}.", hint=f"Known: {', '.join(catalog.engines)}."
        )
    spec = catalog.models[model_key(catalog, model)]
    tp = gpus // pp
    heads = int(spec.num_attention_heads.value)
    if tp > 1 and heads % tp:
        raise ConfigError(
            f"{tp}-way tensor parallelism cannot split {spec.name}'s {heads} attention heads.",
            hint="Use a --gpus count that divides the heads (1, 2, 4, 8 usually do).",
        )
    if parallelism == "ep" and not spec.is_moe:
        raise ConfigError(
            f"{spec.name} is dense: expert parallelism needs a mixture-of-experts model.",
            hint="Use --parallelism tp.",
        )
    return PerfModel(
        catalog.devices[hardware_key(catalog, hardware)],
        spec,
        catalog.quantizations[quantization_key(catalog, quantization)],
        catalog.engines[engine],
        catalog.power,
        gpus // pp,
        pp=pp,
        parallelism=parallelism,
        kv_bytes_per_element=KV_DTYPES[kv_cache_dtype],
        comm_model=True,
    )


def memory(
    perf: PerfModel, batch: float, input_tokens: float, output_tokens: float
) -> dict[str, Any]:
    """Weights, KV cache and usable memory in GB for ``batch`` running sequences.

    Paged-attention engines (vLLM, SGLang, TGI) allocate KV blocks as tokens are generated, so
    in steady state a sequence holds ``input + output / 2`` tokens on average: that is what must
    fit. ``peak_kv_cache_gb`` is every sequence at its full length at once; above the usable
    memory the engine preempts or queues some of them now and then.
    """
    mean_ctx = input_tokens + output_tokens / 2.0
    full_ctx = input_tokens + output_tokens
    return {
        "weights_gb": round(perf.weight_bytes / 1e9, 2),
        "kv_cache_gb": round(batch * float(perf.kv_bytes(mean_ctx)) / 1e9, 2),
        "peak_kv_cache_gb": round(batch * float(perf.kv_bytes(full_ctx)) / 1e9, 2),
        "usable_gb": round(perf.usable_memory_bytes / 1e9, 2),
        "kv_bytes_per_token": round(float(perf.kv_bytes(full_ctx)) / full_ctx, 1),
        "rule": "weights + batch x KV cache of input + output/2 tokens (steady-state mean) "
        "within gpu_memory_utilization of device memory",
    }


def max_batch(perf: PerfModel, context_tokens: float) -> int:
    """The most sequences of ``context_tokens`` whose KV caches fit next to the weights."""
    free = perf.usable_memory_bytes - perf.weight_bytes
    if free <= 0:
        return 0
    return int(free // float(perf.kv_bytes(context_tokens)))


def fit_reason(perf: PerfModel, batch: float, input_tokens: float, output_tokens: float) -> str:
    """Why ``batch`` sequences of ``input + output`` tokens do not fit, or "" when they do
    (the rule is :func:`memory`'s)."""
    ctx = input_tokens + output_tokens
    m = perf.model
    where = f"{perf.devices} x {perf.device.name}"
    if m.max_context_tokens is not None and ctx > m.max_context_tokens.value:
        return (
            f"{ctx:,.0f} tokens of context exceed {m.name}'s maximum of "
            f"{m.max_context_tokens.value:,.0f}"
        )
    mem = memory(perf, batch, input_tokens, output_tokens)
    ctx = input_tokens + output_tokens / 2.0
    if mem["weights_gb"] >= mem["usable_gb"]:
        return (
            f"{m.name} weights need {mem['weights_gb']:,.0f} GB at "
            f"{perf.quant.weight_bytes_per_param.value:g} bytes per parameter; {where} offers "
            f"{mem['usable_gb']:,.0f} GB usable"
        )
    if not perf.fits(batch, ctx):
        most = max_batch(perf, ctx)
        return (
            f"batch {batch:g} x {ctx:,.0f} tokens (mean) needs {mem['kv_cache_gb']:,.0f} GB of KV "
            f"cache next to {mem['weights_gb']:,.0f} GB of weights; {where} offers "
            f"{mem['usable_gb']:,.0f} GB usable (at most {most} such sequences)"
        )
    return ""


def predict_route(
    model: str,
    hardware: str,
    *,
    gpus: int = 1,
    pp: int = 1,
    parallelism: str = "tp",
    quantization: str = "bf16",
    kv_cache_dtype: str = "auto",
    input_tokens: float = 1024,
    output_tokens: float = 256,
    batch: float | None = None,
    concurrency: float | None = None,
    engine: str = "vllm",
    catalog: Catalog | None = None,
) -> RoutePrediction:
    """Predict the route; raise :class:`NoFit` (with the reason) when it does not fit.

    ``batch`` is the number of sequences decoding together; ``concurrency`` the number of
    requests in flight (capped by the engine's ``max_num_seqs`` and by memory, the rest queue).
    Neither given: the largest batch up to 32 that fits.
    """
    catalog = catalog or load_catalog()
    if (system := system_key(catalog, hardware)) is not None:
        return _hosted(catalog, system, model, input_tokens, output_tokens)
    if input_tokens < 1 or output_tokens < 1:
        raise ConfigError(
            f"Token counts must be at least 1 (got {input_tokens:g} in, {output_tokens:g} out)."
        )
    if batch is not None and concurrency is not None:
        raise ConfigError("Give --batch or --concurrency, not both.")
    for label, value in (("--batch", batch), ("--concurrency", concurrency)):
        if value is not None and not (value >= 1 and math.isfinite(value)):
            raise ConfigError(f"{label} must be at least 1, not {value:g}.")
    perf = perf_model(
        catalog,
        hardware,
        model,
        quantization,
        gpus=gpus,
        pp=pp,
        parallelism=parallelism,
        kv_cache_dtype=kv_cache_dtype,
        engine=engine,
    )
    ctx = input_tokens + output_tokens
    max_seqs = perf.engine.max_num_seqs.value * perf.pp
    assumptions: dict[str, Any] = {
        "engine": engine,
        "engine_description": perf.engine.description,
        "tensor_parallel": perf.tp,
        "pipeline_parallel": perf.pp,
        "parallelism": parallelism if perf.devices > 1 else "none",
        "quantization": quantization_key(catalog, quantization),
        "weight_bytes_per_param": perf.quant.weight_bytes_per_param.value,
        "compute_precision": perf.quant.compute,
        "peak_flops_per_device": perf.device.peak_flops(perf.quant.compute),
        "kv_cache_bytes_per_element": perf.kv_element_bytes,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "context_tokens_per_sequence": ctx,
        "active_params": perf.model.active_params,
        "total_params": perf.model.total_params.value,
        "utilisation": "saturated: the replica always holds the batch (a cost floor)",
    }
    if batch is None and concurrency is None:
        limit = min(max_seqs, max_batch(perf, input_tokens + output_tokens / 2))
        fitting = [b for b in BATCHES if b <= limit]
        chosen = float(min(DEFAULT_BATCH, fitting[-1])) if fitting else 1.0
        assumptions["batch_source"] = "default: the largest batch up to 32 that fits"
    elif concurrency is not None:
        chosen = float(
            min(concurrency, max_seqs, max(max_batch(perf, input_tokens + output_tokens / 2), 1))
        )
        assumptions["concurrency"] = concurrency
        capped = f"--concurrency capped at {chosen:g} (max_num_seqs or memory); the rest queue"
        assumptions["batch_source"] = "--concurrency" if chosen == concurrency else capped
    else:
        chosen = float(batch)  # type: ignore[arg-type]
        assumptions["batch_source"] = "--batch"
    assumptions["batch"] = chosen
    assumptions["memory"] = memory(perf, chosen, input_tokens, output_tokens)
    reason = fit_reason(perf, chosen, input_tokens, output_tokens)
    if reason:
        raise NoFit(
            f"Does not fit: {reason}.",
            hint="Use more --gpus, a smaller --quantization or --kv-cache-dtype fp8, or a "
            "smaller --batch.",
        )
    s = steady_state(perf, chosen, input_tokens, output_tokens)
    tpot, energy = s.tpot_s, s.energy_per_output_token_j
    ttft = float(perf.prefill(input_tokens).time_s)
    tput = s.output_tokens_per_s
    idle_j = perf.idle_power_w / tput
    assumptions["idle_power_w"] = perf.idle_power_w
    micro = chosen / perf.pp  # bytes one full-model step of a micro-batch reads
    read = float(perf.weight_bytes_read(micro)) + micro * float(
        perf.kv_bytes(input_tokens + output_tokens / 2)
    )
    assumptions["decode_bandwidth_utilisation"] = round(
        min(1.0, read / s.step_s / perf.bandwidth_bps), 4
    )
    return RoutePrediction(
        model=model_key(catalog, model),
        hardware=hardware_key(catalog, hardware),
        gpus=perf.devices,
        quantization=quantization_key(catalog, quantization),
        fits=True,
        energy_per_output_token_j=energy,
        dynamic_energy_per_output_token_j=max(energy - idle_j, 0.0),
        time_per_output_token_s=tpot,
        ttft_s=ttft,
        output_tokens_per_s=tput,
        power_w=energy * tput,
        assumptions=assumptions,
    )


def device_spec(catalog: Catalog, name: str) -> DeviceSpec:
    """The device spec for a key or an alias."""
    return catalog.devices[hardware_key(catalog, name)]


def model_spec(catalog: Catalog, name: str) -> ModelSpec:
    """The model spec for a key, a Hugging Face id or an alias."""
    return catalog.models[model_key(catalog, name)]


def _smallest_replica(catalog: Catalog, hardware: str, model: str, quantization: str) -> int:
    """The fewest devices (1, 2, 4, 8) whose memory holds the weights and some KV cache."""
    for n in (1, 2, 4, 8):
        perf = perf_model(catalog, hardware, model, quantization, gpus=n)
        if perf.usable_memory_bytes > perf.weight_bytes * 1.1:
            return n
    return 8


def achieved_utilisation(
    hardware: str,
    model: str,
    quantization: str,
    *,
    batch: float,
    itl_s: float,
    ttft_s: float | None,
    input_tokens: float,
    output_tokens: float,
    gpus: int | None = None,
    catalog: Catalog | None = None,
) -> dict[str, Any] | None:
    """How full the truck leaves: the share of the roofline a measured route achieves.

    * decode: bytes one step reads (the weights its batch touches plus every sequence's KV
      cache at ``input + output / 2`` tokens) / measured ITL / peak memory bandwidth;
    * prefill: the FLOPs of one prompt / measured TTFT / peak dense FLOP/s (TTFT includes
      queueing, so this is a lower bound);
    * the planner's prediction of the same route at batch 32 beside it.

    ``gpus`` defaults to the smallest replica that holds the weights (stated in the result).
    None when the catalog does not know the route.
    """
    catalog = catalog or load_catalog()
    try:
        n = gpus or _smallest_replica(catalog, hardware, model, quantization or "bf16")
        perf = perf_model(catalog, hardware, model, quantization or "bf16", gpus=n)
    except ConfigError:
        return None
    if not (batch > 0 and itl_s > 0 and input_tokens > 0 and output_tokens > 0):
        return None
    ctx = input_tokens + output_tokens / 2.0
    step_bytes = float(perf.weight_bytes_read(batch)) + batch * float(perf.kv_bytes(ctx))
    bandwidth = step_bytes / itl_s / perf.bandwidth_bps
    compute = None
    if ttft_s and ttft_s > 0:
        m = perf.model
        flops = (
            2.0 * m.active_params * input_tokens
            + 2.0 * m.num_layers.value * m.attention_dim * (input_tokens**2)
        )
        compute = flops / ttft_s / perf.flops_per_s
    at_32: dict[str, Any] | None
    try:
        p = predict_route(
            model,
            hardware,
            gpus=n,
            quantization=quantization or "bf16",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            batch=32,
            catalog=catalog,
        )
        at_32 = {
            "basis": "predicted",
            "batch": 32,
            "time_per_output_token_s": p.time_per_output_token_s,
            "output_tokens_per_s": p.output_tokens_per_s,
            "energy_per_output_token_j": p.energy_per_output_token_j,
            "decode_bandwidth_utilisation": p.assumptions["decode_bandwidth_utilisation"],
        }
    except ConfigError:
        at_32 = None
    return {
        "basis": "measured",
        "gpus": n,
        "gpus_source": "given" if gpus else "assumed: the smallest replica that holds the weights",
        "batch": batch,
        "decode_bandwidth_utilisation": bandwidth,
        "prefill_compute_utilisation": compute,
        "at_batch_32": at_32,
    }
