"""The OAuth 1.0a test connector polls an account linked through the fake: every page signed with
the token credentials, its query (limit, cursor) covered by the signature."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.testing.linking_app import MakeApp
from trickle.app import App
from trickle.connectors.base import AccountRef, PollState
from trickle.connectors.errors import AuthExpired
from trickle.testing.fake_oauth1 import FakeOAuth1
from trickle.testing.oauth1_connector import FakeOAuth1Connector

KEY = "consumer-key"
SECRET = "consumer-s3cret-0123456789"


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeOAuth1]:
    with FakeOAuth1() as server:
        server.register_consumer(KEY, SECRET)
        server.add_account("alice")
        yield server


def account_on(make_app: MakeApp, fake: FakeOAuth1, now: datetime) -> tuple[App, AccountRef]:
    table = {
        "consumer_key": KEY,
        "consumer_secret": SECRET,
        "base_url": fake.base_url,
        "page_size": 2,
    }
    app = make_app([FakeOAuth1Connector], {"fake_oauth1": table})
    credentials = fake.issue("alice", KEY).credentials()
    session = app.connector("fake_oauth1").session(credentials)
    user_id = fake.accounts["alice"].id
    return app, AccountRef(1, user_id, "alice", now - timedelta(days=1), session)


def test_likes_are_polled_through_signed_pages(
    fake: FakeOAuth1, make_app: MakeApp, now: datetime
) -> None:
    for n in range(5):
        fake.like("alice", f"item-{n}", at=now - timedelta(hours=5 - n), author=f"maker{n}")
    app, account = account_on(make_app, fake, now)
    state = PollState(linked_at=now - timedelta(days=1), baseline_done=True)

    result = app.connector("fake_oauth1").poll(account, state)

    assert [e.item_id for e in result.events] == [f"item-{n}" for n in (4, 3, 2, 1, 0)]
    assert result.events[0].liked_at == now - timedelta(hours=1)
    assert (result.events[0].creator_id, result.events[0].creator_handle) == ("a-maker4", "maker4")
    assert result.requests == 3
    assert fake.refusals == []


def test_an_account_whose_access_was_revoked_must_be_linked_again(
    fake: FakeOAuth1, make_app: MakeApp, now: datetime
) -> None:
    app, account = account_on(make_app, fake, now)
    fake.revoke("alice")
    with pytest.raises(AuthExpired):
        app.connector("fake_oauth1").poll(account, PollState(linked_at=now, baseline_done=True))
    assert fake.problems == ["token_revoked"]


def test_the_identity_is_the_accounts_id_and_name(
    fake: FakeOAuth1, make_app: MakeApp, now: datetime
) -> None:
    app, account = account_on(make_app, fake, now)
    identity = app.connector("fake_oauth1").identify(account.session)
    assert (identity.platform_user_id, identity.handle) == (fake.accounts["alice"].id, "alice")
