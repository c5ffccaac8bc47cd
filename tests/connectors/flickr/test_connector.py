"""The Flickr connector: a favorite is a like of the photo, paid to its owner's NSID.

Payloads under ``fixtures/`` follow Flickr's API reference: the standard photo
list of ``flickr.favorites.getList`` in Flickr's JSON (``pages`` and ``total``
as strings, ``date_faved`` as unix seconds in a string, ``ownername`` from the
``owner_name`` extra), ``flickr.test.login``'s user, and the ``stat: fail``
bodies of the documented error codes. What every connector must do is the
contract suite's (``test_contract.py``); here are Flickr's request shapes, its
mappings and its error codes.
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
from trickle.connectors.errors import (
    AuthExpired,
    ConnectorError,
    NotConfigured,
    PlatformError,
    RateLimited,
    TransientError,
)
from trickle.connectors.flickr import FlickrConnector
from trickle.connectors.flickr.connector import FAVE_MARGIN, FlickrSettings
from trickle.connectors.http import HttpClient
from trickle.connectors.registry import Registry
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REST = "https://api.flickr.com/services/rest/"
KEY = "9a0554259914a86fb9e7eb014e4e5d52"
SECRET = "000005fab4534d05"
TOKEN = "72157626737672178-022bbd2f4c2f3432"
TOKEN_SECRET = "fccb68c4e6103197"
LINKED_AT = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def query(call: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def connector(**settings: Any) -> FlickrConnector:
    values: dict[str, Any] = {"consumer_key": KEY, "consumer_secret": SecretStr(SECRET)}
    return FlickrConnector(FlickrSettings(**{**values, **settings}), HttpClient(backoff_factor=0))


def account(flickr: FlickrConnector) -> AccountRef:
    credentials = Credentials(access_token=TOKEN, token_secret=TOKEN_SECRET)
    return AccountRef(1, "35034348999@N01", "nadia", LINKED_AT, flickr.session(credentials))


@pytest.fixture
def mock(now: datetime) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def serve(mock: responses.RequestsMock, *names: str) -> None:
    """Answer the REST endpoint with the fixtures ``names``, in order (the last one again)."""
    for name in names:
        mock.get(REST, json=load(name))


def first_poll() -> PollState:
    return PollState(linked_at=LINKED_AT)


# ---------------------------------------------------------------------------
# identify: flickr.test.login


def test_identify_asks_flickr_who_the_token_credentials_belong_to(
    mock: responses.RequestsMock,
) -> None:
    serve(mock, "login.json")
    flickr = connector()

    identity = flickr.identify(account(flickr).session)

    assert identity == Identity(platform_user_id="12037949754@N01", handle="Bees")
    assert query(mock.calls[0]) == {
        "method": "flickr.test.login",
        "format": "json",
        "nojsoncallback": "1",
    }


def test_every_call_is_signed_with_oauth1_in_the_header_and_no_secret_in_the_url(
    mock: responses.RequestsMock,
) -> None:
    serve(mock, "login.json")
    flickr = connector()

    flickr.identify(account(flickr).session)

    request = mock.calls[0].request
    header = request.headers["Authorization"]
    assert header.startswith("OAuth ")
    for part in (
        f'oauth_consumer_key="{KEY}"',
        f'oauth_token="{TOKEN}"',
        'oauth_signature_method="HMAC-SHA1"',
        "oauth_signature=",
        "oauth_nonce=",
        "oauth_timestamp=",
    ):
        assert part in header
    for secret in (SECRET, TOKEN_SECRET):
        assert secret not in header
        assert secret not in request.url


# ---------------------------------------------------------------------------
# poll: flickr.favorites.getList


def test_a_favorite_is_a_like_of_the_photo_paid_to_its_owner_when_it_was_faved(
    mock: responses.RequestsMock, now: datetime
) -> None:
    serve(mock, "favorites_page1.json", "favorites_page2.json")
    flickr = connector(page_size=2)

    result = flickr.poll(account(flickr), first_poll())  # all faved since the link: both pages

    assert result.events[0] == LikeEvent(
        platform="flickr",
        item_id="2636",
        item_url="https://www.flickr.com/photos/47058503995@N01/2636/",
        creator_id="47058503995@N01",
        creator_handle="Aled Hughes",
        liked_at=datetime(2026, 10, 13, 12, 0, tzinfo=UTC),
        observed_at=now,
    )
    assert [e.item_id for e in result.events] == ["2636", "2635", "2610"]
    assert result.events[2].creator_id == "12037949754@N01"


def test_the_list_is_asked_for_in_json_with_the_owners_name_and_the_page_size(
    mock: responses.RequestsMock,
) -> None:
    serve(mock, "favorites_empty.json")
    flickr = connector(page_size=250)

    flickr.poll(account(flickr), first_poll())

    assert query(mock.calls[0]) == {
        "method": "flickr.favorites.getList",
        "format": "json",
        "nojsoncallback": "1",
        "extras": "owner_name",
        "per_page": "250",
    }


def test_the_page_size_is_capped_at_flickrs_500() -> None:
    assert connector(page_size=2000).page_size == 500
    assert connector().page_size == 100


def test_paging_asks_for_the_next_page_number_until_the_last_of_pages(
    mock: responses.RequestsMock,
) -> None:
    serve(mock, "favorites_page1.json", "favorites_page2.json")
    flickr = connector(page_size=2)
    state = PollState(linked_at=LINKED_AT, baseline_done=True, known=("1999",))

    result = flickr.poll(account(flickr), state)

    assert [e.item_id for e in result.events] == ["2636", "2635", "2610"]
    assert [query(call).get("page") for call in mock.calls] == [None, "2"]
    assert result.requests == 2


def test_a_poll_after_favorites_asks_only_for_those_since_the_newest_less_a_margin(
    mock: responses.RequestsMock,
) -> None:
    serve(mock, "favorites_page1.json", "favorites_page2.json")
    flickr = connector(page_size=2)
    first = flickr.poll(account(flickr), first_poll())
    newest = int(datetime(2026, 10, 13, 12, 0, tzinfo=UTC).timestamp())
    assert first.state.cursor == {"newest_faved": newest}

    again = flickr.poll(account(flickr), first.state)

    assert query(mock.calls[2])["min_fave_date"] == str(newest - int(FAVE_MARGIN.total_seconds()))
    assert again.events == []
    assert again.state.cursor == {"newest_faved": newest}
    assert again.requests == 1


def test_a_first_poll_asks_for_the_whole_list(mock: responses.RequestsMock) -> None:
    serve(mock, "favorites_empty.json")
    flickr = connector()

    result = flickr.poll(account(flickr), first_poll())

    assert "min_fave_date" not in query(mock.calls[0])
    assert result.events == []
    assert result.state.baseline_done
    assert result.state.cursor == {}


def test_an_owner_name_longer_than_trickle_keeps_is_shown_as_the_owners_nsid(
    mock: responses.RequestsMock,
) -> None:
    # ownername is a display name of up to 1000 characters here, and the creator's handle a
    # column of 200: the like is kept, its owner shown by the NSID that keys them anyway.
    page = load("favorites_page2.json")
    page["photos"]["photo"][0]["ownername"] = "A" * 201
    mock.get(REST, json=page)
    flickr = connector()

    result = flickr.poll(account(flickr), first_poll())

    owner = page["photos"]["photo"][0]["owner"]
    assert (result.events[0].creator_id, result.events[0].creator_handle) == (owner, owner)


def test_ids_and_times_of_the_wrong_type_are_a_platform_error_naming_them(
    mock: responses.RequestsMock,
) -> None:
    serve(mock, "favorites_wrong_types.json")
    flickr = connector()

    with pytest.raises(PlatformError, match=r"photos\.photo\.0\.id") as raised:
        flickr.poll(account(flickr), first_poll())
    assert "date_faved" in str(raised.value)


def test_an_answer_wrapped_for_a_json_callback_is_a_platform_error(
    mock: responses.RequestsMock,
) -> None:
    body = "jsonFlickrApi(" + (FIXTURES / "login.json").read_text().strip() + ")"
    mock.get(REST, body=body, content_type="text/javascript")
    flickr = connector()

    with pytest.raises(PlatformError, match="expected JSON"):
        flickr.identify(account(flickr).session)


# ---------------------------------------------------------------------------
# errors inside a 200: stat "fail" with a code


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("error_96_invalid_signature.json", AuthExpired),
        ("error_97_missing_signature.json", AuthExpired),
        ("error_98_invalid_auth_token.json", AuthExpired),
        ("error_99_insufficient_permissions.json", AuthExpired),
        ("error_100_invalid_api_key.json", NotConfigured),
        ("error_105_service_unavailable.json", TransientError),
        ("error_106_write_operation_failed.json", TransientError),
        ("error_112_method_not_found.json", PlatformError),
        ("error_1_user_not_found.json", PlatformError),
    ],
)
@pytest.mark.parametrize("call", ["identify", "poll"])
def test_each_documented_error_code_is_the_typed_error_it_means(
    mock: responses.RequestsMock, fixture: str, expected: type[ConnectorError], call: str
) -> None:
    serve(mock, fixture)
    flickr = connector()
    ref = account(flickr)
    run = (
        (lambda: flickr.identify(ref.session))
        if call == "identify"
        else (lambda: flickr.poll(ref, first_poll()))
    )

    with pytest.raises(ConnectorError) as raised:
        run()

    assert type(raised.value) is expected
    code = str(load(fixture)["code"])
    assert f"({code}: {load(fixture)['message']})" in str(raised.value)
    method = "flickr.test.login" if call == "identify" else "flickr.favorites.getList"
    assert str(raised.value).startswith(f"flickr: {method}: ")


def test_a_refused_api_key_tells_the_operator_where_to_register_a_new_one(
    mock: responses.RequestsMock,
) -> None:
    serve(mock, "error_100_invalid_api_key.json")
    flickr = connector()

    with pytest.raises(NotConfigured, match=r"flickr\.com/services/apps/create/.*consumer_key"):
        flickr.identify(account(flickr).session)


def test_an_unknown_code_is_a_platform_error_that_shows_it(
    mock: responses.RequestsMock,
) -> None:
    mock.get(REST, json={"stat": "fail", "code": "2718", "message": "Something new"})
    flickr = connector()

    with pytest.raises(PlatformError, match=r"\(2718: Something new\)"):
        flickr.identify(account(flickr).session)


@pytest.mark.parametrize("padding", [0, 170, 180])
def test_an_error_message_that_echoes_the_token_never_shows_any_of_it(
    mock: responses.RequestsMock, padding: int
) -> None:
    # Cut short before the session redacts it, a piece of the token would stay.
    message = f"{'w' * padding} oauth_token={TOKEN} is not valid"
    mock.get(REST, json={"stat": "fail", "code": 98, "message": message})
    flickr = connector()

    with pytest.raises(AuthExpired) as raised:
        flickr.identify(account(flickr).session)
    assert TOKEN[:8] not in str(raised.value)


def test_too_many_requests_waits_for_the_whole_apps_budget(
    mock: responses.RequestsMock, now: datetime
) -> None:
    page = "<html><body><h1>429 Too Many Requests</h1></body></html>"
    mock.get(REST, body=page, status=429, content_type="text/html")
    flickr = connector()

    with pytest.raises(RateLimited) as raised:
        flickr.poll(account(flickr), first_poll())

    assert raised.value.scope == "app"
    assert now < raised.value.retry_at <= now + timedelta(hours=1)


# ---------------------------------------------------------------------------
# what the operator sees


def test_connectors_list_shows_flickr_as_bronze_needing_the_apps_key_and_secret() -> None:
    (info,) = [i for i in Registry.from_entry_points().describe({}) if i.name == "flickr"]

    assert info.available
    assert info.tier is not None
    assert info.tier.value == "bronze"
    assert info.unmet_rules == ()
    assert info.problems == ()
    assert set(info.exemptions or {}) == {"links-with-token"}
    assert info.missing_settings == ("consumer_key", "consumer_secret")
    assert [(f.kind, f.missing_settings) for f in info.flows] == [
        ("oauth1", ("consumer_key", "consumer_secret"))
    ]
