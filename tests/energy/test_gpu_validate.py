"""bench/gpu_validate.py's logic, on the NVML fake: the check a real GPU runs (issue 17).

The fake GPU's power follows what the fake workload does (idle, prefill, decode, summed over
requests running at once) and its total-energy counter integrates that exactly, as the driver's
does; the script samples it with the project's NvmlSource at 10 Hz, sends everything through a
real ingest and compares what analytics attributed with the counter.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path

import pytest

from wattledger.collectors.sources.fakes.nvml import FakeGpu, FakeNvml

BENCH = Path(__file__).parents[2] / "bench"
IDLE_W = 68.0


@pytest.fixture(scope="module")
def gpu_validate():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("gpu_validate")
    finally:
        sys.path.remove(str(BENCH))


class FakeWorkload:
    """Draws prefill, then decode power on the fake GPU for as long as a real request would."""

    def __init__(self, fake: FakeNvml, lie_s: float = 0.0) -> None:
        self.fake = fake
        self.lock = threading.Lock()
        self.extra_w = 0.0
        self.lie_s = lie_s  # reports the end this much early (a broken producer)

    def _add(self, watts: float) -> None:
        with self.lock:
            self.extra_w += watts
            self.fake.set_power(0, IDLE_W + max(self.extra_w, 0.0))

    def generate(self, prompt_tokens: int, output_tokens: int) -> tuple[int, int]:
        prefill_w, decode_w = 420.0, 180.0 + prompt_tokens / 100
        self._add(prefill_w)
        time.sleep(0.05 + prompt_tokens / 40_000)
        self._add(decode_w - prefill_w)
        first = time.time_ns()
        time.sleep(0.2 + output_tokens / 1_000)
        self._add(-decode_w)
        return first, time.time_ns() - int(self.lie_s * 1e9)


def _fake() -> FakeNvml:
    return FakeNvml(
        [FakeGpu(uuid="GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f", power_w=IDLE_W, energy_mj=5e9)]
    )


def _validate(gpu_validate, lie_s: float = 0.0, **kw: int) -> dict:
    fake = _fake()
    return gpu_validate.validate(
        fake.module, FakeWorkload(fake, lie_s), gap_s=0.6, idle_s=1.5, log=lambda _m: None, **kw
    )


def test_attribution_matches_the_counter_on_the_fake_gpu(gpu_validate) -> None:
    result = _validate(gpu_validate, sequential=6, concurrent=4, workers=2)
    assert result["reported_name"] == "NVIDIA H100 80GB HBM3"
    assert result["identity"] == "NVIDIA H100 SXM5 80GB"  # resolved, not shown raw
    assert result["catalog_key"] == "H100-SXM"
    assert result["missing"] == 0 and result["requests"] == 10
    assert result["idle_power_w_counter"] == pytest.approx(IDLE_W, rel=0.01)
    assert result["median_error"] <= 0.05, result["per_request"]
    assert result["total_error"] <= 0.02
    assert result["ok"] is True
    alone = [r for r in result["per_request"] if r["alone"]]
    assert len(alone) == 6 and all(r["energy_source"] == "counter" for r in alone)
    assert all(r["low_j"] <= r["attributed_j"] <= r["high_j"] for r in alone)


def test_a_miss_is_reported_as_a_miss(gpu_validate) -> None:
    """Spans that end 40 % early leave energy unattributed: the check must fail, not pass."""
    result = _validate(gpu_validate, lie_s=0.25, sequential=4, concurrent=0, workers=1)
    assert result["median_error"] > 0.05
    assert result["ok"] is False


def test_without_nvml_it_says_so_and_exits_2(gpu_validate, capsys, monkeypatch) -> None:
    from wattledger.collectors.sources import nvml
    from wattledger.collectors.sources.base import SourceUnavailable

    def missing():
        raise SourceUnavailable("NVML library not found (libnvidia-ml.so.1)")

    monkeypatch.setattr(nvml, "load_pynvml", missing)
    assert gpu_validate.main([]) == 2
    err = capsys.readouterr().err
    assert "cannot run the GPU check here" in err and "libnvidia-ml" in err
