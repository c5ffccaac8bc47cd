"""Linking SoundCloud accounts: trickle's real linking service against the fake SoundCloud.

SoundCloud's connector declares one flow, the authorization code with PKCE at
``secure.soundcloud.com`` with trickle's app (a confidential client); the
:class:`~trickle.linking.service.Linker` runs it against
:class:`~trickle.connectors.soundcloud.fake.FakeSoundCloud` (``base_url`` and
``oauth_base_url`` both on the one fake), whose authorization endpoint requires
PKCE S256 and whose tokens last 3599 seconds with single-use refresh tokens. The
worker then polls the linked account an hour later, renewing its token on the way;
unlinking signs the session out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from tests.conftest import make_settings
from trickle.app import App
from trickle.config import Settings
from trickle.connectors.soundcloud.fake import FakeSoundCloud
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.db import Database
from trickle.core.models import Flattr, LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.polling import Worker

CLIENT_ID = "Tr1ckl3SoundCloudApp0123456789ab"
SECRET = "Tr1ckl3-SoundCloud-secret-0123456789abcdef"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
START = datetime(2026, 11, 2, 12, tzinfo=UTC)


@pytest.fixture
def soundcloud() -> Iterator[FakeSoundCloud]:
    with FakeSoundCloud() as fake:
        fake.add_account("ines-duarte")
        fake.add_account("mira-sol")
        fake.register_client(CLIENT_ID, SECRET, redirect_uris=(REDIRECT_URI,))
        yield fake


def make_app(sqlite_db: Database, tmp_path: Path, soundcloud: FakeSoundCloud, **keys: str) -> App:
    settings: Settings = make_settings(sqlite_db.url, tmp_path)
    table = {
        "base_url": soundcloud.base_url,
        "oauth_base_url": soundcloud.base_url,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        **keys,
    }
    settings.connectors = {"soundcloud": {k: v for k, v in table.items() if v}}
    application = App(settings)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    return application


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path, soundcloud: FakeSoundCloud) -> Iterator[App]:
    clock.set(START, frozen=True)
    application = make_app(sqlite_db, tmp_path, soundcloud)
    yield application
    application.close()
    clock.reset()


def browser_link(linker: Linker, soundcloud: FakeSoundCloud, person: str = "ines-duarte") -> str:
    """Begin a link for alice, and play ``person`` approving it at SoundCloud; the address
    SoundCloud sent the browser back to."""
    authorization = linker.authorize("soundcloud", "alice", redirect_uri=REDIRECT_URI)
    soundcloud.sign_in(person)
    answer = requests.get(authorization.url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    return answer.headers["Location"]


def stored(app: App) -> tuple[LinkedAccount, Credentials]:
    with app.db.reader() as session:
        (account,) = session.scalars(select(LinkedAccount))
    assert account.credentials is not None
    return account, app.box.open(account.credentials)


def test_a_soundcloud_account_links_in_the_browser_with_pkce(
    app: App, soundcloud: FakeSoundCloud
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("soundcloud", "alice", redirect_uri=REDIRECT_URI)
    asked = parse_qs(urlsplit(authorization.url).query)
    assert urlsplit(authorization.url).path == "/authorize"  # secure.soundcloud.com/authorize
    assert asked["code_challenge_method"] == ["S256"]
    assert asked["client_id"] == [CLIENT_ID]
    assert "scope" not in asked  # SoundCloud has no scopes
    soundcloud.sign_in("ines-duarte")
    answer = requests.get(authorization.url, allow_redirects=False, timeout=5)

    result = linker.complete(answer.headers["Location"])

    me = soundcloud.accounts["ines-duarte"]
    assert (result.platform_user_id, result.handle) == (me.id, "ines-duarte")
    assert me.id.startswith("soundcloud:users:")
    account, credentials = stored(app)
    assert account.status == "active"
    assert credentials.issued_by == "oauth2"
    assert credentials.refresh_token
    assert credentials.expires_at == START + timedelta(seconds=3599)
    assert soundcloud.accepts(credentials)


def test_a_person_who_does_not_connect_links_nothing(app: App, soundcloud: FakeSoundCloud) -> None:
    linker = Linker(app)
    authorization = linker.authorize("soundcloud", "alice", redirect_uri=REDIRECT_URI)
    soundcloud.sign_in("ines-duarte", consent="deny")
    answer = requests.get(authorization.url, allow_redirects=False, timeout=5)

    with pytest.raises(LinkError, match="you did not allow trickle"):
        linker.complete(answer.headers["Location"])
    with app.db.reader() as session:
        assert session.scalars(select(LinkedAccount)).all() == []


def test_without_trickles_app_the_operator_is_told_where_to_register_it(
    sqlite_db: Database, tmp_path: Path, soundcloud: FakeSoundCloud
) -> None:
    clock.set(START, frozen=True)
    application = make_app(sqlite_db, tmp_path, soundcloud, client_secret="")
    try:
        with pytest.raises(LinkError) as refused:
            Linker(application).authorize("soundcloud", "alice", redirect_uri=REDIRECT_URI)
    finally:
        application.close()
        clock.reset()
    message = str(refused.value)
    assert "https://soundcloud.com/you/apps" in message
    assert "redirect URI http://127.0.0.1/callback" in message
    assert "[connectors.soundcloud] client_secret" in message


def test_the_linked_account_is_polled_an_hour_later_on_a_renewed_token(
    app: App, soundcloud: FakeSoundCloud
) -> None:
    linker = Linker(app)
    linker.complete(browser_link(linker, soundcloud))
    _, first = stored(app)
    worker = Worker(app, threads=1)
    try:
        assert worker.poll_until_idle(timeout=10)  # the baseline
        track = soundcloud.upload("mira-sol", "Harbour Lights")
        clock.advance(timedelta(hours=6))  # the token died five hours ago
        soundcloud.like_track("ines-duarte", track)
        assert worker.poll_until_idle(timeout=10)
    finally:
        worker.shutdown(grace=5)

    with app.db.reader() as session:
        flattrs = session.scalars(select(Flattr)).all()
    assert [f.item_id for f in flattrs] == [track.urn]
    _, renewed = stored(app)
    assert renewed.refresh_token not in (None, first.refresh_token)  # the rotated one, saved
    assert soundcloud.refreshes["ines-duarte"] == 1
    assert soundcloud.accepts(renewed)
    assert not soundcloud.accepts(first.changed(access_token="gone"))  # spent for good


def test_unlinking_signs_the_session_out_at_soundcloud(
    app: App, soundcloud: FakeSoundCloud
) -> None:
    linker = Linker(app)
    linker.complete(browser_link(linker, soundcloud))
    _, credentials = stored(app)

    result = linker.unlink("soundcloud", "alice")

    assert result.revoked
    assert soundcloud.sign_outs == 1
    assert not soundcloud.accepts(credentials)


def test_an_account_unlinked_after_its_hour_is_renewed_then_signed_out(
    app: App, soundcloud: FakeSoundCloud
) -> None:
    linker = Linker(app)
    linker.complete(browser_link(linker, soundcloud))
    clock.advance(timedelta(hours=2))

    result = linker.unlink("soundcloud", "alice")

    assert result.revoked
    assert soundcloud.refreshes["ines-duarte"] == 1
    assert soundcloud.sign_outs == 1
    assert soundcloud.current_refresh_token("ines-duarte") is None  # no live grant is left
