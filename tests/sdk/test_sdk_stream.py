"""``wattledger.track_stream``: TTFT and inter-token gaps from a controlled clock, exactly."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator, Sequence
from types import SimpleNamespace

import pytest
from opentelemetry.trace import StatusCode
from sdk_support import (
    FakeClock,
    Sdk,
    duration_ns,
    span_attrs,
)

import wattledger
from wattledger.collectors import semconv

# Seconds before each chunk: TTFT 0.4, then gaps 0.01, 0.03, 0.02, 0.10.
DELAYS_S = [0.4, 0.01, 0.03, 0.02, 0.10]
# Linear-interpolation quantiles of the sorted gaps [0.01, 0.02, 0.03, 0.10].
P50_S = 0.025
P95_S = 0.03 + (0.10 - 0.03) * 0.85


def chunks(clock: FakeClock, items: Sequence[object]) -> Iterator[object]:
    for delay, item in zip(DELAYS_S, items, strict=True):
        clock.advance(delay)
        yield item


async def achunks(clock: FakeClock, items: Sequence[object]) -> AsyncIterator[object]:
    for delay, item in zip(DELAYS_S, items, strict=True):
        clock.advance(delay)
        await asyncio.sleep(0)
        yield item


def assert_timings(attrs: dict[str, object]) -> None:
    assert attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == 0.4
    assert attrs[semconv.WL_TTFT_S] == 0.4
    assert attrs[semconv.WL_ITL_COUNT] == 4
    assert attrs[semconv.WL_ITL_MEAN_S] == pytest.approx(0.04, abs=1e-12)
    assert attrs[semconv.WL_ITL_P50_S] == pytest.approx(P50_S, abs=1e-12)
    assert attrs[semconv.WL_ITL_P95_S] == pytest.approx(P95_S, abs=1e-12)
    assert attrs[semconv.WL_ITL_MAX_S] == pytest.approx(0.10, abs=1e-12)


def test_sync_stream_exact_timings_and_chunks_unchanged(sdk: Sdk) -> None:
    items: list[object] = [object() for _ in DELAYS_S]
    start = sdk.clock.ns
    seen = list(
        wattledger.track_stream(
            chunks(sdk.clock, items), model="llama-3.1-70b", provider="vllm", device="GPU-7"
        )
    )
    assert all(a is b for a, b in zip(seen, items, strict=True))
    span = sdk.span()
    attrs = span_attrs(span)
    assert_timings(attrs)
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.WL_DEVICE_ID] == "GPU-7"
    assert span.name == "chat llama-3.1-70b"
    assert duration_ns(span) == sdk.clock.ns - start
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in attrs  # chunks are not tokens


def test_async_stream_exact_timings(sdk: Sdk) -> None:
    async def consume() -> list[object]:
        stream = wattledger.track_stream(achunks(sdk.clock, list("abcde")), model="m")
        return [c async for c in stream]

    assert asyncio.run(consume()) == list("abcde")
    assert_timings(span_attrs(sdk.span()))


def test_usage_model_and_finish_from_the_final_chunks(sdk: Sdk) -> None:
    """OpenAI-compatible chat chunks as plain JSON dicts: usage rides on the last one."""
    raw = [
        {"model": "m-served", "choices": [{"delta": {"content": "a"}, "finish_reason": None}]},
        {"model": "m-served", "choices": [{"delta": {"content": "b"}, "finish_reason": None}]},
        {"model": "m-served", "choices": [{"delta": {"content": "c"}, "finish_reason": None}]},
        {"model": "m-served", "id": "c-1", "choices": [{"delta": {}, "finish_reason": "stop"}]},
        {
            "model": "m-served",
            "id": "c-1",
            "choices": [],
            "usage": {
                "prompt_tokens": 30,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 10},
            },
        },
    ]
    assert list(wattledger.track_stream(chunks(sdk.clock, raw), model="m")) == raw
    attrs = span_attrs(sdk.span())
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 30
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 10
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "m-served"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "c-1"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_responses_events_as_objects(sdk: Sdk) -> None:
    usage = SimpleNamespace(
        input_tokens=9,
        output_tokens=4,
        input_tokens_details=SimpleNamespace(cached_tokens=0),
        output_tokens_details=SimpleNamespace(reasoning_tokens=1),
    )
    events = [
        SimpleNamespace(type="response.created"),
        SimpleNamespace(type="response.output_text.delta"),
        SimpleNamespace(type="response.output_text.delta"),
        SimpleNamespace(type="response.output_text.delta"),
        SimpleNamespace(
            type="response.completed",
            response=SimpleNamespace(usage=usage, model="gpt-x", id="resp_1", status="completed"),
        ),
    ]
    list(
        wattledger.track_stream(
            chunks(sdk.clock, events),
            model="gpt",
            token_chunk=lambda e: e.type.endswith(".delta"),
        )
    )
    attrs = span_attrs(sdk.span())
    # First delta after 0.4 + 0.01 s; gaps between the three deltas: 0.03, 0.02.
    assert attrs[semconv.WL_TTFT_S] == pytest.approx(0.41, abs=1e-12)
    assert attrs[semconv.WL_ITL_COUNT] == 2
    assert attrs[semconv.WL_ITL_MAX_S] == pytest.approx(0.03, abs=1e-12)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 9
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 0
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 1
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-x"


def test_error_mid_stream_is_recorded_and_propagates(sdk: Sdk) -> None:
    def broken() -> Iterator[str]:
        sdk.clock.advance(0.2)
        yield "a"
        sdk.clock.advance(0.05)
        yield "b"
        raise ConnectionResetError("peer went away")

    got = []
    with pytest.raises(ConnectionResetError):
        for c in wattledger.track_stream(broken(), model="m"):
            got.append(c)
    assert got == ["a", "b"]
    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span_attrs(span)[semconv.ERROR_TYPE] == "ConnectionResetError"
    assert span_attrs(span)[semconv.WL_TTFT_S] == 0.2
    assert span_attrs(span)[semconv.WL_ITL_COUNT] == 1


def test_consumer_stopping_early_ends_the_span_and_closes_the_source(sdk: Sdk) -> None:
    closed = []

    def source() -> Iterator[int]:
        try:
            for i in range(100):
                sdk.clock.advance(0.01)
                yield i
        finally:
            closed.append(True)

    for i in wattledger.track_stream(source(), model="m"):
        if i == 2:
            break
    gc.collect()
    assert closed == [True]
    attrs = span_attrs(sdk.span())
    assert attrs[semconv.WL_STREAM_CLOSED_EARLY] is True
    assert attrs[semconv.WL_ITL_COUNT] == 2


def test_async_stream_closed_early_closes_the_source(sdk: Sdk) -> None:
    closed = []

    async def source() -> AsyncIterator[int]:
        try:
            for i in range(100):
                sdk.clock.advance(0.01)
                yield i
        finally:
            await asyncio.sleep(0)  # async cleanup must really run
            closed.append(True)

    async def main() -> None:
        stream = wattledger.track_stream(source(), model="m")
        async for i in stream:
            if i == 3:
                break
        await stream.aclose()

    asyncio.run(main())
    assert closed == [True]
    attrs = span_attrs(sdk.span())
    assert attrs[semconv.WL_STREAM_CLOSED_EARLY] is True
    assert attrs[semconv.WL_ITL_COUNT] == 3


def test_close_before_iterating_ends_the_span(sdk: Sdk) -> None:
    stream = wattledger.track_stream(iter([1, 2]), model="m")
    stream.close()
    attrs = span_attrs(sdk.span())
    assert attrs[semconv.WL_STREAM_CLOSED_EARLY] is True
    assert semconv.WL_TTFT_S not in attrs


def test_abandoned_stream_still_ends_its_span(sdk: Sdk) -> None:
    stream = wattledger.track_stream(iter([1, 2]), model="m")
    it = iter(stream)
    del stream
    assert sdk.spans() == []  # the iterator may still be used
    assert next(it) == 1
    del it
    gc.collect()
    assert len(sdk.spans()) == 1


def test_never_iterated_stream_ends_its_span_when_collected(sdk: Sdk) -> None:
    stream = wattledger.track_stream(iter([1, 2]), model="m")
    del stream
    gc.collect()
    span = sdk.span()
    assert semconv.WL_TTFT_S not in (span_attrs(span) or {})


def test_stream_inside_track_records_on_the_open_request(sdk: Sdk) -> None:
    with wattledger.track(model="m", stream=True) as t:
        for _ in t.stream(chunks(sdk.clock, list("abcde"))):
            pass
        t.usage(input_tokens=5, output_tokens=5)
    attrs = span_attrs(sdk.span())
    assert_timings(attrs)
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5


def test_wrapper_exposes_the_wrapped_streams_attributes(sdk: Sdk) -> None:
    class Source:
        response = "the-http-response"

        def __iter__(self) -> Iterator[int]:
            yield 1

    stream = wattledger.track_stream(Source(), model="m")
    assert stream.response == "the-http-response"
    with stream as s:
        assert list(s) == [1]
    assert len(sdk.spans()) == 1


def test_empty_stream_has_no_ttft(sdk: Sdk) -> None:
    assert list(wattledger.track_stream(iter([]), model="m")) == []
    attrs = span_attrs(sdk.span())
    assert semconv.WL_TTFT_S not in attrs and semconv.WL_ITL_COUNT not in attrs
