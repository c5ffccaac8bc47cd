"""The Mastodon connector: a favourite is a like of the status, paid to its author.

Payloads under ``fixtures/`` follow Mastodon's documentation (the Status and
Account entities, ``GET /api/v1/favourites``, ``GET
/api/v1/accounts/verify_credentials``, the rate-limit headers and the
documented error bodies). What every connector must do is the contract
suite's (``test_contract.py``); this module holds Mastodon's request shapes,
its mappings, its keys across servers and its own error statuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from trickle.connectors.base import AccountRef, PollState
from trickle.connectors.errors import (
    AuthExpired,
    Forbidden,
    PlatformError,
    RateLimited,
    TransientError,
)
from trickle.connectors.flows import RegisteredApp, TokenImport
from trickle.connectors.hosts import HostGuard, HostRefused
from trickle.connectors.http import HttpClient
from trickle.connectors.mastodon import MastodonConnector
from trickle.connectors.mastodon.connector import SCOPES
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.settings import ConnectorSettings
from trickle.core.credentials import Credentials

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = "ZA-Yj3aBD8U8Cm7lKUp-lm9O9BmDgdhHzDeqsY8tlL0"
SERVER = "https://mastodon.example"
FAVOURITES = f"{SERVER}/api/v1/favourites"
VERIFY = f"{SERVER}/api/v1/accounts/verify_credentials"
LINKED_AT = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
EVIL = "https://evil.example/api/v1/favourites"
RESET = "2026-10-15T12:05:00.000000Z"  # five minutes after the ``now`` fixture


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def limits(remaining: int = 299, reset: str = RESET) -> dict[str, str]:
    """The rate-limit headers Mastodon sends with every API answer."""
    return {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": reset,
    }


def link(next_max: str | None, prev_min: str | None, limit: int = 2) -> str:
    rels = []
    if next_max is not None:
        rels.append(f'<{FAVOURITES}?limit={limit}&max_id={next_max}>; rel="next"')
    if prev_min is not None:
        rels.append(f'<{FAVOURITES}?limit={limit}&min_id={prev_min}>; rel="prev"')
    return ", ".join(rels)


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def connector(**settings: Any) -> MastodonConnector:
    return MastodonConnector(ConnectorSettings(**settings), HttpClient(backoff_factor=0))


def account_on(mastodon: MastodonConnector, host: str = SERVER) -> AccountRef:
    return AccountRef(
        id=1,
        platform_user_id=f"{host}/users/trwnh",
        handle="trwnh@mastodon.example",
        linked_at=LINKED_AT,
        session=mastodon.session(Credentials(access_token=TOKEN), host=host),
        host=host,
    )


def polled(*known: str) -> PollState:
    return PollState(linked_at=LINKED_AT, baseline_done=True, known=known)


# ---------------------------------------------------------------------------
# The declaration


def test_it_declares_a_platform_of_many_user_named_servers() -> None:
    assert MastodonConnector.multi_host is True
    assert MastodonConnector.user_supplied_hosts is True
    assert connector().host_guard == HostGuard(allow_private=False)
    assert connector(allow_private_hosts=True).host_guard == HostGuard(allow_private=True)


def test_tier_and_capabilities_say_what_mastodon_offers() -> None:
    # No like time (a favourite has none), no documented ETags, tokens that never expire;
    # the rate-limit headers are on every answer.
    assert MastodonConnector.tier is Tier.GOLD
    assert MastodonConnector.capabilities == frozenset({Capability.RATE_LIMIT_HEADERS})
    assert "like-time" not in MastodonConnector.quality_rules
    assert "conditional-requests" not in MastodonConnector.quality_rules


def test_it_links_through_an_app_registered_on_the_server_or_a_pasted_token() -> None:
    registered, pasted = MastodonConnector.link_flows
    assert isinstance(registered, RegisteredApp)
    assert registered.scopes == ("read:favourites", "read:accounts") == SCOPES
    assert registered.pkce is True
    assert (registered.registration_path, registered.authorize_path) == (
        "/api/v1/apps",
        "/oauth/authorize",
    )
    assert (registered.token_path, registered.revoke_path) == ("/oauth/token", "/oauth/revoke")
    assert isinstance(pasted, TokenImport)
    assert "read:favourites" in pasted.how


def test_a_page_is_at_most_mastodons_forty_statuses() -> None:
    assert connector().page_size == 40
    assert connector(page_size=100).page_size == 40
    assert connector(page_size=10).page_size == 10


# ---------------------------------------------------------------------------
# identify: GET /api/v1/accounts/verify_credentials


def test_identify_is_the_accounts_actor_uri_and_its_handle(mock: responses.RequestsMock) -> None:
    mock.get(VERIFY, json=load("verify_credentials.json"), headers=limits())
    mastodon = connector()

    identity = mastodon.identify(account_on(mastodon).session)

    assert identity.platform_user_id == "https://mastodon.example/users/trwnh"
    assert identity.handle == "trwnh@mastodon.example"
    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_server_cannot_speak_for_an_account_of_another_server(
    mock: responses.RequestsMock,
) -> None:
    # The actor URI is the key a creator's reserved shares wait under: a server (anyone can
    # run one) that answered with another server's actor would claim that creator's money.
    impostor = {
        **load("verify_credentials.json"),
        "acct": "Gargron",
        "uri": "https://mastodon.social/users/Gargron",
    }
    mock.get(VERIFY, json=impostor, headers=limits())
    mastodon = connector()

    with pytest.raises(PlatformError, match=r"mastodon\.social.*not on the server asked"):
        mastodon.identify(account_on(mastodon).session)


def test_identify_with_an_apps_own_token_asks_for_relinking(mock: responses.RequestsMock) -> None:
    mock.get(VERIFY, json=load("error_422_app_token.json"), status=422)
    mastodon = connector()
    with pytest.raises(AuthExpired, match="This method requires an authenticated user"):
        mastodon.identify(account_on(mastodon).session)


def test_a_disabled_login_is_forbidden(mock: responses.RequestsMock) -> None:
    mock.get(VERIFY, json=load("error_403_disabled.json"), status=403)
    mastodon = connector()
    with pytest.raises(Forbidden, match="Your login is currently disabled"):
        mastodon.identify(account_on(mastodon).session)


# ---------------------------------------------------------------------------
# poll: GET /api/v1/favourites


def test_poll_asks_for_favourites_forty_at_a_time(mock: responses.RequestsMock) -> None:
    mock.get(FAVOURITES, json=load("favourites_page2.json"), headers=limits())
    mastodon = connector()

    mastodon.poll(account_on(mastodon), polled())

    (call,) = mock.calls
    assert urlsplit(call.request.url).path == "/api/v1/favourites"
    assert query(call) == {"limit": ["40"]}
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_favourite_is_a_like_of_the_status_paid_to_its_authors_actor(
    mock: responses.RequestsMock,
) -> None:
    mock.get(FAVOURITES, json=load("favourites_page1.json"), headers=limits())
    mastodon = connector()

    remote, local = mastodon.poll(account_on(mastodon), polled()).events

    assert remote.item_id == "https://cybre.space/users/haskal/statuses/113350170240109110"
    assert remote.item_url == "https://cybre.space/@haskal/113350170240109110"
    assert remote.creator_id == "https://cybre.space/users/haskal"
    assert remote.creator_handle == "haskal@cybre.space"
    assert local.creator_id == "https://mastodon.example/users/ada"
    assert local.creator_handle == "ada@mastodon.example"  # a bare acct, qualified
    assert remote.liked_at is None  # favourites carry no time
    assert local.liked_at is None
    assert remote.platform == "mastodon"


def test_the_same_author_seen_from_another_server_is_the_same_creator(
    mock: responses.RequestsMock,
) -> None:
    other = "https://cybre.space"
    mock.get(FAVOURITES, json=load("favourites_page1.json"), headers=limits())
    mock.get(
        f"{other}/api/v1/favourites",
        json=load("favourites_seen_from_cybre_space.json"),
        headers=limits(),
    )
    mastodon = connector()

    here = mastodon.poll(account_on(mastodon), polled()).events[1]
    there = mastodon.poll(account_on(mastodon, other), polled()).events[0]

    seen = load("favourites_seen_from_cybre_space.json")[0]
    assert seen["account"]["id"] != load("favourites_page1.json")[1]["account"]["id"]
    assert (there.creator_id, there.item_id) == (here.creator_id, here.item_id)
    assert there.creator_handle == here.creator_handle == "ada@mastodon.example"


def test_paging_follows_the_link_header_to_the_empty_page_that_ends_it(
    mock: responses.RequestsMock,
) -> None:
    # A full page has "next" even when nothing follows; the empty page after it has no Link.
    mock.get(
        FAVOURITES,
        json=load("favourites_page1.json"),
        headers={**limits(), "Link": link("23716836", "23716978")},
        match=[responses.matchers.query_param_matcher({"limit": "2"})],
    )
    mock.get(
        FAVOURITES,
        json=load("favourites_empty.json"),
        headers=limits(298),
        match=[responses.matchers.query_param_matcher({"limit": "2", "max_id": "23716836"})],
    )
    mastodon = connector(page_size=2)

    result = mastodon.poll(account_on(mastodon), polled())

    assert len(result.events) == 2
    assert result.requests == 2
    assert "max_id" in query(mock.calls[1])  # the favourite id from the Link, not a status id
    assert query(mock.calls[1])["max_id"] != [load("favourites_page1.json")[1]["id"]]


def test_a_short_page_with_only_prev_is_the_last(mock: responses.RequestsMock) -> None:
    mock.get(
        FAVOURITES,
        json=load("favourites_page2.json"),
        headers={**limits(), "Link": link(None, "113200000000000777")},
    )
    mastodon = connector(page_size=2)

    result = mastodon.poll(account_on(mastodon), polled())

    assert [e.creator_handle for e in result.events] == ["noiob@awoo.space"]
    assert result.requests == 1


def test_paging_stops_at_the_first_page_holding_a_known_status(
    mock: responses.RequestsMock,
) -> None:
    known = load("favourites_page1.json")[1]["uri"]
    mock.get(
        FAVOURITES,
        json=load("favourites_page1.json"),
        headers={**limits(), "Link": link("23716836", "23716978")},
    )
    mastodon = connector(page_size=2)

    result = mastodon.poll(account_on(mastodon), polled(known))

    assert [e.creator_handle for e in result.events] == ["haskal@cybre.space"]
    assert result.requests == 1
    assert result.state.known[:2] == (
        "https://cybre.space/users/haskal/statuses/113350170240109110",
        known,
    )


def test_an_account_without_favourites_is_one_empty_page(mock: responses.RequestsMock) -> None:
    mock.get(FAVOURITES, json=[], headers=limits())
    mastodon = connector()

    result = mastodon.poll(account_on(mastodon), PollState(linked_at=LINKED_AT))

    assert result.events == []
    assert result.state.baseline_done is True
    assert result.requests == 1


def test_every_answer_tells_the_worker_how_much_of_the_limit_is_left(
    mock: responses.RequestsMock, now: datetime
) -> None:
    mock.get(FAVOURITES, json=[], headers=limits(remaining=17))
    mastodon = connector()

    result = mastodon.poll(account_on(mastodon), polled())

    assert result.rate_limit is not None
    assert result.rate_limit.remaining == 17
    assert result.rate_limit.limit == 300
    assert result.rate_limit.reset_at == datetime(2026, 10, 15, 12, 5, tzinfo=UTC)


def test_a_429_waits_until_the_iso_8601_reset(mock: responses.RequestsMock, now: datetime) -> None:
    mock.get(FAVOURITES, json=load("error_429.json"), status=429, headers=limits(0))
    mastodon = connector()

    with pytest.raises(RateLimited, match="Too many requests") as caught:
        mastodon.poll(account_on(mastodon), polled())

    assert caught.value.retry_at == datetime(2026, 10, 15, 12, 5, tzinfo=UTC)
    assert caught.value.scope == "account"


def test_an_invalid_token_asks_for_relinking(mock: responses.RequestsMock) -> None:
    mock.get(FAVOURITES, json=load("error_401.json"), status=401)
    mastodon = connector()
    with pytest.raises(AuthExpired, match="The access token is invalid"):
        mastodon.poll(account_on(mastodon), polled())


def test_a_token_without_read_favourites_is_forbidden(mock: responses.RequestsMock) -> None:
    mock.get(FAVOURITES, json=load("error_403_scope.json"), status=403)
    mastodon = connector()
    with pytest.raises(Forbidden, match="outside the authorized scopes"):
        mastodon.poll(account_on(mastodon), polled())


def test_a_server_error_is_transient(mock: responses.RequestsMock) -> None:
    mock.get(FAVOURITES, body="<html>Bad gateway</html>", status=502)
    mastodon = connector()
    with pytest.raises(TransientError, match="502"):
        mastodon.poll(account_on(mastodon), polled())


def test_a_server_older_than_4_2_is_a_platform_error_naming_account_uri(
    mock: responses.RequestsMock,
) -> None:
    mock.get(FAVOURITES, json=load("favourites_before_4_2.json"), headers=limits())
    mastodon = connector()
    with pytest.raises(PlatformError, match=r"0\.account\.uri: Field required"):
        mastodon.poll(account_on(mastodon), polled())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uri", "javascript:alert(1)"),
        ("uri", "https://" + "a" * 3000),
        ("id", 297420),
        ("acct", ""),
    ],
)
def test_an_author_field_out_of_shape_is_refused(
    mock: responses.RequestsMock, field: str, value: Any
) -> None:
    page = load("favourites_page2.json")
    page[0]["account"][field] = value
    mock.get(FAVOURITES, json=page, headers=limits())
    mastodon = connector()
    with pytest.raises(PlatformError, match=rf"0\.account\.{field}"):
        mastodon.poll(account_on(mastodon), polled())


def test_a_status_without_a_web_page_links_to_its_uri(mock: responses.RequestsMock) -> None:
    page = load("favourites_page2.json")
    page[0]["url"] = None  # nullable, as the Status entity says
    mock.get(FAVOURITES, json=page, headers=limits())
    mastodon = connector()

    (like,) = mastodon.poll(account_on(mastodon), polled()).events

    assert like.item_url == like.item_id == page[0]["uri"]


# ---------------------------------------------------------------------------
# The server is user input


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("http://mastodon.example", "over https only"),
        ("https://169.254.169.254", "a link-local address"),
        ("https://[::ffff:10.0.0.1]", "a private address"),
        ("https://127.0.0.1:3000", "a loopback address"),
    ],
)
def test_a_server_that_is_not_public_https_is_refused_unsent(
    mock: responses.RequestsMock, host: str, why: str
) -> None:
    mastodon = connector()
    with pytest.raises(HostRefused, match=why):
        mastodon.poll(account_on(mastodon, host), polled())
    assert len(mock.calls) == 0


def test_a_next_link_to_another_server_is_not_followed(mock: responses.RequestsMock) -> None:
    mock.get(
        FAVOURITES,
        json=load("favourites_page1.json"),
        headers={
            **limits(),
            "Link": '<https://evil.example/api/v1/favourites?max_id=1>; rel="next"',
        },
    )
    mastodon = connector(page_size=2)
    with pytest.raises(PlatformError, match=r"next page is on another host \(evil\.example\)"):
        mastodon.poll(account_on(mastodon), polled())
    assert len(mock.calls) == 1
