"""``wattledger.instrument_openai`` with the real ``openai`` package against a local server.

The server (sdk_support.start_openai_server) is a real HTTP server speaking the OpenAI API:
JSON responses, SSE streams with the final usage chunk when asked, and Responses-API events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry.trace import StatusCode
from sdk_support import (
    CHAT_WORDS,
    FIRST_CHUNK_DELAY_S,
    RESPONSES_WORDS,
    OpenAIServer,
    Sdk,
    SteppingClock,
    served_model,
    span_attrs,
)

import wattledger
from wattledger.collectors import semconv
from wattledger.collectors.sdk import _state

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "How many joules per token?"}
]


_OPEN: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(server: OpenAIServer, **kwargs: Any) -> openai.OpenAI:
    c = openai.OpenAI(api_key="sk-local", base_url=server.base_url, max_retries=0, **kwargs)
    _OPEN.append(c)
    return c


def async_client(server: OpenAIServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-local", base_url=server.base_url, max_retries=0)


def common(server: OpenAIServer, model: str, provider: str = "vllm") -> dict[str, Any]:
    return {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: provider,
        semconv.GEN_AI_REQUEST_MODEL: model,
        semconv.SERVER_ADDRESS: "127.0.0.1",
        semconv.SERVER_PORT: server.port,
        semconv.GEN_AI_RESPONSE_MODEL: served_model(model),
    }


def test_chat_completion(sdk: Sdk, openai_server: OpenAIServer) -> None:
    c = wattledger.instrument_openai(client(openai_server), provider="vllm", workload="qa")
    reply = c.chat.completions.create(model="llama-3.1-8b", messages=MESSAGES, max_tokens=64)
    assert reply.choices[0].message.content == "".join(CHAT_WORDS)

    span = sdk.span()
    assert span.name == "chat llama-3.1-8b"
    assert span_attrs(span) == {
        **common(openai_server, "llama-3.1-8b"),
        semconv.WL_WORKLOAD: "qa",
        semconv.GEN_AI_REQUEST_MAX_TOKENS: 64,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 12,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 4,
        semconv.GEN_AI_RESPONSE_ID: "chatcmpl-local-1",
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
    }  # not streamed: no TTFT, and no message content


def test_chat_stream_asks_for_usage_and_hides_the_extra_chunk(
    sdk: Sdk, openai_server: OpenAIServer
) -> None:
    step = SteppingClock(0.001)  # every clock read is 1 ms later: exact timings
    _state.STATE.clock_ns = step
    c = wattledger.instrument_openai(client(openai_server))
    stream = c.chat.completions.create(model="qwen2.5-7b", messages=MESSAGES, stream=True)
    chunks = list(stream)

    path, body, _ = openai_server.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["stream_options"] == {"include_usage": True}
    # The caller sees exactly what it would have without wattledger: no usage-only chunk.
    assert all(ch.choices for ch in chunks)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "".join(CHAT_WORDS)
    assert len(chunks) == len(CHAT_WORDS) + 2  # role chunk + words + finish chunk

    attrs = span_attrs(sdk.span())
    assert attrs == {
        **common(openai_server, "qwen2.5-7b", provider="openai"),
        semconv.GEN_AI_REQUEST_STREAM: True,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 12,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 4,
        semconv.GEN_AI_RESPONSE_ID: "chatcmpl-local-1",
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.001,
        semconv.WL_TTFT_S: 0.001,
        semconv.WL_ITL_COUNT: len(chunks) - 1,
        semconv.WL_ITL_MEAN_S: pytest.approx(0.001, abs=1e-12),
        semconv.WL_ITL_P50_S: 0.001,
        semconv.WL_ITL_P95_S: 0.001,
        semconv.WL_ITL_MAX_S: 0.001,
    }


def test_chat_stream_real_clock_ttft_covers_the_server_delay(
    sdk: Sdk, openai_server: OpenAIServer
) -> None:
    _state.STATE.clock_ns = time.monotonic_ns
    c = wattledger.instrument_openai(client(openai_server), provider="vllm")
    with c.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        for _ in stream:
            pass
    attrs = span_attrs(sdk.span())
    assert attrs[semconv.WL_TTFT_S] >= FIRST_CHUNK_DELAY_S  # the server waits before chunk 1
    assert attrs[semconv.WL_ITL_COUNT] == len(CHAT_WORDS) + 1
    assert attrs[semconv.WL_ITL_MAX_S] >= attrs[semconv.WL_ITL_P50_S] > 0


def test_chat_stream_usage_chunk_kept_when_the_caller_asked(
    sdk: Sdk, openai_server: OpenAIServer
) -> None:
    c = wattledger.instrument_openai(client(openai_server), provider="vllm")
    chunks = list(
        c.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 12
    attrs = span_attrs(sdk.span())
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert attrs[semconv.WL_ITL_COUNT] == len(CHAT_WORDS) + 1  # the usage chunk is no token


def test_chat_stream_without_usage_request_records_no_usage(
    sdk: Sdk, openai_server: OpenAIServer
) -> None:
    c = wattledger.instrument_openai(client(openai_server), include_usage=False)
    list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert "stream_options" not in openai_server.requests[-1][1]
    attrs = span_attrs(sdk.span())
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in attrs  # unknown, not 0
    assert attrs[semconv.WL_ITL_COUNT] == len(CHAT_WORDS) + 1


def test_responses_create(sdk: Sdk, openai_server: OpenAIServer) -> None:
    c = wattledger.instrument_openai(client(openai_server), provider="vllm")
    response = c.responses.create(model="gpt-oss-20b", input="hi", max_output_tokens=32)
    assert response.output_text == "".join(RESPONSES_WORDS)
    assert span_attrs(sdk.span()) == {
        **common(openai_server, "gpt-oss-20b"),
        semconv.GEN_AI_REQUEST_MAX_TOKENS: 32,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 20,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 6,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 8,
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 2,
        semconv.GEN_AI_RESPONSE_ID: "resp_local_1",
    }


def test_responses_stream_times_text_deltas(sdk: Sdk, openai_server: OpenAIServer) -> None:
    _state.STATE.clock_ns = SteppingClock(0.002)
    c = wattledger.instrument_openai(client(openai_server), provider="vllm")
    events = list(c.responses.create(model="gpt-oss-20b", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.count("response.output_text.delta") == len(RESPONSES_WORDS)
    attrs = span_attrs(sdk.span())
    # One clock read at the start and one per event; four events precede the first delta.
    assert types.index("response.output_text.delta") == 4
    assert attrs[semconv.WL_TTFT_S] == 0.010
    assert attrs[semconv.WL_ITL_COUNT] == len(RESPONSES_WORDS) - 1
    assert attrs[semconv.WL_ITL_MAX_S] == 0.002
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 20
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 6
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == served_model("gpt-oss-20b")
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True


def test_async_client_chat_and_stream(sdk: Sdk, openai_server: OpenAIServer) -> None:
    _state.STATE.clock_ns = time.monotonic_ns

    async def main() -> list[str]:
        async with async_client(openai_server) as c:
            wattledger.instrument_openai(c, provider="vllm")
            reply = await c.chat.completions.create(model="m", messages=MESSAGES)
            words = [reply.choices[0].message.content or ""]
            stream = await c.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            async for chunk in stream:
                assert chunk.choices
                words.append(chunk.choices[0].delta.content or "")
            return words

    words = asyncio.run(main())
    assert "".join(words[1:]) == words[0] == "".join(CHAT_WORDS)
    plain, streamed = sdk.spans()
    assert span_attrs(plain)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert semconv.WL_TTFT_S not in span_attrs(plain)
    assert span_attrs(streamed)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert span_attrs(streamed)[semconv.WL_ITL_COUNT] == len(CHAT_WORDS) + 1
    assert span_attrs(streamed)[semconv.WL_TTFT_S] >= FIRST_CHUNK_DELAY_S


def test_api_error_is_recorded_and_raised(sdk: Sdk, openai_server: OpenAIServer) -> None:
    c = wattledger.instrument_openai(client(openai_server), provider="vllm")
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="rate-limited", messages=MESSAGES)
    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span_attrs(span)[semconv.ERROR_TYPE] == "RateLimitError"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span_attrs(span)


class _RouteToLocal(httpx2.HTTPTransport):
    """Sends every request to the local server whatever host the client thinks it calls."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._port = port

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        path = "/v1/" + request.url.path.split("/v1/", 1)[1]
        request.url = request.url.copy_with(
            scheme="http", host="127.0.0.1", port=self._port, path=path
        )
        return super().handle_request(request)


def test_provider_comes_from_the_host_not_the_client(sdk: Sdk, openai_server: OpenAIServer) -> None:
    http = httpx2.Client(transport=_RouteToLocal(openai_server.port))
    groq = openai.OpenAI(
        api_key="gsk-local",
        base_url="https://api.groq.com/openai/v1",
        http_client=http,
        max_retries=0,
    )
    wattledger.instrument_openai(groq, provider="self-hosted")
    groq.chat.completions.create(model="llama-3.3-70b-versatile", messages=MESSAGES)
    # Copies made with with_options stay instrumented and re-derive the provider.
    cerebras = groq.with_options(base_url="https://api.cerebras.ai/v1")
    cerebras.chat.completions.create(model="llama3.1-8b", messages=MESSAGES)
    internal = groq.with_options(base_url="http://vllm.internal:8000/v1")
    internal.chat.completions.create(model="m", messages=MESSAGES)
    unnamed = wattledger.instrument_openai(
        openai.OpenAI(api_key="k", base_url="http://vllm.internal:8000/v1", http_client=http)
    )
    unnamed.chat.completions.create(model="m", messages=MESSAGES)
    _OPEN.extend([groq, cerebras, internal, unnamed])
    first, second, third, fourth = sdk.spans()
    assert span_attrs(first)[semconv.GEN_AI_PROVIDER_NAME] == "groq"
    assert span_attrs(first)[semconv.SERVER_ADDRESS] == "api.groq.com"
    assert span_attrs(first)[semconv.SERVER_PORT] == 443
    assert span_attrs(second)[semconv.GEN_AI_PROVIDER_NAME] == "cerebras"
    # An unknown host: the provider= given wins over the host name, which is the fallback.
    assert span_attrs(third)[semconv.GEN_AI_PROVIDER_NAME] == "self-hosted"
    assert span_attrs(third)[semconv.SERVER_PORT] == 8000
    assert span_attrs(fourth)[semconv.GEN_AI_PROVIDER_NAME] == "vllm.internal"


def test_instrumenting_twice_records_once(sdk: Sdk, openai_server: OpenAIServer) -> None:
    c = client(openai_server)
    assert wattledger.instrument_openai(wattledger.instrument_openai(c)) is c
    c.chat.completions.create(model="m", messages=MESSAGES)
    assert len(sdk.spans()) == 1


def test_other_clients_are_not_touched(sdk: Sdk, openai_server: OpenAIServer) -> None:
    wattledger.instrument_openai(client(openai_server))
    client(openai_server).chat.completions.create(model="m", messages=MESSAGES)
    assert sdk.spans() == []


def test_raw_response_still_works(sdk: Sdk, openai_server: OpenAIServer) -> None:
    c = wattledger.instrument_openai(client(openai_server))
    raw = c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.parse().usage.completion_tokens == 5
    assert sdk.span().name == "chat m"


def test_stream_helpers_go_through_the_instrumented_create(
    sdk: Sdk, openai_server: OpenAIServer
) -> None:
    c = wattledger.instrument_openai(client(openai_server), provider="vllm")
    with c.chat.completions.stream(model="m", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "".join(CHAT_WORDS)
    with c.responses.stream(model="r", input="hi") as events:
        response = events.get_final_response()
    assert response.output_text == "".join(RESPONSES_WORDS)
    chat_span, responses_span = sdk.spans()
    assert span_attrs(chat_span)[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert span_attrs(chat_span)[semconv.WL_ITL_COUNT] == len(CHAT_WORDS) + 1
    assert span_attrs(responses_span)[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 20
    assert span_attrs(responses_span)[semconv.WL_ITL_COUNT] == len(RESPONSES_WORDS) - 1
