"""The 500px connector: a favorite is a like of the photo, paid to its photographer's id.

Fixtures follow 500px's last documented v1 reference (``GET /v1/photos`` with
``feature=user_favorites``, photos in the short format; ``GET /v1/users``; the
``401 Invalid OAuth Request`` error), and the 403 every key has got since the API
closed. The platform's state is part of the connector: no default host is used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from pydantic import SecretStr

from trickle.connectors.base import AccountRef, Identity, PollState
from trickle.connectors.errors import AuthExpired, Forbidden, NotConfigured, PlatformError
from trickle.connectors.fivehundredpx import FiveHundredPxConnector
from trickle.connectors.fivehundredpx.connector import FiveHundredPxSettings
from trickle.connectors.http import HttpClient
from trickle.connectors.quality import Legacy
from trickle.connectors.registry import Registry
from trickle.core.credentials import Credentials

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SERVER = "https://v1.photos.example"
TOKEN = "px-t0k3n-0123456789abcdef"
TOKEN_SECRET = "px-t0k3n-s3cr3t-fedcba98"
LINKED_AT = datetime(2026, 10, 1, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def connector(**settings: Any) -> FiveHundredPxConnector:
    values: dict[str, Any] = {
        "base_url": SERVER,
        "consumer_key": "px-consumer-key",
        "consumer_secret": SecretStr("px-consumer-secret-0123"),
    }
    values.update(settings)
    return FiveHundredPxConnector(
        FiveHundredPxSettings(**{k: v for k, v in values.items() if v is not None}),
        HttpClient(backoff_factor=0),
    )


def account(px: FiveHundredPxConnector) -> AccountRef:
    session = px.session(Credentials(access_token=TOKEN, token_secret=TOKEN_SECRET))
    return AccountRef(1, "173", "vovko", LINKED_AT, session)


@pytest.fixture
def mock(now: datetime) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def test_a_favorite_is_a_like_of_the_photo_paid_to_its_photographer(
    mock: responses.RequestsMock, now: datetime
) -> None:
    mock.get(f"{SERVER}/v1/photos", json=load("favorites_page1.json"))
    px = connector(page_size=2)

    result = px.poll(account(px), PollState(linked_at=LINKED_AT))

    first = result.events[0]
    assert (first.item_id, first.creator_id, first.creator_handle) == (
        "4910421",
        "386047",
        "Lluisdeharo",
    )
    assert first.item_url == "https://500px.com/photo/4910421"
    assert first.liked_at is None  # 500px never said when a photo was favorited
    assert [e.item_id for e in result.events] == ["4910421", "4905955"]
    sent = parse_qs(urlsplit(mock.calls[0].request.url).query)
    assert sent == {"feature": ["user_favorites"], "user_id": ["173"], "rpp": ["2"]}
    assert mock.calls[0].request.headers["Authorization"].startswith("OAuth ")


@pytest.mark.parametrize("where", ["id", "user.id"])
def test_an_id_longer_than_any_integer_500px_used_is_a_platform_error(
    mock: responses.RequestsMock, where: str
) -> None:
    # JSON integers have no size: a 250-digit one would key a creator (or a like) longer
    # than the 200 characters trickle stores, and fail at the database instead of here.
    page = load("favorites_page1.json")
    photo = page["photos"][0]
    (photo["user"] if where == "user.id" else photo)["id"] = 10**250
    mock.get(f"{SERVER}/v1/photos", json=page)
    px = connector()

    with pytest.raises(PlatformError, match=re.escape(f"photos.0.{where}:")):
        px.poll(account(px), PollState(linked_at=LINKED_AT))


def test_paging_follows_current_page_of_total_pages(mock: responses.RequestsMock) -> None:
    second = {**load("favorites_page1.json"), "current_page": 2, "photos": []}
    mock.get(f"{SERVER}/v1/photos", json=load("favorites_page1.json"))
    mock.get(f"{SERVER}/v1/photos", json=second)
    px = connector(page_size=2)
    state = PollState(linked_at=LINKED_AT, baseline_done=True, known=("1",))

    result = px.poll(account(px), state)

    assert [parse_qs(urlsplit(c.request.url).query).get("page") for c in mock.calls] == [
        None,
        ["2"],
    ]
    assert result.requests == 2


def test_the_page_size_is_capped_at_100() -> None:
    assert connector(page_size=500).page_size == 100


def test_identify_reads_the_tokens_owner(mock: responses.RequestsMock) -> None:
    mock.get(f"{SERVER}/v1/users", json=load("users.json"))
    px = connector()
    assert px.identify(account(px).session) == Identity("173", "vovko")


def test_an_invalid_oauth_request_asks_to_link_again(mock: responses.RequestsMock) -> None:
    mock.get(f"{SERVER}/v1/users", json=load("error_401_invalid_oauth_request.json"), status=401)
    px = connector()
    with pytest.raises(AuthExpired, match="Invalid OAuth Request"):
        px.identify(account(px).session)


def test_a_deactivated_application_is_refused_with_500pxs_words(
    mock: responses.RequestsMock,
) -> None:
    body = load("error_403_application_deactivated.json")
    mock.get(f"{SERVER}/v1/photos", json=body, status=403)
    px = connector()
    with pytest.raises(Forbidden, match="Application is deactivated"):
        px.poll(account(px), PollState(linked_at=LINKED_AT))


def test_without_a_server_nothing_is_sent_and_the_operator_is_told_why(
    mock: responses.RequestsMock,
) -> None:
    px = connector(base_url=None)
    with pytest.raises(NotConfigured, match="closed its public API on 2018-06-15: set"):
        px.poll(account(px), PollState(linked_at=LINKED_AT))
    assert len(mock.calls) == 0


def test_the_oauth_endpoints_are_on_the_servers_origin_unless_set_apart() -> None:
    assert connector().settings.oauth_base_url == SERVER
    other = connector(oauth_base_url="https://auth.example")
    assert other.settings.oauth_base_url == "https://auth.example"


def test_connectors_list_shows_500px_as_legacy_needing_a_server() -> None:
    (info,) = [i for i in Registry.from_entry_points().describe({}) if i.name == "fivehundredpx"]
    assert info.legacy == FiveHundredPxConnector.legacy
    assert isinstance(info.legacy, Legacy)
    assert info.legacy.closed_on == date(2018, 6, 15)
    assert info.missing_settings == ("base_url", "consumer_key", "consumer_secret")
    assert info.unmet_rules == ()
    assert info.problems == ()
