"""The fake Mastodon server answers as Mastodon's documentation and controllers say: favourites
paged by favourite ids in the Link header, remote authors as a server shows them, rate-limit
headers on every answer, Mastodon's error bodies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from trickle.connectors.mastodon.fake import (
    RATE_LIMIT,
    FakeMastodonServer,
    iso8601_6,
    snowflake,
)
from trickle.testing.fake_mastodon import FAVOURITES_PATH, VERIFY_CREDENTIALS_PATH

APP = "fake-test-app"
SECRET = "fake-test-app-secret-" + "x" * 20


@pytest.fixture
def server(now: datetime) -> Iterator[FakeMastodonServer]:
    with FakeMastodonServer() as fake:
        fake.register_client(APP, SECRET)
        fake.add_account("ann")
        yield fake


def token(server: FakeMastodonServer, *scope: str) -> str:
    chosen = scope or ("read:favourites", "read:accounts")
    return server.issue("ann", APP, scope=chosen).access_token


def get(server: FakeMastodonServer, bearer: str, url: str, **params: Any) -> requests.Response:
    target = url if url.startswith("http") else server.base_url + url
    return requests.get(
        target, params=params, headers={"Authorization": f"Bearer {bearer}"}, timeout=5
    )


def links(response: requests.Response) -> dict[str, str]:
    return {
        rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["Link"])
    }


def test_favourites_come_most_recently_favourited_first(
    server: FakeMastodonServer, now: datetime
) -> None:
    old = server.post("maker", at=now - timedelta(days=30))
    new = server.post("maker", at=now - timedelta(days=1))
    server.favourite("ann", new, at=now - timedelta(hours=2))
    server.favourite("ann", old, at=now - timedelta(hours=1))  # an old status, favourited later

    answer = get(server, token(server), FAVOURITES_PATH)

    assert [s["uri"] for s in answer.json()] == [old.uri, new.uri]


def test_a_full_page_links_next_even_when_nothing_follows_and_an_empty_page_has_no_link(
    server: FakeMastodonServer, now: datetime
) -> None:
    statuses = [server.post("maker", at=now - timedelta(days=n + 1)) for n in range(2)]
    for n, status in enumerate(statuses):
        server.favourite("ann", status, at=now - timedelta(hours=n + 1))
    bearer = token(server)

    first = get(server, bearer, FAVOURITES_PATH, limit=2)
    after = get(server, bearer, links(first)["next"])

    assert len(first.json()) == 2
    assert set(links(first)) == {"next", "prev"}
    assert after.json() == []
    assert "Link" not in after.headers


def test_pages_are_by_favourite_ids_never_status_ids(
    server: FakeMastodonServer, now: datetime
) -> None:
    for n in range(3):
        server.favourite("ann", server.post("maker", at=now - timedelta(days=9 - n)), at=now)
    bearer = token(server)

    first = get(server, bearer, FAVOURITES_PATH, limit=2)
    cursor = parse_qs(urlsplit(links(first)["next"]).query)["max_id"][0]
    second = get(server, bearer, links(first)["next"])

    assert cursor not in {s["id"] for s in first.json()}
    assert len(second.json()) == 1
    assert set(links(second)) == {"prev"}  # a short page is the last


def test_limit_is_twenty_by_default_and_forty_at_most(
    server: FakeMastodonServer, now: datetime
) -> None:
    for _ in range(45):
        server.favourite("ann", server.post("maker", at=now - timedelta(days=1)), at=now)
    bearer = token(server)
    assert len(get(server, bearer, FAVOURITES_PATH).json()) == 20
    assert len(get(server, bearer, FAVOURITES_PATH, limit=100).json()) == 40


def test_a_status_of_another_server_shows_its_author_as_a_remote_account(
    server: FakeMastodonServer, now: datetime
) -> None:
    with FakeMastodonServer() as home:
        status = home.post("ada", at=now - timedelta(days=1))
        server.favourite("ann", status, at=now)

        (seen,) = get(server, token(server), FAVOURITES_PATH).json()

        author = seen["account"]
        assert author["acct"] == f"ada@{urlsplit(home.base_url).netloc}"
        assert author["uri"] == f"{home.base_url}/users/ada"
        assert author["url"] == f"{home.base_url}/@ada"
        assert author["id"] != status.author.id  # each server's own id
        assert seen["uri"] == status.uri
        assert seen["id"] != status.id


def test_verify_credentials_is_the_credential_account(server: FakeMastodonServer) -> None:
    body = get(server, token(server), VERIFY_CREDENTIALS_PATH).json()
    assert (body["username"], body["acct"]) == ("ann", "ann")
    assert body["uri"] == f"{server.base_url}/users/ann"
    assert body["id"].isdigit()
    assert "source" in body
    assert "role" in body


def test_every_answer_carries_the_rate_limit_with_an_iso_reset(
    server: FakeMastodonServer, now: datetime
) -> None:
    answer = get(server, token(server), FAVOURITES_PATH)
    assert answer.headers["X-RateLimit-Limit"] == "300"
    assert answer.headers["X-RateLimit-Remaining"] == "299"
    assert answer.headers["X-RateLimit-Reset"] == "2026-10-15T12:05:00.000000Z"


def test_past_three_hundred_requests_in_five_minutes_it_answers_429(
    server: FakeMastodonServer,
) -> None:
    bearer = token(server)
    for _ in range(RATE_LIMIT):
        get(server, bearer, VERIFY_CREDENTIALS_PATH)
    refused = get(server, bearer, VERIFY_CREDENTIALS_PATH)
    assert refused.status_code == 429
    assert refused.json() == {"error": "Too many requests"}
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_a_staged_rate_limit_resets_when_told(server: FakeMastodonServer, now: datetime) -> None:
    until = now + timedelta(minutes=3)
    server.rate_limit("ann", until)
    refused = get(server, token(server), FAVOURITES_PATH)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Reset"] == iso8601_6(until)


def test_mastodons_refusals(server: FakeMastodonServer) -> None:
    assert get(server, "not-a-token", FAVOURITES_PATH).json() == {
        "error": "The access token is invalid"
    }
    scoped = get(server, token(server, "read:accounts"), FAVOURITES_PATH)
    assert scoped.status_code == 403
    app_token = requests.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": APP, "client_secret": SECRET},
        timeout=5,
    ).json()["access_token"]
    own = get(server, app_token, VERIFY_CREDENTIALS_PATH)
    assert (own.status_code, own.json()) == (
        422,
        {"error": "This method requires an authenticated user"},
    )


def test_ids_grow_with_time_like_mastodons() -> None:
    earlier = snowflake(datetime(2026, 1, 1, tzinfo=UTC), 5)
    later = snowflake(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), 1)
    assert earlier < later
