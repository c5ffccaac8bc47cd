"""The fake X answers as X's API v2 reference and its OAuth 2.0 guide say.

The connector's tests and the demo trust it, so what it promises is checked
here with plain ``requests``: paths, page shapes, paging, rate-limit headers,
problem bodies, and the OAuth 2.0 rules trickle depends on (PKCE, HTTP Basic
for a confidential client, refresh tokens only with ``offline.access``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from trickle.connectors.twitter.fake import FakeX, XPost
from trickle.core.clock import clock

CLIENT_ID = "ZmFrZS10ZXN0LWFwcDoxOmNp"
SECRET = "fake-test-secret-" + "9" * 33
FIELDS = {"expansions": "author_id", "tweet.fields": "created_at,author_id"}
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def x() -> Iterator[FakeX]:
    clock.set(NOW, frozen=True)
    with FakeX() as fake:
        fake.register_app(CLIENT_ID, SECRET, redirect_uris=("http://127.0.0.1:8765/callback",))
        fake.add_user("jack")
        fake.add_user("maker")
        yield fake
    clock.reset()


def token(x: FakeX, username: str = "jack", scope: tuple[str, ...] | None = None) -> str:
    issued = x.issue(username, CLIENT_ID, scope) if scope else x.issue(username, CLIENT_ID)
    return issued.access_token


def get(x: FakeX, path: str, access: str, **params: Any) -> requests.Response:
    return requests.get(
        x.base_url + path, params=params, headers={"Authorization": f"Bearer {access}"}, timeout=5
    )


def likes(x: FakeX, access: str, **params: Any) -> requests.Response:
    return get(x, f"/2/users/{x.users['jack'].id}/liked_tweets", access, **params)


def liked(x: FakeX, count: int) -> list[XPost]:
    """jack likes ``count`` posts of maker's, a minute apart; newest last."""
    posts = []
    for n in range(count):
        post = x.post("maker", f"post {n}")
        x.like("jack", post, at=NOW - timedelta(minutes=count - n))
        posts.append(post)
    return posts


def test_users_me_is_the_tokens_user(x: FakeX) -> None:
    answer = get(x, "/2/users/me", token(x))
    assert answer.json() == {"data": {"id": x.users["jack"].id, "name": "Jack", "username": "jack"}}
    assert answer.headers["x-rate-limit-limit"] == "75"
    assert answer.headers["x-rate-limit-remaining"] == "74"


def test_likes_are_listed_most_recent_first_with_their_authors(x: FakeX) -> None:
    posts = liked(x, 3)
    body = likes(x, token(x), max_results=10, **FIELDS).json()
    assert [p["id"] for p in body["data"]] == [p.id for p in reversed(posts)]
    assert {p["author_id"] for p in body["data"]} == {x.users["maker"].id}
    assert body["includes"]["users"] == [
        {"id": x.users["maker"].id, "name": "Maker", "username": "maker"}
    ]
    assert body["meta"] == {"result_count": 3}


@pytest.mark.parametrize("asked", ["4", "101", "ten"])
def test_max_results_outside_10_to_100_is_an_invalid_request(x: FakeX, asked: str) -> None:
    answer = likes(x, token(x), max_results=asked)
    assert answer.status_code == 400
    assert answer.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"


def test_a_deleted_post_leaves_its_page_short_but_paging_goes_on(x: FakeX) -> None:
    posts = liked(x, 15)
    x.delete_post(posts[-2])
    first = likes(x, token(x), max_results=10, **FIELDS).json()
    assert first["meta"]["result_count"] == 9
    assert "next_token" in first["meta"]
    second = likes(
        x, token(x), max_results=10, pagination_token=first["meta"]["next_token"], **FIELDS
    ).json()
    assert [p["id"] for p in second["data"]] == [p.id for p in reversed(posts[:5])]
    assert "next_token" not in second["meta"]


def test_a_page_token_stays_right_while_new_likes_arrive(x: FakeX) -> None:
    posts = liked(x, 12)
    access = token(x)
    first = likes(x, access, max_results=10).json()
    liked(x, 3)  # newer likes, listed first from now on
    second = likes(x, access, max_results=10, pagination_token=first["meta"]["next_token"]).json()
    assert [p["id"] for p in second["data"]] == [posts[1].id, posts[0].id]


def test_another_users_likes_are_not_shown(x: FakeX) -> None:
    answer = get(x, f"/2/users/{x.users['maker'].id}/liked_tweets", token(x))
    assert answer.status_code == 200
    (problem,) = answer.json()["errors"]
    assert problem["type"] == "https://api.twitter.com/2/problems/not-authorized-for-resource"
    assert "data" not in answer.json()


def test_a_suspended_author_is_left_out_of_includes_and_said_so(x: FakeX) -> None:
    liked(x, 1)
    x.suspend("maker")
    body = likes(x, token(x), **FIELDS).json()
    assert len(body["data"]) == 1
    assert "includes" not in body
    (problem,) = body["errors"]
    assert (problem["section"], problem["resource_type"]) == ("includes", "user")


def test_75_requests_a_window_then_429_until_the_reset(x: FakeX) -> None:
    access = token(x)
    for _ in range(75):
        assert likes(x, access).status_code == 200
    refused = likes(x, access)
    assert refused.status_code == 429
    assert refused.headers["x-rate-limit-remaining"] == "0"
    assert int(refused.headers["x-rate-limit-reset"]) == int(
        (NOW + timedelta(minutes=15)).timestamp()
    )
    assert refused.json()["title"] == "Too Many Requests"
    clock.advance(timedelta(minutes=15))
    assert likes(x, access).status_code == 200


def test_without_like_read_the_likes_are_forbidden(x: FakeX) -> None:
    answer = likes(x, token(x, scope=("tweet.read", "users.read")))
    assert answer.status_code == 403


def test_a_token_expires_after_two_hours(x: FakeX) -> None:
    access = token(x)
    clock.advance(timedelta(hours=2))
    answer = get(x, "/2/users/me", access)
    assert answer.status_code == 401
    assert answer.json() == {
        "title": "Unauthorized",
        "detail": "Unauthorized",
        "type": "about:blank",
        "status": 401,
    }


def refresh(x: FakeX, refresh_token: str, *, basic: bool = True) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if basic:
        auth = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}"}
    else:
        form |= {"client_id": CLIENT_ID, "client_secret": SECRET}
        headers = {}
    return requests.post(f"{x.base_url}/2/oauth2/token", data=form, headers=headers, timeout=5)


def test_a_refresh_token_comes_with_offline_access_only_and_is_single_use(x: FakeX) -> None:
    assert x.issue("jack", CLIENT_ID, ("tweet.read", "users.read")).refresh_token is None
    first = x.issue("maker", CLIENT_ID).refresh_token
    assert first is not None
    renewed = refresh(x, first)
    assert renewed.status_code == 200
    body = renewed.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 7200)
    assert body["refresh_token"] != first
    again = refresh(x, first)
    assert again.json()["error"] == "invalid_grant"


def test_a_confidential_client_must_authenticate_with_http_basic(x: FakeX) -> None:
    first = x.issue("jack", CLIENT_ID).refresh_token
    assert first is not None
    answer = refresh(x, first, basic=False)
    assert answer.json()["error"] == "invalid_client"


def test_the_consent_page_requires_pkce(x: FakeX) -> None:
    x.oauth.sign_in("jack")
    answer = requests.get(
        f"{x.base_url}/i/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": "http://127.0.0.1:8765/callback",
            "scope": "tweet.read users.read like.read offline.access",
            "state": "s" * 20,
        },
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302
    assert "error=invalid_request" in answer.headers["Location"]
