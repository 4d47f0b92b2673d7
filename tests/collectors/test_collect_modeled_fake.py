"""Modeled energy (published J/token x scraped tokens), FakeSource and ReplaySource."""

from __future__ import annotations

from pathlib import Path

import pytest
from collect_support import DATA, ManualClock

from wattledger.collectors.sources.fake import FakeSource, ReplaySource
from wattledger.collectors.sources.modeled import EnergyCatalog, ModeledSource, normalize_model
from wattledger.collectors.sources.prometheus import EngineStats, PrometheusSource
from wattledger.errors import ConfigError

SPEC = "meta-llama/Meta-Llama-3.1-8B-Instruct@H100"


def test_catalog_is_the_published_measurement() -> None:
    catalog = EnergyCatalog.load()
    entry = catalog.lookup("meta-llama/Meta-Llama-3.1-8B-Instruct", "H100")
    assert entry.hardware == "H100-SXM-80GB" and entry.task == "chat"
    assert (
        entry.joules_per_output_token_min
        <= entry.joules_per_output_token
        <= entry.joules_per_output_token_max
    )
    assert 0.01 < entry.joules_per_output_token < 1.0  # ML.ENERGY range for an 8B model
    assert "ML.ENERGY" in catalog.source
    assert len({(e.llm_model, e.hardware, e.task) for e in catalog.entries}) == len(catalog.entries)


def test_unknown_model_names_the_closest_ones() -> None:
    with pytest.raises(ConfigError) as info:
        EnergyCatalog.load().lookup("meta-llama/Meta-Llama-3.1-8B-Instruc", "H100")
    assert "Meta-Llama-3.1-8B-Instruct" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="not <model>@<hardware>"):
        ModeledSource(["no-hardware-given"])


def test_normalize_model_matches_served_names() -> None:
    assert normalize_model("meta-llama/Meta-Llama-3.1-8B-Instruct") == normalize_model(
        "Llama-3.1-8B-Instruct"
    )


def stats(tokens: float, model: str = "meta-llama/Llama-3.1-8B-Instruct") -> EngineStats:
    return EngineStats("vllm", model, "vllm:8000", 0.0, tokens, 0.0, None, None, 0, 0)


def test_modeled_energy_is_tokens_times_joules_per_token_and_labelled() -> None:
    clock = ManualClock()
    source = ModeledSource([SPEC], host="n", clock_ns=clock)
    jpt = source.catalog.lookup("Meta-Llama-3.1-8B-Instruct", "H100").joules_per_output_token
    source.observe([stats(1000.0)])
    assert source.read()[0].energy_j == 0.0  # tokens before we started watching don't count
    clock.advance(10.0)
    source.observe([stats(3000.0)])
    r = source.read()[0]
    assert r.method == "modeled" and r.device_id == "n:modeled:0"
    assert r.energy_j == pytest.approx(2000 * jpt)
    assert r.power_w == pytest.approx(2000 * jpt / 10.0)
    clock.advance(10.0)
    source.observe([stats(500.0)])  # the engine restarted: 500 new tokens
    assert source.read()[0].energy_j == pytest.approx(2500 * jpt)
    info = source.devices()[0]
    assert (info.source, info.model, info.vendor) == ("modeled", "H100-SXM-80GB", "nvidia")


def test_modeled_device_follows_a_served_name(caplog: pytest.LogCaptureFixture) -> None:
    source = ModeledSource([SPEC + "#llama-prod"], host="n")
    source.observe([stats(10.0, "llama-prod")])
    source.observe([stats(20.0, "llama-prod")])
    assert source.read()[0].energy_j > 0
    other = ModeledSource([SPEC], host="n")
    other.observe([stats(10.0, "mistral")])
    other.observe([stats(20.0, "mistral")])
    assert other.read()[0].energy_j == 0.0
    assert sum("no engine reports tokens" in m for m in caplog.messages) == 1


def test_modeled_from_a_scraped_vllm() -> None:
    pages = iter([DATA / "vllm_metrics_1.txt", DATA / "vllm_metrics_2.txt"])
    scrape = PrometheusSource("http://vllm:8000/metrics", fetch=lambda url: next(pages).read_text())
    modeled = ModeledSource([SPEC], host="n")
    for _ in range(2):
        scrape.read()
        modeled.observe(scrape.engine_stats())
    jpt = modeled.catalog.lookup(SPEC.split("@")[0], "H100").joules_per_output_token
    assert modeled.read()[0].energy_j == pytest.approx((35612 - 23054) * jpt)


def test_fake_source_integrates_exactly() -> None:
    clock = ManualClock()
    source = FakeSource([100.0, lambda t: 200.0 + 100.0 * t], clock_ns=clock, host="h")
    clock.advance(2.0)
    a, b = source.read()
    assert a.energy_j == pytest.approx(200.0)  # 100 W x 2 s
    assert b.energy_j == pytest.approx((200.0 + 400.0) / 2 * 2.0)  # linear ramp: exact
    assert [d.device_id for d in source.devices()] == ["h:fake:0", "h:fake:1"]
    assert a.power_w == 100.0 and b.power_w == 400.0


def test_replay_source_from_csv(tmp_path: Path) -> None:
    csv = tmp_path / "trace.csv"
    csv.write_text(
        "t_s,device_id,power_w,utilization_ratio\n"
        "0,GPU-x,100,0.1\n1,GPU-x,300,0.9\n2,GPU-x,100,0.1\n"
    )
    clock = ManualClock()
    source = ReplaySource.from_csv(csv, clock_ns=clock)
    powers = []
    for _ in range(5):
        powers.append(source.read()[0].power_w)
        clock.advance(0.5)
    assert powers == [100.0, 200.0, 300.0, 200.0, 100.0]
    clock.advance(0.5)  # loops: t=3.0 is 1.0 s into the 2 s trace
    assert source.read()[0].power_w == pytest.approx(300.0)
    assert source.devices()[0].device_id == "GPU-x"


def test_replay_bad_rows_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("t_s,device_id,power_w\n0,GPU-x,lots\n")
    with pytest.raises(ConfigError, match=r"bad\.csv:2"):
        ReplaySource.from_csv(bad)
    with pytest.raises(ConfigError, match="Cannot read"):
        ReplaySource.from_csv(tmp_path / "missing.csv")
