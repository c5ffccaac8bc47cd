"""The clock every part of trickle reads the time from."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from trickle.core.clock import Clock, clock, ensure_utc

INSTANT = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def test_an_untouched_clock_tells_real_utc_time() -> None:
    before = datetime.now(UTC)
    now = Clock().now()
    after = datetime.now(UTC)
    assert before <= now <= after
    assert now.tzinfo is UTC


def test_a_frozen_clock_stands_still() -> None:
    fixed = Clock()
    fixed.set(INSTANT, frozen=True)
    assert fixed.now() == INSTANT
    assert fixed.now() == INSTANT


def test_advancing_a_frozen_clock_moves_it_exactly() -> None:
    fixed = Clock()
    fixed.set(INSTANT, frozen=True)
    fixed.advance(timedelta(days=31))
    assert fixed.now() == INSTANT + timedelta(days=31)


def test_a_set_clock_keeps_running_from_the_time_it_was_set_to() -> None:
    running = Clock()
    running.set(INSTANT)
    first = running.now()
    assert INSTANT <= first < INSTANT + timedelta(seconds=5)
    later = running.now()
    assert later >= first
    running.advance(timedelta(hours=1))
    assert INSTANT + timedelta(hours=1) <= running.now() < INSTANT + timedelta(hours=1, seconds=5)


def test_setting_a_running_time_unfreezes_the_clock() -> None:
    c = Clock()
    c.set(INSTANT, frozen=True)
    c.set(INSTANT + timedelta(days=1))
    assert INSTANT + timedelta(days=1) <= c.now() < INSTANT + timedelta(days=1, seconds=5)


def test_reset_goes_back_to_real_time() -> None:
    c = Clock()
    c.set(datetime(2001, 1, 1, tzinfo=UTC), frozen=True)
    c.reset()
    assert abs(c.now() - datetime.now(UTC)) < timedelta(seconds=5)
    c.set(datetime(2001, 1, 1, tzinfo=UTC))
    c.reset()
    assert abs(c.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_setting_the_clock_to_another_zone_reports_utc() -> None:
    c = Clock()
    c.set(datetime(2026, 10, 15, 14, 0, tzinfo=timezone(timedelta(hours=2))), frozen=True)
    assert c.now() == INSTANT
    assert c.now().tzinfo is UTC


def test_setting_the_clock_to_a_naive_time_takes_it_as_utc() -> None:
    c = Clock()
    c.set(datetime(2026, 10, 15, 12, 0), frozen=True)
    assert c.now() == INSTANT


def test_the_process_clock_is_what_the_now_fixture_freezes(now: datetime) -> None:
    assert clock.now() == now == INSTANT


def test_advancing_from_many_threads_loses_no_step() -> None:
    c = Clock()
    c.set(INSTANT, frozen=True)

    def step() -> None:
        for _ in range(1000):
            c.advance(timedelta(seconds=1))

    threads = [threading.Thread(target=step) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert c.now() == INSTANT + timedelta(seconds=8000)


def test_ensure_utc_converts_aware_times_and_labels_naive_ones() -> None:
    assert ensure_utc(datetime(2026, 10, 15, 12, 0)) == INSTANT
    assert ensure_utc(datetime(2026, 10, 15, 7, 0, tzinfo=timezone(timedelta(hours=-5)))) == INSTANT
    assert (
        ensure_utc(datetime(2026, 10, 15, 7, 0, tzinfo=timezone(timedelta(hours=-5)))).tzinfo is UTC
    )


def test_a_following_clock_tells_its_sources_time_in_utc() -> None:
    told = [INSTANT.astimezone(timezone(timedelta(hours=2)))]
    following = Clock()
    following.follow(lambda: told[0])
    assert following.now() == INSTANT
    assert following.now().tzinfo is UTC
    told[0] = INSTANT + timedelta(hours=1)
    assert following.now() == INSTANT + timedelta(hours=1)


def test_a_following_clock_is_moved_at_its_source_only() -> None:
    following = Clock()
    following.follow(lambda: INSTANT)
    with pytest.raises(RuntimeError, match="source"):
        following.advance(timedelta(seconds=1))
    assert following.now() == INSTANT


def test_setting_or_resetting_a_following_clock_stops_the_following() -> None:
    following = Clock()
    following.follow(lambda: INSTANT)
    following.set(INSTANT + timedelta(days=1), frozen=True)
    assert following.now() == INSTANT + timedelta(days=1)
    following.follow(lambda: INSTANT)
    following.reset()
    assert abs(following.now() - datetime.now(UTC)) < timedelta(minutes=1)
