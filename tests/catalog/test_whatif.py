"""`wattledger whatif` as users call it: Hugging Face ids, GPU counts, precisions, token
lengths and batches, with no warehouse at all; and what the physics says must follow.

Interface (issue 23): ``whatif --model M --hardware H --gpus N --quantization Q --input-tokens I
--output-tokens O --batch B --json`` prints one object with at least
``energy_per_output_token_j``, ``time_per_output_token_s``, ``output_tokens_per_s``, ``fits`` and
``assumptions``, and exits 1 with a one-line reason when the configuration does not fit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wattledger.catalog.predict import NoFit, predict_route
from wattledger.catalog.specs import load_catalog
from wattledger.errors import ConfigError


def whatif(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATTLEDGER_DATA_DIR": str(tmp_path / "data")}
    env.pop("WATTLEDGER_DATABASE_URL", None)
    env.pop("WATTLEDGER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "wattledger", "whatif", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


BASE = ("--input-tokens", "1000", "--output-tokens", "300")


def test_interface_json_with_a_hugging_face_id(tmp_path: Path) -> None:
    r = whatif(
        tmp_path,
        "--model",
        "Qwen/Qwen3-30B-A3B-Instruct-2507",
        "--hardware",
        "H100",
        "--gpus",
        "1",
        "--quantization",
        "fp8",
        *BASE,
        "--batch",
        "16",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in ("energy_per_output_token_j", "time_per_output_token_s", "output_tokens_per_s"):
        assert isinstance(data[key], float) and data[key] > 0, key
    assert data["fits"] is True and data["basis"] == "predicted"
    assert data["hardware"] == "H100-SXM" and data["gpus"] == 1
    a = data["assumptions"]
    assert a["batch"] == 16 and a["input_tokens"] == 1000 and a["output_tokens"] == 300
    assert a["quantization"] == "fp8" and a["parallelism"] == "none"
    assert a["calibration"]["factors"] == {}  # no warehouse: uncalibrated, and it says so
    assert "no warehouse" in a["calibration"]["evidence"]
    # An MoE model reads only its active experts: ~3.3 B of 30.5 B parameters.
    assert 2.5e9 < a["active_params"] < 4.5e9 < 25e9 < a["total_params"]
    # Throughput and time per token agree (batch / TPOT), and power is plausible for one H100.
    assert data["output_tokens_per_s"] == pytest.approx(16 / data["time_per_output_token_s"])
    assert 70 < data["power_w"] <= 700
    # Nothing was created: the planner needs no warehouse.
    assert not (tmp_path / "data").exists()


def test_a_70b_model_needs_several_h100s(tmp_path: Path) -> None:
    one = whatif(
        tmp_path, "--model", "meta-llama/Llama-3.3-70B-Instruct", "--hardware", "H100", *BASE
    )
    assert one.returncode == 1
    lines = [x for x in one.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Does not fit" in lines[0] and "GB" in lines[0], one.stderr
    four = whatif(
        tmp_path,
        "--model",
        "meta-llama/Llama-3.3-70B-Instruct",
        "--hardware",
        "H100",
        "--gpus",
        "4",
        *BASE,
        "--batch",
        "32",
        "--json",
    )
    assert four.returncode == 0, four.stderr
    data = json.loads(four.stdout)
    assert data["gpus"] == 4 and data["assumptions"]["tensor_parallel"] == 4


def test_a_batch_beyond_the_kv_cache_does_not_fit(tmp_path: Path) -> None:
    # The round-1 planner answered batch 691 x 647 tokens; here memory is always checked.
    r = whatif(
        tmp_path,
        "--model",
        "llama-3.1-70b",
        "--hardware",
        "H100",
        "--gpus",
        "2",
        "--input-tokens",
        "4000",
        "--output-tokens",
        "1000",
        "--batch",
        "691",
        "--json",
    )
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["fits"] is False and "KV cache" in data["reason"]
    assert "at most" in data["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "llama-3.1-8b", "--hardware", "H100", *BASE, "--batch", "0"), "--batch"),
        (("--model", "llama-9-1t", "--hardware", "H100", *BASE), "Unknown model"),
        (("--model", "llama-3.1-8b", "--hardware", "TPU-v9", *BASE), "Unknown hardware"),
        (
            ("--model", "llama-3.1-8b", "--hardware", "H100", "--quantization", "int3", *BASE),
            "int3",
        ),
        (("--model", "llama-3.1-8b", "--hardware", "H100", "--parallelism", "ep", *BASE), "dense"),
        (("--model", "llama-3.1-8b", "--hardware", "H100"), "--input-tokens"),
        (("--model", "llama-3.1-8b", "--hardware", "H100", "--gpus", "3", *BASE), "32 attention"),
    ],
)
def test_bad_inputs_get_one_line_errors(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    r = whatif(tmp_path, *args)
    assert r.returncode in (1, 2), r.stdout
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "unexpected" not in r.stderr


def test_text_output_says_predicted_and_lists_assumptions(tmp_path: Path) -> None:
    r = whatif(
        tmp_path, "--model", "gpt-oss-120b", "--hardware", "B200", "--quantization", "mxfp4", *BASE
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PREDICTED")
    for word in ("time per output token", "energy", "memory", "batch", "utilisation"):
        assert word in r.stdout, word


# --- what the physics says -------------------------------------------------------------------


def _p(model: str, hardware: str, **kw: object) -> float:
    kw.setdefault("input_tokens", 1000)
    kw.setdefault("output_tokens", 300)
    kw.setdefault("batch", 1)
    return predict_route(model, hardware, **kw).time_per_output_token_s  # type: ignore[arg-type]


def test_decode_at_batch_one_follows_bytes_over_bandwidth() -> None:
    # Half the bytes per weight: fp8 decodes faster than bf16 at batch 1.
    assert _p("llama-3.1-8b", "H100", quantization="fp8") < 0.7 * _p("llama-3.1-8b", "H100")
    # More bandwidth: B200 (8 TB/s) and H200 (4.8 TB/s) beat H100 (3.35 TB/s).
    assert _p("llama-3.1-8b", "B200") < _p("llama-3.1-8b", "H200") < _p("llama-3.1-8b", "H100")
    # An MoE with ~3 B active parameters decodes faster than a dense 32 B model.
    assert _p("qwen3-30b-a3b", "H100") < 0.5 * _p("qwen3-32b", "H100")
    # Four GPUs split the weights: faster per token than one, but not 4x (all-reduce).
    one, four = _p("llama-3.1-8b", "H100"), _p("llama-3.1-8b", "H100", gpus=4)
    assert one / 4 < four < one


def test_mxfp4_halves_the_weights_of_fp8() -> None:
    fp8 = predict_route("gpt-oss-120b", "H100", gpus=2, quantization="fp8", batch=1)
    mx = predict_route("gpt-oss-120b", "H100", quantization="mxfp4", batch=1)
    ratio = mx.assumptions["memory"]["weights_gb"] / fp8.assumptions["memory"]["weights_gb"]
    assert 0.5 < ratio < 0.6


def test_every_catalog_model_on_1_to_8_h100_or_b200_answers_or_says_why() -> None:
    """Each answers, or fails with a memory reason (or heads that cannot be split)."""
    catalog = load_catalog()
    answered = failed = 0
    for model in catalog.models:
        for hardware in ("H100", "B200"):
            for gpus in (1, 2, 4, 8):
                try:
                    p = predict_route(
                        model,
                        hardware,
                        gpus=gpus,
                        input_tokens=1000,
                        output_tokens=500,
                        batch=8,
                        catalog=catalog,
                    )
                except NoFit as e:
                    assert "GB" in str(e) or "context" in str(e), str(e)
                    failed += 1
                    continue
                except ConfigError as e:  # e.g. 8-way TP of a model with 4 attention heads
                    assert "attention heads" in str(e), str(e)
                    failed += 1
                    continue
                assert p.fits and p.time_per_output_token_s > 0
                assert p.energy_per_output_token_j > 0
                answered += 1
    assert answered > 3 * failed  # most fit somewhere in 1-8 devices
    # Even DeepSeek V3 (671 B) fits on 8 B200 in fp8.
    assert predict_route("deepseek-v3", "B200", gpus=8, quantization="fp8", batch=8).fits


def test_names_users_type_resolve() -> None:
    from wattledger.catalog.predict import hardware_key, model_key

    c = load_catalog()
    assert model_key(c, "meta-llama/Llama-3.1-8B-Instruct") == "llama-3.1-8b"
    assert model_key(c, "Qwen/Qwen3-30B-A3B-Instruct-2507") == "qwen3-30b-a3b"
    assert model_key(c, "llama-3.3-70b-versatile") == model_key(c, "llama-3.3-70b")
    assert hardware_key(c, "H100") == hardware_key(c, "H100-SXM") == "H100-SXM"
    with pytest.raises(ConfigError, match="Unknown model"):
        model_key(c, "gpt-5")


def test_hosted_systems_are_modeled_with_a_range_and_a_list_price(tmp_path: Path) -> None:
    r = whatif(
        tmp_path, "--model", "llama-3.3-70b-versatile", "--hardware", "groq-lpu", *BASE, "--json"
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["basis"] == "modeled" and data["hardware"] == "groq-lpu"
    low, high = data["assumptions"]["energy_per_output_token_j_range"]
    assert low < data["energy_per_output_token_j"] < high
    # 1 / the published per-stream speed (280 tokens/s for llama-3.3-70b-versatile).
    assert data["time_per_output_token_s"] == pytest.approx(1 / 280)
    assert (
        float(data["cost_per_mtok_usd"]) > 0 and data["cost_source"] == "the provider's list price"
    )
    unknown = whatif(tmp_path, "--model", "qwen3-8b", "--hardware", "cerebras", *BASE)
    assert unknown.returncode == 1 and "No published throughput" in unknown.stderr
