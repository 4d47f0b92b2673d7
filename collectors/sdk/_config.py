"""SDK configuration: ``init()`` arguments, then ``WATTLEDGER_*``, then standard ``OTEL_*``.

Precedence, highest first: an argument to :func:`wattledger.init`, a ``WATTLEDGER_*`` variable,
the matching standard OpenTelemetry variable, the default. The SDK runs inside someone else's
process, so a bad value never raises: it is logged (naming the variable, the value and the
fix) and the default is used, as the OpenTelemetry SDK does.

Every variable the SDK reads is a constant below; ``ENV_VARS`` documents them and
docs/sdk.md lists the same table.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

logger = logging.getLogger(__name__)

WATTLEDGER_ENDPOINT = "WATTLEDGER_ENDPOINT"
WATTLEDGER_API_KEY = "WATTLEDGER_API_KEY"
WATTLEDGER_SERVICE_NAME = "WATTLEDGER_SERVICE_NAME"
WATTLEDGER_WORKLOAD = "WATTLEDGER_WORKLOAD"
WATTLEDGER_SDK_DISABLED = "WATTLEDGER_SDK_DISABLED"
WATTLEDGER_SDK_METRICS = "WATTLEDGER_SDK_METRICS"
WATTLEDGER_SDK_REQUEST_METRICS = "WATTLEDGER_SDK_REQUEST_METRICS"
WATTLEDGER_SDK_MAX_QUEUE_SIZE = "WATTLEDGER_SDK_MAX_QUEUE_SIZE"
WATTLEDGER_SDK_MAX_EXPORT_BATCH_SIZE = "WATTLEDGER_SDK_MAX_EXPORT_BATCH_SIZE"
WATTLEDGER_SDK_SCHEDULE_DELAY_MS = "WATTLEDGER_SDK_SCHEDULE_DELAY_MS"
WATTLEDGER_SDK_EXPORT_TIMEOUT_S = "WATTLEDGER_SDK_EXPORT_TIMEOUT_S"
WATTLEDGER_SDK_SHUTDOWN_TIMEOUT_S = "WATTLEDGER_SDK_SHUTDOWN_TIMEOUT_S"
WATTLEDGER_SDK_METRIC_INTERVAL_S = "WATTLEDGER_SDK_METRIC_INTERVAL_S"

OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
OTEL_EXPORTER_OTLP_TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT"
OTEL_BSP_MAX_QUEUE_SIZE = "OTEL_BSP_MAX_QUEUE_SIZE"
OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
OTEL_BSP_SCHEDULE_DELAY = "OTEL_BSP_SCHEDULE_DELAY"
OTEL_METRIC_EXPORT_INTERVAL = "OTEL_METRIC_EXPORT_INTERVAL"

DEFAULT_ENDPOINT = "http://localhost:4318"
#: OpenTelemetry's default (2048) drops a large share of a 20k-request burst. A queued span
#: holds about 3.3 KiB (measured with tracemalloc), so a full queue is about 100 MiB: the
#: bound a dead endpoint costs. Lower it for small processes.
DEFAULT_MAX_QUEUE_SIZE = 32768
DEFAULT_MAX_EXPORT_BATCH_SIZE = 1024
DEFAULT_SCHEDULE_DELAY_S = 1.0
DEFAULT_EXPORT_TIMEOUT_S = 10.0
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0
DEFAULT_METRIC_INTERVAL_S = 60.0
DEFAULT_WARN_INTERVAL_S = 60.0

#: (variable, standard fallback, meaning) for every variable the SDK reads.
ENV_VARS: tuple[tuple[str, str | None, str], ...] = (
    (WATTLEDGER_SERVICE_NAME, OTEL_SERVICE_NAME, "service.name of this process"),
    (WATTLEDGER_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, f"OTLP/HTTP base URL ({DEFAULT_ENDPOINT})"),
    (WATTLEDGER_API_KEY, None, "sent as Authorization: Bearer <key>"),
    (WATTLEDGER_WORKLOAD, None, "default wattledger.workload for every span"),
    (WATTLEDGER_SDK_DISABLED, OTEL_SDK_DISABLED, "true: init() does nothing"),
    (WATTLEDGER_SDK_METRICS, None, "false: no SDK metrics (default true)"),
    (WATTLEDGER_SDK_REQUEST_METRICS, None, "true: also gen_ai.client.* histograms"),
    (WATTLEDGER_SDK_MAX_QUEUE_SIZE, OTEL_BSP_MAX_QUEUE_SIZE, f"spans ({DEFAULT_MAX_QUEUE_SIZE})"),
    (
        WATTLEDGER_SDK_MAX_EXPORT_BATCH_SIZE,
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
        f"spans per export request ({DEFAULT_MAX_EXPORT_BATCH_SIZE})",
    ),
    (WATTLEDGER_SDK_SCHEDULE_DELAY_MS, OTEL_BSP_SCHEDULE_DELAY, "ms between exports (1000)"),
    (WATTLEDGER_SDK_EXPORT_TIMEOUT_S, OTEL_EXPORTER_OTLP_TIMEOUT, "s per export, retries incl."),
    (WATTLEDGER_SDK_SHUTDOWN_TIMEOUT_S, None, "s shutdown() waits to flush (5)"),
    (WATTLEDGER_SDK_METRIC_INTERVAL_S, OTEL_METRIC_EXPORT_INTERVAL, "metric export period"),
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SdkConfig:
    """The resolved SDK settings (see the module docstring for precedence).

    Attributes:
        service_name: ``service.name`` resource attribute.
        traces_url: Full OTLP/HTTP URL for spans (``<endpoint>/v1/traces``).
        metrics_url: Full OTLP/HTTP URL for metrics (``<endpoint>/v1/metrics``).
        api_key: Bearer token for the ingest service, or None.
        workload: Default ``wattledger.workload`` for every span, or None.
        metrics: Export the SDK's own metrics (drops, queue size).
        request_metrics: Also record the GenAI client histograms per request.
        max_queue_size: Spans the export queue holds before it drops (and counts) new ones.
        max_export_batch_size: Spans per export request.
        schedule_delay_s: Longest wait between exports, in seconds.
        export_timeout_s: Time one export may take including retries, in seconds.
        shutdown_timeout_s: Time ``shutdown()`` waits for the queue to drain, in seconds.
        metric_interval_s: Period of the metric export, in seconds.
        warn_interval_s: At most one export/drop warning per this many seconds.
    """

    service_name: str
    traces_url: str
    metrics_url: str
    api_key: str | None = field(repr=False)
    workload: str | None
    metrics: bool
    request_metrics: bool
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay_s: float
    export_timeout_s: float
    shutdown_timeout_s: float
    metric_interval_s: float
    warn_interval_s: float

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers for the exporters (``Authorization`` when an API key is set)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def _first_env(env: Mapping[str, str], *names: str | None) -> tuple[str | None, str | None]:
    for name in names:
        if name and (value := env.get(name, "").strip()):
            return name, value
    return None, None


def _parse(
    arg: T | None,
    env: Mapping[str, str],
    names: tuple[str | None, ...],
    convert: Callable[[str], T],
    default: T,
    valid: Callable[[T], bool],
    expected: str,
) -> T:
    """The argument if given, else the first set variable, else ``default``; bad → default."""
    if arg is not None:
        if valid(arg):
            return arg
        logger.warning(
            "wattledger.init() got %r, which is not %s; using the default %r.",
            arg,
            expected,
            default,
        )
        return default
    name, raw = _first_env(env, *names)
    if raw is None:
        return default
    try:
        value = convert(raw)
    except ValueError:
        value = None
    if value is None or not valid(value):
        logger.warning(
            "Config %r has value %r. Not %s; using the default %r. Fix or unset the variable.",
            name,
            raw,
            expected,
            default,
        )
        return default
    return value


def _to_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _valid_url(url: str) -> bool:
    return isinstance(url, str) and url.startswith(("http://", "https://")) and len(url) > 8


def is_disabled(env: Mapping[str, str] | None = None) -> bool:
    """True when ``WATTLEDGER_SDK_DISABLED`` or ``OTEL_SDK_DISABLED`` is true."""
    env = os.environ if env is None else env
    names = (WATTLEDGER_SDK_DISABLED, OTEL_SDK_DISABLED)
    return _parse(None, env, names, _to_bool, False, _is_bool, "true or false")


def resolve(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    workload: str | None = None,
    metrics: bool | None = None,
    request_metrics: bool | None = None,
    max_queue_size: int | None = None,
    max_export_batch_size: int | None = None,
    schedule_delay_s: float | None = None,
    export_timeout_s: float | None = None,
    shutdown_timeout_s: float | None = None,
    metric_interval_s: float | None = None,
    warn_interval_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> SdkConfig:
    """Resolve every setting from arguments, environment and defaults. Never raises."""
    env = os.environ if env is None else env
    positive_int = (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "a positive integer",
    )
    positive_s = (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
        "a positive number",
    )

    svc = _parse(
        service_name,
        env,
        (WATTLEDGER_SERVICE_NAME, OTEL_SERVICE_NAME),
        str,
        "",
        lambda v: isinstance(v, str) and bool(v.strip()),
        "a non-empty string",
    )
    if not svc:
        svc = "unknown_service"
        logger.warning(
            "wattledger.init() has no service name; spans are labelled %r. Pass "
            "service_name= or set %s.",
            svc,
            WATTLEDGER_SERVICE_NAME,
        )

    traces_url, metrics_url = _endpoints(endpoint, env)
    return SdkConfig(
        service_name=svc,
        traces_url=traces_url,
        metrics_url=metrics_url,
        api_key=api_key if api_key else (env.get(WATTLEDGER_API_KEY, "").strip() or None),
        workload=workload if workload else (env.get(WATTLEDGER_WORKLOAD, "").strip() or None),
        metrics=_parse(
            metrics, env, (WATTLEDGER_SDK_METRICS,), _to_bool, True, _is_bool, "true or false"
        ),
        request_metrics=_parse(
            request_metrics,
            env,
            (WATTLEDGER_SDK_REQUEST_METRICS,),
            _to_bool,
            False,
            _is_bool,
            "true or false",
        ),
        max_queue_size=_parse(
            max_queue_size,
            env,
            (WATTLEDGER_SDK_MAX_QUEUE_SIZE, OTEL_BSP_MAX_QUEUE_SIZE),
            int,
            DEFAULT_MAX_QUEUE_SIZE,
            *positive_int,
        ),
        max_export_batch_size=_parse(
            max_export_batch_size,
            env,
            (WATTLEDGER_SDK_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE),
            int,
            DEFAULT_MAX_EXPORT_BATCH_SIZE,
            *positive_int,
        ),
        schedule_delay_s=_parse(
            schedule_delay_s,
            env,
            (WATTLEDGER_SDK_SCHEDULE_DELAY_MS, OTEL_BSP_SCHEDULE_DELAY),
            _ms_to_s,
            DEFAULT_SCHEDULE_DELAY_S,
            *positive_s,
        ),
        export_timeout_s=_parse(
            export_timeout_s,
            env,
            (WATTLEDGER_SDK_EXPORT_TIMEOUT_S, OTEL_EXPORTER_OTLP_TIMEOUT),
            float,
            DEFAULT_EXPORT_TIMEOUT_S,
            *positive_s,
        ),
        shutdown_timeout_s=_parse(
            shutdown_timeout_s,
            env,
            (WATTLEDGER_SDK_SHUTDOWN_TIMEOUT_S,),
            float,
            DEFAULT_SHUTDOWN_TIMEOUT_S,
            *positive_s,
        ),
        metric_interval_s=_parse(
            metric_interval_s,
            env,
            (WATTLEDGER_SDK_METRIC_INTERVAL_S,),
            float,
            _otel_metric_interval(env),
            *positive_s,
        ),
        warn_interval_s=_parse(
            warn_interval_s,
            {},
            (),
            float,
            DEFAULT_WARN_INTERVAL_S,
            lambda v: isinstance(v, int | float) and v >= 0,
            "a number >= 0",
        ),
    )


def _is_bool(v: object) -> bool:
    return isinstance(v, bool)


def _ms_to_s(raw: str) -> float:
    return float(raw) / 1000.0


def _otel_metric_interval(env: Mapping[str, str]) -> float:
    raw = env.get(OTEL_METRIC_EXPORT_INTERVAL, "").strip()
    try:
        value = float(raw) / 1000.0 if raw else DEFAULT_METRIC_INTERVAL_S
    except ValueError:
        value = DEFAULT_METRIC_INTERVAL_S
    return value if value > 0 else DEFAULT_METRIC_INTERVAL_S


def _endpoints(endpoint: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """(traces URL, metrics URL) from the argument, WATTLEDGER_ENDPOINT or OTEL_* variables."""
    base = _parse(endpoint, env, (WATTLEDGER_ENDPOINT,), str, "", _valid_url, "an http(s):// URL")
    if base:
        base = base.rstrip("/")
        return f"{base}/v1/traces", f"{base}/v1/metrics"
    otel_base = _parse(
        None,
        env,
        (OTEL_EXPORTER_OTLP_ENDPOINT,),
        str,
        DEFAULT_ENDPOINT,
        _valid_url,
        "an http(s):// URL",
    ).rstrip("/")
    traces = _parse(
        None,
        env,
        (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,),
        str,
        f"{otel_base}/v1/traces",
        _valid_url,
        "an http(s):// URL",
    )
    metrics = _parse(
        None,
        env,
        (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,),
        str,
        f"{otel_base}/v1/metrics",
        _valid_url,
        "an http(s):// URL",
    )
    return traces, metrics
