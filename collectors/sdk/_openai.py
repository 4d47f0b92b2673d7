"""``wattledger.instrument_openai``: track every request an ``openai`` client makes.

Patches one client instance (sync ``OpenAI`` or ``AsyncOpenAI``, and the copies it makes with
``with_options``/``copy``), never the ``openai`` classes, so other clients in the process are
untouched. Covered: ``chat.completions.create`` and ``responses.create``, streamed or not,
against any OpenAI-compatible server.

- The provider comes from the client's host (``api.groq.com`` → ``groq``, see
  :data:`wattledger.collectors.semconv.PROVIDER_HOSTS`). For other hosts the ``provider=``
  given here is used, else the host name; for localhost and loopback the ``provider=`` given
  (default ``openai``).
- Usage is read from the response, or for streams from the final chunk: chat streams are asked
  for it (``stream_options.include_usage``) unless the caller set that option, and the extra
  usage-only chunk this adds is consumed here, so the caller sees exactly the chunks it would
  have seen without instrumentation.
- TTFT runs from the request being issued to the first chunk carrying output (a chat chunk
  with choices; a Responses ``*.delta`` event); gaps are between such chunks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from wattledger.collectors import semconv
from wattledger.collectors.sdk._stream import wrap
from wattledger.collectors.sdk._track import Tracked, track
from wattledger.collectors.sdk._usage import get, record_response, record_usage

logger = logging.getLogger(__name__)

_MARK = "_wattledger_instrumented"
_RAW_HEADER = "x-stainless-raw-response"
_MAX_TOKENS_ARGS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def _chat_token_chunk(chunk: Any) -> bool:
    return bool(getattr(chunk, "choices", None))


def _responses_token_chunk(event: Any) -> bool:
    kind = getattr(event, "type", None)
    return isinstance(kind, str) and kind.endswith(".delta")


class _Options:
    __slots__ = ("provider", "include_usage", "track_kwargs")

    def __init__(self, provider: str | None, include_usage: bool, track_kwargs: dict[str, Any]):
        self.provider = provider
        self.include_usage = include_usage
        self.track_kwargs = track_kwargs


def instrument_openai(
    client: Any,
    *,
    provider: str | None = None,
    include_usage: bool = True,
    **track_kwargs: Any,
) -> Any:
    """Track every chat completion and response ``client`` creates, streamed or not.

    Args:
        client: An ``openai.OpenAI`` or ``openai.AsyncOpenAI`` (or Azure) client.
        provider: Provider name for a local or unknown server (e.g. ``vllm``); hosted
            providers are recognised from the base URL's host.
        include_usage: Ask chat streams for usage (``stream_options.include_usage``); turn off
            for a server that rejects the option.
        **track_kwargs: Defaults for every request, as for :func:`wattledger.track`
            (``workload``, ``device``, ``quantization``, ``team``, ``attributes``, …).

    Returns:
        The same client, instrumented (idempotent).
    """
    try:
        import openai
    except ImportError:
        logger.warning("wattledger.instrument_openai: the openai package is not installed")
        return client
    try:
        if getattr(client, _MARK, False):
            return client
        is_async = isinstance(client, openai.AsyncOpenAI)
        opts = _Options(provider, include_usage, dict(track_kwargs))
        make = _make_async if is_async else _make_sync
        chat = client.chat.completions
        chat.create = make(chat.create, "chat", client, opts)
        responses = client.responses
        responses.create = make(responses.create, "responses", client, opts)
        for name in ("copy", "with_options"):
            setattr(
                client, name, _copying(getattr(client, name), provider, include_usage, track_kwargs)
            )
        setattr(client, _MARK, True)
    except Exception:
        logger.warning(
            "wattledger.instrument_openai could not instrument %s; its requests are not tracked.",
            type(client).__name__,
            exc_info=True,
        )
    return client


def _copying(
    original: Any, provider: str | None, include_usage: bool, track_kwargs: dict[str, Any]
) -> Any:
    @functools.wraps(original)
    def copy(*args: Any, **kwargs: Any) -> Any:
        return instrument_openai(
            original(*args, **kwargs),
            provider=provider,
            include_usage=include_usage,
            **track_kwargs,
        )

    return copy


def _provider(host: str | None, given: str | None) -> str:
    """A known provider's host wins; else the ``provider=`` given; else the host; else openai.

    ``provider_from_host`` names an unknown host by itself; an explicit ``provider="vllm"``
    for ``vllm.internal`` says more than that, so it is preferred to the host name.
    """
    derived = semconv.provider_from_host(host)
    if derived is not None and host is not None and derived != host.lower().strip().rstrip("."):
        return derived
    return given or derived or "openai"


def _begin(
    kind: str, client: Any, opts: _Options, kwargs: dict[str, Any]
) -> tuple[Tracked | None, dict[str, Any], bool]:
    """Start the span; maybe ask for stream usage. Returns (handle, kwargs to send, injected)."""
    try:
        import openai

        url = client.base_url
        host = url.host or None
        port = url.port or (443 if url.scheme == "https" else 80)
        provider = _provider(host, opts.provider)
        model = kwargs.get("model")
        stream = kwargs.get("stream") is True
        handle = track(
            model if isinstance(model, str) else None,
            provider,
            stream=stream,
            server_address=host,
            server_port=port,
            **opts.track_kwargs,
        )
        for arg in _MAX_TOKENS_ARGS:
            if isinstance(value := kwargs.get(arg), int):
                handle._attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] = value
                break
        injected = False
        headers = kwargs.get("extra_headers") or {}
        raw = any(str(k).lower() == _RAW_HEADER for k in headers)
        if kind == "chat" and stream and opts.include_usage and not raw:
            options = kwargs.get("stream_options")
            if options is None or isinstance(options, openai.Omit | openai.NotGiven):
                kwargs = {**kwargs, "stream_options": {"include_usage": True}}
                injected = True
            elif isinstance(options, dict) and "include_usage" not in options:
                kwargs = {**kwargs, "stream_options": {**options, "include_usage": True}}
                injected = True
        handle._start(attach=True)
        return handle, kwargs, injected
    except Exception:
        logger.debug("wattledger: could not start tracking an openai request", exc_info=True)
        return None, kwargs, False


def _hide_usage_chunk(stream: Any, handle: Tracked) -> Iterator[Any]:
    """Pass chat chunks through, minus the usage-only chunk wattledger asked for."""
    try:
        for chunk in stream:
            if not getattr(chunk, "choices", None) and (u := get(chunk, "usage")) is not None:
                record_usage(handle, u)
                continue
            yield chunk
    finally:
        stream.close()


async def _ahide_usage_chunk(stream: Any, handle: Tracked) -> AsyncIterator[Any]:
    try:
        async for chunk in stream:
            if not getattr(chunk, "choices", None) and (u := get(chunk, "usage")) is not None:
                record_usage(handle, u)
                continue
            yield chunk
    finally:
        await stream.close()


def _complete(kind: str, handle: Tracked, result: Any, injected: bool) -> Any:
    """Record a non-streamed result, or wrap a stream; returns what the caller gets."""
    try:
        import openai

        token_chunk = _chat_token_chunk if kind == "chat" else _responses_token_chunk
        if isinstance(result, openai.Stream):
            handle._detach()
            hidden = _hide_usage_chunk(result, handle) if injected else None
            return wrap(result, handle, own=True, token_chunk=token_chunk, chunks=hidden)
        if isinstance(result, openai.AsyncStream):
            handle._detach()
            ahidden = _ahide_usage_chunk(result, handle) if injected else None
            return wrap(result, handle, own=True, token_chunk=token_chunk, chunks=ahidden)
        record_response(handle, result)
    except Exception:
        logger.debug("wattledger: could not read an openai response", exc_info=True)
    handle._finish(None)
    return result


def _make_sync(original: Any, kind: str, client: Any, opts: _Options) -> Any:
    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        handle, kwargs, injected = _begin(kind, client, opts, kwargs)
        if handle is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            handle._finish(exc)
            raise
        return _complete(kind, handle, result, injected)

    create.__wrapped_by_wattledger__ = original  # type: ignore[attr-defined]
    return create


def _make_async(original: Any, kind: str, client: Any, opts: _Options) -> Any:
    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        handle, kwargs, injected = _begin(kind, client, opts, kwargs)
        if handle is None:
            return await original(*args, **kwargs)
        try:
            result = await original(*args, **kwargs)
        except BaseException as exc:
            handle._finish(exc)
            raise
        return _complete(kind, handle, result, injected)

    create.__wrapped_by_wattledger__ = original  # type: ignore[attr-defined]
    return create
