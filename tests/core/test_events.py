"""LikeEvent: one like, normalized across platforms."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from trickle.core.events import LikeEvent

SEEN = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def event(**changes: object) -> LikeEvent:
    values: dict[str, object] = {
        "platform": "github",
        "item_id": "12345",
        "item_url": "https://github.com/carol/tool",
        "creator_id": "583231",
        "creator_handle": "carol",
        "observed_at": SEEN,
    }
    values.update(changes)
    return LikeEvent(**values)  # type: ignore[arg-type]


def test_a_like_without_a_time_counts_when_it_was_first_seen() -> None:
    assert event().effective_at == SEEN


def test_a_like_with_a_time_counts_when_it_was_made() -> None:
    liked = SEEN - timedelta(days=3)
    assert event(liked_at=liked).effective_at == liked


def test_a_like_time_later_than_its_sighting_is_not_believed() -> None:
    assert event(liked_at=SEEN + timedelta(hours=2)).effective_at == SEEN


def test_times_are_stored_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    like = event(
        observed_at=datetime(2026, 11, 1, 8, 0, tzinfo=tokyo),
        liked_at=datetime(2026, 11, 1, 7, 0, tzinfo=tokyo),
    )
    assert like.observed_at == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert like.observed_at.tzinfo is UTC
    assert like.liked_at is not None
    assert like.liked_at.tzinfo is UTC
    assert like.effective_at.month == 10


def test_naive_times_are_taken_as_utc() -> None:
    like = event(observed_at=datetime(2026, 10, 15, 12, 0), liked_at=datetime(2026, 10, 1))
    assert like.observed_at == SEEN
    assert like.liked_at == datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize("field", ["platform", "item_id", "creator_id"])
@pytest.mark.parametrize("bad", ["", None, 42])
def test_the_identifying_fields_must_be_non_empty_strings(field: str, bad: object) -> None:
    with pytest.raises(ValueError, match=f"LikeEvent.{field} must be a non-empty string"):
        event(**{field: bad})


def test_a_like_event_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        event().item_id = "other"  # type: ignore[misc]


def test_two_events_of_the_same_like_are_equal() -> None:
    assert event(liked_at=SEEN) == event(liked_at=SEEN)
    assert event(item_id="1") != event(item_id="2")


@pytest.mark.parametrize("field", ["item_id", "creator_id"])
def test_an_id_longer_than_trickle_stores_is_refused(field: str) -> None:
    event(**{field: "9" * 200})  # the longest kept

    with pytest.raises(ValueError, match=f"{field} is longer than 200 characters"):
        event(**{field: "9" * 201})


def test_a_handle_longer_than_trickle_stores_is_shortened_and_marked() -> None:
    long = event(creator_handle="h" * 500)

    assert len(long.creator_handle) == 200
    assert long.creator_handle.endswith("h\u2026")
    assert event(creator_handle="h" * 200).creator_handle == "h" * 200
