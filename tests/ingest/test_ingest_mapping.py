"""The one mapping: attribute-keyed columns → warehouse rows, as bulk loaders call it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from wattledger.ingest import (
    DEVICE_SCHEMA,
    REQUEST_SCHEMA,
    SAMPLE_SCHEMA,
    request_table_from_columns,
    sample_tables_from_columns,
)
from wattledger.ingest.mapping.requests import REQUEST_ATTRIBUTE_KEYS, map_requests
from wattledger.ingest.mapping.samples import map_samples, merge_devices
from wattledger.ingest.schema import DEVICES_TABLE, REQUESTS_TABLE, SAMPLES_TABLE

T0 = 1_763_000_000_000_000_000


def cols(n: int = 1, **attrs: list[object]) -> dict[str, list[object]]:
    base: dict[str, list[object]] = {
        "trace_id": [f"{i + 1:032x}" for i in range(n)],
        "span_id": [f"{i + 1:016x}" for i in range(n)],
        "start_time_unix_nano": [T0] * n,
        "end_time_unix_nano": [T0 + 10**9] * n,
        "gen_ai.operation.name": ["chat"] * n,
    }
    base.update({k.replace("__", "."): v for k, v in attrs.items()})
    return base


def one(**attrs: object) -> dict[str, object]:
    t = request_table_from_columns(cols(1, **{k: [v] for k, v in attrs.items()}), tenant="t")
    assert t.num_rows == 1
    return t.to_pylist()[0]


def test_schemas_match_the_models_exactly():
    for schema, table in (
        (REQUEST_SCHEMA, REQUESTS_TABLE),
        (SAMPLE_SCHEMA, SAMPLES_TABLE),
        (DEVICE_SCHEMA, DEVICES_TABLE),
    ):
        assert schema.names == [c.name for c in table.columns]
        assert [f.nullable for f in schema] == [bool(c.nullable) for c in table.columns]


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"gen_ai.provider.name": "anthropic"}, "anthropic"),
        ({"gen_ai.system": "OpenAI"}, "openai"),  # older name, normalised case
        ({"gen_ai.provider.name": "openai", "server.address": "api.groq.com"}, "groq"),
        (
            {"gen_ai.system": "openai", "gen_ai.openai.api_base": "https://api.cerebras.ai/v1"},
            "cerebras",
        ),
        ({"server.address": "eu.api.together.xyz"}, "together"),  # no provider: host decides
        ({"gen_ai.provider.name": "openai", "server.address": "localhost"}, "openai"),
        (
            {"gen_ai.provider.name": "openai", "server.address": "llm.corp.example"},
            "llm.corp.example",
        ),  # unknown hosts keep their name
        ({"gen_ai.provider.name": "vllm", "server.address": "api.groq.com"}, "vllm"),
        ({}, "unknown"),
    ],
)
def test_provider(attrs, expected):
    assert one(**attrs)["provider"] == expected


def test_provider_host_table_is_extensible():
    c = cols(1, **{"gen_ai.provider.name": ["openai"], "server.address": ["gpu7.llm.corp"]})
    t = request_table_from_columns(c, tenant="t", provider_hosts={"llm.corp": "vllm"})
    assert t["provider"].to_pylist() == ["vllm"]


def test_current_names_win_over_older_ones_and_model_falls_back():
    r = one(
        **{
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.prompt_tokens": 99,
            "gen_ai.usage.completion_tokens": 7,
            "gen_ai.request.model": "req",
        }
    )
    assert (r["input_tokens"], r["output_tokens"], r["cached_input_tokens"]) == (5, 7, 0)
    assert (r["llm_model"], r["request_model"]) == ("req", "req")


def test_ttft_precedence_and_null_not_zero():
    assert (
        one(
            **{
                "wattledger.ttft_s": 0.1,
                "gen_ai.response.time_to_first_chunk": 0.2,
                "first_chunk_time_unix_nano": T0 + 300_000_000,
            }
        )["ttft_s"]
        == 0.1
    )
    assert (
        one(
            **{
                "gen_ai.response.time_to_first_chunk": 0.2,
                "first_chunk_time_unix_nano": T0 + 300_000_000,
            }
        )["ttft_s"]
        == 0.2
    )
    assert one(first_chunk_time_unix_nano=T0 + 300_000_000)["ttft_s"] == pytest.approx(0.3)
    r = one()
    assert r["ttft_s"] is None and r["first_token_ts"] is None


def test_node_service_status_and_producer():
    r = one(
        **{
            "resource.host.name": "h1",
            "wattledger.node": "n2",
            "scope.name": "openlit",
            "status_code": 2,
        }
    )
    assert (r["node"], r["service"], r["status"], r["producer"]) == (
        "h1",
        "unknown_service",
        "error",
        "openlit",
    )
    assert one(**{"wattledger.node": "n2"})["node"] == "n2"


def test_values_of_the_wrong_type_are_coerced_when_exact_else_rejected():
    c = cols(4, **{"gen_ai.usage.input_tokens": ["12", 3.0, 2.5, True]})
    m = map_requests(c, tenant="t")
    assert m.table["input_tokens"].to_pylist() == [12, 3]
    assert m.rejected == 2 and m.rejected_by_reason == {"bad_type": 2}
    assert "item 2" in (m.first_error or "") and "2.5" in (m.first_error or "")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"trace_id": ["XYZ"]}, "bad_id"),
        ({"trace_id": ["0" * 32]}, "bad_id"),
        ({"span_id": [None]}, "bad_id"),
        ({"start_time_unix_nano": [5]}, "bad_time"),
        ({"end_time_unix_nano": [T0 - 1]}, "bad_time"),
        ({"gen_ai.usage.output_tokens": [-1]}, "bad_value"),
        ({"wattledger.quality_score": [1.5]}, "bad_value"),
        ({"wattledger.ttft_s": [float("inf")]}, "bad_type"),
        ({"gen_ai.request.model": ["x" * 201]}, "too_long"),
    ],
)
def test_invalid_rows_are_rejected_whole(change, reason):
    c = cols(1)
    c.update(change)
    m = map_requests(c, tenant="t")
    assert (m.table.num_rows, m.rejected, m.rejected_by_reason) == (0, 1, {reason: 1})
    with pytest.raises(ValueError, match="1 of 1 rows are invalid"):
        request_table_from_columns(c, tenant="t")
    assert request_table_from_columns(c, tenant="t", on_invalid="drop").num_rows == 0


def test_nan_means_not_measured_and_is_stored_as_null():
    """Bulk loaders (the simulator) mark missing floats with NaN: NULL, not a rejection."""
    c = cols(
        2,
        **{
            "wattledger.ttft_s": [float("nan"), 0.25],
            "wattledger.itl.mean_s": np.array([0.02, np.nan]),
        },
    )
    m = map_requests(c, tenant="t")
    assert m.rejected == 0
    assert m.table["ttft_s"].to_pylist() == [None, 0.25]
    assert m.table["itl_mean_s"].to_pylist() == [0.02, None]


def test_non_genai_rows_are_dropped_not_rejected():
    c = cols(2)
    c["gen_ai.operation.name"] = ["chat", None]
    c["span_id"] = ["1" * 16, "bad"]  # a broken non-GenAI row is not the sender's problem
    m = map_requests(c, tenant="t")
    assert (m.table.num_rows, m.non_genai, m.rejected) == (1, 1, 0)
    with pytest.raises(ValueError, match="not GenAI spans"):
        request_table_from_columns(c, tenant="t")


def test_upper_case_hex_ids_are_normalised():
    c = cols(1)
    c["trace_id"], c["span_id"] = ["5B8EFFF798038103D269B633813FC60C"], ["EEE19B7EC3C1B174"]
    t = request_table_from_columns(c, tenant="t")
    assert t["trace_id"].to_pylist() == ["5b8efff798038103d269b633813fc60c"]


def test_arrow_input_and_bad_shapes():
    c = {k: pa.array(v) for k, v in cols(3).items()}
    assert request_table_from_columns(c, tenant="t").schema == REQUEST_SCHEMA
    c["gen_ai.request.model"] = pa.array(["a", "b"])
    with pytest.raises(ValueError, match="has 2 values"):
        request_table_from_columns(c, tenant="t")
    with pytest.raises(ValueError, match="must include 'trace_id'"):
        request_table_from_columns({}, tenant="t")
    with pytest.raises(ValueError, match="tenant"):
        request_table_from_columns(cols(1), tenant="")


def test_content_attributes_are_not_read():
    assert not any(
        k.startswith(
            (
                "gen_ai.input",
                "gen_ai.output",
                "gen_ai.prompt",
                "gen_ai.completion",
                "gen_ai.system_instructions",
            )
        )
        for k in REQUEST_ATTRIBUTE_KEYS
    )


def _points(**attrs: list[object]) -> dict[str, list[object]]:
    n = len(attrs["metric"])
    base: dict[str, list[object]] = {"time_unix_nano": [T0] * n, "hw.id": ["GPU-1"] * n}
    base.update({k.replace("__", "."): v for k, v in attrs.items()})
    return base


def test_samples_pivot_one_row_per_device_time_and_source():
    p = _points(
        metric=["hw.power", "hw.energy", "hw.gpu.utilization", "hw.gpu.utilization", "hw.power"],
        value=[300.0, 50.0, 0.4, 0.9, 280.0],
        **{
            "hw.gpu.task": [None, None, "general", "decoder", None],
            "wattledger.power.source": ["nvml"] * 4 + ["dcgm"],
        },
    )
    samples, devices = sample_tables_from_columns(p, tenant="t")
    assert samples.schema == SAMPLE_SCHEMA and devices.schema == DEVICE_SCHEMA
    got = {r["source"]: r for r in samples.to_pylist()}
    assert (
        got["nvml"]["power_w"],
        got["nvml"]["energy_counter_j"],
        got["nvml"]["utilization_ratio"],
        got["nvml"]["method"],
    ) == (300.0, 50.0, 0.4, "counter")
    assert (got["dcgm"]["power_w"], got["dcgm"]["method"]) == (280.0, "power")
    assert devices.to_pylist()[0]["vendor"] == "unknown"
    m = map_samples(p, tenant="t")
    assert (m.received, m.ignored, m.rejected) == (5, 1, 0)  # the decoder-task point


def test_modeled_method_is_kept_and_unknown_method_refused():
    p = _points(
        metric=["hw.power", "hw.power"],
        value=[10.0, 20.0],
        time_unix_nano=[T0, T0 + 1],
        **{"wattledger.energy.method": ["modeled", "vibes"]},
    )
    m = map_samples(p, tenant="t")
    assert m.samples["method"].to_pylist() == ["modeled"]
    assert m.rejected == 1 and "vibes" in (m.first_error or "")
    with pytest.raises(ValueError, match="1 of 2 points are invalid"):
        sample_tables_from_columns(p, tenant="t")


def test_merge_devices_prefers_known_values():
    a = _points(metric=["hw.power"], value=[1.0])
    b = _points(
        metric=["hw.power"],
        value=[1.0],
        time_unix_nano=[T0 + 10**9],
        **{"hw.vendor": ["amd"], "hw.model": ["MI300X"]},
    )
    d1, d2 = map_samples(a, tenant="t").devices, map_samples(b, tenant="t").devices
    (merged,) = merge_devices([d1, d2]).to_pylist()
    assert (merged["vendor"], merged["hardware_model"]) == ("amd", "MI300X")
    assert (merged["last_seen_at"] - merged["first_seen_at"]).total_seconds() == 1.0


def test_a_bool_after_a_float_is_not_a_number() -> None:
    """Found by test_bodies_decoded_together_give_each_body_its_own_result: Arrow turned
    ``[nan, False]`` into ``[nan, 0.0]``, so one decoder stored ``False`` as a quality score of
    0 while the other rejected it."""
    from wattledger.ingest.mapping._arrays import float_column

    values, bad = float_column([None, float("nan"), False, 0.5])
    assert bad.tolist() == [False, False, True, False]
    assert values.to_pylist() == [None, None, None, 0.5]
