"""The SoundCloud connector: a liked track is a like, the track's uploader is the creator.

Payloads under ``fixtures/`` follow SoundCloud's OpenAPI spec (``soundcloud/api``
``openapi/api.yaml``: the ``Me``, ``Tracks``, ``Track``, ``User`` and ``Error`` schemas
and their examples), its rate-limits page (the 429 body with ``reset_time``) and the
token endpoint's answers (the ``ExpiringToken`` example; ``{"error": "invalid_grant"}``
as SoundCloud answers a spent refresh token). What every connector must do is the contract
suite's (``test_contract.py``); this module holds SoundCloud's request shapes, its mappings
from the fixtures and its own policy: the ``OAuth`` scheme, ``next_href`` on the API's
host only, the 200-track cap, the reset in a 429's body, single-use refresh tokens and
signing out on unlink.
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
from pydantic import SecretStr

from trickle.connectors.base import AccountRef, Identity, PollState
from trickle.connectors.errors import AuthExpired, Forbidden, PlatformError, RateLimited
from trickle.connectors.http import HttpClient
from trickle.connectors.quality import Tier
from trickle.connectors.registry import Registry
from trickle.connectors.soundcloud import SoundCloudConnector
from trickle.connectors.soundcloud.connector import SoundCloudSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

FIXTURES = Path(__file__).resolve().parent / "fixtures"
API = "https://api.soundcloud.com"
LIKES_URL = f"{API}/me/likes/tracks"
ME_URL = f"{API}/me"
TOKEN_URL = "https://secure.soundcloud.com/oauth/token"
SIGN_OUT_URL = "https://secure.soundcloud.com/sign-out"
TOKEN = "2-294712--Tr1ckl3AccessT0kenN0tReal0Aa"
REFRESH = "rT1ckl3R3fr3shT0k3nN0tR3al0123456"
CLIENT_ID = "Tr1ckl3SoundCloudClientId0123456"
CLIENT_SECRET = "Tr1ckl3SoundCloudClientSecret0123456"
NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
LINKED_AT = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def form(call: Any) -> dict[str, list[str]]:
    return parse_qs(call.request.body if isinstance(call.request.body, str) else "")


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    clock.set(NOW, frozen=True)
    yield
    clock.reset()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def make(**settings: Any) -> SoundCloudConnector:
    values: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": SecretStr(CLIENT_SECRET)}
    return SoundCloudConnector(
        SoundCloudSettings(**{**values, **settings}), HttpClient(backoff_factor=0)
    )


@pytest.fixture
def soundcloud() -> SoundCloudConnector:
    return make()


def credentials(expires_in: timedelta = timedelta(minutes=40)) -> Credentials:
    return Credentials(
        access_token=TOKEN, refresh_token=REFRESH, expires_at=NOW + expires_in, issued_by="oauth2"
    )


def account_of(connector: SoundCloudConnector, held: Credentials | None = None) -> AccountRef:
    return AccountRef(
        id=1,
        platform_user_id="soundcloud:users:948745750",
        handle="ines-duarte",
        linked_at=LINKED_AT,
        session=connector.session(held or credentials()),
    )


FIRST_POLL = PollState(linked_at=LINKED_AT)


def polled(*known: str) -> PollState:
    return PollState(linked_at=LINKED_AT, baseline_done=True, known=known)


# ---------------------------------------------------------------------------
# identify: GET /me


def test_identify_asks_soundcloud_whose_token_it_is_with_the_oauth_scheme(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.get(ME_URL, json=load("me.json"))

    identity = soundcloud.identify(soundcloud.session(credentials()))

    assert identity == Identity(platform_user_id="soundcloud:users:948745750", handle="ines-duarte")
    headers = mock.calls[0].request.headers
    assert headers["Authorization"] == f"OAuth {TOKEN}"  # SoundCloud's scheme, not Bearer
    assert headers["Accept"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    ("urn", "why"),
    [(948745750, "the deprecated numeric id"), ("soundcloud:tracks:948745750", "a track's URN")],
)
def test_identify_takes_nothing_but_a_user_urn(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock, urn: object, why: str
) -> None:
    me = load("me.json")
    me["urn"] = urn
    mock.get(ME_URL, json=me)
    with pytest.raises(PlatformError, match=r"GET /me: malformed payload: urn: "):
        soundcloud.identify(soundcloud.session(credentials()))


def test_a_permalink_longer_than_trickle_keeps_is_refused(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    # An account's and a creator's handle columns hold 200 characters: a longer one would
    # pass here and fail at the database, after the platform was asked.
    me = load("me.json")
    me["permalink"] = "p" * 201
    mock.get(ME_URL, json=me)
    with pytest.raises(PlatformError, match=r"GET /me: malformed payload: permalink: "):
        soundcloud.identify(soundcloud.session(credentials()))


def test_an_uploader_permalink_longer_than_trickle_keeps_is_refused(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    page = load("likes_tracks_page1.json")
    page["collection"][0]["user"]["permalink"] = "p" * 201
    mock.get(LIKES_URL, json=page)
    with pytest.raises(PlatformError, match=r"collection\.0\.user\.permalink"):
        soundcloud.poll(account_of(soundcloud), FIRST_POLL)


# ---------------------------------------------------------------------------
# poll: what is asked, and what a liked track becomes


def test_poll_asks_for_partitioned_pages_of_every_liked_track(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, json=load("likes_tracks_page2.json"))

    soundcloud.poll(account_of(soundcloud), FIRST_POLL)

    (call,) = mock.calls
    assert urlsplit(call.request.url)._replace(query="").geturl() == LIKES_URL
    assert query(call) == {
        "linked_partitioning": ["true"],
        "limit": ["200"],
        "access": ["playable,preview,blocked"],  # a track one may only preview is liked too
    }
    assert call.request.headers["Authorization"] == f"OAuth {TOKEN}"


def test_a_liked_track_is_a_like_paid_to_its_uploader_with_no_like_time(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, json=load("likes_tracks_page1.json"))

    result = soundcloud.poll(account_of(soundcloud), FIRST_POLL)

    assert result.events[0] == LikeEvent(
        platform="soundcloud",
        item_id="soundcloud:tracks:308946187",
        item_url="https://soundcloud.com/mira-sol/harbour-lights",
        creator_id="soundcloud:users:743372812",
        creator_handle="mira-sol",
        liked_at=None,  # a track's created_at is its upload, not the like
        observed_at=NOW,
    )
    assert [e.creator_id for e in result.events] == [
        "soundcloud:users:743372812",
        "soundcloud:users:25219981",
    ]


def test_paging_follows_next_href_as_soundcloud_wrote_it(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    page1 = load("likes_tracks_page1.json")
    mock.get(LIKES_URL, json=page1)
    mock.get(page1["next_href"], json=load("likes_tracks_page2.json"))

    result = soundcloud.poll(account_of(soundcloud), polled("soundcloud:tracks:1"))

    assert len(mock.calls) == 2
    assert mock.calls[1].request.url == page1["next_href"]
    assert [e.item_id for e in result.events] == [
        "soundcloud:tracks:308946187",
        "soundcloud:tracks:1015448728",
        "soundcloud:tracks:1212781357",  # blocked where the listener is, liked all the same
    ]


def test_a_track_whose_uploader_is_gone_pays_nobody_and_breaks_nothing(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    page = load("likes_tracks_page2.json")
    assert page["collection"][1]["user"] is None  # the spec's User is nullable
    mock.get(LIKES_URL, json=page)

    result = soundcloud.poll(account_of(soundcloud), polled("soundcloud:tracks:1"))

    assert [e.item_id for e in result.events] == ["soundcloud:tracks:1212781357"]


def test_paging_stops_at_the_page_holding_a_known_track(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, json=load("likes_tracks_page1.json"))

    result = soundcloud.poll(account_of(soundcloud), polled("soundcloud:tracks:1015448728"))

    assert len(mock.calls) == 1
    assert [e.item_id for e in result.events] == ["soundcloud:tracks:308946187"]
    assert result.state.known[:2] == ("soundcloud:tracks:308946187", "soundcloud:tracks:1015448728")


def test_a_next_href_to_another_host_is_refused_unsent(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    page = load("likes_tracks_page1.json")
    page["next_href"] = "https://api-v2.soundcloud.com/me/likes/tracks?cursor=1"
    mock.get(LIKES_URL, json=page)

    with pytest.raises(PlatformError, match=r"next_href: the next page is on another host"):
        soundcloud.poll(account_of(soundcloud), polled("soundcloud:tracks:1"))
    assert len(mock.calls) == 1


def test_the_page_size_is_capped_at_soundclouds_200(mock: responses.RequestsMock) -> None:
    connector = make(page_size=500)
    mock.get(LIKES_URL, json=load("likes_tracks_page2.json"))

    connector.poll(account_of(connector), FIRST_POLL)

    assert query(mock.calls[0])["limit"] == ["200"]


def test_the_deprecated_bare_list_is_not_a_page(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, json=load("likes_tracks_page1.json")["collection"])
    with pytest.raises(PlatformError, match=r"GET /me/likes/tracks: malformed payload"):
        soundcloud.poll(account_of(soundcloud), FIRST_POLL)


# ---------------------------------------------------------------------------
# errors


def test_a_429_waits_until_the_reset_time_its_body_names(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, status=429, json=load("error_429_rate_limit.json"))

    with pytest.raises(RateLimited) as raised:
        soundcloud.poll(account_of(soundcloud), FIRST_POLL)

    assert raised.value.retry_at == datetime(2026, 10, 15, 13, 0, tzinfo=UTC)
    assert raised.value.scope == "app"  # SoundCloud counts its limits per client id


def test_a_429_without_a_reset_waits_the_default_minute(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, status=429, json=load("error_429_too_many_requests.json"))

    with pytest.raises(RateLimited) as raised:
        soundcloud.poll(account_of(soundcloud), FIRST_POLL)

    assert raised.value.retry_at == NOW + timedelta(minutes=1)


def test_a_403_is_a_permission_the_token_lacks(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.get(LIKES_URL, status=403, json=load("error_403_forbidden.json"))
    with pytest.raises(Forbidden, match="403 Detailed message of errors"):
        soundcloud.poll(account_of(soundcloud), FIRST_POLL)


# ---------------------------------------------------------------------------
# renewing: hour-long access tokens, single-use refresh tokens


def test_an_expired_token_is_renewed_at_secure_soundcloud_with_the_apps_credentials(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    renewed = load("token_refreshed.json")
    mock.post(TOKEN_URL, json=renewed)
    mock.get(LIKES_URL, json=load("likes_tracks_page2.json"))
    saved: list[Credentials] = []
    session = soundcloud.session(
        credentials(expires_in=timedelta(seconds=-1)), save=lambda old, new: saved.append(new)
    )
    account = AccountRef(1, "soundcloud:users:948745750", "ines-duarte", LINKED_AT, session)

    soundcloud.poll(account, FIRST_POLL)

    refresh, likes = mock.calls
    assert form(refresh) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],  # SoundCloud treats every client as confidential
    }
    assert likes.request.headers["Authorization"] == f"OAuth {renewed['access_token']}"
    (new,) = saved
    assert new.refresh_token == renewed["refresh_token"]  # the old one is spent
    assert new.expires_at == NOW + timedelta(seconds=3599)


def test_a_spent_refresh_token_means_relinking(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.post(TOKEN_URL, status=400, json=load("error_invalid_grant.json"))

    with pytest.raises(AuthExpired, match="invalid_grant"):
        soundcloud.poll(
            account_of(soundcloud, credentials(expires_in=timedelta(seconds=-1))), FIRST_POLL
        )
    assert [call.request.url for call in mock.calls] == [TOKEN_URL]


def test_a_401_renews_once_then_retries(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    renewed = load("token_refreshed.json")
    mock.get(LIKES_URL, status=401, json=load("error_401_unauthorized.json"))
    mock.post(TOKEN_URL, json=renewed)
    mock.get(LIKES_URL, json=load("likes_tracks_page2.json"))

    result = soundcloud.poll(account_of(soundcloud), FIRST_POLL)

    assert [c.request.url.split("?")[0] for c in mock.calls] == [LIKES_URL, TOKEN_URL, LIKES_URL]
    assert mock.calls[2].request.headers["Authorization"] == f"OAuth {renewed['access_token']}"
    assert [e.item_id for e in result.events] == ["soundcloud:tracks:1212781357"]


# ---------------------------------------------------------------------------
# unlinking: POST /sign-out


def test_unlinking_signs_the_session_out(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.post(SIGN_OUT_URL, json={})

    assert soundcloud.revoke(credentials()) is True

    (call,) = mock.calls
    assert json.loads(call.request.body) == {"access_token": TOKEN}
    assert call.request.headers["Content-Type"] == "application/json"


def test_an_expired_session_is_renewed_before_it_is_signed_out(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    renewed = load("token_refreshed.json")
    mock.post(TOKEN_URL, json=renewed)
    mock.post(SIGN_OUT_URL, json={})

    assert soundcloud.revoke(credentials(expires_in=timedelta(seconds=-1))) is True

    assert json.loads(mock.calls[1].request.body) == {"access_token": renewed["access_token"]}


def test_a_grant_already_gone_needs_no_sign_out(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.post(TOKEN_URL, status=400, json=load("error_invalid_grant.json"))

    assert soundcloud.revoke(credentials(expires_in=timedelta(seconds=-1))) is True
    assert [call.request.url for call in mock.calls] == [TOKEN_URL]


def test_a_refused_sign_out_is_an_error_not_a_revocation(
    soundcloud: SoundCloudConnector, mock: responses.RequestsMock
) -> None:
    mock.post(SIGN_OUT_URL, status=401, json=load("error_401_unauthorized.json"))
    with pytest.raises(PlatformError, match="401 invalid_token"):
        soundcloud.revoke(credentials())


# ---------------------------------------------------------------------------
# trickle connectors list


def test_the_installed_connector_is_listed_with_its_tier_and_what_it_needs() -> None:
    registry = Registry.from_entry_points()
    assert registry.load("soundcloud") is SoundCloudConnector

    [bare] = [i for i in registry.describe({}) if i.name == "soundcloud"]
    [ready] = [
        i
        for i in registry.describe({"soundcloud": {"client_id": "a", "client_secret": "b"}})
        if i.name == "soundcloud"
    ]

    assert bare.tier is Tier.GOLD
    assert set(bare.not_applicable) == {"conditional-requests", "like-time", "reads-rate-limits"}
    assert set(bare.exemptions) == {"links-with-token"}
    assert bare.ready_flows == ()
    assert [f.missing_settings for f in bare.flows] == [("client_id", "client_secret")]
    assert ready.ready_flows == ("oauth2",)
