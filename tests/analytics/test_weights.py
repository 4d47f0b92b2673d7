"""Roofline-derived attribution inputs for routes the simulator's catalog knows."""

from __future__ import annotations

import numpy as np

from wattledger.analytics.settings import AnalyticsSettings
from wattledger.analytics.timeline import Requests, Series, attribute_device
from wattledger.analytics.weights import power_shape, prefill_seconds, token_weights


def test_catalog_names_and_hugging_face_ids_resolve_to_roofline_weights() -> None:
    s = AnalyticsSettings()
    by_key = token_weights(s, "H100-SXM", "llama-3.1-70b", "int4")
    by_hf_id = token_weights(s, "h100-sxm", "meta-llama/Llama-3.1-70B-Instruct", "int4")
    assert by_key == by_hf_id and by_key[2] == "roofline" and by_key[0] == 1.0
    assert by_key[1] > 1.0  # a decode token also reads its KV cache
    assert token_weights(s, "H100-SXM", "unknown-llm", None)[2] == "default"
    override = AnalyticsSettings(token_weights={"H100-SXM/unknown-llm": (0.5, 2.0)})
    assert token_weights(override, "H100-SXM", "unknown-llm", None) == (0.5, 2.0, "config")


def test_prefill_time_grows_with_the_prompt_and_power_with_the_batch() -> None:
    prefill = prefill_seconds("H100-SXM", "llama-3.1-8b", "bf16")
    assert prefill is not None and prefill_seconds("H100-SXM", "nope", "bf16") is None
    t = prefill(np.array([100.0, 1000.0, 8000.0]))
    assert np.all(np.diff(t) > 0)
    shape = power_shape("H100-SXM", "llama-3.1-8b", "bf16", 1000.0, 1100.0)
    assert shape is not None
    p = shape(np.array([1.0, 16.0, 64.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0]))
    assert p[0] < p[1] < p[2] and p[3] > p[0]


def test_power_shape_puts_a_sample_intervals_energy_where_the_device_drew_it() -> None:
    """Two requests in one 10 s sample interval: one decoding alone, then one prefilling.

    Spread evenly over busy time they would get equal energy; with prefill drawing twice the
    power they get 1/3 and 2/3.
    """
    t = np.array([0.0, 10.0])
    series = Series(t, np.array([100.0, 100.0]), np.array([0.0, 3000.0]))
    r = Requests(
        np.array([0.0, 5.0]),
        np.array([0.0, 10.0]),
        np.array([5.0, 10.0]),
        np.array([0.0, 100.0]),
        np.array([10.0, 0.0]),
    )
    flat = attribute_device(
        series, r, t0=0, t1=10, idle_power_w=100, prefill_weight=1, decode_weight=1
    )
    assert np.allclose(flat.energy_j, [1000.0, 1000.0])
    shaped = attribute_device(
        series,
        r,
        t0=0,
        t1=10,
        idle_power_w=100,
        prefill_weight=1,
        decode_weight=1,
        power_shape=lambda dec, pre: np.where(pre > 0, 2.0, 1.0),
    )
    assert np.allclose(shaped.energy_j, [2000.0 / 3, 4000.0 / 3])
    assert np.isclose(shaped.energy_j.sum() + shaped.idle_j_by_bucket.sum(), 3000.0)
