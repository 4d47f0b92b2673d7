"""``[analytics]`` settings: attribution, cost and rollup jobs (``WATTLEDGER_ANALYTICS__*``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class SiteSettings(BaseModel):
    """Energy price, facility overhead and grid carbon intensity of one site.

    Attributes:
        usd_per_kwh: Energy price, US dollars per kilowatt-hour.
        pue: Power usage effectiveness of the facility (≥ 1).
        grid_gco2e_per_kwh: Grid carbon intensity, grams CO2e per kilowatt-hour.
    """

    model_config = ConfigDict(extra="forbid")

    usd_per_kwh: Decimal = Field(ge=0)
    pue: float = Field(default=1.0, ge=1.0)
    grid_gco2e_per_kwh: float | None = Field(default=None, ge=0)


class SloSettings(BaseModel):
    """Latency (and optional quality) objective of one workload class.

    Attributes:
        ttft_p95_s: Target p95 time to first token, seconds.
        itl_p95_s: Target p95 inter-token latency, seconds.
        quality_floor: Lowest acceptable mean quality score (0..1), when scores are recorded.
    """

    model_config = ConfigDict(extra="forbid")

    ttft_p95_s: float | None = Field(default=None, gt=0)
    itl_p95_s: float | None = Field(default=None, gt=0)
    quality_floor: float | None = Field(default=None, ge=0, le=1)


class RecommendSettings(BaseModel):
    """How recommendations weigh evidence.

    Attributes:
        lookback_days: Days of history compared.
        min_requests: Fewest requests a route needs before it is compared at all.
        bootstrap_samples: Resamples for confidence intervals.
        confidence: Two-sided confidence level of the intervals (0.9 → 5th–95th percentile).
        capacity_output_tokens_per_s: Known capacity limits per route label
            (``provider/hardware/model[@quantization]``), output tokens per second.
        consolidate_below_utilization: A self-hosted pool busier than this share of its
            device-hours is not flagged for consolidation.
        target_utilization: Busy share a consolidated pool is sized for.
    """

    model_config = ConfigDict(extra="forbid")

    lookback_days: float = Field(default=7.0, gt=0)
    min_requests: int = Field(default=200, ge=1)
    bootstrap_samples: int = Field(default=400, ge=50)
    confidence: float = Field(default=0.9, gt=0, lt=1)
    capacity_output_tokens_per_s: dict[str, float] = Field(default_factory=dict)
    consolidate_below_utilization: float = Field(default=0.3, gt=0, lt=1)
    target_utilization: float = Field(default=0.6, gt=0, le=1)


class AnalyticsSettings(BaseModel):
    """How the analytics jobs attribute energy and cost, and when they run.

    Attributes:
        interval_s: Seconds between scheduled analytics runs in ``wattledger serve``.
        leader_check_s: PostgreSQL only: seconds between a follower's attempts to become the
            scheduler leader (and the leader's checks that its lock connection is alive), so a
            dead leader is replaced within about this time plus the TCP keepalive timeout.
        lateness_s: How late a span or sample may arrive and still be attributed; every run
            re-derives this much history before its watermark.
        max_request_s: Longest request expected, seconds; bounds how far before a window the
            attribution looks for requests still running.
        prefill_token_weight: Work of one prefill (input) token, relative to a decode token.
            The default 0.25 is the roofline ratio of a prefill token's compute time to a decode
            token's share of a memory-bound decode step at typical batch sizes (see
            docs/analytics.md).
        decode_token_weight: Work of one decode (output) token.
        idle_power_quantile: Where a device reports no idle power, its idle baseline is this
            quantile of its power samples in the window.
        sites: Tariffs per site key (``"*"`` applies to devices with no site); seeded into the
            ``energy_tariffs`` table, where CLI-set rows take precedence.
        hardware_usd_per_hour: $/device-hour per hardware model; seeded into ``hardware_rates``.
        modeled_j_per_output_token: Modeled energy per output token for hosted routes without
            measurements, keyed ``"provider/model"`` or ``"provider"``; labelled ``modeled``.
        slos: Per-workload latency objectives.
        recommend: Evidence thresholds for recommendations.
    """

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(default=60.0, gt=0)
    leader_check_s: float = Field(default=5.0, gt=0, le=3600)
    lateness_s: float = Field(default=900.0, ge=0)
    max_request_s: float = Field(default=900.0, gt=0)
    prefill_token_weight: float = Field(default=0.25, ge=0)
    decode_token_weight: float = Field(default=1.0, gt=0)
    idle_power_quantile: float = Field(default=0.05, ge=0, le=1)
    #: Fit what each overlapping request drew where at most this many run at once on average
    #: (0: off, the default: on the simulator's batched fleet the fit is worse than the
    #: work-rate split; on traces where each request draws its own power it is far better).
    overlap_fit_max_in_flight: float = Field(default=0.0, ge=0, le=1_000)
    token_weights: dict[str, tuple[float, float]] = Field(default_factory=dict)
    sites: dict[str, SiteSettings] = Field(default_factory=dict)
    hardware_usd_per_hour: dict[str, Decimal] = Field(default_factory=dict)
    modeled_j_per_output_token: dict[str, float] = Field(default_factory=dict)
    slos: dict[str, SloSettings] = Field(default_factory=dict)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
