"""The pnut.io and App.net connectors: a bookmarked or starred post is a like of its author's.

Payloads under ``fixtures/`` follow the references: pnut.io's API documentation
(``GET /v1/users/{user_id}/bookmarks``, ``GET /v1/users/me``, the response envelope, the
error answer, rate limits) and App.net's archived api-spec (``GET
/stream/0/users/{user_id}/stars``, the Post and User objects, pagination). The contract
suite (``test_contract.py``) checks what every connector must do; this module holds the
request shapes, the mappings from the fixtures and each dialect's own policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from trickle.connectors.base import AccountRef, Identity, PollState
from trickle.connectors.errors import AuthExpired, NotConfigured, PlatformError, RateLimited
from trickle.connectors.http import HttpClient
from trickle.connectors.pnut import AppNetConnector, PnutConnector
from trickle.connectors.pnut.connector import APPNET_CLOSED, AdnSettings, AppNetSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = "pnut-t0k3n-0f-th3-t3st-4cc0unt-9f3a61c2d7"
PNUT = "https://api.pnut.io/v1"
BOOKMARKS = f"{PNUT}/users/1/bookmarks"
ADN = "https://adn.example.org"
STARS = f"{ADN}/stream/0/users/1/stars"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def load(dialect: str, name: str) -> Any:
    return json.loads((FIXTURES / dialect / name).read_text())


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def limits(remaining: int = 4990, reset: int = 1800) -> dict[str, str]:
    """The three headers every answer of both APIs carries (reset: seconds from now)."""
    return {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


@pytest.fixture(autouse=True)
def frozen_clock() -> None:
    clock.set(NOW, frozen=True)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def pnut(**settings: Any) -> PnutConnector:
    return PnutConnector(AdnSettings(**settings), HttpClient(backoff_factor=0))


def appnet(**settings: Any) -> AppNetConnector:
    return AppNetConnector(AppNetSettings(**settings), HttpClient(backoff_factor=0))


def account(connector: PnutConnector | AppNetConnector, token: str = TOKEN) -> AccountRef:
    return AccountRef(
        id=1,
        platform_user_id="1",
        handle="33MHz",
        linked_at=NOW - timedelta(days=3),
        session=connector.session(Credentials(access_token=token)),
    )


def later_state(*known: str) -> PollState:
    return PollState(linked_at=NOW - timedelta(days=3), baseline_done=True, known=known)


# -- pnut.io --------------------------------------------------------------------------------


def test_a_bookmark_is_a_like_of_the_post_paid_to_its_authors_permanent_id(
    mock: responses.RequestsMock,
) -> None:
    mock.get(BOOKMARKS, json=load("pnut", "bookmarks_page1.json"), headers=limits())

    result = pnut().poll(account(pnut()), PollState(linked_at=NOW - timedelta(days=3)))

    first, second = result.events
    assert (first.item_id, first.creator_id, first.creator_handle) == ("512034", "144", "ludolphus")
    assert first.item_url == "https://posts.pnut.io/512034"
    assert (second.item_id, second.creator_id, second.creator_handle) == ("2384", "1", "33MHz")
    assert first.liked_at is None
    assert second.liked_at is None
    assert first.observed_at == NOW


def test_a_post_whose_author_left_is_no_like_but_does_not_stop_the_paging(
    mock: responses.RequestsMock,
) -> None:
    mock.get(BOOKMARKS, json=load("pnut", "bookmarks_page1.json"), headers=limits())
    mock.get(BOOKMARKS, json=load("pnut", "bookmarks_page2.json"), headers=limits())

    result = pnut().poll(account(pnut()), later_state("0"))

    assert [e.item_id for e in result.events] == ["512034", "2384", "70311"]  # not 301772
    assert result.requests == 2


def test_pages_follow_the_bookmark_pagination_ids_not_the_post_ids(
    mock: responses.RequestsMock,
) -> None:
    mock.get(BOOKMARKS, json=load("pnut", "bookmarks_page1.json"), headers=limits())
    mock.get(BOOKMARKS, json=load("pnut", "bookmarks_page2.json"), headers=limits())

    pnut(page_size=3).poll(account(pnut()), later_state("0"))

    first, second = (query(call) for call in mock.calls)
    assert first == {"count": ["3"], "include_html": ["0"], "include_counts": ["0"]}
    assert second["before_id"] == ["4125"]  # meta.min_id: the last bookmark's, not post 301772
    assert "since_id" not in second
    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_paging_stops_at_the_page_holding_a_known_post(mock: responses.RequestsMock) -> None:
    mock.get(BOOKMARKS, json=load("pnut", "bookmarks_page1.json"), headers=limits())

    result = pnut().poll(account(pnut()), later_state("2384"))

    assert [e.item_id for e in result.events] == ["512034"]
    assert result.requests == 1  # meta.more was true, but the page held a known post


@pytest.mark.parametrize(("asked", "sent"), [(None, "100"), (50, "50"), (500, "200")])
def test_count_is_at_most_the_documented_200(
    mock: responses.RequestsMock, asked: int | None, sent: str
) -> None:
    mock.get(BOOKMARKS, json=load("pnut", "bookmarks_page2.json"), headers=limits())

    connector = pnut(page_size=asked) if asked else pnut()
    connector.poll(account(connector), later_state())

    assert query(mock.calls[0])["count"] == [sent]


def test_the_identity_is_the_tokens_user(mock: responses.RequestsMock) -> None:
    mock.get(f"{PNUT}/users/me", json=load("pnut", "users_me.json"), headers=limits())

    identity = pnut().identify(pnut().session(Credentials(access_token=TOKEN)))

    assert identity == Identity(platform_user_id="1", handle="33MHz")


def test_a_rate_limit_waits_as_long_as_meta_retry_in_says(mock: responses.RequestsMock) -> None:
    headers = {**limits(remaining=0, reset=573), "Retry-After": "573"}
    mock.get(BOOKMARKS, json=load("pnut", "rate_limited.json"), status=429, headers=headers)

    with pytest.raises(RateLimited) as caught:
        pnut().poll(account(pnut()), later_state())

    assert caught.value.retry_at == NOW + timedelta(seconds=573)


def test_meta_retry_in_is_believed_without_retry_after(mock: responses.RequestsMock) -> None:
    mock.get(BOOKMARKS, json=load("pnut", "rate_limited.json"), status=429)

    with pytest.raises(RateLimited) as caught:
        pnut().poll(account(pnut()), later_state())

    assert caught.value.retry_at == NOW + timedelta(seconds=573)


def test_every_answer_says_how_much_of_the_hour_is_left(mock: responses.RequestsMock) -> None:
    mock.get(BOOKMARKS, json=load("pnut", "bookmarks_page2.json"), headers=limits(4321, 1200))

    result = pnut().poll(account(pnut()), later_state())

    assert result.rate_limit is not None
    assert (result.rate_limit.limit, result.rate_limit.remaining) == (5000, 4321)
    assert result.rate_limit.reset_at == NOW + timedelta(seconds=1200)  # seconds, not a time


@pytest.mark.parametrize(("status", "fixture"), [(401, "unauthorized"), (403, "forbidden")])
def test_a_refused_token_asks_for_a_relink(
    mock: responses.RequestsMock, status: int, fixture: str
) -> None:
    mock.get(BOOKMARKS, json=load("pnut", f"{fixture}.json"), status=status)

    with pytest.raises(AuthExpired) as caught:
        pnut().poll(account(pnut()), later_state())

    assert load("pnut", f"{fixture}.json")["meta"]["error_message"] in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_an_unknown_user_is_a_platform_error(mock: responses.RequestsMock) -> None:
    mock.get(BOOKMARKS, json={"meta": {"code": 404, "error_message": "Not found."}}, status=404)

    with pytest.raises(PlatformError, match=r"404 Not found\."):
        pnut().poll(account(pnut()), later_state())


def test_more_than_a_page_of_posts_is_refused(mock: responses.RequestsMock) -> None:
    page = load("pnut", "bookmarks_page2.json")
    page["data"] = page["data"] * 201
    mock.get(BOOKMARKS, json=page, headers=limits())

    with pytest.raises(PlatformError, match="data"):
        pnut().poll(account(pnut()), later_state())


def test_unlinking_deletes_a_token_trickles_app_obtained(mock: responses.RequestsMock) -> None:
    mock.delete(f"{PNUT}/token", json=load("pnut", "token_delete.json"), headers=limits())
    credentials = Credentials(access_token=TOKEN, issued_by="oauth2")

    assert pnut().revoke(credentials) is True
    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_unlinking_counts_a_token_already_refused_as_revoked(mock: responses.RequestsMock) -> None:
    mock.delete(f"{PNUT}/token", json=load("pnut", "unauthorized.json"), status=401)

    assert pnut().revoke(Credentials(access_token=TOKEN, issued_by="oauth2")) is True


def test_unlinking_leaves_a_pasted_token_to_its_owner(mock: responses.RequestsMock) -> None:
    assert pnut().revoke(Credentials(access_token=TOKEN, issued_by="token")) is False
    assert not mock.calls


# -- App.net ----------------------------------------------------------------------------------


def test_a_star_is_a_like_of_the_post_at_its_canonical_url(mock: responses.RequestsMock) -> None:
    mock.get(STARS, json=load("appnet", "stars_page1.json"), headers=limits())
    mock.get(STARS, json=load("appnet", "stars_page2.json"), headers=limits())
    connector = appnet(base_url=ADN)

    result = connector.poll(account(connector), later_state())

    first, second = result.events
    assert (first.item_id, first.creator_id, first.creator_handle) == ("1", "2", "berg")
    assert first.item_url == "https://alpha.app.net/berg/post/1"
    assert (second.item_id, second.creator_id) == ("88", "1")  # post 914's author is gone
    assert second.item_url == f"{ADN}/stream/0/posts/88"  # no canonical_url: its API address
    assert query(mock.calls[1])["before_id"] == ["12"]  # the star's pagination id
    assert "include_html" not in query(mock.calls[0])
    assert first.liked_at is None


def test_the_appnet_identity_is_the_tokens_user(mock: responses.RequestsMock) -> None:
    mock.get(f"{ADN}/stream/0/users/me", json=load("appnet", "users_me.json"), headers=limits())
    connector = appnet(base_url=ADN + "/")

    identity = connector.identify(connector.session(Credentials(access_token=TOKEN)))

    assert identity == Identity(platform_user_id="1", handle="mthurman")


def test_an_appnet_rate_limit_waits_for_retry_after(mock: responses.RequestsMock) -> None:
    headers = {**limits(remaining=0, reset=900), "Retry-After": "60"}
    mock.get(STARS, json=load("appnet", "rate_limited.json"), status=429, headers=headers)
    connector = appnet(base_url=ADN)

    with pytest.raises(RateLimited) as caught:
        connector.poll(account(connector), later_state())

    assert caught.value.retry_at == NOW + timedelta(seconds=60)


def test_an_invalid_appnet_token_asks_for_a_relink(mock: responses.RequestsMock) -> None:
    mock.get(STARS, json=load("appnet", "invalid_token.json"), status=401)
    connector = appnet(base_url=ADN)

    with pytest.raises(AuthExpired, match="The passed OAuth token was not valid"):
        connector.poll(account(connector), later_state())


def test_without_a_server_appnet_refuses_to_call_the_closed_host() -> None:
    connector = appnet()

    with pytest.raises(NotConfigured) as caught:
        connector.session(Credentials(access_token=TOKEN))

    message = str(caught.value)
    assert APPNET_CLOSED in message
    assert "[connectors.appnet] base_url" in message
    assert connector.settings.missing() == ["base_url"]


def test_appnet_links_through_the_servers_own_oauth_origin_only() -> None:
    code_flow = AppNetConnector.link_flows[0]

    assert code_flow.kind == "oauth2"
    assert code_flow.needs == ("oauth_base_url", "client_id", "client_secret")
    assert appnet(base_url=ADN, client_id="x", client_secret="y").settings.missing(
        code_flow.needs
    ) == ["oauth_base_url"]


def test_appnet_is_declared_legacy_with_the_day_app_net_closed() -> None:
    legacy = AppNetConnector.legacy

    assert legacy is not None
    assert legacy.closed_on.isoformat() == "2017-03-15"
    assert "base_url" in legacy.note
    assert PnutConnector.legacy is None
