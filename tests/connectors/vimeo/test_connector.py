"""The Vimeo connector: a liked video is a like, the video's owner is the creator.

Payloads under ``fixtures/`` follow Vimeo's OpenAPI spec (``vimeo/openapi`` ``api.yaml``,
API 3.4: the ``user`` and ``video`` schemas, ``metadata.interactions.like`` with
``added_time``, the ``error`` schema) and its common-formats page (the collection
wrapper with ``paging``). The contract suite (``test_contract.py``) does the generic work;
this module holds Vimeo's request shapes, its mappings and its own policy: the API
version, relative ``paging.next``, the 100-video cap, the rate-limit headers and
``DELETE /tokens``.
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
from trickle.connectors.errors import PlatformError, RateLimited
from trickle.connectors.http import HttpClient
from trickle.connectors.quality import Tier
from trickle.connectors.registry import Registry
from trickle.connectors.vimeo import VimeoConnector
from trickle.connectors.vimeo.connector import VimeoSettings
from trickle.connectors.vimeo.payloads import User
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

FIXTURES = Path(__file__).resolve().parent / "fixtures"
API = "https://api.vimeo.com"
LIKES_URL = f"{API}/me/likes"
TOKEN = "f4c3b00cT1ckl3V1m30T0k3nN0tR3al0123456"
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
LINKED_AT = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
LIMITS = {
    "X-RateLimit-Limit": "500",
    "X-RateLimit-Remaining": "498",
    "X-RateLimit-Reset": "2026-10-15T12:15:00+00:00",
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    clock.set(NOW, frozen=True)
    yield
    clock.reset()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def make(**settings: Any) -> VimeoConnector:
    return VimeoConnector(VimeoSettings(**settings), HttpClient(backoff_factor=0))


@pytest.fixture
def vimeo() -> VimeoConnector:
    return make()


def account_of(connector: VimeoConnector) -> AccountRef:
    session = connector.session(Credentials(access_token=TOKEN))
    return AccountRef(1, "/users/99120455", "ines", LINKED_AT, session)


def polled(*known: str) -> PollState:
    return PollState(linked_at=LINKED_AT, baseline_done=True, known=known)


def test_identify_asks_vimeo_for_the_token_owner_in_api_version_3_4(
    vimeo: VimeoConnector, mock: responses.RequestsMock
) -> None:
    mock.get(f"{API}/me", json=load("me.json"), headers=LIMITS)

    identity = vimeo.identify(vimeo.session(Credentials(access_token=TOKEN)))

    assert identity == Identity(platform_user_id="/users/99120455", handle="ines")
    headers = mock.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept"] == "application/vnd.vimeo.*+json;version=3.4"


def test_a_member_without_a_vanity_name_is_known_by_the_user_page() -> None:
    user = User(uri="/users/152184", name="Someone", link="https://vimeo.com/user152184")
    assert user.handle == "user152184"


def test_poll_asks_for_100_liked_videos_a_page(
    vimeo: VimeoConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, json=load("likes_page2.json"), headers=LIMITS)

    vimeo.poll(account_of(vimeo), PollState(linked_at=LINKED_AT))

    assert parse_qs(urlsplit(mock.calls[0].request.url).query) == {"per_page": ["100"]}
    assert mock.calls[0].request.headers["Accept"] == "application/vnd.vimeo.*+json;version=3.4"


def test_a_liked_video_is_a_like_at_vimeos_added_time_paid_to_its_owner(
    vimeo: VimeoConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, json=load("likes_page1.json"), headers=LIMITS)

    result = vimeo.poll(account_of(vimeo), polled("/videos/912400117"))

    assert result.events == [
        LikeEvent(
            platform="vimeo",
            item_id="/videos/258684937",
            item_url="https://vimeo.com/258684937",
            creator_id="/users/152184",
            creator_handle="staff",
            liked_at=datetime(2026, 10, 14, 18, 2, 11, tzinfo=UTC),
            observed_at=NOW,
        )
    ]


def test_paging_follows_the_relative_paging_next_on_the_api_root(
    vimeo: VimeoConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, json=load("likes_page1.json"), headers=LIMITS)
    mock.get(f"{LIKES_URL}?page=2&per_page=2", json=load("likes_page2.json"), headers=LIMITS)

    result = vimeo.poll(account_of(vimeo), polled("/videos/1"))

    assert mock.calls[1].request.url == f"{LIKES_URL}?page=2&per_page=2"
    night_swim = result.events[-1]
    assert [e.item_id for e in result.events] == [
        "/videos/258684937",
        "/videos/912400117",
        "/videos/733019284",  # the deleted member's film pays nobody and is skipped
    ]
    assert result.events[1].liked_at == datetime(2026, 10, 12, 5, 45, tzinfo=UTC)
    assert night_swim.liked_at is None  # no added_time given: counted from when first seen


def test_the_page_size_is_capped_at_vimeos_100(mock: responses.RequestsMock) -> None:
    connector = make(page_size=250)
    mock.get(LIKES_URL, json=load("likes_page2.json"), headers=LIMITS)

    connector.poll(account_of(connector), PollState(linked_at=LINKED_AT))

    assert parse_qs(urlsplit(mock.calls[0].request.url).query)["per_page"] == ["100"]


def test_every_answer_says_how_much_of_the_rate_limit_is_left(
    vimeo: VimeoConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, json=load("likes_page2.json"), headers=LIMITS)

    result = vimeo.poll(account_of(vimeo), PollState(linked_at=LINKED_AT))

    assert result.rate_limit is not None
    assert (result.rate_limit.limit, result.rate_limit.remaining) == (500, 498)
    assert result.rate_limit.reset_at == NOW + timedelta(minutes=15)


def test_a_429_waits_until_the_rate_limit_resets(
    vimeo: VimeoConnector, mock: responses.RequestsMock
) -> None:
    spent = {**LIMITS, "X-RateLimit-Remaining": "0"}
    mock.get(LIKES_URL, status=429, json=load("error_429.json"), headers=spent)

    with pytest.raises(RateLimited, match="Too many API requests") as raised:
        vimeo.poll(account_of(vimeo), PollState(linked_at=LINKED_AT))

    assert raised.value.retry_at == NOW + timedelta(minutes=15)
    assert raised.value.scope == "account"  # Vimeo limits each member's requests


def test_a_video_uri_is_not_a_user_uri(vimeo: VimeoConnector, mock: responses.RequestsMock) -> None:
    page = load("likes_page1.json")
    page["data"][0]["user"]["uri"] = "/videos/152184"
    mock.get(LIKES_URL, json=page, headers=LIMITS)
    with pytest.raises(PlatformError, match=r"data\.0\.user\.uri"):
        vimeo.poll(account_of(vimeo), PollState(linked_at=LINKED_AT))


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("https://[vimeo.com/staff", "not a URL"),  # urlsplit refuses it: no ValueError escapes
        ("javascript:alert(1)", "not a URL"),
        ("https://vimeo.com/" + "s" * 201, "longer than 200"),  # more than a handle column holds
    ],
)
def test_an_owner_link_that_names_no_profile_is_refused_with_the_field(
    vimeo: VimeoConnector, mock: responses.RequestsMock, link: str, why: str
) -> None:
    page = load("likes_page1.json")
    page["data"][0]["user"]["link"] = link
    mock.get(LIKES_URL, json=page, headers=LIMITS)
    with pytest.raises(PlatformError, match=rf"data\.0\.user.*{why}"):
        vimeo.poll(account_of(vimeo), PollState(linked_at=LINKED_AT))


@pytest.mark.parametrize("status", [204, 401])
def test_unlinking_deletes_the_token(
    vimeo: VimeoConnector, mock: responses.RequestsMock, status: int
) -> None:
    body = load("error_401.json") if status == 401 else None
    mock.delete(f"{API}/tokens", status=status, json=body)

    assert vimeo.revoke(Credentials(access_token=TOKEN)) is True  # 401: it was gone already

    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_the_installed_connector_is_listed_gold_with_both_flows() -> None:
    registry = Registry.from_entry_points()
    assert registry.load("vimeo") is VimeoConnector
    [bare] = [i for i in registry.describe({}) if i.name == "vimeo"]
    assert bare.tier is Tier.GOLD
    assert set(bare.not_applicable) == {"conditional-requests", "refreshes-credentials"}
    assert bare.ready_flows == ("token",)
    assert [f.missing_settings for f in bare.flows] == [("client_id", "client_secret"), ()]
