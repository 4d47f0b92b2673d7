"""A run's work follows the data, not the calendar, and a run stopped midway resumes.

Seen (issue 16): one span dated 2000-01-01 made the first run walk 9,800 empty days (315 s
instead of 1.4 s), and a run killed midway started over because the watermark was written
only at the end, leaving rollups of the hours it had redone stale.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from tests.analytics.fleet import T0, Req, add_device, add_requests, add_samples
from tests.analytics.test_costs import SETTINGS
from wattledger.analytics.jobs import analytics as job
from wattledger.analytics.jobs import run_analytics
from wattledger.models import (
    DeviceEnergyHourly,
    RequestCost,
    RollupDaily,
    RollupHourly,
    Watermark,
    make_engine,
)

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def engine(migrated_url: str):
    e = make_engine(migrated_url)
    yield e
    e.dispose()


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every derived row, in a stable order (volatile columns left out)."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as c:
        for table in (RequestCost, DeviceEnergyHourly, RollupHourly, RollupDaily):
            cols = [
                col
                for col in table.__table__.columns
                if col.name not in ("computed_at", "updated_at", "created_at")
            ]
            rows = c.execute(sa.select(*cols).order_by(*table.__table__.primary_key.columns))
            out[table.__tablename__] = [tuple(r) for r in rows]
    return out


def _fleet(engine: Engine) -> None:
    add_device(engine)
    add_samples(engine, "gpu-a", [(100, 200), (4000, 4100)], seconds=7200)
    add_requests(
        engine,
        [Req(1, 100.0, 2.0, 200.0, 1000, 500), Req(2, 4000.0, 1.0, 4100.0, 800, 400)],
    )


def _with_old_span(engine: Engine, start: dt.datetime) -> None:
    _fleet(engine)
    # A producer with a broken clock: one span long before the rest.
    row = Req(3, 0.0, 1.0, 10.0, 10, 10, device_id=None, provider="openai").row()
    row.start_ts = start
    row.end_ts = start + dt.timedelta(seconds=10)
    from wattledger.models import session_factory

    with session_factory(engine).begin() as s:
        s.add(row)


def test_one_ancient_span_does_not_walk_every_empty_day(engine: Engine) -> None:
    _with_old_span(engine, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    result = run_analytics(engine, SETTINGS, now=T0 + 2 * HOUR)
    # Two chunks hold data (the ancient day and today); the ~9,800 empty days between are
    # skipped, not walked.
    assert len(result.chunks) == 2, result.chunks
    assert result.chunks[0][0] == dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert result.requests == 3


def _every_chunk(conn, start, stop, chunk):  # type: ignore[no-untyped-def]
    """Every chunk of the midnight grid over ``[start, stop)``, empty or not."""
    out, cursor, origin = [], start, job.floor_day(start)
    while cursor < stop:
        end = min(origin + chunk * ((cursor - origin) // chunk + 1), stop)
        out.append((cursor, end))
        cursor = end
    return out


def test_skipping_empty_chunks_gives_the_numbers_of_walking_every_one(engine: Engine) -> None:
    # 40 days and a few hours before the rest, so the grid is not aligned to midnight.
    _with_old_span(engine, T0 - 40 * DAY - 5 * HOUR - dt.timedelta(minutes=17))
    skipped = run_analytics(engine, SETTINGS, now=T0 + 2 * HOUR)
    assert len(skipped.chunks) <= 3, skipped.chunks
    walked = snapshot(engine)
    with engine.begin() as c:
        for table in (RequestCost, DeviceEnergyHourly, RollupHourly, RollupDaily):
            c.execute(sa.delete(table))
    every = job._chunks_with_data
    try:
        job._chunks_with_data = _every_chunk  # type: ignore[assignment]
        full = run_analytics(engine, SETTINGS, now=T0 + 2 * HOUR, full=True)
    finally:
        job._chunks_with_data = every  # type: ignore[assignment]
    assert len(full.chunks) > 40
    assert snapshot(engine) == walked


def test_a_run_stopped_midway_resumes_after_its_last_committed_chunk(engine: Engine) -> None:
    _fleet(engine)
    now = T0 + 2 * HOUR
    small = dt.timedelta(minutes=30)  # four chunks over the two hours

    class Killed(Exception):
        pass

    done: list[tuple[dt.datetime, dt.datetime]] = []
    real = job._attribute_chunk

    def dies_on_third(conn, settings, start, end, now_, result):  # type: ignore[no-untyped-def]
        if len(done) == 2:
            raise Killed
        done.append((start, end))
        real(conn, settings, start, end, now_, result)

    job._attribute_chunk = dies_on_third  # type: ignore[assignment]
    try:
        with pytest.raises(Killed):
            run_analytics(engine, SETTINGS, now=now, chunk=small)
    finally:
        job._attribute_chunk = real  # type: ignore[assignment]
    # Two chunks committed: their costs and rollups are there, and the watermark says so.
    with engine.connect() as c:
        mark = c.execute(sa.select(Watermark.value_ts)).scalar()
        hourly = c.execute(sa.select(sa.func.count()).select_from(RollupHourly)).scalar()
        costed = c.execute(sa.select(sa.func.count()).select_from(RequestCost)).scalar()
    assert mark is not None
    assert job.floor_hour(mark - dt.timedelta(seconds=SETTINGS.lateness_s)) == done[-1][1]
    assert costed == 1 and hourly >= 1
    # The next run resumes at the third chunk, not at the first ...
    resumed = run_analytics(engine, SETTINGS, now=now, chunk=small)
    assert resumed.chunks[0][0] == done[-1][1]
    resumed_rows = snapshot(engine)
    # ... and ends with exactly what one clean run gives.
    with engine.begin() as c:
        for table in (RequestCost, DeviceEnergyHourly, RollupHourly, RollupDaily, Watermark):
            c.execute(sa.delete(table))
    run_analytics(engine, SETTINGS, now=now, chunk=small)
    assert snapshot(engine) == resumed_rows


def test_rederiving_from_any_since_gives_the_numbers_of_a_full_run(engine: Engine) -> None:
    """Issue 16 item 9: a non-midnight --since changed per-request energy by up to 1.6 J."""
    add_device(engine)
    # 30 hours from 10:00 across midnight: a 2-minute request every 7 minutes, with every
    # third one overlapping the next, so chunk edges cut through running requests.
    reqs, busy = [], []
    for k in range(250):
        start = 420.0 * k
        end = start + (500.0 if k % 3 == 0 else 120.0)
        reqs.append(Req(k + 1, start, 1.5, end, 800 + k, 200 + k))
        busy.append((start, end))
    add_samples(engine, "gpu-a", busy, seconds=30 * 3600, step_s=5.0)
    add_requests(engine, reqs)
    now = T0 + 31 * HOUR
    run_analytics(engine, SETTINGS, now=now, full=True)
    full = snapshot(engine)
    for since in (T0 + 14 * HOUR + dt.timedelta(minutes=37), T0 + 3 * HOUR):
        result = run_analytics(engine, SETTINGS, now=now, since=since)
        assert result.window_start == job.floor_day(since)
        assert snapshot(engine) == full, since
