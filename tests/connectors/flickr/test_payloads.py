"""Flickr's payload models: strings where Flickr sends strings, NSIDs that look like NSIDs,
pages no bigger than Flickr's, like times trickle's months can hold."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from trickle.connectors.errors import PlatformError
from trickle.connectors.flickr.payloads import FAVORITES, LOGIN, MAX_PER_PAGE
from trickle.connectors.payloads import parse_payload

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def page(**photo: Any) -> dict[str, Any]:
    """The first page fixture with its first photo's fields changed."""
    body: dict[str, Any] = json.loads((FIXTURES / "favorites_page1.json").read_text())
    body["photos"]["photo"][0].update(photo)
    return body


def test_counts_come_as_numbers_or_strings_of_digits(now: datetime) -> None:
    parsed = parse_payload(FAVORITES, page(), where="getList")
    assert (parsed.photos.page, parsed.photos.pages, parsed.photos.total) == (1, 2, 3)
    assert parsed.photos.photo[0].date_faved == datetime(2026, 10, 13, 12, tzinfo=UTC)


@pytest.mark.parametrize("pages", [True, "-1", "2.0", "", None, 2.0])
def test_a_page_count_that_is_not_digits_is_refused(now: datetime, pages: Any) -> None:
    body = page()
    body["photos"]["pages"] = pages
    with pytest.raises(PlatformError, match=r"photos\.pages"):
        parse_payload(FAVORITES, body, where="getList")


@pytest.mark.parametrize(
    ("date_faved", "why"),
    [
        (1791892800, "string of digits"),
        ("1791892800.5", "string of digits"),
        ("946684799", "before"),  # 1999-12-31T23:59:59Z: older than any month trickle keeps
        ("99999999999", "future"),
    ],
)
def test_a_fave_time_must_be_unix_seconds_in_a_string_within_trickles_range(
    now: datetime, date_faved: Any, why: str
) -> None:
    with pytest.raises(PlatformError, match=rf"date_faved: .*{why}"):
        parse_payload(FAVORITES, page(date_faved=date_faved), where="getList")


@pytest.mark.parametrize("owner", ["Bees", "47058503995", "47058503995@N01 ", 47058503995])
def test_an_owner_is_an_nsid(now: datetime, owner: Any) -> None:
    with pytest.raises(PlatformError, match=r"photo\.0\.owner"):
        parse_payload(FAVORITES, page(owner=owner), where="getList")


def test_a_photo_id_is_a_string_of_digits(now: datetime) -> None:
    with pytest.raises(PlatformError, match=r"photo\.0\.id"):
        parse_payload(FAVORITES, page(id="../2636"), where="getList")


def test_a_page_longer_than_flickr_ever_sends_is_refused(now: datetime) -> None:
    body = page()
    first = body["photos"]["photo"][0]
    body["photos"]["photo"] = [copy.deepcopy(first) for _ in range(MAX_PER_PAGE + 1)]
    with pytest.raises(PlatformError, match=r"photos\.photo: .*at most 500"):
        parse_payload(FAVORITES, body, where="getList")


def test_an_answer_that_is_not_ok_is_not_a_page(now: datetime) -> None:
    body = page()
    body["stat"] = "fail"
    with pytest.raises(PlatformError, match="stat"):
        parse_payload(FAVORITES, body, where="getList")


def test_the_login_names_the_username_from_its_content(now: datetime) -> None:
    body = json.loads((FIXTURES / "login.json").read_text())
    parsed = parse_payload(LOGIN, body, where="login")
    assert (parsed.user.id, parsed.user.username.content) == ("12037949754@N01", "Bees")
    del body["user"]["username"]["_content"]
    with pytest.raises(PlatformError, match=r"user\.username\._content"):
        parse_payload(LOGIN, body, where="login")
