"""Workers' heartbeats: written with their counters, alive for a few intervals, forgotten."""

from __future__ import annotations

from datetime import datetime, timedelta

from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.heartbeat import beat, stopped, worker_beats


def test_a_beat_records_the_worker_and_its_counters_and_a_later_one_updates_them(
    db: Database, now: datetime
) -> None:
    beat(db, "host:1:a", now, 15, {"stored": 1})
    clock.advance(timedelta(seconds=15))
    beat(db, "host:1:a", now, 15, {"stored": 4})

    with db.reader() as session:
        (only,) = worker_beats(session)
    assert (only.owner, only.started_at, only.seen_at) == ("host:1:a", now, clock.now())
    assert only.stats == {"stored": 4}


def test_a_worker_is_alive_for_three_of_its_intervals(db: Database, now: datetime) -> None:
    beat(db, "host:1:a", now, 10, {})
    with db.reader() as session:
        (last,) = worker_beats(session)
    assert last.alive(now + timedelta(seconds=29))
    assert not last.alive(now + timedelta(seconds=30))


def test_a_worker_that_stopped_is_gone_and_one_silent_for_a_day_is_forgotten(
    db: Database, now: datetime
) -> None:
    beat(db, "host:1:stops", now, 15, {})
    beat(db, "host:2:silent", now, 15, {})
    stopped(db, "host:1:stops")
    clock.advance(timedelta(days=1, seconds=1))
    beat(db, "host:3:new", clock.now(), 15, {})

    with db.reader() as session:
        assert [b.owner for b in worker_beats(session)] == ["host:3:new"]
