"""Linking Flickr accounts: trickle's Linker through Flickr's OAuth 1.0a legs, against the fake.

Flickr's connector declares one flow, OAuth 1.0a with ``perms=read``; trickle's
:class:`~trickle.linking.service.Linker` runs it against :class:`FakeFlickr`,
whose OAuth side checks every signature by RFC 5849, with ``oauth_base_url``
and ``base_url`` both pointing at the one fake. The account linked is the one
``flickr.test.login`` names, and its token credentials poll its favorites.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import make_settings
from trickle.app import App
from trickle.config import Settings
from trickle.connectors.base import AccountRef, PollState
from trickle.connectors.errors import AuthExpired
from trickle.connectors.flickr.fake import FakeFlickr
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.models import LinkAttempt, LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker

KEY = "f1ckr4pp0k3y0000000000000000000a"
SECRET = "f1ckr-4pp-s3cr3t-9b8c7d"
CALLBACK = "http://127.0.0.1:8765/callback"
NSID = "35034348999@N01"


@pytest.fixture
def flickr() -> Iterator[FakeFlickr]:
    with FakeFlickr() as fake:
        fake.register_consumer(KEY, SECRET)
        fake.add_member("nadia", nsid=NSID)
        yield fake


@pytest.fixture
def settings(sqlite_db: Database, tmp_path: Path, flickr: FakeFlickr) -> Settings:
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.connectors = {
        "flickr": {
            "base_url": flickr.base_url,
            "oauth_base_url": flickr.base_url,
            "consumer_key": KEY,
            "consumer_secret": SECRET,
        }
    }
    return settings


def make_app(settings: Settings, **flickr: str | None) -> App:
    """An App (Flickr is installed as an entry point) with ``flickr`` settings changed."""
    changed = settings.model_copy(deep=True)
    table = changed.connectors["flickr"]
    table.update({k: v for k, v in flickr.items() if v is not None})
    for key in [k for k, v in flickr.items() if v is None]:
        del table[key]
    return App(changed)


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = make_app(settings)
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    yield application
    application.close()


def linked(app: App) -> list[LinkedAccount]:
    with app.db.reader() as session:
        return list(session.scalars(select(LinkedAccount).order_by(LinkedAccount.id)))


def attempts(app: App) -> int:
    with app.db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(LinkAttempt)) or 0)


def approve(url: str) -> requests.Response:
    """The signed-in person's browser at Flickr's authorization page."""
    return requests.get(url, allow_redirects=False, timeout=5)


def test_an_account_links_through_the_three_legs_and_its_favorites_are_polled(
    app: App, flickr: FakeFlickr
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("flickr", "alice", redirect_uri=CALLBACK)
    address = urlsplit(authorization.url)
    assert f"{address.scheme}://{address.netloc}{address.path}" == (
        f"{flickr.base_url}/services/oauth/authorize"
    )
    asked = parse_qs(address.query)
    assert asked["perms"] == ["read"]
    assert asked["oauth_token"] == [flickr.request_tokens[0].token]
    flickr.sign_in("nadia")

    browser = approve(authorization.url)
    result = linker.complete(browser.headers["Location"])

    assert (result.user, result.platform, result.handle) == ("alice", "flickr", "nadia")
    assert result.platform_user_id == NSID
    (account,) = linked(app)
    assert account.credentials is not None
    credentials = app.box.open(account.credentials)
    (issued,) = flickr.access_tokens
    assert (credentials.access_token, credentials.token_secret) == (issued.token, issued.secret)
    assert credentials.issued_by == "oauth1"
    assert issued.perms == "read"
    assert attempts(app) == 0

    owner = flickr.add_member("maker")
    photo = flickr.photo("maker", "heron at dusk")
    flickr.fave("nadia", photo, clock.now() - timedelta(minutes=5))
    connector = app.connector("flickr")
    ref = AccountRef(account.id, NSID, "nadia", clock.now(), connector.session(credentials))
    polled = connector.poll(ref, PollState(linked_at=clock.now() - timedelta(hours=1)))
    assert [(e.item_id, e.creator_id) for e in polled.events] == [(photo.id, owner.id)]
    assert flickr.refusals == []


def test_a_person_who_does_not_allow_trickle_sees_flickrs_page_and_nothing_is_linked(
    app: App, flickr: FakeFlickr
) -> None:
    flickr.sign_in("nadia", consent="deny")
    authorization = Linker(app).authorize("flickr", "alice", redirect_uri=CALLBACK)

    page = approve(authorization.url)

    assert page.status_code == 200
    assert "Location" not in page.headers
    assert linked(app) == []
    assert flickr.request_tokens[0].status == "denied"


def test_the_answer_of_a_link_cannot_be_used_twice(app: App, flickr: FakeFlickr) -> None:
    linker = Linker(app)
    authorization = linker.authorize("flickr", "alice", redirect_uri=CALLBACK)
    flickr.sign_in("nadia")
    back = approve(authorization.url).headers["Location"]
    linker.complete(back)

    with pytest.raises(LinkError, match="was not begun here, was already used, or has expired"):
        linker.complete(back)
    assert len(linked(app)) == 1


def test_without_the_apps_key_and_secret_linking_says_where_to_register_and_what_to_give(
    settings: Settings,
) -> None:
    app = make_app(settings, consumer_key=None, consumer_secret=None)
    try:
        with pytest.raises(LinkError) as raised:
            Linker(app).authorize("flickr", "alice", redirect_uri=CALLBACK)
    finally:
        app.close()
    message = str(raised.value)
    assert "https://www.flickr.com/services/apps/create/" in message
    assert "redirect URI http://127.0.0.1" in message
    assert "[connectors.flickr] consumer_key and [connectors.flickr] consumer_secret" in message


def test_a_wrong_consumer_secret_links_nothing_and_shows_no_secret(
    app: App, settings: Settings, flickr: FakeFlickr
) -> None:
    wrong = "n0t-th3-4pp-s3cr3t-at-all"
    misconfigured = make_app(settings, consumer_secret=wrong)  # alice is in app's database
    try:
        with pytest.raises(LinkError, match="flickr refused asking for a request token") as raised:
            Linker(misconfigured).authorize("flickr", "alice", redirect_uri=CALLBACK)
    finally:
        misconfigured.close()
    assert wrong not in str(raised.value)
    assert SECRET not in str(raised.value)
    assert flickr.problems == ["signature_invalid"]
    assert flickr.request_tokens == []


def test_access_the_person_revoked_at_flickr_must_be_linked_again(
    app: App, flickr: FakeFlickr
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("flickr", "alice", redirect_uri=CALLBACK)
    flickr.sign_in("nadia")
    linker.complete(approve(authorization.url).headers["Location"])
    (account,) = linked(app)
    assert account.credentials is not None
    connector = app.connector("flickr")
    session = connector.session(app.box.open(account.credentials))
    flickr.revoke("nadia")

    with pytest.raises(AuthExpired, match=r"flickr\.test\.login: .*\(98: Invalid auth token\)"):
        connector.identify(session)
