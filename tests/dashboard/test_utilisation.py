"""How full the truck leaves: measured routes against the roofline, on Vendors and Fleet.

Issue 23: an engineer should see that an H100 decoding at batch 4 uses a fraction of its memory
bandwidth while the planner shows what batch 32 would do. The expected share is computed here
from the datasheet and the model card, not from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP
from tests.dashboard.test_numbers import table_of
from wattledger.dashboard import frames


def _route(**overrides: object) -> pd.DataFrame:
    row = {
        "provider": "vllm",
        "hardware_model": "H100-SXM",
        "llm_model": "meta-llama/Llama-3.1-8B-Instruct",
        "quantization": "bf16",
        "requests": 100,
        "input_tokens": 100 * 1000,
        "output_tokens": 100 * 200,
        "mean_batch_size": 4.0,
        "itl_p50_s": 0.012,
        "ttft_p50_s": 0.2,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_bandwidth_share_of_a_batch_4_decode_on_h100() -> None:
    table = frames.utilisation_table(_route())
    assert len(table) == 1
    # Llama 3.1 8B: 8.03e9 bf16 weights = 16.06 GB; KV 2 x 32 layers x 8 heads x 128 x 2 B
    # = 131,072 B per token; 4 sequences x (1000 + 200/2) tokens. H100 SXM: 3.35 TB/s.
    step_bytes = 8.03e9 * 2 + 4 * 1100 * 131072
    expected = step_bytes / 0.012 / 3.35e12
    row = table.iloc[0]
    assert row["Decode bandwidth used (%)"] == pytest.approx(100 * expected, rel=1e-3)
    # Prefill: 2 x 8.03e9 x 1000 FLOPs + attention, over 200 ms, of 989 TFLOP/s: a few %.
    assert 0.5 < row["Prefill compute used (%)"] < 15
    # The planner at batch 32 reads more bytes per step and uses more of the bandwidth.
    assert row["Predicted bandwidth used at batch 32 (%)"] > 0
    assert row["Devices (assumed)"] == 1


def test_hosted_and_unknown_routes_are_left_out() -> None:
    table = frames.utilisation_table(
        pd.concat(
            [
                _route(provider="groq", hardware_model=""),
                _route(hardware_model="NPU-9000"),
            ]
        )
    )
    assert table.empty


def test_a_route_without_a_reported_batch_assumes_one_and_says_so() -> None:
    row = frames.utilisation_table(_route(mean_batch_size=None)).iloc[0]
    assert row["Mean batch"] == 1 and row["Batch source"].startswith("not reported")


def test_vendors_and_fleet_pages_show_roofline_use(demo: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at = at.switch_page("app_pages/vendors.py").run()
    assert not at.exception, [e.value for e in at.exception]
    vendors = table_of(at, "vendors.utilisation")
    assert list(vendors["Route"]) == ["vllm/H100-SXM/llama-3.1-8b"]
    assert vendors["Decode bandwidth used (%)"].between(0, 100).all()
    at = at.switch_page("app_pages/fleet.py").run()
    assert not at.exception, [e.value for e in at.exception]
    fleet = table_of(at, "fleet.utilisation")
    assert set(fleet["Route"]) == set(vendors["Route"])
