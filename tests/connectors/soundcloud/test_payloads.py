"""SoundCloud's payload models: URNs as documented, and the reset a 429's body names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from trickle.connectors.errors import PlatformError
from trickle.connectors.payloads import parse_payload
from trickle.connectors.soundcloud.payloads import TRACKS, reset_time

NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def test_the_reset_time_of_the_rate_limits_page_is_read_in_utc() -> None:
    body = {
        "errors": [{"meta": {"remaining_requests": 0, "reset_time": "2026/10/15 14:00:00 +0200"}}]
    }
    assert reset_time(body, NOW) == datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def test_of_several_limits_exceeded_the_latest_reset_counts() -> None:
    body = {
        "errors": [
            {"meta": {"reset_time": "2026/10/15 12:05:00 +0000"}},
            {"meta": {"reset_time": "2026/10/15 13:00:00 +0000"}},
        ]
    }
    assert reset_time(body, NOW) == datetime(2026, 10, 15, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        {"code": 429, "message": "Too Many Requests"},  # the OpenAPI example: no reset
        {"errors": [{"meta": {"reset_time": "2026-10-15T13:00:00Z"}}]},  # not SoundCloud's form
        {"errors": [{"meta": {"reset_time": 1792069200}}]},
        {"errors": "plays"},
        ["not", "an", "object"],
    ],
)
def test_a_body_without_a_readable_reset_names_none(body: Any) -> None:
    assert reset_time(body, NOW) is None


def test_a_track_of_another_kind_of_urn_is_refused() -> None:
    page = {
        "collection": [
            {
                "urn": "soundcloud:playlists:1212781357",
                "permalink_url": "https://soundcloud.com/mira-sol/sets/dust",
                "user": {"urn": "soundcloud:users:743372812", "permalink": "mira-sol"},
            }
        ]
    }
    with pytest.raises(PlatformError, match=r"collection\.0\.urn"):
        parse_payload(TRACKS, page, where="GET /me/likes/tracks")
