"""Linking Bluesky accounts end to end through the Linker, against the fakes on 127.0.0.1.

The handle resolves to its DID (DNS TXT on the fake DNS server, or the well-known page of
the fake handles' web server), the DID document comes from the fake PLC directory and names
the PDS and the handle back, and the user's app password signs in at that PDS once:
nothing of it, nor of the session, is kept. Then the worker polls the linked account, and
follows it when it moves to another PDS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import make_settings
from trickle.app import App
from trickle.connectors.bluesky import BlueskyConnector
from trickle.connectors.bluesky.fake import FakeBluesky, plc_did
from trickle.connectors.registry import Registry
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.models import LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.polling import Poller
from trickle.testing.fakeplatform import FakeResponse, Request

APP_PASSWORD = "k3xq-7mvz-2pla-9wrd"
HANDLE = "ada.pds.test"
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with FakeBluesky() as bluesky:
        yield bluesky


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path, fake: FakeBluesky) -> Iterator[App]:
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.connectors = {"bluesky": fake.settings()}
    application = App(settings, registry=Registry.of([BlueskyConnector]))
    clock.set(NOW, frozen=True)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    yield application
    application.close()


def stored(app: App) -> LinkedAccount:
    with app.db.reader() as session:
        return session.scalars(select(LinkedAccount)).one()


@pytest.mark.parametrize("resolution", ["dns", "web"])
def test_a_handle_links_through_its_did_and_pds_with_an_app_password_kept_nowhere(
    app: App, fake: FakeBluesky, resolution: str
) -> None:
    repo = fake.add_account(HANDLE, APP_PASSWORD, resolution=resolution)  # type: ignore[arg-type]

    result = Linker(app).sign_in("bluesky", "alice", f"@{HANDLE.upper()}", APP_PASSWORD)

    assert (result.platform_user_id, result.handle) == (repo.did, HANDLE)
    account = stored(app)
    assert account.host == fake.pds.base_url
    assert account.credentials is not None
    kept = app.box.open(account.credentials)
    assert kept.secret_values() == [], "neither the app password nor the session is kept"
    assert kept.issued_by == "app-password"
    assert fake.pds.sessions_created == 1
    assert fake.pds.sessions_deleted == 1, "the session that proved the account is ended"
    assert fake.plc.resolved == [repo.did]
    if resolution == "dns":
        assert fake.dns.queries == [f"_atproto.{HANDLE}"]


def test_a_wrong_app_password_links_nothing_and_is_not_repeated(
    app: App, fake: FakeBluesky
) -> None:
    fake.add_account(HANDLE, APP_PASSWORD)
    wrong = "aaaa-bbbb-cccc-dddd"

    with pytest.raises(LinkError, match="did not accept that app password") as raised:
        Linker(app).sign_in("bluesky", "alice", HANDLE, wrong)

    assert wrong not in str(raised.value)
    with app.db.reader() as session:
        assert session.scalars(select(LinkedAccount)).all() == []


def test_an_accounts_own_password_is_refused_before_it_is_sent_anywhere(
    app: App, fake: FakeBluesky
) -> None:
    fake.add_account(HANDLE, APP_PASSWORD)

    with pytest.raises(LinkError, match="not an app password"):
        Linker(app).sign_in("bluesky", "alice", HANDLE, "hunter2-my-real-password")

    assert fake.pds.passwords_seen == []
    assert fake.plc.resolved == []


def test_a_handle_the_did_document_does_not_name_back_links_nothing(
    app: App, fake: FakeBluesky
) -> None:
    repo = fake.add_account(HANDLE, APP_PASSWORD)
    fake.plc.rename(repo.did, "someone-else.pds.test")

    with pytest.raises(LinkError, match="not verified both ways"):
        Linker(app).sign_in("bluesky", "alice", HANDLE, APP_PASSWORD)
    assert fake.pds.passwords_seen == [], "no password goes to an unverified account's PDS"


def test_a_handle_that_names_no_did_links_nothing(app: App, fake: FakeBluesky) -> None:
    with pytest.raises(LinkError, match="names no DID"):
        Linker(app).sign_in("bluesky", "alice", "nobody.pds.test", APP_PASSWORD)


def test_a_pds_that_signs_in_another_account_links_nothing(app: App, fake: FakeBluesky) -> None:
    repo = fake.add_account(HANDLE, APP_PASSWORD)

    def another_did(request: Request, response: FakeResponse) -> FakeResponse:
        if "createSession" not in request.path:
            return response
        body = json.loads(response.encoded())
        return FakeResponse(200, {**body, "did": plc_did("impostor")}, response.headers)

    fake.pds.tamper(repo.did, another_did)

    with pytest.raises(LinkError, match="signed in another account"):
        Linker(app).sign_in("bluesky", "alice", HANDLE, APP_PASSWORD)
    assert fake.pds.sessions_deleted == 1, "the session it made is ended all the same"


def test_the_linked_account_is_polled_and_followed_to_its_new_pds(
    app: App, fake: FakeBluesky
) -> None:
    repo = fake.add_account(HANDLE, APP_PASSWORD)
    author = plc_did("author")
    linker = Linker(app)
    linker.sign_in("bluesky", "alice", HANDLE, APP_PASSWORD)
    poller = Poller(app)
    (first,) = poller.poll_now(platform="bluesky")
    assert first.status == "baseline", first.error

    moved_to = fake.another_pds()
    fake.move(repo.did, moved_to)
    moved_to.like(repo.did, f"at://{author}/app.bsky.feed.post/3lgu4lg6j2k2v", NOW)
    clock.advance(timedelta(minutes=10))
    (second,) = poller.poll_now(platform="bluesky")

    assert second.status == "ok", second.error
    assert second.stored == 1
    with app.db.reader() as session:
        state = session.scalars(select(LinkedAccount)).one().poll_state
    assert state["cursor"] == {"pds": moved_to.base_url}
    assert fake.plc.resolved.count(repo.did) == 2, "resolved when linking, and once when moved"


def test_an_account_deactivated_on_its_pds_must_be_linked_again(
    app: App, fake: FakeBluesky
) -> None:
    repo = fake.add_account(HANDLE, APP_PASSWORD)
    Linker(app).sign_in("bluesky", "alice", HANDLE, APP_PASSWORD)
    fake.pds.deactivate(repo.did)

    (outcome,) = Poller(app).poll_now(platform="bluesky")

    assert outcome.status == "auth_expired"
    assert stored(app).status == "auth_expired"


def test_a_did_document_naming_a_pds_on_this_machine_gets_no_password(
    app: App, fake: FakeBluesky
) -> None:
    # The operator has not allowed private hosts: the fake PDS on 127.0.0.1 is one.
    app.settings.connectors["bluesky"]["allow_private_hosts"] = False
    app.settings.connectors["bluesky"]["web_origin"] = None
    fake.add_account(HANDLE, APP_PASSWORD)  # resolved by DNS; the PLC is the operator's

    with pytest.raises(LinkError, match="user-named servers over https only"):
        Linker(App(app.settings, registry=Registry.of([BlueskyConnector]))).sign_in(
            "bluesky", "alice", HANDLE, APP_PASSWORD
        )
    assert fake.pds.passwords_seen == []
