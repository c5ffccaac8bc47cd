"""The Mastodon-like test connector polls the favourites of an account linked on its server:
newest first, page by page through the Link header, with ids unique across servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import requests

from tests.testing.linking_app import MakeApp, linked_accounts
from trickle.app import App
from trickle.connectors.base import AccountRef, PollState
from trickle.linking.service import Linker
from trickle.testing.fake_mastodon import FakeMastodon
from trickle.testing.mastodon_connector import FakeMastodonConnector

CALLBACK = "http://127.0.0.1:53682/callback"


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeMastodon]:
    with FakeMastodon() as server:
        server.add_account("alice")
        server.sign_in("alice")
        yield server


def linked(make_app: MakeApp, fake: FakeMastodon) -> tuple[App, AccountRef]:
    """alice's account, linked through the fake, as a poll sees it."""
    app = make_app([FakeMastodonConnector], {"fake_mastodon": {"page_size": 2}})
    linker = Linker(app)
    authorization = linker.authorize(
        "fake_mastodon", "ann", redirect_uri=CALLBACK, host=fake.base_url
    )
    browser = requests.get(authorization.url, allow_redirects=False, timeout=5)
    linker.complete(browser.headers["Location"])
    (row,) = linked_accounts(app)
    session = app.connector("fake_mastodon").session(app.box.open(row.credentials), host=row.host)
    return app, AccountRef(
        row.id, row.platform_user_id, row.handle, row.linked_at, session, row.host
    )


def test_favourites_are_polled_page_by_page_newest_first(
    fake: FakeMastodon, make_app: MakeApp, now: datetime
) -> None:
    for n in range(5):
        fake.like("alice", f"10{n}", at=now - timedelta(hours=5 - n), author=f"maker{n}")
    app, account = linked(make_app, fake)
    state = PollState(linked_at=now - timedelta(days=1), baseline_done=True)

    result = app.connector("fake_mastodon").poll(account, state)

    base = fake.base_url
    assert [e.item_id for e in result.events] == [
        f"{base}/users/maker{n}/statuses/10{n}" for n in (4, 3, 2, 1, 0)
    ]
    first = result.events[0]
    assert (first.creator_id, first.item_url) == (f"{base}/@maker4", f"{base}/@maker4/104")
    assert first.creator_handle == f"maker4@{base.removeprefix('http://')}"
    assert first.liked_at is None  # Mastodon does not say when a favourite was made
    assert result.requests == 3  # pages of two, through the Link header


def test_a_later_poll_stops_at_the_first_page_it_knows(
    fake: FakeMastodon, make_app: MakeApp, now: datetime
) -> None:
    for n in range(4):
        fake.like("alice", f"10{n}", at=now - timedelta(hours=5 - n))
    app, account = linked(make_app, fake)
    connector = app.connector("fake_mastodon")
    state = connector.poll(account, PollState(linked_at=now, baseline_done=True)).state
    fake.like("alice", "200", at=now)

    again = connector.poll(account, state)

    assert [e.item_id for e in again.events] == [f"{fake.base_url}/users/maker/statuses/200"]
    assert again.requests == 1


def test_the_identity_is_the_profile_url_and_user_at_server(
    fake: FakeMastodon, make_app: MakeApp
) -> None:
    app, account = linked(make_app, fake)
    identity = app.connector("fake_mastodon").identify(account.session)
    assert identity.platform_user_id == f"{fake.base_url}/@alice"
    assert identity.handle == f"alice@{fake.base_url.removeprefix('http://')}"
