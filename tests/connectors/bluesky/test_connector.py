"""The Bluesky connector: a like record is a like, the liked record's author is paid.

Payloads under ``fixtures/`` follow the atproto lexicons: ``com.atproto.repo.listRecords``
pages of ``app.bsky.feed.like`` records (``{"subject": strongRef, "createdAt"}``),
``com.atproto.server.getSession``, XRPC error bodies (``{"error", "message"}``) and a DID
document as the PLC directory serves it. What every connector must do is the contract
suite's (``test_contract.py``); this module holds Bluesky's request shapes, its mappings,
its rate-limit headers and how it follows an account whose PDS moved.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from trickle.connectors.base import AccountRef, PollState
from trickle.connectors.bluesky import BlueskyConnector
from trickle.connectors.bluesky.connector import BlueskySettings
from trickle.connectors.errors import AuthExpired, PlatformError, RateLimited
from trickle.connectors.http import HttpClient
from trickle.core.clock import clock
from trickle.core.credentials import Credentials

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PDS = "https://morel.us-east.host.bsky.network"
NEW_PDS = "https://pds.ada.example.com"
PLC = "https://plc.directory"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
LIST = f"{PDS}/xrpc/com.atproto.repo.listRecords"
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
LINKED_AT = datetime(2026, 10, 1, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def frozen() -> None:
    clock.set(NOW, frozen=True)


@pytest.fixture
def mock() -> Any:
    with responses.RequestsMock() as rsps:
        yield rsps


def connector(**settings: Any) -> BlueskyConnector:
    values = {"plc_url": PLC, "page_size": 2, **settings}
    return BlueskyConnector(BlueskySettings(**values), HttpClient(retries=0))


def account(bluesky: BlueskyConnector, host: str = PDS) -> AccountRef:
    return AccountRef(
        id=1,
        platform_user_id=DID,
        handle="ada.example.com",
        linked_at=LINKED_AT,
        session=bluesky.session(Credentials(), host=host),
        host=host,
    )


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def test_a_like_record_is_a_like_of_the_record_paid_to_its_author(mock: Any) -> None:
    mock.get(LIST, json=load("list_records_page1.json"))
    mock.get(LIST, json={"records": []})
    bluesky = connector()

    result = bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT, baseline_done=True))

    post, feed = result.events
    assert post.item_id == "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3lgu4lg6j2k2v"
    assert post.item_url == (
        "https://bsky.app/profile/did:plc:z72i7hdynmk6r22z27h6tvur/post/3lgu4lg6j2k2v"
    )
    assert post.creator_id == "did:plc:z72i7hdynmk6r22z27h6tvur"
    assert post.creator_handle == post.creator_id  # no per-creator resolution
    assert post.liked_at == datetime(2026, 10, 30, 9, 14, 3, 211000, tzinfo=UTC)
    assert feed.item_url == (
        "https://bsky.app/profile/did:plc:q6gjnaw2blty4crticxkmujt/feed/whats-hot"
    )
    assert feed.liked_at == datetime(2026, 10, 29, 20, 40, 55, 17000, tzinfo=UTC)


def test_listrecords_is_asked_for_the_accounts_likes_without_a_token(mock: Any) -> None:
    mock.get(LIST, json=load("list_records_page1.json"))
    mock.get(LIST, json={"records": []})
    bluesky = connector()

    bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT, baseline_done=True))

    first, second = mock.calls
    assert query(first) == {
        "collection": ["app.bsky.feed.like"],
        "limit": ["2"],
        "repo": [DID],
    }
    assert query(second)["cursor"] == ["3lgwcyqf4ha2c"], "the next page follows the cursor"
    assert "Authorization" not in first.request.headers, "likes are public: no token is sent"


def test_the_page_size_is_capped_at_the_lexicons_maximum(mock: Any) -> None:
    mock.get(LIST, json={"records": []})
    bluesky = connector(page_size=500)

    bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT, baseline_done=True))

    assert query(mock.calls[0])["limit"] == ["100"]


def test_a_page_shorter_than_the_limit_is_the_last_although_it_has_a_cursor(mock: Any) -> None:
    mock.get(LIST, json=load("list_records_page1.json"))  # 2 records and a cursor
    bluesky = connector(page_size=3)

    result = bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT, baseline_done=True))

    assert len(result.events) == 2
    assert len(mock.calls) == 1


def test_a_created_at_without_a_zone_is_utc_and_a_record_that_is_no_like_is_skipped(
    mock: Any,
) -> None:
    mock.get(LIST, json=load("list_records_page2.json"))
    mock.get(LIST, json={"records": []})
    bluesky = connector()

    result = bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT, baseline_done=True))

    (like,) = result.events  # the record whose subject is not a strongRef pays nobody
    assert like.liked_at == datetime(2023, 9, 2, 17, 21, 8, 500000, tzinfo=UTC)


def test_a_like_whose_created_at_is_unusable_counts_from_when_it_was_seen(mock: Any) -> None:
    page = load("list_records_page1.json")
    page["records"][0]["value"]["createdAt"] = "1970-01-01T00:00:00Z"
    page["records"][1]["value"]["createdAt"] = 20261029
    mock.get(LIST, json=page)
    mock.get(LIST, json={"records": []})
    bluesky = connector()

    result = bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT, baseline_done=True))

    assert [e.liked_at for e in result.events] == [None, None]
    assert [e.observed_at for e in result.events] == [NOW, NOW]


def test_one_liked_record_is_one_like_however_many_records_like_it(mock: Any) -> None:
    page = load("list_records_page1.json")
    page["records"][1]["value"]["subject"] = page["records"][0]["value"]["subject"]
    mock.get(LIST, json=page)
    mock.get(LIST, json={"records": []})
    bluesky = connector()

    result = bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT, baseline_done=True))

    assert len(result.events) == 1


def test_a_429_waits_until_the_ratelimit_reset_header(mock: Any) -> None:
    reset = NOW + timedelta(minutes=4, seconds=10)
    mock.get(
        LIST,
        status=429,
        json=load("error_429_rate_limit_exceeded.json"),
        headers={
            "RateLimit-Limit": "3000",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(reset.timestamp())),
            "RateLimit-Policy": "3000;w=300",
        },
    )
    bluesky = connector()

    with pytest.raises(RateLimited) as raised:
        bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT))

    assert raised.value.retry_at == reset
    assert raised.value.scope == "account"


def test_the_ratelimit_headers_of_every_answer_are_read(mock: Any) -> None:
    reset = NOW + timedelta(minutes=3)
    mock.get(
        LIST,
        json={"records": []},
        headers={
            "RateLimit-Limit": "3000",
            "RateLimit-Remaining": "2999",
            "RateLimit-Reset": str(int(reset.timestamp())),
        },
    )
    bluesky = connector()
    ref = account(bluesky)

    bluesky.poll(ref, PollState(linked_at=LINKED_AT))

    assert ref.session.rate_limit is not None
    assert (ref.session.rate_limit.remaining, ref.session.rate_limit.reset_at) == (2999, reset)


def test_an_account_whose_pds_moved_is_followed_there_and_remembered(mock: Any) -> None:
    mock.get(LIST, status=400, json=load("error_400_could_not_find_repo.json"))
    document = load("did_document_plc.json")
    document["service"][0]["serviceEndpoint"] = NEW_PDS
    mock.get(f"{PLC}/{DID}", json=document)
    mock.get(f"{NEW_PDS}/xrpc/com.atproto.repo.listRecords", json=load("list_records_page1.json"))
    mock.get(f"{NEW_PDS}/xrpc/com.atproto.repo.listRecords", json={"records": []})
    bluesky = connector()

    result = bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT, baseline_done=True))

    assert len(result.events) == 2
    assert result.state.cursor == {"pds": NEW_PDS}
    mock.get(f"{NEW_PDS}/xrpc/com.atproto.repo.listRecords", json=load("list_records_page1.json"))
    before = len(mock.calls)
    again = bluesky.poll(account(bluesky), result.state)
    assert again.events == []
    assert [urlsplit(c.request.url).netloc for c in mock.calls[before:]] == [
        "pds.ada.example.com"
    ], "the next poll goes to the new PDS at once"


def test_an_account_gone_from_a_pds_that_did_not_move_must_be_linked_again(mock: Any) -> None:
    mock.get(LIST, status=400, json=load("error_400_could_not_find_repo.json"))
    mock.get(f"{PLC}/{DID}", json=load("did_document_plc.json"))
    bluesky = connector()

    with pytest.raises(AuthExpired, match="deactivated, taken down or deleted"):
        bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT))


def test_another_bad_request_is_a_platform_error_saying_what_the_pds_said(mock: Any) -> None:
    mock.get(LIST, status=400, json={"error": "InvalidRequest", "message": "Invalid cursor"})
    bluesky = connector()

    with pytest.raises(PlatformError, match="Invalid cursor"):
        bluesky.poll(account(bluesky), PollState(linked_at=LINKED_AT))
    assert len(mock.calls) == 1, "only the repository's absence sends trickle to the PLC"


def test_identify_is_the_sessions_did_and_handle(mock: Any) -> None:
    mock.get(f"{PDS}/xrpc/com.atproto.server.getSession", json=load("get_session.json"))
    bluesky = connector()
    token = load("create_session.json")["accessJwt"]

    identity = bluesky.identify(bluesky.session(Credentials(access_token=token), host=PDS))

    assert (identity.platform_user_id, identity.handle) == (DID, "ada.example.com")
    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {token}"
