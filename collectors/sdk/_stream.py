"""``wattledger.track_stream``: time a stream of chunks without touching them.

The wrapper is a generator (async generator for async iterators), the cheapest way to observe
each chunk in Python: per chunk it reads the clock, appends one gap and remembers the chunk.
Usage, response model and finish reasons are read once, from the last two chunks, when the
stream ends. A :class:`TrackedStream` proxy around the generator keeps the wrapped object's
other attributes (``close()``, ``response``, context-manager use) available.

The span ends when the stream is exhausted, raises, or is closed; a stream abandoned before
its first chunk ends its span when it is garbage-collected.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from wattledger.collectors import semconv
from wattledger.collectors.sdk._track import Tracked, track
from wattledger.collectors.sdk._usage import record_last_chunks

logger = logging.getLogger(__name__)

Finalize = Callable[[Tracked, Any, Any], None]


def _end(
    handle: Tracked,
    prev: Any,
    last: Any,
    finalize: Finalize,
    own: bool,
    exc: BaseException | None,
    closed_early: bool,
) -> None:
    try:
        finalize(handle, prev, last)
        if closed_early:
            handle.set(semconv.WL_STREAM_CLOSED_EARLY, True)
    except Exception:
        logger.debug("wattledger: reading the end of a stream failed", exc_info=True)
    if own:
        handle._finish(exc)


def _close_source(inner: Any) -> None:
    close = getattr(inner, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            logger.debug("wattledger: closing the wrapped stream failed", exc_info=True)


async def _aclose_source(inner: Any) -> None:
    close = getattr(inner, "aclose", None) or getattr(inner, "close", None)
    if close is not None:
        try:
            result = close()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.debug("wattledger: closing the wrapped stream failed", exc_info=True)


def _iterate(
    inner: Any,
    handle: Tracked,
    own: bool,
    token_chunk: Callable[[Any], bool] | None,
    finalize: Finalize,
    started: list[bool],
) -> Generator[Any, None, None]:
    # The hot loop: one clock read and one append per chunk; everything else at the end.
    started[0] = True
    clock = handle._clock
    mark = handle._times.append
    prev = last = None
    exc: BaseException | None = None
    closed_early = False
    try:
        if token_chunk is None:
            for chunk in inner:
                mark(clock())
                prev = last
                last = chunk
                yield chunk
        else:
            for chunk in inner:
                now = clock()
                if token_chunk(chunk):
                    mark(now)
                prev = last
                last = chunk
                yield chunk
    except GeneratorExit:
        closed_early = True
        _close_source(inner)
        raise
    except BaseException as e:
        exc = e
        raise
    finally:
        _end(handle, prev, last, finalize, own, exc, closed_early)


async def _aiterate(
    inner: Any,
    handle: Tracked,
    own: bool,
    token_chunk: Callable[[Any], bool] | None,
    finalize: Finalize,
    started: list[bool],
) -> AsyncGenerator[Any, None]:
    started[0] = True
    clock = handle._clock
    mark = handle._times.append
    prev = last = None
    exc: BaseException | None = None
    closed_early = False
    try:
        async for chunk in inner:
            now = clock()
            if token_chunk is None or token_chunk(chunk):
                mark(now)
            prev = last
            last = chunk
            yield chunk
    except GeneratorExit:
        closed_early = True
        await _aclose_source(inner)
        raise
    except BaseException as e:
        exc = e
        raise
    finally:
        _end(handle, prev, last, finalize, own, exc, closed_early)


def _finish_if_unstarted(handle: Tracked, started: list[bool]) -> None:
    # Runs when the generator is collected, before its own ``finally``; a started one ends
    # the span there, with what it saw.
    if not started[0]:
        handle._finish(None)


class TrackedStream:
    """A sync stream that records each chunk on a tracked request and passes it through.

    Iterate it, use it as a context manager, or call ``close()``; any other attribute is the
    wrapped stream's (e.g. ``response`` on an ``openai.Stream``).
    """

    __slots__ = ("_inner", "_gen", "_handle", "_own", "_started", "__weakref__")

    def __init__(
        self,
        inner: Any,
        handle: Tracked,
        own: bool,
        token_chunk: Callable[[Any], bool] | None,
        finalize: Finalize,
        chunks: Any = None,
    ) -> None:
        self._inner = inner
        self._handle = handle
        self._own = own
        self._started = [False]
        source = inner if chunks is None else chunks
        self._gen = _iterate(source, handle, own, token_chunk, finalize, self._started)

    def __iter__(self) -> Iterator[Any]:
        return self._gen

    def __next__(self) -> Any:
        return next(self._gen)

    def close(self) -> None:
        """Stop early: closes the wrapped stream and ends the span."""
        if self._started[0]:
            self._gen.close()
        else:
            self._gen.close()
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
            if self._own:
                self._handle.set(semconv.WL_STREAM_CLOSED_EARLY, True)
                self._handle._finish(None)

    def __enter__(self) -> TrackedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __del__(self) -> None:
        # ``for c in track_stream(x)`` drops this proxy before the first chunk: hand the
        # unstarted generator a finalizer instead of ending the span now.
        try:
            if self._own and not self._started[0] and self._handle._state == 1:
                weakref.finalize(self._gen, _finish_if_unstarted, self._handle, self._started)
        except Exception:
            pass


class AsyncTrackedStream:
    """The async counterpart of :class:`TrackedStream` (``async for``, ``async with``)."""

    __slots__ = ("_inner", "_gen", "_handle", "_own", "_started", "__weakref__")

    def __init__(
        self,
        inner: Any,
        handle: Tracked,
        own: bool,
        token_chunk: Callable[[Any], bool] | None,
        finalize: Finalize,
        chunks: Any = None,
    ) -> None:
        self._inner = inner
        self._handle = handle
        self._own = own
        self._started = [False]
        source = inner if chunks is None else chunks
        self._gen = _aiterate(source, handle, own, token_chunk, finalize, self._started)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._gen

    async def __anext__(self) -> Any:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop early: closes the wrapped stream and ends the span."""
        started = self._started[0]
        await self._gen.aclose()
        if not started:
            close = getattr(self._inner, "aclose", None) or getattr(self._inner, "close", None)
            if close is not None:
                result = close()
                if hasattr(result, "__await__"):
                    await result
            if self._own:
                self._handle.set(semconv.WL_STREAM_CLOSED_EARLY, True)
                self._handle._finish(None)

    close = aclose

    async def __aenter__(self) -> AsyncTrackedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __del__(self) -> None:
        try:
            if self._own and not self._started[0] and self._handle._state == 1:
                weakref.finalize(self._gen, _finish_if_unstarted, self._handle, self._started)
        except Exception:
            pass


def wrap(
    inner: Any,
    handle: Tracked,
    *,
    own: bool,
    token_chunk: Callable[[Any], bool] | None = None,
    finalize: Finalize = record_last_chunks,
    chunks: Any = None,
) -> TrackedStream | AsyncTrackedStream:
    """Wrap ``inner`` (sync or async iterable) so its chunks are recorded on ``handle``.

    Args:
        inner: The stream; its other attributes stay reachable through the wrapper.
        handle: A started request handle.
        own: End the handle's span when the stream ends (False: the caller's ``with`` does).
        token_chunk: Which chunks carry output (TTFT and gaps count only those); None: all.
        finalize: Reads usage etc. from the last two chunks at the end.
        chunks: Iterate this instead of ``inner`` (a filtered view of it).
    """
    source = inner if chunks is None else chunks
    if hasattr(source, "__aiter__"):
        return AsyncTrackedStream(inner, handle, own, token_chunk, finalize, chunks)
    return TrackedStream(inner, handle, own, token_chunk, finalize, chunks)


def wrap_owned(inner: Any, handle: Tracked) -> TrackedStream | AsyncTrackedStream:
    """Wrap a generator returned by a ``@track``-decorated generator function."""
    return wrap(inner, handle, own=True)


def track_stream(
    stream: Any,
    model: str | None = None,
    provider: str | None = None,
    *,
    token_chunk: Callable[[Any], bool] | None = None,
    **track_kwargs: Any,
) -> TrackedStream | AsyncTrackedStream:
    """Track a streamed LLM response: ``for chunk in track_stream(stream, model=...)``.

    Starts a request span now (call it when you issue the request: TTFT is measured from
    here), records the time of each chunk, and ends the span when the stream is exhausted,
    raises (the error is recorded) or is closed. Chunks pass through unchanged.

    Recorded: ``gen_ai.request.stream``, TTFT (``gen_ai.response.time_to_first_chunk`` and
    ``wattledger.ttft_s``), inter-chunk gaps (``wattledger.itl.count/mean_s/p50_s/p95_s/
    max_s``), and, where the last chunks carry them, usage, response model, id and finish
    reasons.

    Args:
        stream: A sync or async iterable of chunks.
        model: Requested model.
        provider: Who serves it.
        token_chunk: Predicate choosing the chunks that carry output tokens (default: every
            chunk); TTFT and gaps count only those.
        **track_kwargs: Anything :func:`wattledger.track` accepts (``workload``, ``device``, …).

    Returns:
        A wrapper to iterate instead of ``stream``.
    """
    handle = track(model, provider, stream=True, **track_kwargs)._start(attach=False)
    return wrap(stream, handle, own=True, token_chunk=token_chunk)
