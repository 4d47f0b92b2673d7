"""Work weights of prefill and decode tokens, from the roofline model where it knows the route.

Splitting a device's energy among concurrent requests needs the relative work of an input
(prefill) token and an output (decode) token. For hardware and models in the simulator's
catalog the roofline gives it (:meth:`PerfModel.decode_weight`: a decode token's FLOPs plus
reading its KV cache, relative to a prefill token's FLOPs). Otherwise the configured defaults
apply. Explicit per-route overrides (``[analytics.token_weights]``) win over both.
"""

from __future__ import annotations

import functools
import logging

from wattledger.analytics.settings import AnalyticsSettings

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=256)
def _roofline_decode_weight(hardware: str, llm_model: str, quantization: str) -> float | None:
    from wattledger.collectors.simulate.catalog import load_catalog
    from wattledger.collectors.simulate.perf import PerfModel
    from wattledger.errors import ConfigError

    try:
        perf = PerfModel.from_catalog(load_catalog(), hardware, llm_model, quantization or "bf16")
    except ConfigError:  # a route the catalog does not know: use the configured defaults
        return None
    return float(perf.decode_weight())


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
