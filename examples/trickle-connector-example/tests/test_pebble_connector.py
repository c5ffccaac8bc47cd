"""What the contract suite cannot know about Pebble: its fields, its paging, its error bodies,
its registration.

Platform answers come from ``tests/fixtures/pebble/``, written from the API
reference in this package's README, served by ``responses``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers
from trickle_connector_example import PebbleConnector
from trickle_connector_example.fake import FakePebble, PebblePost

from trickle.cli import main
from trickle.connectors.base import AccountRef, Identity, PollState
from trickle.connectors.errors import AuthExpired, RateLimited
from trickle.connectors.http import HttpClient
from trickle.connectors.quality import Tier
from trickle.connectors.registry import Registry
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials

API = "https://api.pebble.example/v1"
FIXTURES = Path(__file__).parent / "fixtures" / "pebble"
KEY = "pbk_5d41402abc4b2a76b9719d911017c592"
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
LINKED_AT = datetime(2026, 10, 1, tzinfo=UTC)


def fixture(name: str) -> Any:
    """A payload from tests/fixtures/pebble/."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[datetime]:
    """trickle's clock stands at NOW for each test."""
    clock.set(NOW, frozen=True)
    yield NOW
    clock.reset()


def pebble(**settings: Any) -> PebbleConnector:
    """The connector against the real API root (``responses`` answers for it)."""
    return PebbleConnector(ConnectorSettings(**settings), HttpClient(retries=0))


def account() -> AccountRef:
    """Ada's account, linked on the first of the month."""
    return AccountRef(
        id=7,
        platform_user_id="u_8f14e45f",
        handle="ada",
        linked_at=LINKED_AT,
        session=pebble().session(Credentials(access_token=KEY)),
    )


@responses.activate
def test_identify_reads_the_permanent_uid() -> None:
    responses.get(
        f"{API}/me",
        json=fixture("me.json"),
        match=[matchers.header_matcher({"Authorization": f"Bearer {KEY}"})],
    )
    assert pebble().identify(pebble().session(Credentials(access_token=KEY))) == Identity(
        "u_8f14e45f", "ada"
    )


@responses.activate
def test_a_bookmark_is_a_like_of_the_pebble_paid_to_its_author() -> None:
    responses.get(
        f"{API}/bookmarks",
        json=fixture("bookmarks_page1.json"),
        match=[matchers.query_param_matcher({"limit": "50"})],
    )
    linked_after_these = datetime(2026, 10, 16, tzinfo=UTC)
    result = pebble().poll(account(), PollState(linked_at=linked_after_these))
    first = result.events[0]
    assert first.platform == "pebble"
    assert first.item_id == "pb_k2x9"
    assert first.item_url == "https://pebble.example/p/pb_k2x9"
    assert first.creator_id == "u_c9f0f895"  # the permanent uid, not the username
    assert first.creator_handle == "grace"
    assert first.liked_at == datetime(2026, 10, 15, 11, 58, tzinfo=UTC)
    assert first.observed_at == NOW
    assert [e.item_id for e in result.events] == ["pb_k2x9", "pb_a7m3"]
    assert len(responses.calls) == 1  # a baseline poll never pages
    assert result.state.known == ("pb_k2x9", "pb_a7m3")
    assert result.state.etag is None  # Pebble has no ETag


@responses.activate
def test_paging_follows_next_cursor_until_a_known_bookmark() -> None:
    page1 = fixture("bookmarks_page1.json")
    responses.get(
        f"{API}/bookmarks",
        json=fixture("bookmarks_page2.json"),
        match=[matchers.query_param_matcher({"limit": "50", "cursor": page1["next_cursor"]})],
    )
    responses.get(
        f"{API}/bookmarks", json=page1, match=[matchers.query_param_matcher({"limit": "50"})]
    )
    state = PollState(linked_at=LINKED_AT, baseline_done=True, known=("pb_zz01",))
    result = pebble().poll(account(), state)
    assert [e.item_id for e in result.events] == ["pb_k2x9", "pb_a7m3"]
    assert result.requests == 2
    assert result.state.known == ("pb_k2x9", "pb_a7m3", "pb_zz01")


@responses.activate
def test_page_size_is_capped_at_pebbles_maximum() -> None:
    responses.get(
        f"{API}/bookmarks",
        json=fixture("bookmarks_page2.json"),
        match=[matchers.query_param_matcher({"limit": "100"})],
    )
    connector = pebble(page_size=500)
    assert connector.page_size == 100
    assert [e.item_id for e in connector.poll(account(), PollState(LINKED_AT)).events] == [
        "pb_zz01"
    ]


@responses.activate
def test_slow_down_waits_for_retry_after() -> None:
    """The reference's 429, with both Retry-After and RateLimit-*: the wait is Retry-After's,
    to the second (the suite, on the real clock, allows two)."""
    responses.get(
        f"{API}/bookmarks",
        status=429,
        json=fixture("error_429_slow_down.json"),
        headers={
            "Retry-After": "90",
            "RateLimit-Limit": "600",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": "90",
        },
    )
    with pytest.raises(RateLimited) as caught:
        pebble().poll(account(), PollState(linked_at=LINKED_AT))
    assert caught.value.retry_at == NOW + timedelta(seconds=90)
    assert caught.value.scope == "account"
    assert "Too many requests" in str(caught.value)


@responses.activate
def test_invalid_key_quotes_pebbles_message() -> None:
    """The reference's 401 body: its message reaches the user (the suite checks that any 401
    is AuthExpired and shows no key)."""
    body = fixture("error_401_invalid_key.json")
    responses.get(f"{API}/me", status=401, json=body)
    with pytest.raises(AuthExpired, match="relink") as caught:
        pebble().identify(pebble().session(Credentials(access_token=KEY)))
    assert body["message"] in str(caught.value)


def test_fake_cursor_stays_valid_while_new_bookmarks_arrive() -> None:
    with FakePebble() as fake:
        fake.add_member("ada", KEY)
        for n in range(3):
            post = PebblePost(id=f"pb_old{n}", author_uid="u_1", author_username="grace")
            fake.bookmark("ada", post, at=NOW - timedelta(hours=3 - n))
        auth = {"Authorization": f"Bearer {KEY}"}
        url = f"{fake.api_url}/bookmarks"
        first = requests.get(url, params={"limit": 2}, headers=auth, timeout=5).json()
        fake.bookmark("ada", PebblePost("pb_new", "u_2", "linus"), at=NOW)
        second = requests.get(
            url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth, timeout=5
        ).json()
    assert [b["pebble"]["id"] for b in first["bookmarks"]] == ["pb_old2", "pb_old1"]
    assert [b["pebble"]["id"] for b in second["bookmarks"]] == ["pb_old0"]
    assert second["next_cursor"] is None


def test_trickle_finds_the_plugin_through_its_entry_point() -> None:
    registry = Registry.from_entry_points()
    assert registry.load("pebble") is PebbleConnector
    (info,) = [i for i in registry.describe() if i.name == "pebble"]
    assert info.available
    assert info.tier is Tier.SILVER
    assert info.source == "trickle_connector_example:PebbleConnector"


def test_trickle_connectors_list_shows_the_plugin_and_its_tier(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["connectors", "list", "--json"]) == 0
    listed = {c["name"]: c for c in json.loads(capsys.readouterr().out)["connectors"]}
    assert listed["pebble"]["available"] is True
    assert listed["pebble"]["tier"] == "silver"
    assert "conditional-requests" not in listed["pebble"]["quality_rules"]
