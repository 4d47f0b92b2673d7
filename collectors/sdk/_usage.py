"""Read usage, model and finish reasons from responses and stream chunks, whatever their shape.

Understands the OpenAI-compatible shapes as objects (the ``openai`` package's models) or plain
dicts (raw JSON): Chat Completions (``prompt_tokens``/``completion_tokens``, usage on the last
chunk when ``stream_options.include_usage`` is set, Groq's ``x_groq.usage``) and Responses
(``input_tokens``/``output_tokens``, usage on the ``response.completed`` event). Anything else
is left alone: unknown stays unset.
"""

from __future__ import annotations

from typing import Any

from wattledger.collectors.sdk._track import Tracked

#: Terminal Responses-API stream events; each carries the whole ``response`` object.
RESPONSE_TERMINAL_EVENTS = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)


def get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` or None; never raises."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_usage(handle: Tracked, usage: Any) -> bool:
    """Record a usage object on ``handle``. Returns True if it held any token count."""
    input_tokens = _int(get(usage, "input_tokens"))
    if input_tokens is None:
        input_tokens = _int(get(usage, "prompt_tokens"))
    output_tokens = _int(get(usage, "output_tokens"))
    if output_tokens is None:
        output_tokens = _int(get(usage, "completion_tokens"))
    in_details = get(usage, "input_tokens_details") or get(usage, "prompt_tokens_details")
    out_details = get(usage, "output_tokens_details") or get(usage, "completion_tokens_details")
    cached = _int(get(in_details, "cached_tokens"))
    cache_write = _int(get(usage, "cache_creation_input_tokens"))
    anthropic_read = _int(get(usage, "cache_read_input_tokens"))
    if cached is None and (anthropic_read is not None or cache_write is not None):
        # Anthropic-shaped usage counts cache reads and writes outside input_tokens; the
        # conventions count them within gen_ai.usage.input_tokens.
        cached = anthropic_read
        if input_tokens is not None:
            input_tokens += (anthropic_read or 0) + (cache_write or 0)
    reasoning = _int(get(out_details, "reasoning_tokens"))
    if input_tokens is None and output_tokens is None:
        return False
    handle.usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached,
        reasoning_output_tokens=reasoning,
        cache_write_input_tokens=cache_write,
    )
    return True


def chunk_usage(chunk: Any) -> Any:
    """The usage a chunk carries (Chat ``usage``, Groq ``x_groq.usage``), or None."""
    usage = get(chunk, "usage")
    if usage is None:
        usage = get(get(chunk, "x_groq"), "usage")
    return usage


def record_response(handle: Tracked, response: Any) -> None:
    """Record usage, response model, id and finish reasons of a whole (non-streamed) response."""
    usage = get(response, "usage")
    if usage is not None:
        record_usage(handle, usage)
    choices = get(response, "choices")
    reasons = None
    if isinstance(choices, list):
        reasons = [r for c in choices if isinstance(r := get(c, "finish_reason"), str)]
    elif (details := get(response, "incomplete_details")) is not None:
        reason = get(details, "reason")
        reasons = [reason] if isinstance(reason, str) else None
    model = get(response, "model")
    rid = get(response, "id")
    handle.response(
        model=model if isinstance(model, str) else None,
        id=rid if isinstance(rid, str) else None,
        finish_reasons=reasons,
    )
    error = get(response, "error")
    if get(response, "status") == "failed" and error is not None:
        code = get(error, "code")
        handle.error(code if isinstance(code, str) and code else "response.failed")


def record_last_chunks(handle: Tracked, prev: Any, last: Any) -> None:
    """End-of-stream bookkeeping from the last two chunks (usage and finish come last).

    Chat streams end with ``[finish chunk, usage chunk]``; Responses streams end with a
    terminal event holding the whole response.
    """
    for chunk in (last, prev):
        if chunk is None:
            continue
        if get(chunk, "type") in RESPONSE_TERMINAL_EVENTS:
            record_response(handle, get(chunk, "response"))
            return
    have_usage = False
    for chunk in (last, prev):
        usage = chunk_usage(chunk) if chunk is not None else None
        if usage is not None and record_usage(handle, usage):
            have_usage = True
            break
    if not have_usage and last is None:
        return
    model = get(last, "model") or get(prev, "model")
    rid = get(last, "id") or get(prev, "id")
    reasons: list[str] = []
    for chunk in (prev, last):
        choices = get(chunk, "choices") if chunk is not None else None
        if isinstance(choices, list):
            reasons += [r for c in choices if isinstance(r := get(c, "finish_reason"), str)]
    handle.response(
        model=model if isinstance(model, str) else None,
        id=rid if isinstance(rid, str) else None,
        finish_reasons=reasons or None,
    )
