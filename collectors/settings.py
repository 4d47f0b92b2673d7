"""``[collector]`` settings: the sidecar power collector (``WATTLEDGER_COLLECTOR__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

#: Source names ``sources`` accepts; ``prometheus``, ``modeled`` and ``replay`` take ``=value``;
#: ``tpu`` and ``neuron`` optionally take the path of their tool (``tpu=/opt/bin/tpu-info``).
SOURCE_KINDS = (
    "auto",
    "nvml",
    "amdsmi",
    "rapl",
    "tpu",
    "neuron",
    "prometheus",
    "modeled",
    "fake",
    "replay",
)


class CollectorSettings(BaseModel):
    """How ``wattledger collect`` samples devices and where it sends them.

    Attributes:
        interval_s: Seconds between samples (monotonic schedule).
        endpoint: OTLP/HTTP base URL of the ingest service; metrics go to ``<endpoint>/v1/metrics``.
        sources: Power sources: ``auto`` probes NVML, AMD SMI, RAPL, TPUs (``tpu-info``) and
            Neuron devices (``neuron-monitor``); also ``nvml``, ``amdsmi``, ``rapl``,
            ``tpu[=<tpu-info path>]``, ``neuron[=<neuron-monitor path>]``,
            ``prometheus=<url>``, ``modeled=<model>@<hardware>``, ``fake[=<devices>]``,
            ``replay=<csv>``.
        api_key: Bearer key for the ingest service (also ``WATTLEDGER_API_KEY``).
        site: Data-centre/site key attached to every sample (``wattledger.site``).
        host_name: Overrides the host name (``host.name`` and ``<host>:...`` device ids).
        export_interval_s: Seconds between exports; every sample in between is sent.
        export_timeout_s: HTTP timeout of one export attempt, seconds.
        max_batch_samples: Most sample cycles in one export request.
        max_buffered_samples: Sample cycles kept while the endpoint is down; the oldest are
            dropped (and counted) beyond this.
        max_backoff_s: Longest wait between export retries, seconds.
        shutdown_timeout_s: How long a shutdown may spend flushing, seconds.
        scrape_interval_s: Shortest interval between scrapes of a Prometheus endpoint, seconds.
        scrape_timeout_s: HTTP timeout of one scrape, seconds.
        rapl_root: The powercap sysfs root.
        procfs_root: The procfs root (process -> container mapping, CPU model).
        max_power_w: Highest believable power of one device; larger counter jumps are resets.
        max_gap_s: Longest gap integrated in full when energy comes from power samples.
        process_refresh_s: How often GPU process lists are refreshed, seconds.
        tool_interval_s: How often ``tpu-info`` is run / ``neuron-monitor`` reports, seconds.
        tool_timeout_s: Longest a ``tpu-info`` run, or the first ``neuron-monitor`` report,
            may take, seconds.
    """

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(default=0.5, gt=0, le=3600)
    endpoint: str = "http://localhost:4318"
    sources: list[str] = Field(default_factory=lambda: ["auto"])
    api_key: SecretStr | None = None
    site: str | None = None
    host_name: str | None = None
    export_interval_s: float = Field(default=5.0, gt=0, le=3600)
    export_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_batch_samples: int = Field(default=120, ge=1)
    max_buffered_samples: int = Field(default=7200, ge=1)
    max_backoff_s: float = Field(default=60.0, gt=0)
    shutdown_timeout_s: float = Field(default=10.0, ge=0)
    scrape_interval_s: float = Field(default=5.0, gt=0)
    scrape_timeout_s: float = Field(default=2.0, gt=0)
    rapl_root: Path = Path("/sys/class/powercap")
    procfs_root: Path = Path("/proc")
    max_power_w: float = Field(default=5000.0, gt=0)
    max_gap_s: float = Field(default=10.0, gt=0)
    process_refresh_s: float = Field(default=5.0, gt=0)
    tool_interval_s: float = Field(default=5.0, ge=1)
    tool_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://ingest:4318")
        return value.rstrip("/")

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one source, e.g. ['auto']")
        for spec in value:
            kind, eq, arg = spec.partition("=")
            if kind not in SOURCE_KINDS:
                raise ValueError(f"unknown source {kind!r}; use one of {', '.join(SOURCE_KINDS)}")
            if kind in ("prometheus", "modeled", "replay") and not arg:
                raise ValueError(f"source {kind!r} needs a value: {kind}=<...>")
            if kind in ("tpu", "neuron") and eq and not arg:
                raise ValueError(f"source {kind!r} takes the path of its tool: {kind}=<path>")
            if kind in ("auto", "nvml", "amdsmi", "rapl") and eq:
                raise ValueError(f"source {kind!r} takes no value")
            if kind == "fake" and eq and not (arg.isdigit() and 0 < int(arg) <= 1024):
                raise ValueError("source 'fake' takes a device count, e.g. fake=8")
        return value
