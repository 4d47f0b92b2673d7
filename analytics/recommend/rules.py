"""The rules that turn route evidence into recommendations, and say why candidates fail.

- ``reroute`` / ``right-size``: move a workload's traffic from route A to a cheaper route B that
  meets the workload's SLO at the *upper* confidence bound of its p95 TTFT and ITL, has enough
  samples, and saves money with confidence (the lower bound of the saving is above zero).
  ``right-size`` is the same move when only the hardware changes.
- ``consolidate``: a self-hosted pool busy less than ``consolidate_below_utilization`` of its
  device-hours could run on fewer devices; the idle cost of the removable ones is the saving.
- ``split-prefill-decode``: one route is clearly best at TTFT (prefill: compute-strong silicon)
  and another at ITL (decode: bandwidth-strong silicon); disaggregating gets both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from wattledger.analytics.recommend.routes import (
    Interval,
    RouteKey,
    RouteStats,
    ratio_interval,
    rng_for,
)
from wattledger.analytics.settings import AnalyticsSettings, SloSettings

J_PER_KWH = 3.6e6
HOURS_PER_MONTH = 730.0


@dataclass
class Candidate:
    """One recommendation before it is stored."""

    kind: str
    workload: str
    from_route: str
    to_route: str | None
    share_to_move: float | None
    savings_usd_month: Interval | None
    savings_kwh_month: float | None = None
    savings_kg_co2e_month: float | None = None
    ttft_p95_before_s: float | None = None
    ttft_p95_after_s: float | None = None
    itl_p95_before_s: float | None = None
    itl_p95_after_s: float | None = None
    samples_from: int | None = None
    samples_to: int | None = None
    risks: list[str] = field(default_factory=list)
    explanation: str = ""
    basis: str = "measured"


@dataclass
class Rejection:
    """A candidate move that was not recommended, and why."""

    workload: str
    from_route: str
    to_route: str
    reason: str


@dataclass
class PoolStats:
    """A self-hosted hardware pool over the lookback window."""

    hardware_model: str
    devices: int
    device_hours: float
    active_s: float
    idle_cost_usd: float
    """Idle hardware time and idle energy cost over the window, US dollars."""
    idle_energy_j: float
    window_days: float


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _slo_problem(b: RouteStats, slo: SloSettings) -> str | None:
    for name, target, iv in (
        ("TTFT", slo.ttft_p95_s, b.ttft_p95_s),
        ("ITL", slo.itl_p95_s, b.itl_p95_s),
    ):
        if target is None:
            continue
        if iv is None:
            return f"no {name} measurements to check the {_fmt_s(target)} p95 {name} SLO"
        if iv.high > target:
            return (
                f"misses the p95 {name} SLO at its upper confidence bound: p95 "
                f"{_fmt_s(iv.value)} (up to {_fmt_s(iv.high)}) > {_fmt_s(target)}"
            )
    if slo.quality_floor is not None and b.quality is not None and b.quality < slo.quality_floor:
        return f"mean quality {b.quality:.2f} is below the floor {slo.quality_floor:.2f}"
    return None


def _risks(a: RouteStats, b: RouteStats, slo: SloSettings, capacity_note: str | None) -> list[str]:
    risks = []
    if a.key.quantization != b.key.quantization or a.key.llm_model != b.key.llm_model:
        change = (
            f"{a.key.llm_model}@{a.key.quantization or 'default'} → "
            f"{b.key.llm_model}@{b.key.quantization or 'default'}"
        )
        if b.quality is None:
            risks.append(f"model/quantization change ({change}): run a quality check first")
        else:
            risks.append(f"model/quantization change ({change}); measured quality {b.quality:.2f}")
    if b.key.hosted and not a.key.hosted:
        risks.append(f"vendor lock-in: traffic leaves your fleet for {b.key.provider}")
    if b.key.provider != a.key.provider and not b.key.hosted and not a.key.hosted:
        risks.append(f"different serving stack ({a.key.provider} → {b.key.provider})")
    if b.modeled_j > 0:
        risks.append(f"{b.key.label} energy is modeled, not measured")
    if capacity_note:
        risks.append(capacity_note)
    return risks


def reroutes(
    routes: dict[RouteKey, RouteStats], settings: AnalyticsSettings
) -> tuple[list[Candidate], list[Rejection]]:
    """Best SLO-safe, confidently cheaper move for each route, and every rejected one."""
    out: list[Candidate] = []
    rejected: list[Rejection] = []
    by_workload: dict[str, list[RouteStats]] = {}
    for stats in routes.values():
        by_workload.setdefault(stats.key.workload, []).append(stats)
    for workload, group in sorted(by_workload.items()):
        slo = settings.slos.get(workload)
        for a in sorted(group, key=lambda s: s.key.label):
            best: Candidate | None = None
            for b in sorted(group, key=lambda s: s.key.label):
                if b is a:
                    continue
                reason, cand = _compare(a, b, slo, settings)
                if cand is None:
                    rejected.append(Rejection(workload, a.key.label, b.key.label, reason))
                elif best is None or (
                    cand.savings_usd_month
                    and best.savings_usd_month
                    and cand.savings_usd_month.value > best.savings_usd_month.value
                ):
                    best = cand
            if best is not None:
                out.append(best)
    return out, rejected


def _compare(
    a: RouteStats, b: RouteStats, slo: SloSettings | None, settings: AnalyticsSettings
) -> tuple[str, Candidate | None]:
    cfg = settings.recommend
    if slo is None:
        return (
            f"workload {a.key.workload!r} has no SLO: set [analytics.slos."
            f"{a.key.workload or '<workload>'}] to allow moves"
        ), None
    for s in (a, b):
        if s.requests < cfg.min_requests:
            return f"too few samples on {s.key.label}: {s.requests} < {cfg.min_requests}", None
        if s.cost_per_mtok is None or s.unpriced_requests > 0.01 * s.requests:
            return f"{s.key.label} is unpriced: its cost is unknown", None
    if (problem := _slo_problem(b, slo)) is not None:
        return problem, None
    samples = cfg.bootstrap_samples
    rng_a, rng_b = rng_for("diff", a.key.label, b.key.label), rng_for("diff", b.key.label)
    _, draws_a = ratio_interval(a.hour_costs * 1e6, a.hour_tokens, rng_a, samples, cfg.confidence)
    _, draws_b = ratio_interval(b.hour_costs * 1e6, b.hour_tokens, rng_b, samples, cfg.confidence)
    diff = draws_a - draws_b
    tail = (1 - cfg.confidence) / 2 * 100
    low, high = np.percentile(diff, [tail, 100 - tail])
    assert a.cost_per_mtok is not None and b.cost_per_mtok is not None
    point = a.cost_per_mtok.value - b.cost_per_mtok.value
    if low <= 0:
        return (
            f"not cheaper with confidence: saves ${point:.4f}/1M tokens "
            f"(interval ${low:.4f} to ${high:.4f})"
        ), None
    share, capacity_note = _share(a, b, cfg.capacity_output_tokens_per_s)
    if share <= 0:
        return capacity_note or "no spare capacity", None
    mtok_moved = a.tokens_per_month / 1e6 * share
    savings = Interval(point * mtok_moved, float(low) * mtok_moved, float(high) * mtok_moved)
    e_a, e_b = a.energy_per_token_j, b.energy_per_token_j
    kwh = (e_a - e_b) * mtok_moved * 1e6 / J_PER_KWH if e_a and e_b else None
    c_a, c_b = a.co2e_per_token_g, b.co2e_per_token_g
    co2 = (c_a - c_b) * mtok_moved * 1e6 / 1000 if c_a and c_b else None
    same_stack = (a.key.provider, a.key.llm_model, a.key.quantization) == (
        b.key.provider,
        b.key.llm_model,
        b.key.quantization,
    )
    kind = "right-size" if same_stack and not a.key.hosted and not b.key.hosted else "reroute"
    cand = Candidate(
        kind=kind,
        workload=a.key.workload,
        from_route=a.key.label,
        to_route=b.key.label,
        share_to_move=share,
        savings_usd_month=savings,
        savings_kwh_month=kwh,
        savings_kg_co2e_month=co2,
        ttft_p95_before_s=a.ttft_p95_s.value if a.ttft_p95_s else None,
        ttft_p95_after_s=b.ttft_p95_s.value if b.ttft_p95_s else None,
        itl_p95_before_s=a.itl_p95_s.value if a.itl_p95_s else None,
        itl_p95_after_s=b.itl_p95_s.value if b.itl_p95_s else None,
        samples_from=a.requests,
        samples_to=b.requests,
        risks=_risks(a, b, slo, capacity_note),
    )
    cand.explanation = _explain(cand, a, b, slo, settings)
    return "", cand


def _share(a: RouteStats, b: RouteStats, caps: dict[str, float]) -> tuple[float, str | None]:
    hours = max(a.hours, 1)
    a_rate = a.output_tokens / (hours * 3600.0)
    cap = caps.get(b.key.label)
    if cap is None:
        if b.key.hosted or a_rate <= b.peak_output_tokens_per_s:
            return 1.0, None
        return 1.0, (
            f"capacity: {b.key.label} peaked at {b.peak_output_tokens_per_s:,.0f} "
            f"output tokens/s; moving {a_rate:,.0f} tokens/s needs more replicas"
        )
    b_rate = b.output_tokens / (max(b.hours, 1) * 3600.0)
    room = max(cap - b_rate, 0.0)
    if room <= 0:
        return 0.0, f"capacity: {b.key.label} is at its configured {cap:,.0f} tokens/s"
    share = min(1.0, room / a_rate) if a_rate > 0 else 1.0
    note = (
        None
        if share >= 1.0
        else (f"capacity: only {share:.0%} fits in {b.key.label}'s configured {cap:,.0f} tokens/s")
    )
    return share, note


def _explain(
    c: Candidate, a: RouteStats, b: RouteStats, slo: SloSettings, settings: AnalyticsSettings
) -> str:
    assert a.cost_per_mtok and b.cost_per_mtok and c.savings_usd_month
    pct = (1 - b.cost_per_mtok.value / a.cost_per_mtok.value) * 100
    slo_bits = []
    if slo.ttft_p95_s is not None:
        slo_bits.append(
            f"TTFT p95 {_fmt_s(c.ttft_p95_before_s)} → {_fmt_s(c.ttft_p95_after_s)}"
            f" (SLO {_fmt_s(slo.ttft_p95_s)})"
        )
    if slo.itl_p95_s is not None:
        slo_bits.append(
            f"ITL p95 {_fmt_s(c.itl_p95_before_s)} → {_fmt_s(c.itl_p95_after_s)}"
            f" (SLO {_fmt_s(slo.itl_p95_s)})"
        )
    conf = int(settings.recommend.confidence * 100)
    sv = c.savings_usd_month
    return (
        f"Move {c.share_to_move:.0%} of {c.workload} traffic from {c.from_route} to "
        f"{c.to_route}: fully-loaded ${a.cost_per_mtok.value:.3f} → "
        f"${b.cost_per_mtok.value:.3f} per 1M tokens ({pct:.0f}% cheaper), saving "
        f"${sv.value:,.0f}/month ({conf}% interval ${sv.low:,.0f}–${sv.high:,.0f}). "
        + "; ".join(slo_bits)
        + f", inside the SLO at the upper {conf}% bound. Evidence: {a.requests:,} and "
        f"{b.requests:,} requests over {settings.recommend.lookback_days:g} days."
    )


def consolidations(pools: list[PoolStats], settings: AnalyticsSettings) -> list[Candidate]:
    """Pools whose devices are mostly idle, with the idle cost fewer devices would save."""
    cfg = settings.recommend
    out = []
    for p in pools:
        if p.devices < 2 or p.device_hours <= 0:
            continue
        util = p.active_s / (p.device_hours * 3600.0)
        if util >= cfg.consolidate_below_utilization:
            continue
        needed = max(1, math.ceil(p.devices * util / cfg.target_utilization))
        removable = p.devices - needed
        if removable <= 0:
            continue
        per_month = 30.0 / p.window_days * (removable / p.devices)
        usd = p.idle_cost_usd * per_month
        kwh = p.idle_energy_j * per_month / J_PER_KWH
        out.append(
            Candidate(
                kind="consolidate",
                workload="*",
                from_route=f"pool/{p.hardware_model}",
                to_route=f"pool/{p.hardware_model} × {needed}",
                share_to_move=None,
                savings_usd_month=Interval(usd, usd * 0.8, usd * 1.2),
                savings_kwh_month=kwh,
                risks=[
                    "peak load: size for the busiest hour, not the average",
                    "fewer devices means less headroom for failures",
                ],
                explanation=(
                    f"The {p.hardware_model} pool ({p.devices} devices) was busy {util:.0%} of its "
                    f"device-hours over {p.window_days:g} days. {needed} device(s) at "
                    f"{cfg.target_utilization:.0%} utilization would carry the same work; the idle "
                    f"time and energy of the other {removable} cost about ${usd:,.0f}/month "
                    f"({kwh:,.0f} kWh). Interval ±20%: idle cost scales with the devices removed."
                ),
            )
        )
    return out


def splits(routes: dict[RouteKey, RouteStats], settings: AnalyticsSettings) -> list[Candidate]:
    """Workloads where one route wins TTFT and another ITL by a clear margin."""
    cfg = settings.recommend
    out = []
    by_workload: dict[str, list[RouteStats]] = {}
    for s in routes.values():
        if s.requests >= cfg.min_requests and not s.key.hosted and s.ttft_p95_s and s.itl_p95_s:
            by_workload.setdefault(s.key.workload, []).append(s)
    for workload, group in sorted(by_workload.items()):
        x = min(group, key=lambda s: s.ttft_p95_s.value)  # type: ignore[union-attr]
        y = min(group, key=lambda s: s.itl_p95_s.value)  # type: ignore[union-attr]
        if x is y or x.key.hardware_model == y.key.hardware_model:
            continue
        assert x.ttft_p95_s and y.ttft_p95_s and x.itl_p95_s and y.itl_p95_s
        if not (
            x.ttft_p95_s.high < 0.8 * y.ttft_p95_s.low and y.itl_p95_s.high < 0.8 * x.itl_p95_s.low
        ):
            continue
        main = max(group, key=lambda s: s.tokens)
        out.append(
            Candidate(
                kind="split-prefill-decode",
                workload=workload,
                from_route=main.key.label,
                to_route=f"prefill:{x.key.label} + decode:{y.key.label}",
                share_to_move=None,
                savings_usd_month=None,
                ttft_p95_before_s=main.ttft_p95_s.value if main.ttft_p95_s else None,
                ttft_p95_after_s=x.ttft_p95_s.value,
                itl_p95_before_s=main.itl_p95_s.value if main.itl_p95_s else None,
                itl_p95_after_s=y.itl_p95_s.value,
                samples_from=x.requests,
                samples_to=y.requests,
                risks=[
                    "KV-cache transfer between pools needs a fast interconnect",
                    "the serving engine must support disaggregated prefill/decode",
                ],
                explanation=(
                    f"For {workload}, {x.key.hardware_model} gives the best time to first token "
                    f"(p95 {_fmt_s(x.ttft_p95_s.value)} vs {_fmt_s(y.ttft_p95_s.value)}) and "
                    f"{y.key.hardware_model} the best inter-token latency (p95 "
                    f"{_fmt_s(y.itl_p95_s.value)} vs {_fmt_s(x.itl_p95_s.value)}). Prefill is "
                    "compute-bound and decode bandwidth-bound: running prefill on "
                    f"{x.key.hardware_model} and decode on {y.key.hardware_model} could get both."
                ),
            )
        )
    return out
