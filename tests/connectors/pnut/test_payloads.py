"""The envelope models: ids are strings of digits, pages hold at most 200 posts, unknown
fields are ignored and a post may come without its author."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trickle.connectors.errors import PlatformError
from trickle.connectors.payloads import parse_payload
from trickle.connectors.pnut.payloads import POST_LIST, USER_ENVELOPE

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load(dialect: str, name: str) -> Any:
    return json.loads((FIXTURES / dialect / name).read_text())


@pytest.mark.parametrize(
    ("dialect", "name"),
    [
        ("pnut", "bookmarks_page1.json"),
        ("pnut", "bookmarks_page2.json"),
        ("appnet", "stars_page1.json"),
        ("appnet", "stars_page2.json"),
    ],
)
def test_every_reference_page_parses(dialect: str, name: str) -> None:
    page = parse_payload(POST_LIST, load(dialect, name), where="GET list")

    assert page.meta.code == 200
    assert len(page.data) == len(load(dialect, name)["data"])


def test_a_post_without_user_keeps_its_id() -> None:
    page = parse_payload(POST_LIST, load("pnut", "bookmarks_page1.json"), where="GET list")

    gone = page.data[2]
    assert (gone.id, gone.user) == ("301772", None)


@pytest.mark.parametrize("bad", [1002, True, "", "12a", "1" * 21, None])
def test_a_user_id_that_is_not_a_string_of_digits_is_refused(bad: object) -> None:
    body = load("appnet", "stars_page1.json")
    body["data"][0]["user"]["id"] = bad

    with pytest.raises(PlatformError, match=r"data\.0\.user\.id"):
        parse_payload(POST_LIST, body, where="GET /stream/0/users/1/stars")


def test_meta_more_must_be_a_boolean() -> None:
    body = load("pnut", "bookmarks_page1.json")
    body["meta"]["more"] = "yes"

    with pytest.raises(PlatformError, match=r"meta\.more"):
        parse_payload(POST_LIST, body, where="GET list")


def test_an_error_envelope_is_no_page() -> None:
    with pytest.raises(PlatformError, match="data"):
        parse_payload(POST_LIST, load("pnut", "unauthorized.json"), where="GET list")


def test_the_token_user_is_read_from_data() -> None:
    me = parse_payload(USER_ENVELOPE, load("pnut", "users_me.json"), where="GET /users/me")

    assert (me.data.id, me.data.username) == ("1", "33MHz")
