"""Mastodon's payload models: an account's handle and the keys that hold across servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trickle.connectors.errors import PlatformError
from trickle.connectors.mastodon.payloads import (
    CREDENTIAL_ACCOUNT,
    FAVOURITES,
    MAX_KEY,
    MAX_USERNAME,
    Account,
)
from trickle.connectors.payloads import parse_payload

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def account(**changes: Any) -> Account:
    body = {**load("verify_credentials.json"), **changes}
    return parse_payload(CREDENTIAL_ACCOUNT, body, where="test")


def test_a_remote_accounts_handle_is_its_acct() -> None:
    remote = account(acct="haskal@cybre.space", username="haskal")
    assert remote.handle == "haskal@cybre.space"


def test_a_local_accounts_bare_acct_is_qualified_with_its_servers_host() -> None:
    assert account().handle == "trwnh@mastodon.example"


def test_the_page_fixtures_parse_field_by_field() -> None:
    first, second = parse_payload(FAVOURITES, load("favourites_page1.json"), where="test")
    assert first.uri == "https://cybre.space/users/haskal/statuses/113350170240109110"
    assert first.account.uri == "https://cybre.space/users/haskal"
    assert second.account.acct == "ada"


def test_a_profile_url_may_be_null_as_the_account_entity_says() -> None:
    assert account(url=None).url is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uri", "mailto:trwnh@mastodon.example"),
        ("uri", "https://mastodon.example/users/tr wnh"),
        ("uri", "/users/trwnh"),
        ("username", "x" * (MAX_USERNAME + 1)),
        ("uri", "https://mastodon.example/users/" + "x" * MAX_KEY),
        ("id", 14715),
        ("acct", None),
    ],
)
def test_out_of_shape_fields_name_themselves(field: str, value: Any) -> None:
    with pytest.raises(PlatformError, match=field):
        account(**{field: value})


def test_a_handle_longer_than_trickle_stores_is_refused() -> None:
    # A remote server may name itself anything: username@domain must fit the 200 characters.
    with pytest.raises(PlatformError, match="longer than 200 characters"):
        account(acct="ann@" + "d" * 180 + ".example", username="a" * 20)


def test_a_status_uri_longer_than_an_item_id_is_refused() -> None:
    page = load("favourites_page2.json")
    page[0]["uri"] = "https://awoo.space/" + "s" * MAX_KEY
    with pytest.raises(PlatformError, match=r"0\.uri"):
        parse_payload(FAVOURITES, page, where="test")
