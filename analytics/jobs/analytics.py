"""The analytics job: attribute energy, cost every request, roll up — incrementally.

Each run covers ``[watermark − lateness, now)`` rounded down to the hour, so spans or samples
arriving up to ``lateness_s`` late are re-derived, and the work per run follows new data, not
history. Runs are idempotent: each window's derived rows are deleted and re-inserted in one
transaction per chunk. On PostgreSQL a session advisory lock makes sure two schedulers never
process at the same time (the second one skips its run).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from wattledger.analytics.attribution import attribute_window
from wattledger.analytics.queries.costs import (
    EFFECTIVE_PRICES,
    EFFECTIVE_RATES,
    EFFECTIVE_TARIFFS,
    QUARANTINE_TOKENS,
    STAGE,
    TEMP_TABLES,
    request_cost_rows,
    within_bounds,
)
from wattledger.analytics.queries.rollups import rollup_rows
from wattledger.analytics.rates import (
    effective_hardware_rates,
    effective_prices,
    effective_tariffs,
)
from wattledger.analytics.settings import AnalyticsSettings
from wattledger.analytics.sqlfuncs import trunc
from wattledger.models import (
    DeviceEnergyHourly,
    EnergyTariff,
    HardwareRate,
    InferenceRequest,
    PowerSample,
    QuarantineHourly,
    RequestCost,
    RollupDaily,
    RollupHourly,
    Watermark,
)
from wattledger.models.bulk import insert_arrow

log = logging.getLogger(__name__)
WATERMARK = "analytics"
#: Advisory-lock key for the analytics job on PostgreSQL ("wattledg" as an int64).
LOCK_KEY = 0x77617474_6C656467
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class AnalyticsResult:
    """What one run did."""

    window_start: dt.datetime | None
    window_end: dt.datetime
    requests: int = 0
    devices: int = 0
    device_hours: int = 0
    hourly_rows: int = 0
    daily_rows: int = 0
    uncovered_requests: int = 0
    devices_without_idle_baseline: list[str] = field(default_factory=list)
    """Devices whose idle power had no evidence (no idle interval, no configured or catalog
    figure): their baseline was 0 W, so every joule they drew went to their requests."""
    quarantined_requests: int = 0
    """Requests left out of costs: their numbers are outside the ingest bounds (stored before
    ingest checked them); ``wattledger analytics run`` names them."""
    unpriced_requests: int = 0
    """Requests of the window costed at $0 because no price, rate or tariff applied (hosted:
    no list price or contract for the provider and model; self-hosted: no $/device-hour or no
    energy tariff for the site)."""
    skipped: str | None = None
    duration_s: float = 0.0
    chunks: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)


def floor_hour(ts: dt.datetime) -> dt.datetime:
    """``ts`` rounded down to the hour, UTC."""
    return ts.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(ts: dt.datetime) -> dt.datetime:
    """``ts`` rounded down to midnight, UTC."""
    return floor_hour(ts).replace(hour=0)


def run_analytics(
    engine: Engine,
    settings: AnalyticsSettings,
    *,
    now: dt.datetime,
    since: dt.datetime | None = None,
    full: bool = False,
    chunk: dt.timedelta = dt.timedelta(days=1),
    progress: Callable[[str, int, int], None] | None = None,
) -> AnalyticsResult:
    """Run attribution, costs and rollups up to ``now``.

    Args:
        engine: The warehouse.
        settings: Weights, tariffs, rates and SLOs.
        now: End of the window (exclusive); tests pass a fixed time.
        since: Start here instead of at the watermark (rounded down to midnight UTC, the
            chunk grid, so the numbers equal a full run's).
        full: Re-derive everything from the first request.
        chunk: Window size per transaction (bounds memory).
        progress: Called as ``progress(stage, done, total)``.
    """
    started = time.perf_counter()
    with engine.connect() as lock_conn:
        if not _try_lock(lock_conn):
            return AnalyticsResult(None, now, skipped="another scheduler holds the lock")
        try:
            with engine.begin() as conn:
                _seed_rates(conn, settings)
                start = _window_start(conn, settings, now, since, full)
            result = AnalyticsResult(start, now)
            if start is None or start >= now:
                result.duration_s = time.perf_counter() - started
                return result
            with engine.connect() as conn:
                last = _data_end(conn, start, now)
            # Windows after the newest data hold nothing to attribute: stop there (the
            # watermark still moves to ``now``).
            stop = min(now, floor_hour(last) + dt.timedelta(hours=1)) if last else start
            with engine.connect() as conn:
                chunks = _chunks_with_data(conn, start, stop, chunk)
            for i, (cs, ce) in enumerate(chunks):
                # One transaction per chunk: its costs, its rollups and the watermark commit
                # together, so a run killed midway resumes after the last committed chunk and
                # never leaves a rollup older than the costs it sums.
                with engine.begin() as conn:
                    _attribute_chunk(conn, settings, cs, ce, now, result)
                    result.hourly_rows += _rollup(conn, RollupHourly, "hour", cs, ce, settings)
                    result.daily_rows += _rollup(
                        conn, RollupDaily, "day", floor_day(cs), ce, settings
                    )
                    _set_watermark(conn, ce + dt.timedelta(seconds=settings.lateness_s))
                if progress:
                    progress("attribution", i + 1, len(chunks))
            with engine.begin() as conn:
                # After the newest data: clear rollups of requests since removed, then move
                # the watermark to ``now``.
                tail = chunks[-1][1] if chunks else start
                result.hourly_rows += _rollup(conn, RollupHourly, "hour", tail, now, settings)
                result.daily_rows += _rollup(
                    conn, RollupDaily, "day", floor_day(tail), now, settings
                )
                _set_watermark(conn, now)
            if progress:
                progress("rollups", 1, 1)
            result.chunks = chunks
            result.duration_s = time.perf_counter() - started
            log.info(
                "analytics %s..%s: %d requests on %d devices in %.2f s",
                start.isoformat(),
                now.isoformat(),
                result.requests,
                result.devices,
                result.duration_s,
            )
            return result
        finally:
            _unlock(lock_conn)


def _data_end(conn: Connection, start: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The newest request start or sample time in ``[start, now)``."""
    ends = [
        conn.execute(sa.select(sa.func.max(col)).where(col >= start, col < now)).scalar()
        for col in (InferenceRequest.start_ts, PowerSample.ts)
    ]
    found = [e for e in ends if e is not None]
    return max(found) if found else None


def _next_data(conn: Connection, at: dt.datetime, stop: dt.datetime) -> dt.datetime | None:
    """The first request start or sample time in ``[at, stop)``."""
    firsts = [
        conn.execute(sa.select(sa.func.min(col)).where(col >= at, col < stop)).scalar()
        for col in (InferenceRequest.start_ts, PowerSample.ts)
    ]
    found = [f for f in firsts if f is not None]
    return min(found) if found else None


def _chunks_with_data(
    conn: Connection, start: dt.datetime, stop: dt.datetime, chunk: dt.timedelta
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The chunks of ``[start, stop)`` that hold data, on a grid from midnight UTC
    (``floor_day(start) + k * chunk``; the first chunk may begin after its boundary).

    The grid does not move with ``start``, so re-deriving from any ``--since`` (rounded down
    to midnight) cuts the same chunks as a full run and gives the same numbers.

    A warehouse whose oldest span is years older than the rest used to be walked day by day
    (one span dated 2000-01-01 made a first run take 315 s instead of 1.4 s). Empty stretches
    are skipped in whole chunks, so the chunk boundaries, and hence every number, are the
    same as a walk over every chunk.
    """
    origin = floor_day(start)

    def boundary_after(ts: dt.datetime) -> dt.datetime:
        return origin + chunk * ((ts - origin) // chunk + 1)

    chunks: list[tuple[dt.datetime, dt.datetime]] = []
    cursor = start
    while cursor < stop:
        ce = min(boundary_after(cursor), stop)
        nxt = _next_data(conn, cursor, stop)
        if nxt is None:
            break
        if nxt >= ce:
            # Jump whole chunks to the one holding ``nxt``. Requests that started in a skipped
            # chunk cannot exist (nxt is the first); those running into it belong to the
            # chunk they started in, whose horizon reaches max_request_s past its end.
            cursor = boundary_after(nxt) - chunk
            continue
        chunks.append((cursor, ce))
        cursor = ce
    return chunks


def _try_lock(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return True
    got = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(LOCK_KEY))).scalar())
    conn.commit()
    return got


def _unlock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_unlock(LOCK_KEY)))
        conn.commit()


def _window_start(
    conn: Connection,
    settings: AnalyticsSettings,
    now: dt.datetime,
    since: dt.datetime | None,
    full: bool,
) -> dt.datetime | None:
    if since is not None:
        # Re-derive from the chunk boundary at or before ``since`` (midnight UTC), so the
        # chunks, and so every number, are those of a full run (issue 16: a non-midnight
        # --since changed per-request energy by up to 1.6 J).
        return floor_day(since)
    mark = conn.execute(sa.select(Watermark.value_ts).where(Watermark.name == WATERMARK)).scalar()
    if mark is not None and not full:
        return floor_hour(mark - dt.timedelta(seconds=settings.lateness_s))
    first = conn.execute(sa.select(sa.func.min(InferenceRequest.start_ts))).scalar()
    return floor_hour(first) if first is not None else None


def _attribute_chunk(
    conn: Connection,
    settings: AnalyticsSettings,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    result: AnalyticsResult,
) -> None:
    horizon = min(end + dt.timedelta(seconds=settings.max_request_s), now)
    window = attribute_window(conn, settings, start, end, horizon=horizon)
    result.requests += window.requests.num_rows
    result.devices = max(result.devices, window.devices)
    result.uncovered_requests += window.late_or_uncovered
    for device_id in window.without_idle_baseline:
        if device_id not in result.devices_without_idle_baseline:
            result.devices_without_idle_baseline.append(device_id)
    conn.execute(
        sa.delete(RequestCost).where(RequestCost.start_ts >= start, RequestCost.start_ts < end)
    )
    conn.execute(
        sa.delete(DeviceEnergyHourly).where(
            DeviceEnergyHourly.bucket_start >= start, DeviceEnergyHourly.bucket_start < end
        )
    )
    for table in TEMP_TABLES:
        table.create(conn)
    try:
        insert_arrow(conn, STAGE, window.requests)
        for table, rows in (
            (EFFECTIVE_PRICES, effective_prices(conn)),
            (EFFECTIVE_TARIFFS, effective_tariffs(conn)),
            (EFFECTIVE_RATES, effective_hardware_rates(conn)),
        ):
            if rows:
                conn.execute(sa.insert(table), rows)
        select = request_cost_rows()
        result.quarantined_requests += _quarantine(conn, start, end)
        conn.execute(
            sa.insert(RequestCost).from_select([c.name for c in select.selected_columns], select)
        )
        c = RequestCost
        result.unpriced_requests += int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(c)
                .where(c.start_ts >= start, c.start_ts < end, c.price_status == "unpriced")
            ).scalar_one()
        )
    finally:
        for table in TEMP_TABLES:
            table.drop(conn)
    result.device_hours += insert_arrow(conn, DeviceEnergyHourly.__table__, window.device_hours)


def _quarantine(conn: Connection, start: dt.datetime, end: dt.datetime) -> int:
    """Record the staged requests that cannot be costed (see ``within_bounds``) per tenant and
    hour in ``quarantine_hourly``, replacing the chunk's earlier rows; how many there are."""
    q = QuarantineHourly
    conn.execute(sa.delete(q).where(q.bucket_start >= floor_hour(start), q.bucket_start < end))
    r = InferenceRequest
    joined = STAGE.join(r, sa.and_(r.trace_id == STAGE.c.trace_id, r.span_id == STAGE.c.span_id))
    bucket = trunc("hour", r.start_ts)
    rows = sa.select(
        r.tenant,
        bucket.label("bucket_start"),
        sa.literal(QUARANTINE_TOKENS, sa.String).label("reason"),
        sa.cast(sa.func.count(), sa.BigInteger).label("requests"),
        sa.literal(dt.datetime.now(dt.UTC), sa.DateTime(timezone=True)).label("computed_at"),
    )
    rows = rows.select_from(joined).where(~within_bounds()).group_by(r.tenant, bucket)
    names = ["tenant", "bucket_start", "reason", "requests", "computed_at"]
    conn.execute(sa.insert(q).from_select(names, rows))
    total = sa.select(sa.func.sum(q.requests)).where(q.bucket_start >= start, q.bucket_start < end)
    return int(conn.execute(total).scalar() or 0)


def _rollup(
    conn: Connection,
    table: type,
    grain: str,
    start: dt.datetime,
    end: dt.datetime,
    settings: AnalyticsSettings,
) -> int:
    conn.execute(sa.delete(table).where(table.bucket_start >= start, table.bucket_start < end))
    select = rollup_rows(grain, start, end, settings.slos)
    names = [c.name for c in select.selected_columns]
    res = conn.execute(sa.insert(table).from_select(names, select))
    return int(res.rowcount or 0)


def _set_watermark(conn: Connection, value: dt.datetime) -> None:
    updated = conn.execute(
        sa.update(Watermark)
        .where(Watermark.name == WATERMARK)
        .values(value_ts=value, updated_at=dt.datetime.now(dt.UTC))
    )
    if not updated.rowcount:
        conn.execute(
            sa.insert(Watermark).values(
                name=WATERMARK, value_ts=value, updated_at=dt.datetime.now(dt.UTC)
            )
        )


def _seed_rates(conn: Connection, settings: AnalyticsSettings) -> None:
    """Seed configured tariffs and hardware rates at the epoch; CLI-set rows stay newer."""
    for site, s in settings.sites.items():
        conn.execute(
            sa.delete(EnergyTariff).where(
                EnergyTariff.site == site, EnergyTariff.valid_from == EPOCH
            )
        )
        conn.execute(
            sa.insert(EnergyTariff).values(
                site=site,
                valid_from=EPOCH,
                usd_per_kwh=s.usd_per_kwh,
                pue=s.pue,
                grid_gco2e_per_kwh=s.grid_gco2e_per_kwh,
            )
        )
    for model, usd in settings.hardware_usd_per_hour.items():
        conn.execute(
            sa.delete(HardwareRate).where(
                HardwareRate.hardware_model == model,
                HardwareRate.site == "*",
                HardwareRate.valid_from == EPOCH,
            )
        )
        conn.execute(
            sa.insert(HardwareRate).values(
                hardware_model=model, site="*", valid_from=EPOCH, usd_per_device_hour=usd
            )
        )
