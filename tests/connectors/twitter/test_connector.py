"""The X connector: a liked post is a like, its author the creator; no like time.

Payloads under ``fixtures/`` follow X's API v2 reference and its OpenAPI
document (version 2.159): ``GET /2/users/me`` (``Get2UsersMeResponse``),
``GET /2/users/{id}/liked_tweets`` (``Get2UsersIdLikedTweetsResponse``: ``data``,
``includes.users``, ``meta.next_token``, ``errors``), problem details
(``title``, ``detail``, ``type``) for errors, and the OAuth 2.0 token
endpoint's answer to a refresh.

What every connector must do is the contract suite's (``test_contract.py``);
this module holds X's request shapes, its mappings from the reference
fixtures and its own policy: short pages that still name a next one, errors
beside partial data, errors inside a 200, usage caps, HTTP Basic at the token
endpoint.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from pydantic import SecretStr
from responses import matchers

from trickle.connectors.base import AccountRef, Identity, PollState
from trickle.connectors.errors import (
    AuthExpired,
    Forbidden,
    PlatformError,
    RateLimited,
    TransientError,
)
from trickle.connectors.http import HttpClient
from trickle.connectors.twitter import TwitterConnector
from trickle.connectors.twitter.connector import TwitterSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = "dHJpY2tsZS10ZXN0LWFjY2Vzcy10b2tlbjoxNjY1NDc5NTYzNzYzOjE6MTphdDox"
REFRESH = "dHJpY2tsZS10ZXN0LXJlZnJlc2gtdG9rZW46MTY2NTQ3OTU2Mzc2MzoxOjA6cnQ6MQ"
CLIENT_ID = "dHJpY2tsZS11bml0LXRlc3Q6MTpjaQ"
CLIENT_SECRET = "unit-x-secret-" + "4" * 36
USER_ID = "2244994945"
API = "https://api.x.com"
ME_URL = f"{API}/2/users/me"
LIKED_URL = f"{API}/2/users/{USER_ID}/liked_tweets"
TOKEN_URL = f"{API}/2/oauth2/token"
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
RESET = int((NOW + timedelta(minutes=11)).timestamp())
FIELDS = {
    "expansions": "author_id",
    "tweet.fields": "created_at,author_id",
    "user.fields": "username",
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def limits(remaining: int = 74) -> dict[str, str]:
    """What X sends with every answer of the endpoint."""
    return {
        "x-rate-limit-limit": "75",
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(RESET),
    }


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    clock.set(NOW, frozen=True)
    yield
    clock.reset()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def connector(**settings: Any) -> TwitterConnector:
    values: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": SecretStr(CLIENT_SECRET)}
    values.update(settings)
    return TwitterConnector(TwitterSettings(**values), HttpClient(backoff_factor=0))


@pytest.fixture
def x() -> TwitterConnector:
    return connector()


def account(x: TwitterConnector, credentials: Credentials | None = None) -> AccountRef:
    return AccountRef(
        id=1,
        platform_user_id=USER_ID,
        handle="TwitterDev",
        linked_at=NOW - timedelta(days=1),
        session=x.session(credentials or Credentials(access_token=TOKEN)),
    )


def baseline() -> PollState:
    return PollState(linked_at=NOW - timedelta(days=1))


def after_baseline(*known: str) -> PollState:
    return PollState(linked_at=NOW - timedelta(days=1), baseline_done=True, known=known)


# ---------------------------------------------------------------------------
# Requests and mappings


def test_identify_asks_users_me_with_the_bearer_token(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(
        ME_URL,
        json=load("users_me.json"),
        headers=limits(),
        match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
    )
    identity = x.identify(x.session(Credentials(access_token=TOKEN)))
    assert identity == Identity(platform_user_id=USER_ID, handle="TwitterDev")


def test_a_poll_asks_for_the_accounts_own_likes_with_authors_expanded(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(
        LIKED_URL,
        json=load("liked_tweets_page2.json"),
        headers=limits(),
        match=[matchers.query_param_matcher({**FIELDS, "max_results": "10"})],
    )
    result = x.poll(account(x), baseline())
    assert [e.item_id for e in result.events] == ["1819356203716153415"]


@pytest.mark.parametrize(("asked", "sent"), [(2, 10), (10, 10), (50, 50), (500, 100)])
def test_max_results_is_held_to_what_x_accepts(asked: int, sent: int) -> None:
    assert connector(page_size=asked).page_size == sent


def test_a_liked_post_is_a_like_of_its_author_without_a_like_time(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("liked_tweets_page2.json"), headers=limits())
    (event,) = x.poll(account(x), baseline()).events
    assert event.platform == "twitter"
    assert event.item_id == "1819356203716153415"
    assert event.item_url == "https://x.com/Support/status/1819356203716153415"
    assert (event.creator_id, event.creator_handle) == ("17874544", "Support")
    assert event.liked_at is None  # created_at is when it was posted, not liked
    assert event.observed_at == NOW


def test_a_short_page_that_names_a_next_one_is_followed_with_pagination_token(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    page1 = load("liked_tweets_page1.json")
    mock.get(
        LIKED_URL,
        json=page1,
        headers=limits(),
        match=[matchers.query_param_matcher({**FIELDS, "max_results": "10"})],
    )
    mock.get(
        LIKED_URL,
        json=load("liked_tweets_page2.json"),
        headers=limits(73),
        match=[
            matchers.query_param_matcher(
                {
                    **FIELDS,
                    "max_results": "10",
                    "pagination_token": page1["meta"]["next_token"],
                }
            )
        ],
    )
    result = x.poll(account(x), after_baseline("1700000000000000000"))
    assert [e.item_id for e in result.events] == [
        "1846218532154540127",
        "1346889436626259968",
        "1840676902218707052",
        "1819356203716153415",
    ]
    assert [e.creator_handle for e in result.events] == ["X", "TwitterDev", "X", "Support"]
    assert result.requests == 2


def test_paging_stops_at_the_page_holding_a_known_post(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("liked_tweets_page1.json"), headers=limits())
    result = x.poll(account(x), after_baseline("1346889436626259968"))
    assert [e.item_id for e in result.events] == ["1846218532154540127", "1840676902218707052"]
    assert result.requests == 1


def test_the_baseline_is_the_first_page_of_posts_even_after_an_empty_one(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(
        LIKED_URL,
        json=load("liked_tweets_empty_page_with_next.json"),
        headers=limits(),
        match=[matchers.query_param_matcher({**FIELDS, "max_results": "10"})],
    )
    mock.get(
        LIKED_URL,
        json=load("liked_tweets_page1.json"),
        headers=limits(),
        match=[matchers.query_param_matcher({**FIELDS, "max_results": "10"}, strict_match=False)],
    )
    result = x.poll(account(x), baseline())
    assert len(result.events) == 3  # the first page's; the second is never asked for
    assert result.requests == 2
    assert result.state.known[:3] == tuple(e.item_id for e in result.events)


def test_an_author_x_left_out_is_paid_by_id_and_named_by_it(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("liked_tweets_partial.json"), headers=limits())
    suspended, present = x.poll(account(x), baseline()).events
    assert (suspended.creator_id, suspended.creator_handle) == (
        "1480000000000007919",
        "1480000000000007919",
    )
    assert suspended.item_url == "https://x.com/i/web/status/1848001000000000001"
    assert present.creator_handle == "TwitterDev"


def test_a_page_whose_posts_were_all_deleted_is_an_empty_page_not_an_error(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("liked_tweets_deleted_only.json"), headers=limits())
    result = x.poll(account(x), after_baseline("1"))
    assert result.events == []


def test_an_account_without_likes_has_no_data_at_all(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("liked_tweets_none.json"), headers=limits())
    assert x.poll(account(x), baseline()).events == []


def test_the_rate_limit_headers_of_a_successful_answer_reach_the_worker(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("liked_tweets_none.json"), headers=limits(remaining=1))
    result = x.poll(account(x), baseline())
    assert result.rate_limit is not None
    assert (result.rate_limit.limit, result.rate_limit.remaining) == (75, 1)
    assert result.rate_limit.reset_at == datetime.fromtimestamp(RESET, UTC)


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", 1846218532154540127), ("id", "18462185321545401271234"), ("author_id", "@X")],
)
def test_ids_that_are_not_strings_of_digits_are_malformed(
    x: TwitterConnector, mock: responses.RequestsMock, field: str, value: object
) -> None:
    body = load("liked_tweets_page1.json")
    body["data"][0][field] = value
    mock.get(LIKED_URL, json=body, headers=limits())
    with pytest.raises(PlatformError, match=rf"data\.0\.{field}"):
        x.poll(account(x), baseline())


# ---------------------------------------------------------------------------
# X's errors


def test_401_is_auth_expired(x: TwitterConnector, mock: responses.RequestsMock) -> None:
    mock.get(LIKED_URL, json=load("error_401.json"), status=401, headers=limits())
    with pytest.raises(AuthExpired, match="401 Unauthorized"):
        x.poll(account(x), baseline())


def test_429_waits_until_x_rate_limit_reset(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("error_429.json"), status=429, headers=limits(remaining=0))
    with pytest.raises(RateLimited) as limited:
        x.poll(account(x), baseline())
    assert limited.value.retry_at == datetime.fromtimestamp(RESET, UTC)
    assert limited.value.scope == "account"


def test_a_monthly_usage_cap_waits_a_day(x: TwitterConnector, mock: responses.RequestsMock) -> None:
    mock.get(LIKED_URL, json=load("error_429_usage_capped.json"), status=429)
    with pytest.raises(RateLimited, match="Usage cap exceeded") as limited:
        x.poll(account(x), baseline())
    assert limited.value.retry_at == NOW + timedelta(days=1)


def test_a_daily_usage_cap_waits_for_the_next_utc_day(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    body = {**load("error_429_usage_capped.json"), "period": "Daily"}
    mock.get(LIKED_URL, json=body, status=429)
    with pytest.raises(RateLimited) as limited:
        x.poll(account(x), baseline())
    assert limited.value.retry_at == datetime(2026, 10, 16, tzinfo=UTC)


def test_402_credits_depleted_is_tried_again_later(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    body = {"title": "CreditsDepleted", "detail": "No credits left", "type": "about:blank"}
    mock.get(LIKED_URL, json=body, status=402)
    with pytest.raises(TransientError, match="402"):
        x.poll(account(x), baseline())


def test_403_client_forbidden_says_what_x_said(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("error_403_client_forbidden.json"), status=403)
    with pytest.raises(Forbidden, match="attached to a Project"):
        x.poll(account(x), baseline())


def test_400_invalid_request_is_a_platform_error(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKED_URL, json=load("error_400_invalid_request.json"), status=400)
    with pytest.raises(PlatformError, match="400 One or more parameters"):
        x.poll(account(x), baseline())


def test_a_suspended_account_answered_inside_a_200_must_be_linked_again(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    mock.get(ME_URL, json=load("users_me_suspended.json"), headers=limits())
    with pytest.raises(AuthExpired, match=r"User has been suspended: \[2244994945\]"):
        x.identify(x.session(Credentials(access_token=TOKEN)))


def test_another_problem_inside_a_200_is_a_platform_error(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    body = {"errors": [{"title": "Generic Problem", "detail": "odd", "type": "about:blank"}]}
    mock.get(LIKED_URL, json=body, headers=limits())
    with pytest.raises(PlatformError, match="Generic Problem: odd"):
        x.poll(account(x), baseline())


@pytest.mark.parametrize("padding", [0, 150, 170])
def test_a_problem_inside_a_200_that_echoes_the_token_never_shows_any_of_it(
    x: TwitterConnector, mock: responses.RequestsMock, padding: int
) -> None:
    # Wherever the echo falls, cut short before the session redacts it, a piece would stay.
    detail = f"{'w' * padding} token {TOKEN} is not valid here"
    body = {"errors": [{"title": "Generic Problem", "detail": detail, "type": "about:blank"}]}
    mock.get(LIKED_URL, json=body, headers=limits())
    with pytest.raises(PlatformError, match="Generic Problem") as raised:
        x.poll(account(x), baseline())
    assert TOKEN[:12] not in str(raised.value)


# ---------------------------------------------------------------------------
# Renewing the two-hour token


def test_an_expired_token_is_renewed_with_http_basic_and_the_rotated_refresh_token_saved(
    x: TwitterConnector, mock: responses.RequestsMock
) -> None:
    refreshed = load("token_refreshed.json")
    token_call = mock.post(TOKEN_URL, json=refreshed)
    mock.get(
        LIKED_URL,
        json=load("liked_tweets_none.json"),
        headers=limits(),
        match=[matchers.header_matcher({"Authorization": f"Bearer {refreshed['access_token']}"})],
    )
    saved: list[Credentials] = []
    expired = Credentials(access_token=TOKEN, refresh_token=REFRESH, expires_at=NOW)
    session = x.session(expired, save=lambda old, new: saved.append(new))
    ref = AccountRef(1, USER_ID, "TwitterDev", NOW - timedelta(days=1), session)

    x.poll(ref, baseline())

    (request,) = [call.request for call in token_call.calls]
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {basic}"
    form = parse_qs(str(request.body))
    assert form == {"grant_type": ["refresh_token"], "refresh_token": [REFRESH]}
    (new,) = saved
    assert new.refresh_token == refreshed["refresh_token"]
    assert new.expires_at == NOW + timedelta(hours=2)


# ---------------------------------------------------------------------------
# Settings


def test_the_default_intervals_poll_idle_accounts_rarely() -> None:
    settings = TwitterSettings()
    assert (settings.min_interval_seconds, settings.max_interval_seconds) == (1800, 43200)
    assert settings.missing() == ["client_id", "client_secret"]
    assert TwitterConnector.default_page_size == 10
