"""FakeSoundCloud answers as SoundCloud's reference says, so tests against it mean something."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from trickle.connectors.soundcloud.fake import FakeSoundCloud, FakeTrack
from trickle.core.clock import clock

CLIENT_ID = "fake-sc-app"
SECRET = "fake-sc-secret-0123456789"
START = datetime(2026, 11, 2, 12, tzinfo=UTC)


@pytest.fixture
def soundcloud() -> Iterator[FakeSoundCloud]:
    clock.set(START, frozen=True)
    with FakeSoundCloud() as fake:
        fake.register_client(CLIENT_ID, SECRET)
        fake.add_account("ines")
        fake.add_account("mira")
        yield fake
    clock.reset()


def get(fake: FakeSoundCloud, url: str, token: str, scheme: str = "OAuth") -> requests.Response:
    absolute = url if url.startswith("http") else fake.base_url + url
    return requests.get(absolute, headers={"Authorization": f"{scheme} {token}"}, timeout=5)


def liked(fake: FakeSoundCloud, count: int) -> list[FakeTrack]:
    """``count`` tracks of mira's that ines likes, a minute apart; newest first."""
    tracks = [fake.upload("mira", f"song {n}") for n in range(count)]
    for n, track in enumerate(tracks):
        fake.like_track("ines", track, START - timedelta(minutes=count - n))
    return list(reversed(tracks))


def test_the_api_takes_the_oauth_scheme_and_no_other(soundcloud: FakeSoundCloud) -> None:
    token = soundcloud.issue("ines", CLIENT_ID).access_token

    assert get(soundcloud, "/me", token).json()["permalink"] == "ines"
    refused = get(soundcloud, "/me", token, scheme="Bearer")
    assert refused.status_code == 401
    assert set(refused.json()) == {"code", "message", "link"}  # SoundCloud's Error schema


def test_pages_follow_next_href_while_likes_arrive(soundcloud: FakeSoundCloud) -> None:
    token = soundcloud.issue("ines", CLIENT_ID).access_token
    tracks = liked(soundcloud, 5)
    first = get(soundcloud, "/me/likes/tracks?linked_partitioning=true&limit=2", token).json()
    soundcloud.like_track("ines", soundcloud.upload("mira", "newer"))  # arrives meanwhile

    second = get(soundcloud, first["next_href"], token).json()
    third = get(soundcloud, second["next_href"], token).json()

    seen = [t["urn"] for page in (first, second, third) for t in page["collection"]]
    assert seen == [track.urn for track in tracks]
    assert "next_href" not in third
    assert first["collection"][0]["user"]["urn"] == soundcloud.accounts["mira"].id


def test_without_linked_partitioning_the_deprecated_bare_list(soundcloud: FakeSoundCloud) -> None:
    token = soundcloud.issue("ines", CLIENT_ID).access_token
    liked(soundcloud, 2)

    body = get(soundcloud, "/me/likes/tracks", token).json()

    assert isinstance(body, list)
    assert len(body) == 2


def test_a_limit_beyond_200_is_refused(soundcloud: FakeSoundCloud) -> None:
    token = soundcloud.issue("ines", CLIENT_ID).access_token
    answer = get(soundcloud, "/me/likes/tracks?linked_partitioning=true&limit=201", token)
    assert answer.status_code == 400


def test_a_rate_limited_account_gets_the_reset_in_the_body_and_no_header(
    soundcloud: FakeSoundCloud,
) -> None:
    token = soundcloud.issue("ines", CLIENT_ID).access_token
    soundcloud.rate_limit("ines", START + timedelta(minutes=30, seconds=10, milliseconds=1))

    answer = get(soundcloud, "/me/likes/tracks?linked_partitioning=true", token)

    assert answer.status_code == 429
    assert "Retry-After" not in answer.headers
    (error,) = answer.json()["errors"]
    assert error["meta"]["reset_time"] == "2026/11/02 12:30:11 +0000"  # rounded up


def test_signing_out_ends_the_session_and_its_refresh_token(soundcloud: FakeSoundCloud) -> None:
    tokens = soundcloud.issue("ines", CLIENT_ID)

    answer = requests.post(
        soundcloud.base_url + "/sign-out", json={"access_token": tokens.access_token}, timeout=5
    )

    assert answer.status_code == 200
    assert not soundcloud.accepts(tokens.credentials())
    again = requests.post(
        soundcloud.base_url + "/sign-out", json={"access_token": tokens.access_token}, timeout=5
    )
    assert again.status_code == 401


def test_only_soundclouds_own_paths_are_served(soundcloud: FakeSoundCloud) -> None:
    token = soundcloud.issue("ines", CLIENT_ID).access_token
    for path in ("/api/me", "/api/likes", "/oauth/authorize"):
        assert get(soundcloud, path, token).status_code == 404
    assert requests.post(soundcloud.base_url + "/oauth/revoke", timeout=5).status_code == 404


def test_tokens_last_3599_seconds_and_refresh_tokens_are_single_use(
    soundcloud: FakeSoundCloud,
) -> None:
    tokens = soundcloud.issue("ines", CLIENT_ID)
    assert tokens.expires_in == 3599
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }
    renewed = requests.post(soundcloud.base_url + "/oauth/token", data=form, timeout=5)
    spent = requests.post(soundcloud.base_url + "/oauth/token", data=form, timeout=5)

    assert renewed.status_code == 200
    assert renewed.json()["refresh_token"] != tokens.refresh_token
    assert spent.status_code == 400
    assert spent.json()["error"] == "invalid_grant"
