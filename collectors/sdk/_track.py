"""``wattledger.track``: one LLM request as one OpenTelemetry GenAI client span.

A :class:`Tracked` handle is a context manager (sync and async) and a decorator (functions,
coroutines, generators and async generators). While it is open it records the first token,
token chunks, usage, errors and extra attributes; when it closes it ends the span with the
GenAI attributes (``gen_ai.*``) and wattledger's own (``wattledger.*``; see
docs/semantic-conventions.md).

Durations come from the monotonic clock in ``_state.STATE.clock_ns``: TTFT is measured from
the span's start, inter-token gaps between successive chunks, and the span's end time is its
start plus the monotonic elapsed time, so wall-clock jumps never skew them. Nothing here raises
into the host: a failure inside the SDK is logged at DEBUG and the request goes on.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from itertools import pairwise
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from wattledger.collectors import semconv
from wattledger.collectors.sdk import _state

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
_CURRENT: ContextVar[Tracked | None] = ContextVar("wattledger_tracked", default=None)
_CLIENT = SpanKind.CLIENT
_time_ns = time.time_ns
_set_span_in_context = trace.set_span_in_context
_attach = otel_context.attach
_detach = otel_context.detach
_TTFC = semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
_TTFT = semconv.WL_TTFT_S
_OUT = semconv.GEN_AI_USAGE_OUTPUT_TOKENS
_OPERATION = semconv.GEN_AI_OPERATION_NAME
_PROVIDER = semconv.GEN_AI_PROVIDER_NAME
_REQUEST_MODEL = semconv.GEN_AI_REQUEST_MODEL
_STREAM = semconv.GEN_AI_REQUEST_STREAM
_WORKLOAD = semconv.WL_WORKLOAD
_DEVICE = semconv.WL_DEVICE_ID
_QUANTIZATION = semconv.WL_QUANTIZATION


def error_type(exc: BaseException) -> str:
    """Low-cardinality ``error.type`` for an exception: its class name (OTel Python practice)."""
    return type(exc).__qualname__


def quantile(sorted_values: list[int], q: float) -> float:
    """Linear-interpolation quantile (NumPy's default) of an ascending, non-empty list."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def itl_attributes(gaps_ns: list[int]) -> dict[str, Any]:
    """``wattledger.itl.*`` statistics in seconds of a non-empty list of gaps in nanoseconds."""
    s = sorted(gaps_ns)
    return {
        semconv.WL_ITL_COUNT: len(s),
        semconv.WL_ITL_MEAN_S: sum(s) / len(s) / 1e9,
        semconv.WL_ITL_P50_S: quantile(s, 0.5) / 1e9,
        semconv.WL_ITL_P95_S: quantile(s, 0.95) / 1e9,
        semconv.WL_ITL_MAX_S: s[-1] / 1e9,
    }


def _is_content(key: str) -> bool:
    return key.startswith(semconv.CONTENT_ATTRIBUTE_PREFIXES)


class Tracked:
    """The handle of one tracked LLM request (returned by :func:`track`).

    Use it once as ``with``/``async with``, or as a decorator (each call gets a fresh handle;
    inside, :func:`current` returns it). All recording methods are cheap, thread-compatible
    per request, and never raise.
    """

    __slots__ = (
        "_name",
        "_attrs",
        "_span",
        "_recording",
        "_ctx_token",
        "_cur_token",
        "_t0",
        "_wall0",
        "_clock",
        "_times",
        "_counted",
        "_end_attrs",
        "_error",
        "_state",
    )

    def __init__(self, name: str, attrs: dict[str, Any]) -> None:
        self._name = name
        self._attrs = attrs
        self._span: trace.Span | None = None
        self._recording = False
        self._ctx_token: object = None
        self._cur_token: Token[Tracked | None] | None = None
        self._times: list[int] = []  # clock reading at each output chunk
        self._counted = 0
        self._end_attrs: dict[str, Any] = {}
        self._error: str | None = None
        self._state = 0  # 0 new, 1 started, 2 ended
        self._clock = _state.STATE.clock_ns
        self._t0 = self._wall0 = 0

    # -- lifecycle --------------------------------------------------------------------------
    def _spawn(self) -> Tracked:
        return Tracked(self._name, self._attrs)

    def _start(self, attach: bool = True) -> Tracked:
        if self._state:
            logger.warning("wattledger: a track() handle was started twice; use a new one")
            return self
        self._state = 1
        st = _state.STATE
        try:
            self._clock = clock = st.clock_ns
            self._wall0 = wall0 = _time_ns()
            self._t0 = clock()
            attrs = {**st.defaults, **self._attrs} if st.defaults else self._attrs
            span = st.tracer.start_span(
                self._name, kind=_CLIENT, attributes=attrs, start_time=wall0
            )
            self._span = span
            self._recording = span.is_recording()
            if attach:
                self._ctx_token = _attach(_set_span_in_context(span))
                self._cur_token = _CURRENT.set(self)
        except Exception:
            logger.debug("wattledger: could not start a span", exc_info=True)
            self._recording = False
        return self

    def _detach(self) -> None:
        """Leave the span open but stop it being the current span (streams outlive a call)."""
        try:
            if self._cur_token is not None:
                _CURRENT.reset(self._cur_token)
                self._cur_token = None
            if self._ctx_token is not None:
                _detach(self._ctx_token)  # type: ignore[arg-type]
                self._ctx_token = None
        except Exception:
            logger.debug("wattledger: could not detach the span context", exc_info=True)

    def _finish(self, exc: BaseException | None = None) -> None:
        if self._state != 1:
            return
        self._state = 2
        self._detach()
        if not self._recording:
            return
        try:
            now = self._clock()
            span = self._span
            attrs = self._end_attrs
            times = self._times
            if times:
                attrs[_TTFC] = attrs[_TTFT] = (times[0] - self._t0) / 1e9
                if len(times) > 1:
                    attrs.update(itl_attributes([b - a for a, b in pairwise(times)]))
            if self._counted and _OUT not in attrs:
                attrs[_OUT] = self._counted
            if exc is not None and self._error is None:
                self._error = error_type(exc)
            if self._error is not None:
                attrs[semconv.ERROR_TYPE] = self._error
            if attrs:
                span.set_attributes(attrs)  # type: ignore[union-attr]
            if self._error is not None:
                span.set_status(Status(StatusCode.ERROR, self._error))  # type: ignore[union-attr]
            duration_ns = now - self._t0
            span.end(end_time=self._wall0 + duration_ns)  # type: ignore[union-attr]
            instruments = _state.STATE.instruments
            if instruments is not None:
                instruments.record(self._attrs, attrs, duration_ns / 1e9)
        except Exception:
            logger.debug("wattledger: could not end a span", exc_info=True)

    def __enter__(self) -> Tracked:
        return self._start()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._finish(exc)

    async def __aenter__(self) -> Tracked:
        return self._start()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._finish(exc)

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` so every call is one tracked request (a fresh handle each call)."""
        template = self
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            from wattledger.collectors.sdk._stream import wrap_owned

            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                return wrap_owned(fn(*args, **kwargs), template._spawn()._start(attach=False))

            return gen_wrapper  # type: ignore[return-value]
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with template._spawn():
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with template._spawn():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    # -- recording --------------------------------------------------------------------------
    def first_token(self) -> None:
        """The first token (or chunk) arrived now: records TTFT once; later calls do nothing."""
        if not self._times:
            try:
                self._times.append(self._clock())
            except Exception:
                logger.debug("wattledger: first_token failed", exc_info=True)

    def tokens(self, n: int = 1) -> None:
        """A chunk of ``n`` output tokens arrived now.

        The first chunk sets TTFT (unless :meth:`first_token` did); every later one adds the
        gap since the previous chunk to the inter-token statistics. The sum of ``n`` is the
        output token count unless :meth:`usage` reports one.
        """
        try:
            self._times.append(self._clock())
            self._counted += n
        except Exception:
            logger.debug("wattledger: tokens() failed", exc_info=True)

    def usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        *,
        reasoning_output_tokens: int | None = None,
        cache_write_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
    ) -> None:
        """Token usage as reported by the server; unknown counts stay unset, never 0.

        Args:
            input_tokens: All input tokens, cached ones included.
            output_tokens: Output tokens (billable, reasoning included).
            cached_input_tokens: Input tokens served from the prompt cache (a subset).
            reasoning_output_tokens: Reasoning tokens (a subset of output).
            cache_write_input_tokens: Input tokens written to the provider's cache (a subset;
                ``gen_ai.usage.cache_write.input_tokens``).
            cache_creation_input_tokens: The same under Anthropic's name (deprecated alias).
        """
        attrs = self._end_attrs
        if input_tokens is not None:
            attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        if output_tokens is not None:
            attrs[_OUT] = output_tokens
        if cached_input_tokens is not None:
            attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached_input_tokens
        if reasoning_output_tokens is not None:
            attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning_output_tokens
        if cache_write_input_tokens is None:
            cache_write_input_tokens = cache_creation_input_tokens
        if cache_write_input_tokens is not None:
            attrs[semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = cache_write_input_tokens

    def response(
        self,
        model: str | None = None,
        id: str | None = None,  # noqa: A002 - the GenAI attribute is gen_ai.response.id
        finish_reasons: Iterable[str] | None = None,
    ) -> None:
        """What the server answered with: the model that served it, response id, finish reasons."""
        attrs = self._end_attrs
        if model:
            attrs[semconv.GEN_AI_RESPONSE_MODEL] = model
        if id:
            attrs[semconv.GEN_AI_RESPONSE_ID] = id
        if finish_reasons is not None:
            reasons = [r for r in finish_reasons if isinstance(r, str)]
            if reasons:
                attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = reasons

    def error(self, error: BaseException | str) -> None:
        """Mark the request failed: span status ERROR and ``error.type``.

        Args:
            error: The exception, or a low-cardinality type such as ``"timeout"`` or ``"429"``.
        """
        self._error = error if isinstance(error, str) else error_type(error)

    def set(self, key: str, value: Any) -> None:
        """Add one span attribute. Message content (``gen_ai.prompt``, …) is refused."""
        if _is_content(key):
            logger.debug("wattledger: refusing message-content attribute %s", key)
            return
        if value is not None:
            self._end_attrs[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Add several span attributes (see :meth:`set`)."""
        for key, value in attributes.items():
            self.set(key, value)

    def stream(self, chunks: Any, *, token_chunk: Callable[[Any], bool] | None = None) -> Any:
        """Wrap an iterator of chunks so each chunk is recorded on this request.

        The span stays open until this handle closes. See :func:`wattledger.track_stream`.
        """
        from wattledger.collectors.sdk._stream import wrap

        return wrap(chunks, self, own=False, token_chunk=token_chunk)

    # -- reading ----------------------------------------------------------------------------
    @property
    def span(self) -> trace.Span | None:
        """The OpenTelemetry span (None before the request starts)."""
        return self._span

    @property
    def ttft_s(self) -> float | None:
        """Seconds from start to the first token, or None if none was seen."""
        return (self._times[0] - self._t0) / 1e9 if self._times else None


def current() -> Tracked | None:
    """The handle of the innermost tracked request in this context, or None."""
    return _CURRENT.get()


def track(
    model: str | None = None,
    provider: str | None = None,
    workload: str | None = None,
    device: str | None = None,
    quantization: str | None = None,
    operation: str = "chat",
    *,
    stream: bool | None = None,
    team: str | None = None,
    tenant: str | None = None,
    batch_size: int | None = None,
    lora_adapter: str | None = None,
    tensor_parallel_size: int | None = None,
    speculative_decoding: str | None = None,
    quality_score: float | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Tracked:
    """Track one LLM request: ``with track(model="llama-3.1-8b") as t: ...``.

    Also an async context manager and a decorator. The span is a CLIENT span named
    ``"{operation} {model}"``; unset arguments are simply not recorded.

    Args:
        model: Requested model (``gen_ai.request.model``).
        provider: Who serves it (``gen_ai.provider.name``): ``openai``, ``groq``, ``vllm``, …
        workload: Workload class (``wattledger.workload``), e.g. ``chat``, ``code-assist``.
        device: Serving device id (``wattledger.device.id``; the collector's ``hw.id``).
        quantization: Weights format (``wattledger.quantization``): ``bf16``, ``fp8``, …
        operation: GenAI operation (``gen_ai.operation.name``): ``chat``, ``embeddings``, …
        stream: True for a streamed response (``gen_ai.request.stream``).
        team: Owning team (``wattledger.team``).
        tenant: Customer or tenant (``wattledger.tenant``).
        batch_size: Running batch size when known (``wattledger.batch_size``).
        lora_adapter: LoRA adapter name (``wattledger.lora_adapter``).
        tensor_parallel_size: Tensor-parallel degree (``wattledger.tensor_parallel_size``).
        speculative_decoding: Speculative-decoding method (``wattledger.speculative_decoding``).
        quality_score: Quality in 0..1 (``wattledger.quality_score``).
        server_address: Server host (``server.address``).
        server_port: Server port (``server.port``).
        attributes: Any further span attributes (message content is refused).

    Returns:
        The request handle.
    """
    # Plain ifs, not a loop over pairs: this runs on every request.
    attrs: dict[str, Any] = {_OPERATION: operation}
    if provider is not None:
        attrs[_PROVIDER] = provider
    if model is not None:
        attrs[_REQUEST_MODEL] = model
    if stream:
        attrs[_STREAM] = True
    if workload is not None:
        attrs[_WORKLOAD] = workload
    if device is not None:
        attrs[_DEVICE] = device
    if quantization is not None:
        attrs[_QUANTIZATION] = quantization
    if team is not None:
        attrs[semconv.WL_TEAM] = team
    if tenant is not None:
        attrs[semconv.WL_TENANT] = tenant
    if batch_size is not None:
        attrs[semconv.WL_BATCH_SIZE] = batch_size
    if lora_adapter is not None:
        attrs[semconv.WL_LORA_ADAPTER] = lora_adapter
    if tensor_parallel_size is not None:
        attrs[semconv.WL_TENSOR_PARALLEL_SIZE] = tensor_parallel_size
    if speculative_decoding is not None:
        attrs[semconv.WL_SPECULATIVE_DECODING] = speculative_decoding
    if quality_score is not None:
        attrs[semconv.WL_QUALITY_SCORE] = quality_score
    if server_address is not None:
        attrs[semconv.SERVER_ADDRESS] = server_address
    if server_port is not None:
        attrs[semconv.SERVER_PORT] = server_port
    if attributes:
        for key, value in attributes.items():
            if value is not None and not _is_content(key):
                attrs[key] = value
    return Tracked(f"{operation} {model}" if model else operation, attrs)
