"""The catalogs: every number sourced, the required hardware and models present, and right."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wattledger.catalog.roofline import PerfModel
from wattledger.catalog.specs import DATA_DIR, Catalog, catalog_markdown, load_catalog
from wattledger.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"


def test_every_number_has_a_source_and_is_positive(catalog: Catalog) -> None:
    numbers = list(catalog.sourced_numbers())
    assert len(numbers) > 140
    for path, num in numbers:
        assert num.source.strip(), path
        assert num.value > 0, path
    guesses = {path for path, num in numbers if num.guess}
    assert "devices.H100-SXM.idle_power_w" in guesses
    assert "devices.H100-SXM.memory_bandwidth_bps" not in guesses
    assert all(n.guess for p, n in numbers if p.endswith(".price_usd_per_hour"))


def test_required_hardware_models_and_routes_are_there(catalog: Catalog) -> None:
    assert {"H100-SXM", "H200", "A100-80GB-SXM", "L4", "MI300X"} <= set(catalog.devices)
    assert catalog.devices["MI300X"].vendor == "amd"
    assert {"groq", "cerebras", "openai-compatible"} <= set(catalog.providers)
    assert {"llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b"} <= set(catalog.models)
    assert {"bf16", "fp8", "int4", "fp4"} <= set(catalog.quantizations)
    for key in ("bf16", "fp8"):
        assert catalog.devices["H100-SXM"].peak_dense_flops[key].value > 0


def test_datasheet_numbers(catalog: Catalog) -> None:
    h100 = catalog.devices["H100-SXM"]
    assert h100.peak_flops("bf16") == pytest.approx(989.4e12)
    assert h100.peak_flops("fp8") == pytest.approx(2 * h100.peak_flops("bf16"), rel=1e-3)
    # A100 has no FP8 tensor cores: FP8 kernels run in bf16.
    assert catalog.devices["A100-80GB-SXM"].peak_flops("fp8") == pytest.approx(312e12)
    assert catalog.devices["MI300X"].memory_bandwidth_bps.value == pytest.approx(5.3e12)


def test_kv_cache_and_moe_parameters(catalog: Catalog) -> None:
    llama8 = PerfModel.from_catalog(catalog, "H100-SXM", "llama-3.1-8b", "bf16")
    llama70 = PerfModel.from_catalog(catalog, "H100-SXM", "llama-3.1-70b", "fp8")
    assert llama8.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2 == 131072
    assert llama70.kv_bytes_per_token == 2 * 80 * 8 * 128 * 1 == 163840
    mixtral = catalog.models["mixtral-8x7b"]
    assert mixtral.is_moe and not catalog.models["llama-3.1-8b"].is_moe
    assert mixtral.active_params == pytest.approx(12.9e9, rel=0.02)  # Mistral's published figure
    assert mixtral.total_params.value / mixtral.active_params > 3.5


def test_quantization_bytes(catalog: Catalog) -> None:
    bpp = {k: q.weight_bytes_per_param.value for k, q in catalog.quantizations.items()}
    assert bpp["bf16"] == 2 and bpp["fp8"] == 1
    assert 0.5 < bpp["int4"] < 0.6 and 0.5 < bpp["fp4"] < 0.6


def _copy_catalog(tmp_path: Path) -> Path:
    for f in DATA_DIR.glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_a_number_without_source_is_a_clear_error(tmp_path: Path) -> None:
    d = _copy_catalog(tmp_path)
    hw = (d / "hardware.toml").read_text()
    bad = hw.replace(
        'tdp_w = { value = 72, source = "https://www.nvidia.com/en-us/data-center/l4/ '
        '(datasheet: max TDP 72 W)" }',
        "tdp_w = { value = 72 }",
    )
    assert bad != hw
    (d / "hardware.toml").write_text(bad)
    with pytest.raises(ConfigError) as e:
        load_catalog(d)
    assert "devices.L4.tdp_w.source" in e.value.message
    assert "source" in (e.value.hint or "")


def test_malformed_or_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    d = _copy_catalog(tmp_path)
    good = (d / "models.toml").read_text()
    (d / "models.toml").write_text("[models\n")
    with pytest.raises(ConfigError, match="models.toml is not valid TOML"):
        load_catalog(d)
    (d / "models.toml").write_text(good)
    (d / "engines.toml").unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        load_catalog(d)


def test_docs_list_every_catalog_number_with_its_source(catalog: Catalog) -> None:
    """docs/catalog.md embeds the generated table; regenerate it when a catalog changes."""
    assert catalog_markdown(catalog) in DOCS.read_text()


def test_the_simulator_never_imports_the_warehouse_or_ingest() -> None:
    """Layering: collectors/ produces data only (STYLE.md section 1)."""
    import subprocess
    import sys

    code = (
        "import sys, wattledger.collectors.simulate\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'\n"
        "       or m.startswith(('wattledger.ingest', 'wattledger.models'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
