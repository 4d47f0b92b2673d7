"""The simulator's catalogs: hardware, LLMs, quantizations, engines, power model, hosted routes.

The catalogs are TOML files in ``data/``. Every number is a ``{ value, source }`` table, with
``guess = true`` where it is an assumption; loading fails on a number without a source, an
unknown key or a wrong type, naming the file and the key.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wattledger.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
CATALOG_FILES = ("hardware.toml", "models.toml", "engines.toml", "hosted.toml")


class Sourced(BaseModel):
    """A number with the public source it comes from; ``guess`` marks an assumption."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    source: str = Field(min_length=5)
    guess: bool = False


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSpec(_Strict):
    """One accelerator: peak dense FLOP/s per precision, memory, power, interconnect and price.

    ``power_source`` names how a collector reads its power (``nvml``, ``amdsmi``, ``hlsmi``) or
    ``modeled`` where the part exposes no power reading (TPU, Inferentia, Trainium): its energy is
    then modeled from utilisation between the catalog's idle and TDP figures.
    """

    vendor: Literal["nvidia", "amd", "intel", "google", "aws"]
    name: str
    power_source: str
    peak_dense_flops: dict[str, Sourced]
    memory_bandwidth_bps: Sourced
    memory_bytes: Sourced
    tdp_w: Sourced
    idle_power_w: Sourced
    price_usd_per_hour: Sourced
    #: Scale-up bandwidth per device, one direction (NVLink, Infinity Fabric, ICI, NeuronLink).
    interconnect_bps: Sourced | None = None
    #: Other names users type for the part (``H100`` for the SXM part).
    aliases: tuple[str, ...] = ()

    def peak_flops(self, precision: str) -> float:
        """Dense peak FLOP/s in ``precision``, falling back to the next wider precision it has.

        A part without FP4 cores runs FP4 (MXFP4, NVFP4) weights through its FP8 or BF16 cores;
        one without FP8 runs FP8 through BF16.
        """
        for p in _WIDER.get(precision, (precision,)):
            if p in self.peak_dense_flops:
                return self.peak_dense_flops[p].value
        return self.peak_dense_flops["bf16"].value


#: Precision -> the precisions tried in order for its peak (the precision itself first).
_WIDER = {
    "fp4": ("fp4", "fp8", "bf16"),
    "fp8": ("fp8", "bf16"),
    "int8": ("int8", "fp8", "bf16"),
    "bf16": ("bf16",),
}


class HostedSystem(_Strict):
    """A hosted inference system known only from published throughput and system power.

    Its energy per token is modeled (system power / aggregate throughput), never measured.
    """

    vendor: str
    name: str
    provider: str
    system_power_w: Sourced
    #: Output tokens/s one system sustains per served model, all streams together.
    aggregate_output_tokens_per_s: dict[str, Sourced]
    #: Output tokens/s one stream sees (the published per-user speed).
    stream_output_tokens_per_s: dict[str, Sourced]


class ModelSpec(_Strict):
    """One LLM architecture, as its published configuration gives it.

    Mixture-of-experts models also give their expert parameters (shared experts count as
    non-expert parameters). Multi-head latent attention (DeepSeek V3) gives ``kv_lora_rank`` and
    ``qk_rope_head_dim``: its cache holds one compressed latent per layer and token. Hybrid
    models (Nemotron-H) give ``attention_layers``, the layers that keep a KV cache; models with
    sliding-window layers give the window and how many layers use it.
    """

    name: str
    #: Family for leave-one-family-out checks (``llama-3``, ``qwen3``, ``gemma-2``...).
    family: str = ""
    #: Other names: Hugging Face ids and the names hosted APIs use.
    aliases: tuple[str, ...] = ()
    total_params: Sourced
    num_layers: Sourced
    hidden_size: Sourced
    num_attention_heads: Sourced
    num_kv_heads: Sourced
    head_dim: Sourced
    vocab_size: Sourced | None = None
    max_context_tokens: Sourced | None = None
    expert_params: Sourced | None = None
    num_experts: Sourced | None = None
    experts_per_token: Sourced | None = None
    kv_lora_rank: Sourced | None = None
    qk_rope_head_dim: Sourced | None = None
    attention_layers: Sourced | None = None
    sliding_window_tokens: Sourced | None = None
    sliding_window_layers: Sourced | None = None

    @property
    def is_moe(self) -> bool:
        """Whether only some experts run per token."""
        return self.expert_params is not None

    @property
    def active_params(self) -> float:
        """Parameters used per token (all of them for a dense model)."""
        if self.expert_params is None or self.num_experts is None or self.experts_per_token is None:
            return self.total_params.value
        share = self.experts_per_token.value / self.num_experts.value
        return self.total_params.value - self.expert_params.value * (1 - share)

    @property
    def attention_dim(self) -> float:
        """Width of the attention projections (heads x head_dim)."""
        return self.num_attention_heads.value * self.head_dim.value

    @property
    def kv_layers(self) -> float:
        """Layers that keep a KV cache (all of them unless the model is a hybrid)."""
        return (self.attention_layers or self.num_layers).value

    @property
    def kv_elements_per_layer_token(self) -> float:
        """KV-cache elements one layer keeps per token: K and V per KV head, or MLA's latent."""
        if self.kv_lora_rank is not None:
            rope = self.qk_rope_head_dim.value if self.qk_rope_head_dim else 0.0
            return self.kv_lora_rank.value + rope
        return 2 * self.num_kv_heads.value * self.head_dim.value

    @property
    def kv_elements_per_token(self) -> float:
        """KV-cache elements per token of context when no layer's window is full (upper bound)."""
        return self.kv_layers * self.kv_elements_per_layer_token

    def kv_elements(self, context_tokens: Any) -> Any:
        """KV-cache elements of one sequence holding ``context_tokens`` (arrays allowed).

        Sliding-window layers keep at most their window.
        """
        per = self.kv_elements_per_layer_token
        if self.sliding_window_tokens is None or self.sliding_window_layers is None:
            return self.kv_layers * per * context_tokens
        window = self.sliding_window_tokens.value
        sliding = self.sliding_window_layers.value
        full = self.kv_layers - sliding
        return per * (full * context_tokens + sliding * np.minimum(context_tokens, window))


class QuantSpec(_Strict):
    """A quantization: bytes per weight and per KV element, and the matmul precision."""

    compute: str
    weight_bytes_per_param: Sourced
    kv_bytes_per_element: Sourced


class EngineSpec(_Strict):
    """A serving engine: how close to the roofline it gets and what it spends outside it."""

    description: str
    mfu: Sourced
    mbu: Sourced
    step_overhead_s: Sourced
    per_seq_overhead_s: Sourced
    tp_overhead_s_per_doubling: Sourced
    prefill_chunk_tokens: Sourced
    max_num_seqs: Sourced
    gpu_memory_utilization: Sourced
    #: Latency of one small all-reduce between the devices of a replica. When set, the
    #: planner's communication model charges it per collective instead of
    #: ``tp_overhead_s_per_doubling`` (which the fleet simulator keeps using).
    allreduce_latency_s: Sourced | None = None


class PowerSpec(_Strict):
    """Coefficients turning achieved FLOP/s and bandwidth into power between idle and TDP."""

    compute_weight: Sourced
    memory_weight: Sourced
    overhead_fraction: Sourced
    wait_fraction: Sourced


class HostedModel(_Strict):
    """One model at a hosted provider: list price and latency distribution."""

    served_model: str
    input_usd_per_mtok: Sourced
    output_usd_per_mtok: Sourced
    output_tokens_per_s_median: Sourced
    output_tokens_per_s_sigma: Sourced
    ttft_median_s: Sourced
    ttft_sigma: Sourced
    prefill_tokens_per_s: Sourced


class HostedProvider(_Strict):
    """A hosted API: how its spans name it, where it lives, how often it fails."""

    name: str
    provider_name: str
    server_address: str
    error_rate: Sourced
    models: dict[str, HostedModel]


class Catalog(_Strict):
    """Everything the simulator and the what-if planner know about hardware and models."""

    devices: dict[str, DeviceSpec]
    models: dict[str, ModelSpec]
    quantizations: dict[str, QuantSpec]
    engines: dict[str, EngineSpec]
    power: PowerSpec
    providers: dict[str, HostedProvider]
    systems: dict[str, HostedSystem] = Field(default_factory=dict)

    def sourced_numbers(self) -> Iterator[tuple[str, Sourced]]:
        """Every catalog number with a dotted path naming it, e.g. ``devices.L4.tdp_w``."""
        yield from _walk(self, "")


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, Sourced]]:
    if isinstance(node, Sourced):
        yield prefix, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _walk(getattr(node, name), f"{prefix}.{name}" if prefix else name)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{prefix}.{key}")


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(
            f"Catalog file {path} does not exist.", hint="Reinstall wattledger."
        ) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Catalog file {path} is not valid TOML: {e}.") from e


def load_catalog(data_dir: Path | None = None) -> Catalog:
    """Load and validate the catalogs in ``data_dir`` (default: the packaged ones).

    Raises:
        ConfigError: a file is missing or malformed, or a number has no source.
    """
    if data_dir is None:
        return _default_catalog()
    return _load(data_dir)


@functools.cache
def _default_catalog() -> Catalog:
    return _load(DATA_DIR)


def _load(data_dir: Path) -> Catalog:
    hw, models, engines, hosted = (_read(data_dir / name) for name in CATALOG_FILES)
    raw = {
        "devices": hw.get("devices", {}),
        "models": models.get("models", {}),
        "quantizations": models.get("quantizations", {}),
        "engines": engines.get("engines", {}),
        "power": engines.get("power", {}),
        "providers": hosted.get("providers", {}),
        "systems": hw.get("systems", {}),
    }
    try:
        return Catalog.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"Catalog in {data_dir} is invalid at '{where}': {err['msg']} "
            f"({len(e.errors())} problem(s)).",
            hint='Every number is a table { value = ..., source = "..." } '
            "with guess = true where it is an assumption.",
        ) from e


def catalog_markdown(catalog: Catalog | None = None) -> str:
    """Every catalog number with its source, as the Markdown table in docs/simulator.md."""
    rows = ["| number | value | source |", "| --- | --- | --- |"]
    for path, num in (catalog or load_catalog()).sourced_numbers():
        source = num.source.replace("|", "/")
        flag = "**guess**: " if num.guess else ""
        rows.append(f"| `{path}` | {num.value:.6g} | {flag}{source} |")
    return "\n".join(rows) + "\n"
