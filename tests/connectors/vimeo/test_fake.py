"""FakeVimeo answers as Vimeo's reference says, so tests against it mean something."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from trickle.connectors.vimeo.fake import FakeVimeo
from trickle.core.clock import clock

CLIENT_ID = "fake-vimeo-app"
SECRET = "fake-vimeo-secret-0123456789"
START = datetime(2026, 11, 2, 12, tzinfo=UTC)


@pytest.fixture
def vimeo() -> Iterator[FakeVimeo]:
    clock.set(START, frozen=True)
    with FakeVimeo() as fake:
        fake.register_client(CLIENT_ID, SECRET, "client_secret_basic")
        fake.add_account("ines")
        fake.add_account("lena")
        yield fake
    clock.reset()


def get(fake: FakeVimeo, path: str, token: str) -> requests.Response:
    return requests.get(
        fake.base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def test_likes_come_in_the_collection_wrapper_with_relative_paging(vimeo: FakeVimeo) -> None:
    token = vimeo.issue("ines", CLIENT_ID).access_token
    videos = [vimeo.upload("lena", f"film {n}") for n in range(3)]
    for n, video in enumerate(videos):
        vimeo.like_video("ines", video, START - timedelta(hours=3 - n))

    first = get(vimeo, "/me/likes?per_page=2", token)
    body = first.json()
    second = get(vimeo, body["paging"]["next"], token).json()

    assert body["total"] == 3
    assert body["paging"]["next"] == "/me/likes?page=2&per_page=2"
    assert [v["uri"] for v in body["data"] + second["data"]] == [v.uri for v in reversed(videos)]
    assert second["paging"]["next"] is None
    like = body["data"][0]["metadata"]["interactions"]["like"]
    assert like["added_time"] == "2026-11-02T11:00:00+00:00"
    assert first.headers["X-RateLimit-Limit"] == "500"
    assert first.headers["X-RateLimit-Remaining"] == "499"  # its first request of the window


def test_per_page_beyond_100_is_refused(vimeo: FakeVimeo) -> None:
    token = vimeo.issue("ines", CLIENT_ID).access_token
    assert get(vimeo, "/me/likes?per_page=101", token).status_code == 400


def test_the_token_endpoint_is_oauth_access_token_with_basic_auth(vimeo: FakeVimeo) -> None:
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    refused = requests.post(vimeo.base_url + "/oauth/token", timeout=5)
    answer = requests.post(
        vimeo.base_url + "/oauth/access_token",
        data={"grant_type": "authorization_code", "code": "nope", "redirect_uri": "x"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=5,
    )

    assert refused.status_code == 404
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_deleting_the_token_ends_it(vimeo: FakeVimeo) -> None:
    tokens = vimeo.issue("ines", CLIENT_ID)
    gone = requests.delete(
        vimeo.base_url + "/tokens",
        headers={"Authorization": f"Bearer {tokens.access_token}"},
        timeout=5,
    )
    assert gone.status_code == 204
    assert get(vimeo, "/me", tokens.access_token).status_code == 401
