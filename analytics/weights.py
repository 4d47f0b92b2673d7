"""Work weights of prefill and decode tokens, from the roofline model where it knows the route.

Splitting a device's energy among concurrent requests needs the relative work of an input
(prefill) token and an output (decode) token. For hardware and models in the simulator's
catalog the roofline gives it (:meth:`PerfModel.decode_weight`: a decode token's FLOPs plus
reading its KV cache, relative to a prefill token's FLOPs); the device's reported name is
resolved to the catalog by :func:`wattledger.hardware.resolve`. Otherwise the configured defaults
apply. Explicit per-route overrides (``[analytics.token_weights]``) win over both.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import numpy as np

from wattledger.analytics.settings import AnalyticsSettings

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=256)
def _perf(hardware: str, llm_model: str, quantization: str):  # type: ignore[no-untyped-def]
    from wattledger.catalog.predict import model_key, quantization_key
    from wattledger.catalog.roofline import PerfModel
    from wattledger.catalog.specs import load_catalog
    from wattledger.errors import ConfigError
    from wattledger.hardware import catalog_key as hardware_key

    catalog = load_catalog()
    hw = hardware_key(hardware)  # NVML, AMD SMI and DCGM names as well as catalog keys
    if hw is None:
        return None
    try:  # model keys, Hugging Face ids and hosted aliases
        model = model_key(catalog, llm_model)
        quant = quantization_key(catalog, quantization or "bf16")
        return PerfModel.from_catalog(catalog, hw, model, quant)
    except ConfigError:  # a model or quantization the catalog does not know: the defaults
        return None


def _roofline_decode_weight(hardware: str, llm_model: str, quantization: str) -> float | None:
    perf = _perf(hardware, llm_model, quantization)
    return None if perf is None else float(perf.decode_weight())


def prefill_seconds(
    hardware: str | None, llm_model: str | None, quantization: str | None
) -> Callable[[np.ndarray], np.ndarray] | None:
    """Roofline prefill time (s) of prompts of n tokens on this route, or None if unknown.

    The time to first token also holds the time a request waited in the queue, when it did no
    work; attribution places the prefill at the end of that interval.
    """
    if not hardware or not llm_model:
        return None
    perf = _perf(hardware, llm_model, quantization or "")
    if perf is None:
        return None
    return lambda n: np.asarray(perf.prefill(np.maximum(n, 1.0)).time_s, dtype=np.float64)


def token_weights(
    settings: AnalyticsSettings,
    hardware: str | None,
    llm_model: str | None,
    quantization: str | None,
) -> tuple[float, float, str]:
    """(prefill weight, decode weight, where they came from) for a device's route."""
    key = f"{hardware}/{llm_model}"
    override = settings.token_weights.get(key) or settings.token_weights.get(hardware or "")
    if override is not None:
        return override[0], override[1], "config"
    if hardware and llm_model:
        w = _roofline_decode_weight(hardware, llm_model, quantization or "")
        if w is not None:
            return 1.0, w, "roofline"
    return settings.prefill_token_weight, settings.decode_token_weight, "default"


def power_shape(
    hardware: str | None,
    llm_model: str | None,
    quantization: str | None,
    input_tokens: float,
    context_tokens: float,
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """Relative power above idle by (requests decoding, requests prefilling), from the roofline.

    Decode steps draw more power as the batch grows; prefill (compute-bound) draws more than
    small-batch decode. Used to place a sample interval's energy where the device drew it.
    None when the catalog does not know the route.
    """
    if not hardware or not llm_model:
        return None
    perf = _perf(hardware, llm_model, quantization or "")
    if perf is None:
        return None
    prefill_w = float(perf.prefill(max(input_tokens, 1.0)).power_above_idle_w)

    def shape(decoding: np.ndarray, prefilling: np.ndarray) -> np.ndarray:
        b = np.maximum(decoding, 1.0)
        decode_w = np.asarray(perf.decode_step(b, b * context_tokens).power_above_idle_w)
        return np.where(prefilling > 0, np.maximum(prefill_w, decode_w), decode_w)

    return shape
