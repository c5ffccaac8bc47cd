"""The fakes hold to the references where a client can tell: the envelope, paging by the
list's own pagination ids, ``count``'s range, the rate-limit answers, the token shapes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from trickle.connectors.pnut.fake import FakeAppNet, FakePnut
from trickle.core.clock import clock
from trickle.testing.fake_pages import with_query

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)


@pytest.fixture
def pnut() -> Iterator[FakePnut]:
    clock.set(NOW, frozen=True)
    with FakePnut() as fake:
        fake.register_client("cid", "secret", redirect_uris=("http://127.0.0.1/cb",))
        fake.add_account("reader", user_id=7)
        yield fake


def get(fake: FakePnut, path: str, token: str, **params: Any) -> requests.Response:
    return requests.get(
        fake.api_url + path,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def test_bookmarks_page_newest_first_by_pagination_id_whatever_the_post_ids(
    pnut: FakePnut,
) -> None:
    token = pnut.issue("reader", "cid").access_token
    for minutes, post_id in enumerate([900, 5, 4000, 17]):
        pnut.save(
            "reader",
            pnut.post("writer", post_id=post_id),
            NOW - timedelta(hours=1, minutes=-minutes),
        )

    first = get(pnut, "/users/7/bookmarks", token, count=3).json()
    rest = get(pnut, "/users/@READER/bookmarks", token, before_id=first["meta"]["min_id"]).json()

    assert [p["id"] for p in first["data"]] == ["17", "4000", "5"]
    assert first["meta"]["more"] is True
    assert first["meta"]["min_id"] == first["data"][-1]["pagination_id"]
    assert [p["id"] for p in rest["data"]] == ["900"]
    assert rest["meta"]["more"] is False


@pytest.mark.parametrize(("count", "expected"), [("-2", ["b", "a"]), ("0", None), ("201", None)])
def test_count_is_one_to_200_or_the_oldest_when_negative(
    pnut: FakePnut, count: str, expected: list[str] | None
) -> None:
    token = pnut.issue("reader", "cid").access_token
    texts = "abc" + "x" * 22
    for n, text in enumerate(texts):
        pnut.save("reader", pnut.post("writer", text=text), NOW - timedelta(minutes=100 - n))

    page = get(pnut, "/users/me/bookmarks", token, count=count).json()["data"]

    got = [p["content"]["text"] for p in page]
    assert got == (expected if expected is not None else list(reversed(texts))[:20])


def test_a_rate_limited_token_gets_429_with_retry_after_and_retry_in(pnut: FakePnut) -> None:
    token = pnut.issue("reader", "cid").access_token
    pnut.rate_limit("reader", NOW + timedelta(seconds=600))

    answer = get(pnut, "/users/me", token)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "600"
    assert answer.json() == {
        "meta": {"code": 429, "error_message": "Too many requests.", "retry_in": 600}
    }


def test_an_unknown_token_is_401_in_the_envelope(pnut: FakePnut) -> None:
    answer = get(pnut, "/users/me", "not-a-token")

    assert answer.status_code == 401
    assert answer.json()["meta"]["code"] == 401
    assert "data" not in answer.json()


def test_the_token_endpoint_answers_pnuts_shape_for_comma_delimited_scopes(
    pnut: FakePnut,
) -> None:
    pnut.sign_in("reader")
    url = with_query(
        pnut.base_url + "/oauth/authenticate",
        {
            "client_id": "cid",
            "redirect_uri": "http://127.0.0.1:9/cb",
            "scope": "basic,stream",
            "response_type": "code",
        },
    )
    back = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    code = back.split("code=")[1].split("&")[0]

    answer = requests.post(
        pnut.base_url + "/v1/oauth/access_token",
        data={
            "client_id": "cid",
            "client_secret": "secret",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9/cb",
            "grant_type": "authorization_code",
        },
        timeout=5,
    ).json()

    assert set(answer) == {"access_token", "token", "user_id", "username"}
    assert (answer["user_id"], answer["username"]) == ("7", "reader")
    assert answer["token"]["scopes"] == ["basic", "stream"]


def test_appnet_scopes_are_space_separated_and_its_token_answer_has_no_user_id() -> None:
    with FakeAppNet() as fake:
        fake.register_client("cid", "secret", redirect_uris=("http://127.0.0.1/cb",))
        fake.add_account("reader")
        fake.sign_in("reader")
        params = {
            "client_id": "cid",
            "redirect_uri": "http://127.0.0.1:9/cb",
            "response_type": "code",
        }
        comma = with_query(
            fake.base_url + "/oauth/authenticate", {**params, "scope": "basic,stream"}
        )
        space = with_query(
            fake.base_url + "/oauth/authenticate", {**params, "scope": "basic stream"}
        )
        refused = requests.get(comma, allow_redirects=False, timeout=5).headers["Location"]
        back = requests.get(space, allow_redirects=False, timeout=5).headers["Location"]
        code = back.split("code=")[1].split("&")[0]
        answer = requests.post(
            fake.base_url + "/oauth/access_token",
            data={
                "client_id": "cid",
                "client_secret": "secret",
                "code": code,
                "redirect_uri": "http://127.0.0.1:9/cb",
                "grant_type": "authorization_code",
            },
            timeout=5,
        ).json()

    assert "error=invalid_scope" in refused
    assert set(answer) == {"access_token", "token"}
