"""The GitHub connector: a star is a like, the repository's owner is the creator.

Payloads under ``fixtures/`` (beside this module) follow GitHub's REST reference
(API version 2022-11-28): ``GET /user``, and ``GET /user/starred`` with the
``application/vnd.github.star+json`` media type, whose items are
``{"starred_at", "repo"}``.

What every connector must do (401 and the rate limits as typed errors, 5xx as
TransientError, HTML pages, truncated JSON and missing or mistyped fields as
PlatformError, no token in any error, paging politeness) is checked by the contract
suite in ``test_contract.py``; this module holds GitHub's request shapes, its mappings
from the reference fixtures and its own policy (the 403 rule, the secondary limits).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from pydantic import SecretStr
from responses import matchers

from trickle.connectors.base import AccountRef, Identity, PollState
from trickle.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PlatformError,
    RateLimited,
    TransientError,
)
from trickle.connectors.github import GitHubConnector
from trickle.connectors.github.connector import API_VERSION, STAR_MEDIA_TYPE, GitHubSettings
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.connectors.http import USER_AGENT, HttpClient
from trickle.connectors.settings import ConnectorSettings
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = "ghp_Tr1ckl3T3stT0k3nN0tR3alXy7Qw2Lm9Zp4Kd"
API = "https://api.github.com"
USER_URL = f"{API}/user"
STARRED_URL = f"{API}/user/starred"
LINKED_AT = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
RESET = 1792069200  # 2026-10-15T13:00:00Z, an hour after the ``now`` fixture
ETAG_1 = 'W/"3b1f8a5e0c2d4f6a8b9c0d1e2f3a4b5c"'
ETAG_2 = 'W/"9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"'


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def page_url(page: int, per_page: int = 4) -> str:
    return f"{STARRED_URL}?per_page={per_page}&sort=created&direction=desc&page={page}"


def link(**rels: int) -> str:
    return ", ".join(f'<{page_url(number)}>; rel="{rel}"' for rel, number in rels.items())


def ok_headers(etag: str = ETAG_1, link_header: str | None = None) -> dict[str, str]:
    """What GitHub sends with a page of stars."""
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=60, s-maxage=60",
        "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding",
        "X-GitHub-Media-Type": "github.v3; param=star; format=json",
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4987",
        "x-ratelimit-used": "13",
        "x-ratelimit-reset": str(RESET),
        "x-ratelimit-resource": "core",
    }
    if link_header:
        headers["Link"] = link_header
    return headers


def repo_ids(name: str) -> list[str]:
    return [str(item["repo"]["id"]) for item in load(name)]


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def github() -> GitHubConnector:
    return GitHubConnector(ConnectorSettings(), HttpClient(backoff_factor=0))


@pytest.fixture
def paged() -> GitHubConnector:
    """Four stars a page, so the three page fixtures make one list of ten."""
    return GitHubConnector(ConnectorSettings(page_size=4), HttpClient(backoff_factor=0))


@pytest.fixture
def account(github: GitHubConnector) -> AccountRef:
    return AccountRef(
        id=1,
        platform_user_id="7734521",
        handle="nadia-okafor",
        linked_at=LINKED_AT,
        session=github.session(Credentials(access_token=TOKEN)),
    )


def polled(*known: str, etag: str | None = None) -> PollState:
    """The state after earlier polls that saw ``known``."""
    return PollState(linked_at=LINKED_AT, baseline_done=True, known=known, etag=etag)


FIRST_POLL = PollState(linked_at=LINKED_AT)


# ---------------------------------------------------------------------------
# identify: GET /user


def test_identify_asks_github_who_the_token_belongs_to(
    github: GitHubConnector, mock: responses.RequestsMock
) -> None:
    mock.get(USER_URL, json=load("user.json"))
    identity = github.identify(github.session(Credentials(access_token=TOKEN)))
    assert identity == Identity(platform_user_id="7734521", handle="nadia-okafor")
    headers = mock.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28" == API_VERSION
    assert headers["User-Agent"] == USER_AGENT
    assert len(mock.calls) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda user: user.pop("login"), "login"),
        (lambda user: user.update(login=""), "login"),
        (lambda user: user.pop("id"), "id"),
        (lambda user: user.update(id="7734521"), "id"),
        (lambda user: user.update(id=True), "id"),
        (lambda user: user.update(id=None), "id"),
    ],
    ids=["no-login", "empty-login", "no-id", "id-as-string", "id-as-bool", "id-null"],
)
def test_identify_rejects_a_malformed_user(
    github: GitHubConnector,
    mock: responses.RequestsMock,
    change: Callable[[dict[str, Any]], object],
    field: str,
) -> None:
    user = load("user.json")
    change(user)
    mock.get(USER_URL, json=user)
    with pytest.raises(PlatformError, match=rf"GET /user: malformed payload: {field}: "):
        github.identify(github.session(Credentials(access_token=TOKEN)))


def test_the_fixture_for_a_user_without_login_is_rejected(
    github: GitHubConnector, mock: responses.RequestsMock
) -> None:
    mock.get(USER_URL, json=load("user_missing_login.json"))
    with pytest.raises(PlatformError, match="login: Field required"):
        github.identify(github.session(Credentials(access_token=TOKEN)))


# ---------------------------------------------------------------------------
# poll: what is asked, and what a star becomes


def test_poll_asks_for_stars_newest_first_with_the_time_of_each_star(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(STARRED_URL, json=load("starred_page1.json"), headers=ok_headers())
    github.poll(account, FIRST_POLL)
    assert len(mock.calls) == 1
    request = mock.calls[0].request
    assert urlsplit(request.url)._replace(query="").geturl() == STARRED_URL
    assert query(mock.calls[0]) == {
        "per_page": ["100"],
        "sort": ["created"],
        "direction": ["desc"],
    }
    assert request.headers["Accept"] == "application/vnd.github.star+json" == STAR_MEDIA_TYPE
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert "If-None-Match" not in request.headers  # nothing to compare with yet


def test_a_star_becomes_a_like_of_the_repository_paid_to_its_owner(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef, now: datetime
) -> None:
    mock.get(STARRED_URL, json=load("starred_page1.json"), headers=ok_headers())
    result = github.poll(account, FIRST_POLL)
    assert result.events[0] == LikeEvent(
        platform="github",
        item_id="708093457",
        item_url="https://github.com/harbor-labs/tidewater",
        creator_id="98314762",
        creator_handle="harbor-labs",
        liked_at=datetime(2026, 10, 15, 9, 12, 44, tzinfo=UTC),
        observed_at=now,
    )


def test_an_id_longer_than_trickle_stores_fails_the_poll_as_the_platforms_fault(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    stars = load("starred_page1.json")
    stars[0]["repo"]["owner"]["id"] = int("9" * 201)
    mock.get(STARRED_URL, json=stars, headers=ok_headers())

    with pytest.raises(PlatformError, match="creator_id is longer than 200 characters"):
        github.poll(account, FIRST_POLL)


def test_every_star_on_the_page_is_mapped_field_by_field(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef, now: datetime
) -> None:
    page = load("starred_page1.json")
    mock.get(STARRED_URL, json=page, headers=ok_headers())
    events = github.poll(account, FIRST_POLL).events
    assert len(events) == len(page) == 4
    for event, star in zip(events, page, strict=True):
        repo = star["repo"]
        assert event.platform == "github"
        assert event.item_id == str(repo["id"])
        assert event.item_url == repo["html_url"]
        assert event.creator_id == str(repo["owner"]["id"])
        assert event.creator_handle == repo["owner"]["login"]
        assert event.liked_at == datetime.fromisoformat(star["starred_at"])
        assert event.liked_at is not None
        assert event.liked_at.tzinfo == UTC
        assert event.observed_at == now


def test_users_and_organisations_are_creators_alike(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    page = load("starred_page1.json")
    assert {star["repo"]["owner"]["type"] for star in page} == {"User", "Organization"}
    mock.get(STARRED_URL, json=page, headers=ok_headers())
    events = github.poll(account, FIRST_POLL).events
    creators = {(e.item_id, e.creator_id, e.creator_handle) for e in events}
    assert creators == {
        ("708093457", "98314762", "harbor-labs"),  # an Organization
        ("652118804", "4411203", "mkowalczyk"),
        ("559210377", "21983355", "sofiaberg"),
        ("431876120", "98314762", "harbor-labs"),  # the same organisation, another repo
    }


# ---------------------------------------------------------------------------
# The baseline, paging and the cursor


def test_the_baseline_poll_reads_only_the_first_page_of_stars_older_than_the_link(
    paged: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(
        STARRED_URL,
        json=load("starred_page1.json"),
        headers=ok_headers(link_header=link(next=2, last=3)),
    )
    mock.get(page_url(2), json=load("starred_page2.json"), headers=ok_headers(ETAG_2))
    result = paged.poll(account, PollState(linked_at=datetime(2026, 10, 20, tzinfo=UTC)))
    assert len(mock.calls) == 1
    assert result.requests == 1
    assert [e.item_id for e in result.events] == repo_ids("starred_page1.json")
    assert result.state.baseline_done is True
    assert result.state.known == tuple(repo_ids("starred_page1.json"))


def test_a_baseline_poll_pages_on_while_every_star_was_made_after_the_link(
    paged: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    """Stars piled up between linking and a late first poll are not lost to the baseline."""
    mock.get(
        STARRED_URL,
        json=load("starred_page1.json"),
        headers=ok_headers(link_header=link(next=2, last=3)),
    )
    mock.get(page_url(2), json=load("starred_page2.json"), headers=ok_headers(ETAG_2))
    linked = datetime(2026, 10, 10, tzinfo=UTC)  # between page 1 (all later) and page 2

    result = paged.poll(account, PollState(linked_at=linked))

    assert len(mock.calls) == 2
    assert [e.item_id for e in result.events] == repo_ids("starred_page1.json") + repo_ids(
        "starred_page2.json"
    )
    assert result.state.etag == ETAG_1
    assert result.not_modified is False


def test_paging_follows_the_link_header_and_stops_after_the_page_with_a_known_star(
    paged: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    page1, page2, page3 = (repo_ids(f"starred_page{n}.json") for n in (1, 2, 3))
    mock.get(
        STARRED_URL,
        json=load("starred_page1.json"),
        headers=ok_headers(ETAG_1, link(next=2, last=3)),
        match=[
            matchers.query_param_matcher({"per_page": 4, "sort": "created", "direction": "desc"})
        ],
    )
    mock.get(
        page_url(2),
        json=load("starred_page2.json"),
        headers=ok_headers(ETAG_2, link(prev=1, next=3, last=3, first=1)),
    )
    mock.get(page_url(3), json=load("starred_page3.json"), headers=ok_headers())
    # the last poll saw the oldest star of page 2 and everything before it
    before = polled(page2[-1], *page3, etag='W/"stale"')

    result = paged.poll(account, before)

    assert len(mock.calls) == 2  # page 3 was never requested
    assert result.requests == 2
    assert mock.calls[1].request.url == page_url(2)  # the Link URL, as given
    assert mock.calls[0].request.headers["If-None-Match"] == 'W/"stale"'
    assert "If-None-Match" not in mock.calls[1].request.headers
    new = page1 + page2[:-1]
    assert [e.item_id for e in result.events] == new
    assert result.state.known == (*new, page2[-1], *page3)
    assert result.state.etag == ETAG_1  # the first page's validator, for the next poll


def test_a_known_star_on_the_first_page_means_one_request(
    paged: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    page1 = repo_ids("starred_page1.json")
    mock.get(
        STARRED_URL, json=load("starred_page1.json"), headers=ok_headers(link_header=link(next=2))
    )
    result = paged.poll(account, polled(page1[2], page1[3]))
    assert len(mock.calls) == 1
    assert [e.item_id for e in result.events] == page1[:2]


def test_without_a_known_star_paging_reads_to_the_last_page(
    paged: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(
        STARRED_URL,
        json=load("starred_page1.json"),
        headers=ok_headers(link_header=link(next=2, last=3)),
    )
    mock.get(
        page_url(2),
        json=load("starred_page2.json"),
        headers=ok_headers(link_header=link(next=3, last=3)),
    )
    mock.get(
        page_url(3),
        json=load("starred_page3.json"),
        headers=ok_headers(link_header=link(prev=2, first=1)),
    )
    result = paged.poll(account, polled("1"))
    assert len(mock.calls) == 3
    assert len(result.events) == 10


def test_paging_stops_at_max_pages(mock: responses.RequestsMock, account: AccountRef) -> None:
    connector = GitHubConnector(
        ConnectorSettings(page_size=4, max_pages=2), HttpClient(backoff_factor=0)
    )
    mock.get(
        STARRED_URL,
        json=load("starred_page1.json"),
        headers=ok_headers(link_header=link(next=2, last=3)),
    )
    mock.get(
        page_url(2),
        json=load("starred_page2.json"),
        headers=ok_headers(link_header=link(next=3, last=3)),
    )
    mock.get(page_url(3), json=load("starred_page3.json"), headers=ok_headers())
    result = connector.poll(account, polled("1"))
    assert len(mock.calls) == 2
    assert result.requests == 2
    assert len(result.events) == 8


def test_an_account_without_stars(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(STARRED_URL, json=[], headers=ok_headers())
    result = github.poll(account, FIRST_POLL)
    assert (result.events, result.requests) == ([], 1)
    assert result.state.baseline_done is True
    assert result.state.etag == ETAG_1


# ---------------------------------------------------------------------------
# Conditional requests


def test_an_unchanged_list_costs_one_request_and_yields_nothing(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    before = polled(*repo_ids("starred_page1.json"), etag=ETAG_1)
    mock.get(STARRED_URL, status=304, headers=ok_headers(ETAG_1))
    result = github.poll(account, before)
    assert mock.calls[0].request.headers["If-None-Match"] == ETAG_1
    assert len(mock.calls) == 1
    assert result.not_modified is True
    assert result.events == []
    assert result.requests == 1
    assert result.state == before


def test_a_changed_list_answers_200_with_a_new_etag(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    page1 = repo_ids("starred_page1.json")
    mock.get(STARRED_URL, json=load("starred_page1.json"), headers=ok_headers(ETAG_2))
    result = github.poll(account, polled(*page1[1:], etag=ETAG_1))
    assert result.not_modified is False
    assert [e.item_id for e in result.events] == page1[:1]
    assert result.state.etag == ETAG_2


# ---------------------------------------------------------------------------
# Errors: AuthExpired, RateLimited, TransientError, PlatformError, and nothing else


def test_a_revoked_token_asks_for_relinking(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(STARRED_URL, status=401, json=load("error_401_bad_credentials.json"))
    with pytest.raises(AuthExpired, match="401 Bad credentials"):
        github.poll(account, FIRST_POLL)


@pytest.mark.parametrize("status", [403, 429])
def test_the_primary_rate_limit_waits_until_the_reset(
    github: GitHubConnector,
    mock: responses.RequestsMock,
    account: AccountRef,
    now: datetime,
    status: int,
) -> None:
    mock.get(
        STARRED_URL,
        status=status,
        json=load("error_403_rate_limit.json"),
        headers={
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "5000",
            "x-ratelimit-reset": str(RESET),
            "x-ratelimit-resource": "core",
        },
    )
    with pytest.raises(RateLimited) as caught:
        github.poll(account, FIRST_POLL)
    assert caught.value.retry_at == datetime.fromtimestamp(RESET, UTC)
    assert caught.value.retry_at == datetime(2026, 10, 15, 13, 0, tzinfo=UTC)
    assert caught.value.scope == "account"  # a token's budget is its user's
    assert len(mock.calls) == 1


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_rate_limit_honours_retry_after(
    github: GitHubConnector,
    mock: responses.RequestsMock,
    account: AccountRef,
    now: datetime,
    status: int,
) -> None:
    mock.get(
        STARRED_URL,
        status=status,
        json=load("error_403_secondary_rate_limit.json"),
        headers={"retry-after": "60", "x-ratelimit-remaining": "4212"},
    )
    with pytest.raises(RateLimited) as caught:
        github.poll(account, FIRST_POLL)
    assert caught.value.retry_at == now + timedelta(seconds=60)


def test_a_secondary_rate_limit_without_retry_after_waits_at_least_a_minute(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef, now: datetime
) -> None:
    mock.get(
        STARRED_URL,
        status=403,
        json=load("error_403_secondary_rate_limit.json"),
        headers={"x-ratelimit-remaining": "4212", "x-ratelimit-reset": str(RESET)},
    )
    with pytest.raises(RateLimited) as caught:
        github.poll(account, FIRST_POLL)
    assert caught.value.retry_at >= now + timedelta(minutes=1)


def test_a_403_that_is_not_a_rate_limit_asks_for_a_token_that_may_read_stars(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(STARRED_URL, status=403, json=load("error_403_forbidden.json"))
    with pytest.raises(AuthExpired, match=r"403 Resource not accessible.*relink"):
        github.poll(account, FIRST_POLL)


def test_a_next_link_to_another_host_is_not_followed_with_the_token(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    elsewhere = '<https://evil.example/user/starred?page=2>; rel="next"'
    mock.get(STARRED_URL, json=load("starred_page1.json"), headers={"Link": elsewhere})
    with pytest.raises(PlatformError, match="on another host"):
        github.poll(account, polled("not-on-this-page"))
    assert len(mock.calls) == 1


def test_an_account_without_a_stored_token_must_be_relinked(github: GitHubConnector) -> None:
    with pytest.raises(AuthExpired, match="no github token"):
        github.identify(github.session(Credentials()))


def test_a_5xx_is_retried_then_the_poll_goes_on(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(STARRED_URL, status=502, body="<html><body>Bad Gateway</body></html>")
    mock.get(STARRED_URL, json=load("starred_page1.json"), headers=ok_headers())
    result = github.poll(account, FIRST_POLL)
    assert len(mock.calls) == 2
    assert len(result.events) == 4


def test_a_connection_error_is_transient(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(STARRED_URL, body=requests.ConnectionError("Connection reset by peer"))
    with pytest.raises(TransientError, match="ConnectionError"):
        github.poll(account, FIRST_POLL)


def _drop(path: str) -> Callable[[list[dict[str, Any]]], object]:
    """Remove the field at ``path`` ("0.repo.owner.id") from a page."""

    def change(page: list[dict[str, Any]]) -> None:
        *parents, leaf = path.split(".")
        node: Any = page
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[leaf]

    return change


def _set(path: str, value: object) -> Callable[[list[dict[str, Any]]], object]:
    def change(page: list[dict[str, Any]]) -> None:
        *parents, leaf = path.split(".")
        node: Any = page
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[leaf] = value

    return change


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_drop("2.repo.owner.id"), "2.repo.owner.id: Field required"),
        (_drop("0.repo.owner.login"), "0.repo.owner.login: Field required"),
        (_drop("1.repo.owner"), "1.repo.owner: Field required"),
        (_drop("0.repo.html_url"), "0.repo.html_url: Field required"),
        (_drop("3.repo.id"), "3.repo.id: Field required"),
        (_drop("0.repo"), "0.repo: Field required"),
        (_drop("1.starred_at"), "1.starred_at: Field required"),
        (_set("0.repo.owner.id", "98314762"), "0.repo.owner.id: Input should be a valid integer"),
        (_set("0.repo.owner.id", True), "0.repo.owner.id: Input should be a valid integer"),
        (_set("0.repo.owner.id", None), "0.repo.owner.id: Input should be a valid integer"),
        (_set("1.repo.id", 6.52e8), "1.repo.id: Input should be a valid integer"),
        (_set("0.repo.owner", "harbor-labs"), "0.repo.owner: Input should be a valid dictionary"),
        (_set("0.repo.owner.login", ""), "0.repo.owner.login: String should have at least 1"),
        (_set("0.repo.html_url", 708093457), "0.repo.html_url: Input should be a valid string"),
        (_set("0.starred_at", "last tuesday"), "0.starred_at: Input should be a valid datetime"),
        (_set("0.starred_at", None), "0.starred_at: Input should be a valid datetime"),
        (
            _set("0.starred_at", "9999-12-31T23:59:59-01:00"),
            "0.starred_at: Value error, 9999-12-31T23:59:59-01:00 is outside the calendar in UTC",
        ),
        (
            _set("2.starred_at", "0001-01-01T00:00:00+01:00"),
            "2.starred_at: Value error, 0001-01-01T00:00:00+01:00 is outside the calendar in UTC",
        ),
        (
            _set("0.starred_at", "1969-07-20T20:17:40Z"),
            "0.starred_at: Value error, 1969-07-20T20:17:40Z is before 2000-01-01",
        ),
        (
            _set("1.starred_at", "2126-10-15T12:00:00Z"),
            "1.starred_at: Value error, 2126-10-15T12:00:00Z is in the future",
        ),
        (_set("0.starred_at", "2026-10-15T09:12:44"), "0.starred_at: Input should have timezone"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_malformed_star_is_a_platform_error_naming_the_field(
    github: GitHubConnector,
    mock: responses.RequestsMock,
    account: AccountRef,
    change: Callable[[list[dict[str, Any]]], object],
    named: str,
) -> None:
    page = load("starred_page1.json")
    change(page)
    mock.get(STARRED_URL, json=page, headers=ok_headers())
    with pytest.raises(PlatformError) as caught:
        github.poll(account, FIRST_POLL)
    assert str(caught.value).startswith("GET /user/starred: malformed payload: ")
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("fixture", "named"),
    [
        ("starred_missing_owner_id.json", ["1.repo.owner.id: Field required"]),
        ("starred_wrong_types.json", ["0.repo.owner.id: Input should be", "1.starred_at: Input"]),
        ("starred_not_a_list.json", ["(body): Input should be a valid list"]),
    ],
)
def test_the_malformed_fixtures_are_platform_errors(
    github: GitHubConnector,
    mock: responses.RequestsMock,
    account: AccountRef,
    fixture: str,
    named: list[str],
) -> None:
    mock.get(STARRED_URL, json=load(fixture), headers=ok_headers())
    with pytest.raises(PlatformError) as caught:
        github.poll(account, FIRST_POLL)
    for name in named:
        assert name in str(caught.value)


def test_plain_repositories_without_the_star_media_type_are_refused(
    github: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    # without star+json GitHub lists bare repository objects: no like time, no "repo"
    mock.get(STARRED_URL, json=[star["repo"] for star in load("starred_page1.json")])
    with pytest.raises(PlatformError, match=r"0\.starred_at: Field required"):
        github.poll(account, FIRST_POLL)


def test_a_malformed_second_page_fails_the_poll(
    paged: GitHubConnector, mock: responses.RequestsMock, account: AccountRef
) -> None:
    mock.get(
        STARRED_URL, json=load("starred_page1.json"), headers=ok_headers(link_header=link(next=2))
    )
    mock.get(page_url(2), json=load("starred_missing_owner_id.json"))
    with pytest.raises(PlatformError, match=r"1\.repo\.owner\.id"):
        paged.poll(account, polled("1"))


# Answers only GitHub's tests stage; the contract suite provokes the others (a 401, 403 and
# 429 rate limits, a 503 echoing the token, HTML, truncated and malformed answers) on both
# calls and looks for the token in each error.
ERROR_PATHS: dict[str, tuple[dict[str, Any], type[ConnectorError]]] = {
    "403-secondary": (
        {
            "status": 403,
            "json": load("error_403_secondary_rate_limit.json"),
            "headers": {"retry-after": "60"},
        },
        RateLimited,
    ),
    "403-forbidden": ({"status": 403, "json": load("error_403_forbidden.json")}, AuthExpired),
    "404": ({"status": 404, "json": {"message": "Not Found"}}, PlatformError),
    "422-echoing-the-token": (
        {"status": 422, "json": {"message": f"Validation Failed: bad token {TOKEN}"}},
        PlatformError,
    ),
    "connection": (
        {"body": requests.ConnectionError(f"Authorization: Bearer {TOKEN} was reset")},
        TransientError,
    ),
    "timeout": ({"body": requests.ReadTimeout(f"Bearer {TOKEN} timed out")}, TransientError),
    "not-a-list": ({"json": load("starred_not_a_list.json")}, PlatformError),
}


@pytest.mark.parametrize(("answer", "error"), ERROR_PATHS.values(), ids=ERROR_PATHS.keys())
def test_the_token_never_appears_in_an_error(
    github: GitHubConnector,
    mock: responses.RequestsMock,
    account: AccountRef,
    now: datetime,
    answer: dict[str, Any],
    error: type[ConnectorError],
) -> None:
    mock.get(STARRED_URL, **answer)
    mock.get(USER_URL, **answer)
    with pytest.raises(error) as polling:
        github.poll(account, FIRST_POLL)
    assert TOKEN not in str(polling.value)
    assert TOKEN not in repr(polling.value)
    with pytest.raises(error) as linking:  # linking goes the same way
        github.identify(github.session(account.credentials))
    assert TOKEN not in str(linking.value)
    assert TOKEN not in repr(linking.value)


# ---------------------------------------------------------------------------
# Over real HTTP: FakeGitHub on 127.0.0.1


def test_several_polls_against_fake_github(now: datetime) -> None:
    harbor = dict(owner_login="harbor-labs", owner_id=98314762, owner_type="Organization")
    marek = dict(owner_login="mkowalczyk", owner_id=4411203)
    repos = {
        "old-1": FakeRepo(id=101, name="old-1", **marek),  # type: ignore[arg-type]
        "old-2": FakeRepo(id=102, name="old-2", **marek),  # type: ignore[arg-type]
        "old-3": FakeRepo(id=103, name="old-3", **harbor),  # type: ignore[arg-type]
        "new-1": FakeRepo(id=201, name="new-1", **marek),  # type: ignore[arg-type]
        "new-2": FakeRepo(id=202, name="new-2", **harbor),  # type: ignore[arg-type]
        "new-3": FakeRepo(id=203, name="new-3", **marek),  # type: ignore[arg-type]
        "new-4": FakeRepo(id=204, name="new-4", **harbor),  # type: ignore[arg-type]
    }
    linked_at = now - timedelta(days=2)
    with FakeGitHub() as fake:
        fake.add_user("nadia-okafor", TOKEN, user_id=7734521)
        for hours, name in [(30, "old-1"), (20, "old-2"), (10, "old-3")]:
            fake.star("nadia-okafor", repos[name], at=linked_at - timedelta(hours=hours))
        github = GitHubConnector(
            ConnectorSettings(base_url=fake.base_url, page_size=2), HttpClient(backoff_factor=0)
        )
        credentials = Credentials(access_token=TOKEN)
        identity = github.identify(github.session(credentials))
        assert identity == Identity(platform_user_id="7734521", handle="nadia-okafor")
        account = AccountRef(
            1, identity.platform_user_id, identity.handle, linked_at, github.session(credentials)
        )

        # 1. the baseline: the first page only
        first = github.poll(account, PollState(linked_at=linked_at))
        assert [e.item_id for e in first.events] == ["103", "102"]
        assert first.requests == 1
        assert first.state.baseline_done

        # 2. three new stars: two pages of two, stopping at the page that holds "103"
        for hours, name in [(1, "new-1"), (2, "new-2"), (3, "new-3")]:
            fake.star("nadia-okafor", repos[name], at=linked_at + timedelta(hours=hours))
        second = github.poll(account, first.state)
        assert [e.item_id for e in second.events] == ["203", "202", "201"]
        assert [e.liked_at for e in second.events] == [
            linked_at + timedelta(hours=3),
            linked_at + timedelta(hours=2),
            linked_at + timedelta(hours=1),
        ]
        assert second.requests == 2
        assert not second.not_modified

        # 3. nothing new: one conditional request, a 304, not counted by GitHub
        used = fake.users["nadia-okafor"].used
        third = github.poll(account, second.state)
        assert third.not_modified
        assert (third.events, third.requests) == ([], 1)
        assert third.state == second.state
        assert fake.users["nadia-okafor"].used == used

        # 4. one more star, on an organisation's repository
        fake.star("nadia-okafor", repos["new-4"], at=linked_at + timedelta(hours=4))
        fourth = github.poll(account, third.state)
        assert fourth.requests == 1
        [event] = fourth.events
        assert (event.item_id, event.creator_id, event.creator_handle) == (
            "204",
            "98314762",
            "harbor-labs",
        )
        assert event.item_url == "https://github.com/harbor-labs/new-4"
        assert fourth.state.known[:5] == ("204", "203", "202", "201", "103")

        # 5. rate limited, then revoked
        until = now + timedelta(minutes=20)
        fake.rate_limit("nadia-okafor", until)
        with pytest.raises(RateLimited) as limited:
            github.poll(account, fourth.state)
        assert limited.value.retry_at == until
        fake.rate_limit("nadia-okafor", now - timedelta(seconds=1))
        fake.revoke("nadia-okafor")
        with pytest.raises(AuthExpired) as revoked:
            github.poll(account, fourth.state)
        for exc in (limited.value, revoked.value):
            assert TOKEN not in str(exc)

        assert fake.overlaps == []


# ---------------------------------------------------------------------------
# revoke: DELETE /applications/{client_id}/token

APP_ID = "Iv1.8a61f9b3a7aba766"
APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"
APP_TOKEN = "gho_16C7e42F292c6912E7710c838347Ae178B4a"
REVOKE_URL = f"{API}/applications/{APP_ID}/token"


@pytest.fixture
def with_app() -> GitHubConnector:
    settings = GitHubSettings(client_id=APP_ID, client_secret=SecretStr(APP_SECRET))
    return GitHubConnector(settings, HttpClient(backoff_factor=0))


def test_revoke_deletes_the_token_with_the_apps_credentials_in_basic_auth(
    with_app: GitHubConnector, mock: responses.RequestsMock
) -> None:
    mock.delete(REVOKE_URL, status=204)
    revoked = with_app.revoke(Credentials(access_token=APP_TOKEN, issued_by="device"))
    assert revoked is True
    (call,) = mock.calls
    request = call.request
    assert (request.method, request.url) == ("DELETE", REVOKE_URL)
    basic = base64.b64encode(f"{APP_ID}:{APP_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {basic}"
    assert request.body is not None
    assert json.loads(request.body) == {"access_token": APP_TOKEN}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == API_VERSION


def test_a_token_github_no_longer_knows_counts_as_revoked(
    with_app: GitHubConnector, mock: responses.RequestsMock
) -> None:
    """404: the user revoked trickle's access already; the token is dead either way."""
    mock.delete(REVOKE_URL, status=404, json={"message": "Not Found"})
    assert with_app.revoke(Credentials(access_token=APP_TOKEN, issued_by="oauth2")) is True


def test_a_422_is_a_revocation_that_failed(
    with_app: GitHubConnector, mock: responses.RequestsMock
) -> None:
    """GitHub's 422 is "validation failed, or the endpoint has been spammed": not done."""
    mock.delete(REVOKE_URL, status=422, json={"message": f"Validation Failed {APP_TOKEN}"})
    with pytest.raises(PlatformError, match="422") as failed:
        with_app.revoke(Credentials(access_token=APP_TOKEN, issued_by="oauth2"))
    assert APP_TOKEN not in str(failed.value)


@pytest.mark.parametrize("issued_by", [None, "token"])
def test_a_token_the_user_made_is_not_revoked_by_trickle(
    with_app: GitHubConnector, mock: responses.RequestsMock, issued_by: str | None
) -> None:
    credentials = Credentials(access_token=TOKEN, issued_by=issued_by)
    assert with_app.revoke(credentials) is False
    assert len(mock.calls) == 0


def test_app_credentials_github_refuses_fail_the_revocation_without_showing_them(
    with_app: GitHubConnector, mock: responses.RequestsMock
) -> None:
    mock.delete(
        REVOKE_URL,
        status=401,
        json={"message": f"Bad credentials {APP_SECRET} {APP_TOKEN}"},
    )
    with pytest.raises(PlatformError) as refused:
        with_app.revoke(Credentials(access_token=APP_TOKEN, issued_by="device"))
    assert APP_SECRET not in str(refused.value)
    assert APP_TOKEN not in str(refused.value)
