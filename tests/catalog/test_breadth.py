"""Breadth of the packaged catalog: the models and hardware it must know, checked from outside.

Architecture numbers are checked against each other: a dense model's parameter count must
follow from its shape (embeddings, attention, MLP) within 10 %, a mixture-of-experts model's
active parameters must match the figure its publisher gives, and the KV-cache geometry of the
special attention schemes (MLA, hybrid Mamba, sliding windows) must come out as published.
"""

from __future__ import annotations

import math

import pytest

from wattledger.catalog.specs import Catalog, ModelSpec, load_catalog
from wattledger.hardware import _PARTS, catalog_key, resolve


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


REQUIRED_MODELS = {
    # Llama 3.x and 4
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.2-1b", "llama-3.2-3b",
    "llama-3.3-70b", "llama-4-scout", "llama-4-maverick", "llama-2-70b",
    # Qwen3 dense and MoE
    "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-14b", "qwen3-32b",
    "qwen3-30b-a3b", "qwen3-235b-a22b", "qwen3-coder-30b-a3b", "qwen3-coder-480b-a35b",
    # DeepSeek V3 family, gpt-oss
    "deepseek-v3", "deepseek-v3.1", "deepseek-r1", "gpt-oss-20b", "gpt-oss-120b",
    # Gemma
    "gemma-3-1b", "gemma-3-4b", "gemma-3-12b", "gemma-3-27b",
    "gemma-2-2b", "gemma-2-9b", "gemma-2-27b", "codegemma-2b", "codegemma-7b",
    # Mistral
    "mistral-7b", "mistral-nemo-12b", "mistral-large-2407", "mistral-small-3.1-24b",
    "mistral-small-3.2-24b", "mixtral-8x7b", "mixtral-8x22b",
    # Phi, Nemotron, code models
    "phi-3-mini", "phi-3-small", "phi-3-medium", "phi-4",
    "nemotron-nano-9b-v2", "nemotron-nano-12b-v2",
    "starcoder2-3b", "starcoder2-7b", "starcoder2-15b",
    "codellama-7b", "codellama-13b", "codellama-34b", "codellama-70b",
}  # fmt: skip

#: Every model of the ML.ENERGY leaderboard v2 (llm_text_generation/{chat,code}), as its data
#: spells it (org/model folder and the "Model" field of each result file).
MLENERGY_V2 = [
    "google/gemma-2-2b-it", "google/gemma-2-9b-it", "google/gemma-2-27b-it",
    "meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "meta-llama/Meta-Llama-3.1-405B-Instruct",
    "microsoft/Phi-3-mini-4k-instruct", "microsoft/Phi-3-small-8k-instruct",
    "microsoft/Phi-3-medium-4k-instruct",
    "mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mistral-Nemo-Instruct-2407",
    "mistralai/Mistral-Large-Instruct-2407", "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "bigcode/starcoder2-3b", "bigcode/starcoder2-7b", "bigcode/starcoder2-15b",
    "codellama/CodeLlama-7b-hf", "codellama/CodeLlama-13b-hf", "codellama/CodeLlama-34b-hf",
    "codellama/CodeLlama-70b-hf",
    "google/codegemma-1.1-2b", "google/codegemma-7b",
]  # fmt: skip

#: Names hosted APIs use, and the catalog model they must resolve to.
HOSTED_NAMES = {
    "llama-3.1-8b-instant": "llama-3.1-8b",  # Groq
    "llama-3.3-70b-versatile": "llama-3.3-70b",  # Groq
    "llama3.1-8b": "llama-3.1-8b",  # Cerebras
    "llama-3.3-70b": "llama-3.3-70b",  # Cerebras (and the catalog key)
    "gpt-oss-120b": "gpt-oss-120b",  # Cerebras
    "qwen-3-32b": "qwen3-32b",  # Cerebras
    "meta-llama/llama-3.3-70b-instruct": "llama-3.3-70b",  # OpenRouter
    "openai/gpt-oss-120b": "gpt-oss-120b",  # Groq, OpenRouter (the HF id)
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "qwen3-30b-a3b",
    "Qwen/Qwen3-30B-A3B-Thinking-2507": "qwen3-30b-a3b",
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
}


def _by_name(catalog: Catalog) -> dict[str, str]:
    names: dict[str, str] = {}
    for key, m in catalog.models.items():
        for n in (m.name, *m.aliases):
            names[n] = key
    return names


def test_at_least_forty_models_and_every_required_key(catalog: Catalog) -> None:
    assert len(catalog.models) >= 40
    assert set(catalog.models) >= REQUIRED_MODELS, REQUIRED_MODELS - set(catalog.models)


def test_every_model_has_name_family_vocab_and_context(catalog: Catalog) -> None:
    for key, m in catalog.models.items():
        assert "/" in m.name, key  # a Hugging Face id
        assert m.family, key
        assert m.vocab_size is not None and m.vocab_size.value > 1000, key
        assert m.max_context_tokens is not None and m.max_context_tokens.value >= 4096, key
        assert m.num_attention_heads.value % m.num_kv_heads.value == 0, key


def test_families_group_generations(catalog: Catalog) -> None:
    family = {k: m.family for k, m in catalog.models.items()}
    assert family["deepseek-v3"] == family["deepseek-v3.1"] == family["deepseek-r1"]
    assert family["llama-3.1-8b"] == family["llama-3.3-70b"] == family["llama-3.2-1b"]
    assert family["llama-4-scout"] == family["llama-4-maverick"] != family["llama-3.1-8b"]
    assert family["qwen3-8b"] != family["qwen3-30b-a3b"] == family["qwen3-coder-480b-a35b"]
    assert family["gemma-2-9b"] != family["gemma-3-27b"]
    assert len(set(family.values())) >= 15


@pytest.mark.parametrize("hf_id", MLENERGY_V2)
def test_every_mlenergy_v2_model_resolves(catalog: Catalog, hf_id: str) -> None:
    assert hf_id in _by_name(catalog), hf_id


@pytest.mark.parametrize(("name", "key"), sorted(HOSTED_NAMES.items()))
def test_hosted_api_names_resolve(catalog: Catalog, name: str, key: str) -> None:
    assert _by_name(catalog)[name] == key


def test_aliases_are_unique_across_the_catalog(catalog: Catalog) -> None:
    owner: dict[str, str] = {}
    for key, m in catalog.models.items():
        for n in {x.lower() for x in (m.name, *m.aliases)}:
            assert owner.setdefault(n, key) == key, f"{n!r}: {owner[n]} and {key}"
    for key in catalog.models:  # no name points at another model's key
        assert owner.get(key.lower(), key) == key, key


# ---- architecture self-check ------------------------------------------------------------

#: Dense models: (intermediate_size, tied embeddings, gated MLP, parameters outside the text
#: stack such as a vision encoder). Values from each config.json. Not checked: Nemotron Nano v2
#: (hybrid Mamba-2 layers), DeepSeek V3 family (MLA projections); MoE models are checked below.
DENSE = {
    "llama-3.1-8b": (14336, False, True, 0),
    "llama-3.1-70b": (28672, False, True, 0),
    "llama-3.1-405b": (53248, False, True, 0),
    "llama-3.2-1b": (8192, True, True, 0),
    "llama-3.2-3b": (8192, True, True, 0),
    "llama-3.3-70b": (28672, False, True, 0),
    "llama-2-70b": (28672, False, True, 0),
    "codellama-7b": (11008, False, True, 0),
    "codellama-13b": (13824, False, True, 0),
    "codellama-34b": (22016, False, True, 0),
    "codellama-70b": (28672, False, True, 0),
    "qwen3-0.6b": (3072, True, True, 0),
    "qwen3-1.7b": (6144, True, True, 0),
    "qwen3-4b": (9728, True, True, 0),
    "qwen3-8b": (12288, False, True, 0),
    "qwen3-14b": (17408, False, True, 0),
    "qwen3-32b": (25600, False, True, 0),
    "gemma-3-1b": (6912, True, True, 0),
    "gemma-3-4b": (10240, True, True, 0.42e9),  # SigLIP vision encoder
    "gemma-3-12b": (15360, True, True, 0.42e9),
    "gemma-3-27b": (21504, True, True, 0.42e9),
    "gemma-2-2b": (9216, True, True, 0),
    "gemma-2-9b": (14336, True, True, 0),
    "gemma-2-27b": (36864, True, True, 0),
    "codegemma-2b": (16384, True, True, 0),
    "codegemma-7b": (24576, True, True, 0),
    "mistral-7b": (14336, False, True, 0),
    "mistral-nemo-12b": (14336, False, True, 0),
    "mistral-large-2407": (28672, False, True, 0),
    "mistral-small-3.1-24b": (32768, False, True, 0.44e9),  # Pixtral vision encoder
    "mistral-small-3.2-24b": (32768, False, True, 0.44e9),
    "phi-3-mini": (8192, False, True, 0),
    "phi-3-small": (14336, True, True, 0),  # gegelu: gated
    "phi-3-medium": (17920, False, True, 0),
    "phi-4": (17920, False, True, 0),
    "starcoder2-3b": (12288, True, False, 0),  # GELU MLP, not gated
    "starcoder2-7b": (18432, True, False, 0),
    "starcoder2-15b": (24576, False, False, 0),
}

#: MoE models: (MoE layers, expert intermediate size, dense MLP parameters outside the routed
#: experts: shared experts and dense layers).
MOE = {
    "mixtral-8x7b": (32, 14336, 0),
    "mixtral-8x22b": (56, 16384, 0),
    "qwen3-30b-a3b": (48, 768, 0),
    "qwen3-coder-30b-a3b": (48, 768, 0),
    "qwen3-235b-a22b": (94, 1536, 0),
    "qwen3-coder-480b-a35b": (62, 2560, 0),
    "gpt-oss-20b": (24, 2880, 0),
    "gpt-oss-120b": (36, 2880, 0),
    "llama-4-scout": (48, 8192, 48 * 3 * 5120 * 8192),  # one shared expert per layer
    "llama-4-maverick": (24, 8192, 24 * 3 * 5120 * 8192 + 24 * 3 * 5120 * 16384),
    "deepseek-v3": (58, 2048, None),  # MLA: total not estimated, experts only
    "deepseek-v3.1": (58, 2048, None),
    "deepseek-r1": (58, 2048, None),
}

#: Active parameters per token as each publisher gives them.
PUBLISHED_ACTIVE = {
    "mixtral-8x7b": 12.9e9,
    "mixtral-8x22b": 39e9,
    "qwen3-30b-a3b": 3.3e9,
    "qwen3-coder-30b-a3b": 3.3e9,
    "qwen3-235b-a22b": 22e9,
    "qwen3-coder-480b-a35b": 35e9,
    "deepseek-v3": 37e9,
    "deepseek-v3.1": 37e9,
    "deepseek-r1": 37e9,
    "gpt-oss-120b": 5.1e9,  # OpenAI counts the unembedding but not the embedding table
    "gpt-oss-20b": 3.6e9,
    "llama-4-scout": 17e9,
    "llama-4-maverick": 17e9,
}


def _embeddings(m: ModelSpec, tied: bool) -> float:
    assert m.vocab_size is not None
    return m.vocab_size.value * m.hidden_size.value * (1 if tied else 2)


def _attention(m: ModelSpec) -> float:
    h, hd = m.hidden_size.value, m.head_dim.value
    q, kv = m.num_attention_heads.value, m.num_kv_heads.value
    return m.num_layers.value * (h * (q + 2 * kv) * hd + q * hd * h)


def test_dense_and_moe_tables_cover_the_catalog(catalog: Catalog) -> None:
    exotic = {"nemotron-nano-9b-v2", "nemotron-nano-12b-v2"}
    assert set(DENSE) | set(MOE) | exotic == set(catalog.models)
    assert all(not catalog.models[k].is_moe for k in DENSE)
    assert all(catalog.models[k].is_moe for k in MOE)


@pytest.mark.parametrize("key", sorted(DENSE))
def test_dense_parameter_count_follows_from_the_architecture(catalog: Catalog, key: str) -> None:
    m = catalog.models[key]
    inter, tied, gated, extra = DENSE[key]
    mlp = m.num_layers.value * (3 if gated else 2) * m.hidden_size.value * inter
    estimate = _embeddings(m, tied) + _attention(m) + mlp + extra
    assert estimate == pytest.approx(m.total_params.value, rel=0.10), f"{key}: {estimate:.4g}"


@pytest.mark.parametrize("key", sorted(MOE))
def test_moe_expert_and_total_parameters(catalog: Catalog, key: str) -> None:
    m = catalog.models[key]
    assert m.expert_params is not None and m.num_experts is not None
    layers, inter, other = MOE[key]
    experts = layers * m.num_experts.value * 3 * m.hidden_size.value * inter
    assert m.expert_params.value == pytest.approx(experts, rel=0.02), key
    assert m.expert_params.value < m.total_params.value
    if other is None:
        return
    estimate = _embeddings(m, False) + _attention(m) + m.expert_params.value + other
    assert estimate == pytest.approx(m.total_params.value, rel=0.10), f"{key}: {estimate:.4g}"


@pytest.mark.parametrize(("key", "active"), sorted(PUBLISHED_ACTIVE.items()))
def test_moe_active_parameters_match_the_published_figure(
    catalog: Catalog, key: str, active: float
) -> None:
    m = catalog.models[key]
    ours = m.active_params
    if m.family == "gpt-oss":  # OpenAI's count leaves out the input embedding lookup
        ours -= _embeddings(m, True)
    assert ours == pytest.approx(active, rel=0.10), f"{key}: {ours:.4g}"
    assert m.total_params.value / m.active_params > 3


def test_dense_models_use_all_their_parameters(catalog: Catalog) -> None:
    for key in DENSE:
        m = catalog.models[key]
        assert m.active_params == m.total_params.value, key


# ---- KV-cache geometry ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["deepseek-v3", "deepseek-v3.1", "deepseek-r1"])
def test_mla_caches_one_latent_per_layer(catalog: Catalog, key: str) -> None:
    m = catalog.models[key]
    assert m.head_dim.value == 192  # qk_nope 128 + qk_rope 64
    assert m.kv_elements_per_layer_token == 512 + 64
    assert m.kv_elements_per_token == 61 * 576
    assert m.kv_elements(1000) == pytest.approx(61 * 576 * 1000)


def test_hybrid_models_cache_only_their_attention_layers(catalog: Catalog) -> None:
    nano9 = catalog.models["nemotron-nano-9b-v2"]
    nano12 = catalog.models["nemotron-nano-12b-v2"]
    assert (nano9.num_layers.value, nano9.kv_layers) == (56, 4)
    assert (nano12.num_layers.value, nano12.kv_layers) == (62, 6)
    assert nano9.kv_elements_per_token == 4 * 2 * 8 * 128


@pytest.mark.parametrize(
    ("key", "window", "sliding"),
    [
        ("gemma-2-2b", 4096, 13),
        ("gemma-2-9b", 4096, 21),
        ("gemma-2-27b", 4096, 23),
        ("gemma-3-1b", 512, 22),
        ("gemma-3-4b", 1024, 29),
        ("gemma-3-12b", 1024, 40),
        ("gemma-3-27b", 1024, 52),
        ("gpt-oss-20b", 128, 12),
        ("gpt-oss-120b", 128, 18),
        ("starcoder2-15b", 4096, 40),
    ],
)
def test_sliding_window_layers(catalog: Catalog, key: str, window: int, sliding: int) -> None:
    m = catalog.models[key]
    assert m.sliding_window_tokens is not None and m.sliding_window_layers is not None
    assert (m.sliding_window_tokens.value, m.sliding_window_layers.value) == (window, sliding)
    per = m.kv_elements_per_layer_token
    full = m.num_layers.value - sliding
    ctx = 32768
    assert m.kv_elements(ctx) == pytest.approx(per * (full * ctx + sliding * window))
    assert m.kv_elements(window // 2) == pytest.approx(m.kv_elements_per_token * (window // 2))


def test_models_without_a_window_cache_every_token(catalog: Catalog) -> None:
    for key in ("mistral-7b", "mixtral-8x7b", "llama-3.1-8b", "qwen3-32b", "deepseek-v3"):
        m = catalog.models[key]
        assert m.sliding_window_tokens is None and m.sliding_window_layers is None, key


def test_kv_cache_of_known_models(catalog: Catalog) -> None:
    gqa = {"llama-3.1-8b": 2 * 32 * 8 * 128, "qwen3-32b": 2 * 64 * 8 * 128}
    for key, elements in gqa.items():
        assert catalog.models[key].kv_elements_per_token == elements, key


# ---- hardware -----------------------------------------------------------------------------

REQUIRED_DEVICES = {
    "H100-SXM", "H200", "A100-80GB-SXM", "A100-40GB-SXM", "L4", "MI300X",
    "H100-PCIe", "H100-NVL", "B200", "GB200", "L40S", "MI325X", "MI355X", "Gaudi3",
    "TPU-v5e", "TPU-v5p", "TPU-v6e", "Inferentia2", "Trainium2",
}  # fmt: skip
FP4 = {"B200", "GB200", "MI355X"}
INT8 = {"TPU-v5e", "TPU-v5p", "TPU-v6e", "Inferentia2"}
MODELED = {"TPU-v5e", "TPU-v5p", "TPU-v6e", "Inferentia2", "Trainium2"}


def test_every_required_device_with_positive_numbers(catalog: Catalog) -> None:
    assert set(catalog.devices) >= REQUIRED_DEVICES, REQUIRED_DEVICES - set(catalog.devices)
    for key, d in catalog.devices.items():
        numbers = [d.memory_bandwidth_bps, d.memory_bytes, d.tdp_w, d.idle_power_w]
        numbers += [d.price_usd_per_hour, *d.peak_dense_flops.values()]
        assert d.interconnect_bps is not None, key
        numbers.append(d.interconnect_bps)
        assert all(n.value > 0 and n.source for n in numbers), key
        assert "bf16" in d.peak_dense_flops, key
        assert d.price_usd_per_hour.guess, key
        assert d.idle_power_w.value < d.tdp_w.value, key
        assert 1e9 < d.memory_bytes.value < 1e12 and d.memory_bandwidth_bps.value > 1e10, key


def test_low_precision_peaks_only_where_the_part_has_them(catalog: Catalog) -> None:
    for key, d in catalog.devices.items():
        assert ("fp4" in d.peak_dense_flops) is (key in FP4), key
        assert ("int8" in d.peak_dense_flops) is (key in INT8), key
    for key in FP4:  # dense Blackwell / CDNA 4: FP4 twice FP8, FP8 twice BF16
        d = catalog.devices[key]
        assert d.peak_flops("fp4") == pytest.approx(2 * d.peak_flops("fp8"), rel=0.02)
        assert d.peak_flops("fp8") == pytest.approx(2 * d.peak_flops("bf16"), rel=0.02)
    assert catalog.devices["H100-SXM"].peak_flops("fp4") == catalog.devices["H100-SXM"].peak_flops(
        "fp8"
    )
    assert catalog.devices["TPU-v6e"].peak_flops("int8") == pytest.approx(1836e12)


def test_vendors_and_power_sources(catalog: Catalog) -> None:
    d = catalog.devices
    assert d["Gaudi3"].vendor == "intel" and d["Gaudi3"].power_source == "hlsmi"
    assert {d[k].vendor for k in ("TPU-v5e", "TPU-v5p", "TPU-v6e")} == {"google"}
    assert {d[k].vendor for k in ("Inferentia2", "Trainium2")} == {"aws"}
    assert {d[k].vendor for k in ("MI325X", "MI355X")} == {"amd"}
    for key in MODELED:
        assert d[key].power_source == "modeled", key
        assert d[key].tdp_w.guess, key  # no published chip power
    assert d["H100-SXM"].interconnect_bps is not None
    assert d["H100-SXM"].interconnect_bps.value == pytest.approx(450e9)


def test_device_aliases_are_unique(catalog: Catalog) -> None:
    owner: dict[str, str] = {}
    for key, d in catalog.devices.items():
        for n in {x.lower() for x in (key, d.name, *d.aliases)}:
            assert owner.setdefault(n, key) == key, f"{n!r}: {owner[n]} and {key}"


def test_hosted_systems(catalog: Catalog) -> None:
    assert {"groq-lpu", "cerebras-wse3"} <= set(catalog.systems)
    for key, s in catalog.systems.items():
        assert s.provider in catalog.providers, key
        assert s.system_power_w.value > 1000, key
        assert set(s.aggregate_output_tokens_per_s) <= set(catalog.models), key
        assert set(s.stream_output_tokens_per_s) <= set(catalog.models), key
        for model, agg in s.aggregate_output_tokens_per_s.items():
            assert agg.guess, (key, model)
            j_per_token = s.system_power_w.value / agg.value
            assert 0.1 < j_per_token < 100, (key, model)
    assert {"llama-3.3-70b", "llama-3.1-8b", "gpt-oss-120b"} <= set(
        catalog.systems["cerebras-wse3"].stream_output_tokens_per_s
    )


# ---- hardware identity ------------------------------------------------------------------

RESOLVE = [
    # (reported, key): NVML, AMD SMI, hl-smi, JAX device_kind, GKE labels, catalog aliases
    ("NVIDIA B200", "B200"),
    ("NVIDIA GB200", "GB200"),
    ("NVIDIA H100 NVL", "H100-NVL"),
    ("NVIDIA H100 PCIe", "H100-PCIe"),
    ("NVIDIA L40S", "L40S"),
    ("AMD Instinct MI325X", "MI325X"),
    ("AMD Instinct MI355X", "MI355X"),
    ("HL-325L", "Gaudi3"),
    ("Intel Gaudi 3", "Gaudi3"),
    ("TPU v5 lite", "TPU-v5e"),
    ("TPU v5", "TPU-v5p"),
    ("TPU v6 lite", "TPU-v6e"),
    ("tpu-v6e-slice", "TPU-v6e"),
    ("tpu-v5-lite-podslice", "TPU-v5e"),
    ("Trillium", "TPU-v6e"),
    ("inf2", "Inferentia2"),
    ("trn2", "Trainium2"),
    ("H100", "H100-SXM"),
    ("h100", "H100-SXM"),
    ("H100 SXM", "H100-SXM"),
    ("nvidia-tesla-a100", "A100-40GB-SXM"),
    ("nvidia-h100-mega-80gb", "H100-SXM"),
    ("gaudi3", "Gaudi3"),
    ("TPU-v5p", "TPU-v5p"),
]


@pytest.mark.parametrize(("reported", "key"), RESOLVE)
def test_new_names_and_aliases_resolve(catalog: Catalog, reported: str, key: str) -> None:
    identity = resolve(reported)
    assert identity.key == key, reported
    assert identity.in_catalog and identity.reported == reported
    assert identity.vendor == catalog.devices[key].vendor
    assert catalog_key(reported) == key


def test_every_catalog_alias_resolves_to_its_part(catalog: Catalog) -> None:
    for key, d in catalog.devices.items():
        assert key in _PARTS and _PARTS[key].vendor == d.vendor, key
        for alias in d.aliases:
            assert resolve(alias).key == key, alias
            assert resolve(alias).matched_by == "catalog", alias


@pytest.mark.parametrize(
    "reported",
    ["NVIDIA H100", "NVIDIA GB300", "AMD Instinct MI350X", "TPU v7", "Gaudi 2", "H100 SXM6", "B20"],
)
def test_neighbours_and_unknown_names_stay_unknown(reported: str) -> None:
    assert resolve(reported).key is None, reported
    assert catalog_key(reported) is None


def test_h20_is_not_an_h200() -> None:
    assert resolve("NVIDIA H20").key == "H20"
    assert catalog_key("NVIDIA H20") is None
    assert catalog_key("H20") is None
    assert catalog_key("NVIDIA H200") == "H200"


def test_catalog_interconnect_is_one_direction(catalog: Catalog) -> None:
    """NVLink 4 is 900 GB/s both ways together; the catalog holds one direction."""
    ratio = {
        k: d.interconnect_bps.value / d.memory_bandwidth_bps.value
        for k, d in catalog.devices.items()
        if d.interconnect_bps is not None
    }
    assert math.isclose(ratio["H100-SXM"], 450e9 / 3.35e12)
    assert all(0 < r < 1 for r in ratio.values()), ratio
