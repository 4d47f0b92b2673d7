"""The Prometheus scrape parser under random and mutated exposition text.

Recordings of dcgm-exporter, vLLM and TGI (tests/collectors/data) are mutated byte- and
line-wise; a scrape never raises out of ``PrometheusSource.read()`` nor stops the collector's
sampling loop, and lines the parser refuses are skipped and reported while every good line of
the same scrape still counts: the readings equal those of the clean recording.
"""

from __future__ import annotations

import logging
from dataclasses import astuple
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.fuzz.profiles import fuzz
from wattledger.collectors.collector.sampler import Sampler
from wattledger.collectors.sources.prometheus import PrometheusSource

DATA = Path(__file__).parents[1] / "collectors" / "data"
PAIRS = [
    ("dcgm_metrics_1.txt", "dcgm_metrics_2.txt"),
    ("vllm_metrics_1.txt", "vllm_metrics_2.txt"),
    ("tgi_metrics.txt", "tgi_metrics.txt"),
]
TEXT = {name: (DATA / name).read_text() for pair in PAIRS for name in pair}
CURATED_BAD = [
    'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-x" 12',
    'vllm:prompt_tokens_total{model_name="m"} abc',
    "# TYPE vllm:prompt_tokens_total nonsense",
    "{}",
    "\x00",
    "=== exporter crashed ===",
]
line_chars = st.characters(blacklist_characters="\n\r")


def refused_alone(line: str) -> bool:
    try:
        list(text_string_to_metric_families(line + "\n"))
    except Exception:  # noqa: BLE001 - any refusal counts
        return True
    return False


bad_lines = st.one_of(
    st.sampled_from(CURATED_BAD), st.text(line_chars, min_size=1, max_size=30)
).filter(refused_alone)


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def __call__(self) -> int:
        self.ns += 5_000_000_000
        return self.ns


def source(pages: list[str]) -> PrometheusSource:
    """A source whose scrapes return ``pages`` in turn (``/info`` gets a TGI model id)."""
    it = iter(pages)

    def fetch(url: str) -> str:
        return '{"model_id": "m"}' if url.endswith("/info") else next(it)

    return PrometheusSource(
        "http://127.0.0.1:9/metrics", fetch=fetch, clock_ns=Clock(), wall_ns=Clock()
    )


@st.composite
def mutated_text(draw: Any) -> str:
    text = TEXT[draw(st.sampled_from(sorted(TEXT)))]
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["chars", "drop", "dup", "swap", "value", "label", "cut"]))
        line = lines[i]
        if op == "chars" and line:
            j = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:j] + draw(st.text(line_chars, max_size=3)) + line[j + 1 :]
        elif op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, line)
        elif op == "swap":
            k = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[k] = lines[k], lines[i]
        elif op == "value" and " " in line:
            value = draw(
                st.sampled_from(["NaN", "+Inf", "-Inf", "-1", "1e308", "0x10", "", "1e999"])
            )
            lines[i] = line.rsplit(" ", 1)[0] + " " + value
        elif op == "label" and "{" in line:
            lines[i] = line.replace("{", '{le="' + draw(st.text(line_chars, max_size=4)) + '",', 1)
        elif op == "cut":
            lines = lines[:i]
        if not lines:
            lines = [""]
    return "\n".join(lines)


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@fuzz(60)
@given(st.lists(st.one_of(mutated_text(), st.text(max_size=200)), min_size=1, max_size=3))
def test_scrapes_never_raise_nor_stop_the_loop(pages: list[str]) -> None:
    src = source(list(pages) * 2)
    for _ in pages:
        readings = src.read()  # must not raise
        assert all(r.energy_j is None or r.energy_j >= 0 for r in readings)
        src.engine_stats()
    errors = Errors()
    log = logging.getLogger("wattledger.collectors.collector.sampler")
    log.addHandler(errors)
    try:
        sampler = Sampler([src], honor_min_interval=False, clock_ns=Clock(), wall_ns=Clock())
        for _ in pages:
            sampler.sample()
    finally:
        log.removeHandler(errors)
    assert errors.messages == []  # no "Reading source prometheus failed"


def readings_of(src: PrometheusSource, scrapes: int) -> list[Any]:
    out = []
    for _ in range(scrapes):
        out.append(sorted(astuple(r) for r in src.read()))
        out.append(sorted(astuple(e) for e in src.engine_stats()))
    return out


@fuzz(40)
@given(st.sampled_from(PAIRS), st.lists(st.tuples(st.integers(0, 10**6), bad_lines), min_size=1))
def test_bad_lines_are_skipped_and_reported(pair: tuple[str, str], bad: list[Any]) -> None:
    clean = [TEXT[pair[0]], TEXT[pair[1]]]
    dirty = []
    for text in clean:
        lines = text.split("\n")
        for pos, line in bad:
            lines.insert(pos % (len(lines) + 1), line)
        dirty.append("\n".join(lines))
    expected = readings_of(source(clean), 2)
    assert any(expected)  # the recordings do hold readings or engine stats
    src = source(dirty)
    assert readings_of(src, 2) == expected
    assert src.skipped_lines == 2 * len(bad)


def test_a_huge_memory_value_is_unknown_not_a_crash() -> None:
    """Found by `make fuzz`: FB_FREE of 1e308 MiB overflowed int() and lost the scrape."""
    lines = [
        line.rsplit(" ", 1)[0] + " 1e308" if line.startswith("DCGM_FI_DEV_FB_FREE{") else line
        for line in TEXT["dcgm_metrics_1.txt"].split("\n")
    ]
    readings = {r.device_id: r for r in source(["\n".join(lines)]).read()}
    assert len(readings) == 2
    assert all(r.memory_total_bytes is None for r in readings.values())
    assert all(r.memory_used_bytes for r in readings.values())
