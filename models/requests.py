"""Inference requests: one row per LLM request span."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from wattledger.models.base import Base, time_index, utcnow


class InferenceRequest(Base):
    """One LLM request as its span reported it.

    Times are UTC; durations in seconds (``_s``); tokens are counts. ``device_id`` is null for
    hosted APIs. Nullable numbers are unknown, never zero-by-default: a stream without a
    first-token time has ``ttft_s`` NULL.
    """

    __tablename__ = "inference_requests"
    __table_args__ = (
        CheckConstraint("input_tokens >= 0", name="input_tokens_nonnegative"),
        CheckConstraint("output_tokens >= 0", name="output_tokens_nonnegative"),
        CheckConstraint("cached_input_tokens >= 0", name="cached_tokens_nonnegative"),
        CheckConstraint("end_ts >= start_ts", name="end_after_start"),
        CheckConstraint("ttft_s IS NULL OR ttft_s >= 0", name="ttft_nonnegative"),
        CheckConstraint("status IN ('ok', 'error')", name="status_known"),
        time_index("start_ts"),
        time_index("device_id", "start_ts"),
    )

    trace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """W3C trace id, 32 lowercase hex characters."""
    span_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    """Span id, 16 lowercase hex characters."""
    tenant: Mapped[str] = mapped_column(String(100), default="default")
    """Stamped from the API key that sent it."""
    team: Mapped[str | None] = mapped_column(String(100))
    service: Mapped[str] = mapped_column(String(200))
    workload: Mapped[str | None] = mapped_column(String(100))
    """Workload class, e.g. ``chat``, ``code-assist``, ``batch-summarize``."""
    operation: Mapped[str] = mapped_column(String(50), default="chat")
    provider: Mapped[str] = mapped_column(String(100))
    """The real serving provider (``openai``, ``groq``, ``vllm``…), not just the client library."""
    llm_model: Mapped[str] = mapped_column(String(200))
    """Response model, else request model."""
    request_model: Mapped[str | None] = mapped_column(String(200))
    quantization: Mapped[str | None] = mapped_column(String(30))
    lora_adapter: Mapped[str | None] = mapped_column(String(200))
    tensor_parallel_size: Mapped[int | None]
    speculative_decoding: Mapped[str | None] = mapped_column(String(100))
    device_id: Mapped[str | None] = mapped_column(String(200), ForeignKey("devices.device_id"))
    node: Mapped[str | None] = mapped_column(String(200))
    start_ts: Mapped[dt.datetime]
    first_token_ts: Mapped[dt.datetime | None]
    end_ts: Mapped[dt.datetime]
    duration_s: Mapped[float]
    ttft_s: Mapped[float | None]
    """Time to first token, seconds."""
    itl_mean_s: Mapped[float | None]
    """Mean inter-token latency within the request, seconds."""
    itl_p50_s: Mapped[float | None]
    itl_p95_s: Mapped[float | None]
    itl_max_s: Mapped[float | None]
    itl_count: Mapped[int | None]
    input_tokens: Mapped[int] = mapped_column(default=0)
    cached_input_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_input_tokens: Mapped[int | None]
    """Input tokens written to the provider's cache (a part of ``input_tokens``); None before
    migration 0006 or when the producer did not say."""
    output_tokens: Mapped[int] = mapped_column(default=0)
    batch_size: Mapped[int | None]
    quality_score: Mapped[float | None]
    """Application-recorded quality (eval or feedback), 0..1."""
    status: Mapped[str] = mapped_column(String(10), default="ok")
    error_type: Mapped[str | None] = mapped_column(String(200))
    producer: Mapped[str | None] = mapped_column(String(200))
    """Instrumentation scope that emitted the span (``wattledger``, ``openlit``…)."""
    ingested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
