"""The Instagram connector's requests, mappings and policy, with ``responses`` as instagram.com.

Instagram documents none of its web API: the fixtures under ``fixtures/`` follow the shapes
instaloader 4.16 sends and reads (the GraphQL viewer and ``edge_saved_media`` queries, the
``api/v1/feed/timeline/`` feed, the login answers) and the error bodies its users report.
What every connector must do is the contract suite's (``test_contract.py``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from trickle.connectors.base import AccountRef, PollState
from trickle.connectors.errors import AuthExpired, PlatformError, RateLimited
from trickle.connectors.http import HttpClient
from trickle.connectors.instagram import InstagramConnector
from trickle.connectors.instagram.client import (
    InstaloaderBridge,
    credentials_from_cookies,
    session_cookies,
)
from trickle.connectors.instagram.connector import (
    RATE_LIMIT_BACKOFF,
    SAVED_QUERY,
    VIEWER_QUERY,
    InstagramSettings,
)
from trickle.core.clock import clock
from trickle.core.credentials import Credentials

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GRAPHQL = "https://www.instagram.com/graphql/query"
FEED = "https://www.instagram.com/api/v1/feed/timeline/"
SESSION_ID = "25025320%3AqW3rTy7uI9oP1aS2%3A27"
CSRF = "Xy7Qw2Lm9Zp4Kd5Tr1ckl3T3stCsrf00"
LINKED_AT = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def connector(**settings: Any) -> InstagramConnector:
    return InstagramConnector(InstagramSettings(**settings), HttpClient(retries=0))


CREDENTIALS = credentials_from_cookies(
    {"sessionid": SESSION_ID, "csrftoken": CSRF, "ds_user_id": "25025320", "mid": "ZmFrZW1pZA"}
)


def account(conn: InstagramConnector) -> AccountRef:
    return AccountRef(
        id=1,
        platform_user_id="25025320",
        handle="ada.makes",
        linked_at=LINKED_AT,
        session=conn.session(CREDENTIALS),
    )


def sent_variables(call: Any) -> dict[str, Any]:
    query = parse_qs(urlsplit(call.request.url).query)
    assert query["query_hash"] == [SAVED_QUERY]
    variables: dict[str, Any] = json.loads(query["variables"][0])
    return variables


@pytest.fixture(autouse=True)
def now() -> Any:
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    yield
    clock.reset()


# -- the session's cookies ---------------------------------------------------------


def test_a_session_is_its_sessionid_and_the_other_cookies_as_one_secret() -> None:
    assert CREDENTIALS.access_token == SESSION_ID
    assert set(CREDENTIALS.extra) == {"cookies"}
    assert "25025320" not in CREDENTIALS.secret_values()  # the account's id is no secret alone
    assert session_cookies(CREDENTIALS)["csrftoken"] == CSRF


@pytest.mark.parametrize(
    ("cookies", "problem"),
    [
        ({"csrftoken": CSRF}, "no sessionid"),
        ({"sessionid": ""}, "no sessionid"),
        ({"sessionid": "a;b"}, "holds characters no cookie may"),
        ({"sessionid": "x", "bad name": "1"}, "named 'bad name'"),
        ({"sessionid": 17}, "not a short text"),
        ({"sessionid": "x" * 2000}, "not a short text"),
        ({f"c{i}": "1" for i in range(41)}, "41 cookies"),
    ],
)
def test_cookies_that_no_session_has_are_refused(cookies: dict[str, Any], problem: str) -> None:
    with pytest.raises((PlatformError, AuthExpired), match=problem):
        credentials_from_cookies(cookies)


# -- identify ------------------------------------------------------------------------


@responses.activate
def test_identify_asks_instaloaders_viewer_query_with_the_session_cookies() -> None:
    responses.get(GRAPHQL, json=load("viewer.json"))

    identity = connector().identify(connector().session(CREDENTIALS))

    assert (identity.platform_user_id, identity.handle) == ("25025320", "ada.makes")
    request = responses.calls[0].request
    assert parse_qs(urlsplit(request.url).query) == {
        "query_hash": [VIEWER_QUERY],
        "variables": ["{}"],
    }
    assert f"sessionid={SESSION_ID}" in request.headers["Cookie"]
    assert f"csrftoken={CSRF}" in request.headers["Cookie"]
    assert request.headers["X-CSRFToken"] == CSRF
    assert request.headers["x-ig-app-id"] == "936619743392459"  # instaloader's web app id
    assert "Chrome" in request.headers["User-Agent"]  # instaloader's, as the web app sends


@responses.activate
def test_a_session_no_longer_logged_in_is_auth_expired() -> None:
    responses.get(GRAPHQL, json=load("viewer_logged_out.json"))

    with pytest.raises(AuthExpired, match="not logged in"):
        connector().identify(connector().session(CREDENTIALS))


# -- poll ------------------------------------------------------------------------------


@responses.activate
def test_a_saved_post_is_a_like_of_its_shortcode_paid_to_its_owners_numeric_id() -> None:
    responses.get(GRAPHQL, json=load("saved_page1.json"))
    conn = connector()

    result = conn.poll(account(conn), PollState(linked_at=LINKED_AT))

    assert [e.item_id for e in result.events] == ["DQx1aB2cD3e", "DQw9zY8xW7v", "DQv5tU4sR3q"]
    first = result.events[0]
    assert first.platform == "instagram"
    assert first.item_url == "https://www.instagram.com/p/DQx1aB2cD3e/"
    assert (first.creator_id, first.creator_handle) == ("1067259270", "natgeo")
    assert first.liked_at is None  # Instagram never says when a post was saved
    assert first.observed_at == clock.now()
    assert sent_variables(responses.calls[0]) == {"id": "25025320", "first": 12}
    assert result.requests == 1
    assert result.state.etag is None


@responses.activate
def test_paging_sends_the_end_cursor_and_stops_at_the_page_of_a_known_post() -> None:
    responses.get(GRAPHQL, json=load("saved_page1.json"))
    responses.get(GRAPHQL, json=load("saved_page2.json"))
    conn = connector(page_size=3)
    state = PollState(linked_at=LINKED_AT, baseline_done=True, known=("DQt7kJ6hG5f",))

    result = conn.poll(account(conn), state)

    assert [e.item_id for e in result.events] == [
        "DQx1aB2cD3e", "DQw9zY8xW7v", "DQv5tU4sR3q", "DQu1pO2nM3l",
    ]  # fmt: skip
    assert sent_variables(responses.calls[0]) == {"id": "25025320", "first": 3}
    assert sent_variables(responses.calls[1]) == {
        "id": "25025320",
        "first": 3,
        "after": "QVFDc2F2ZWRfY3Vyc29yXzE=",
    }
    assert result.state.known[:2] == ("DQx1aB2cD3e", "DQw9zY8xW7v")


def test_the_page_size_is_at_most_fifty() -> None:
    assert connector().page_size == 12
    with pytest.raises(ValueError, match="less than or equal to 50"):
        InstagramSettings(page_size=51)


@responses.activate
def test_a_saved_post_without_its_owners_id_is_a_platform_error_naming_it() -> None:
    responses.get(GRAPHQL, json=load("saved_missing_owner_id.json"))
    conn = connector()

    with pytest.raises(PlatformError, match=r"owner\.id"):
        conn.poll(account(conn), PollState(linked_at=LINKED_AT))


@responses.activate
def test_with_feed_likes_the_feeds_liked_posts_count_too_but_not_ads() -> None:
    responses.get(GRAPHQL, json=load("saved_page2.json"))
    responses.get(FEED, json=load("feed.json"))
    conn = connector(feed_likes=True)
    state = PollState(linked_at=LINKED_AT, baseline_done=True, known=("DRd4liked02",))

    result = conn.poll(account(conn), state)

    assert [e.item_id for e in result.events] == ["DQu1pO2nM3l", "DQt7kJ6hG5f", "DRa1liked01"]
    liked = result.events[-1]
    assert (liked.creator_id, liked.creator_handle) == ("173560420", "cristiano")
    assert result.requests == 2


# -- errors ---------------------------------------------------------------------------


def poll_once() -> None:
    conn = connector()
    conn.poll(account(conn), PollState(linked_at=LINKED_AT))


@responses.activate
def test_a_redirect_to_the_login_page_is_auth_expired() -> None:
    responses.get(
        GRAPHQL,
        status=302,
        headers={"Location": "https://www.instagram.com/accounts/login/?next=/graphql/query"},
    )
    with pytest.raises(AuthExpired, match="relink"):
        poll_once()


@responses.activate
@pytest.mark.parametrize(
    "fixture", ["error_400_checkpoint_required.json", "error_400_challenge_required.json"]
)
def test_a_checkpoint_or_challenge_is_auth_expired(fixture: str) -> None:
    responses.get(GRAPHQL, status=400, json=load(fixture))
    with pytest.raises(AuthExpired):
        poll_once()


@responses.activate
@pytest.mark.parametrize(
    ("status", "fixture"),
    [
        (401, "error_401_please_wait.json"),
        (429, "error_401_please_wait.json"),
        (400, "error_400_feedback_required.json"),
        (200, "error_400_feedback_required.json"),
    ],
)
def test_a_slow_down_waits_an_hour_at_least(status: int, fixture: str) -> None:
    responses.get(GRAPHQL, status=status, json=load(fixture))

    with pytest.raises(RateLimited) as limited:
        poll_once()

    assert limited.value.retry_at >= clock.now() + RATE_LIMIT_BACKOFF


@responses.activate
def test_a_429_that_names_a_later_time_waits_until_then() -> None:
    responses.get(GRAPHQL, status=429, headers={"Retry-After": "7200"})

    with pytest.raises(RateLimited) as limited:
        poll_once()

    assert limited.value.retry_at == clock.now() + timedelta(hours=2)


@responses.activate
def test_a_plain_401_is_auth_expired_and_another_400_a_platform_error() -> None:
    responses.get(GRAPHQL, status=401, json={"message": "", "status": "fail"})
    with pytest.raises(AuthExpired):
        poll_once()
    responses.replace(responses.GET, GRAPHQL, status=400, json=load("error_400_invalid_query.json"))
    with pytest.raises(PlatformError, match="invalid query_hash"):
        poll_once()


@responses.activate
def test_a_failed_status_in_a_200_that_is_no_challenge_is_a_platform_error() -> None:
    responses.get(GRAPHQL, json={"message": "", "status": "fail"})
    with pytest.raises(PlatformError, match="status is fail"):
        poll_once()


# -- the bridge ---------------------------------------------------------------------------


@responses.activate
def test_instaloader_sends_nothing_outside_trickles_http_layer() -> None:
    bridge = InstaloaderBridge(connector().session(CREDENTIALS))

    with pytest.raises(PlatformError, match="outside trickle's HTTP layer"):
        bridge._session.get("https://www.instagram.com/")  # what instaloader's own paths use
    with pytest.raises(PlatformError, match="not sent"):
        bridge.doc_id_graphql_query("27937681195819736", {"id": "1"})  # its POSTs: never
    with pytest.raises(PlatformError, match="is not sent"):
        bridge.get_json("api/v1/users/1/info/", {}, host="i.instagram.com")
    assert len(responses.calls) == 0


@responses.activate
def test_instaloaders_complaints_are_logged_redacted_not_printed(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    bridge = InstaloaderBridge(connector().session(CREDENTIALS))

    bridge.error(f"odd answer for {SESSION_ID}")

    assert capsys.readouterr().err == ""
    assert SESSION_ID not in caplog.text
    assert "odd answer for" in caplog.text


def test_credentials_that_hold_no_session_cannot_sign() -> None:
    with pytest.raises(AuthExpired, match="no Instagram session"):
        session_cookies(Credentials())
    with pytest.raises(AuthExpired, match="unreadable"):
        session_cookies(Credentials(access_token="x", extra={"cookies": "[1"}))
