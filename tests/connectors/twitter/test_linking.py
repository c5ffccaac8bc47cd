"""Linking X accounts: trickle's real linking service against the fake X's OAuth 2.0.

X's connector declares the authorization code flow with PKCE, as a
confidential client (HTTP Basic at the token endpoint), and tokens made
elsewhere. trickle's :class:`~trickle.linking.service.Linker` runs the flow
against :class:`~trickle.connectors.twitter.fake.FakeX`, with ``base_url`` and
``oauth_base_url`` both pointing at the one fake: the test plays the signed-in
person's browser at the consent page. Then the real worker polls the linked
account, past the two hours its access token lasts, so the refresh (and the
single-use refresh token X rotated to) is saved before the token is used.
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
from trickle.connectors.twitter.fake import FakeX
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.models import Flattr, LinkAttempt, LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.polling import Worker

CLIENT_ID = "bGlua2luZy10ZXN0LWFwcDoxOmNp"
SECRET = "l1nk1ng-x-s3cr3t-0123456789abcdef0123456789ab"
REDIRECT = "http://127.0.0.1:8765/callback"
JACK_ID = 1480000000000012


@pytest.fixture
def x() -> Iterator[FakeX]:
    with FakeX() as fake:
        fake.add_user("jack", user_id=JACK_ID)
        fake.add_user("maker")
        fake.register_app(CLIENT_ID, SECRET, redirect_uris=(REDIRECT,))
        yield fake


@pytest.fixture
def settings(sqlite_db: Database, tmp_path: Path, x: FakeX) -> Settings:
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.linking.loopback_port = 8765  # X's callback URLs are registered with their port
    settings.connectors = {
        "twitter": {
            "base_url": x.base_url,
            "oauth_base_url": x.base_url,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
        }
    }
    return settings


def make_app(settings: Settings, **twitter: str | None) -> App:
    changed = settings.model_copy(deep=True)
    table = changed.connectors["twitter"]
    for key, value in twitter.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
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


def flattrs(app: App) -> int:
    with app.db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(Flattr)) or 0)


def stored(app: App) -> tuple[str | None, str | None, datetime | None, str | None]:
    (account,) = linked(app)
    assert account.credentials is not None
    credentials = app.box.open(account.credentials)
    return (
        credentials.access_token,
        credentials.refresh_token,
        credentials.expires_at,
        credentials.issued_by,
    )


def browser_at(url: str) -> str:
    """The person's browser at X's consent page: where X sends it back."""
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["Location"]
    return location


def browser_link(app: App, x: FakeX) -> Linker:
    linker = Linker(app)
    authorization = linker.authorize("twitter", "alice", redirect_uri=REDIRECT)
    x.oauth.sign_in("jack")
    linker.complete(browser_at(authorization.url))
    return linker


def poll_due(app: App) -> None:
    """The worker's ticks until no account is due (what the scheduler runs)."""
    worker = Worker(app, threads=2)
    try:
        assert worker.poll_until_idle(timeout=30)
    finally:
        worker.shutdown(grace=5)


def test_the_browser_flow_links_the_signed_in_user_with_pkce_and_x_scopes(
    app: App, x: FakeX
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("twitter", "alice", redirect_uri=REDIRECT)

    asked = urlsplit(authorization.url)
    query = parse_qs(asked.query)
    assert f"{asked.scheme}://{asked.netloc}{asked.path}" == f"{x.base_url}/i/oauth2/authorize"
    assert query["scope"] == ["tweet.read users.read like.read offline.access"]
    assert query["code_challenge_method"] == ["S256"]
    assert (query["client_id"], query["redirect_uri"]) == ([CLIENT_ID], [REDIRECT])
    assert SECRET not in authorization.url
    x.oauth.sign_in("jack")

    back = browser_at(authorization.url)
    assert back.startswith(f"{REDIRECT}?code=")
    result = linker.complete(back)

    assert (result.user, result.handle, result.platform_user_id) == ("alice", "jack", str(JACK_ID))
    access, refresh, expires_at, issued_by = stored(app)
    assert issued_by == "oauth2"
    assert refresh == x.oauth.current_refresh_token("jack")  # offline.access was granted
    assert expires_at == clock.now() + timedelta(hours=2)
    assert access is not None
    assert refresh is not None
    assert attempts(app) == 0
    (code,) = x.oauth.codes
    assert code.challenge is not None  # PKCE, which X requires


def test_a_person_who_cancels_at_x_links_nothing(app: App, x: FakeX) -> None:
    linker = Linker(app)
    authorization = linker.authorize("twitter", "alice", redirect_uri=REDIRECT)
    x.oauth.sign_in("jack", consent="deny")
    with pytest.raises(LinkError, match=r"access_denied|did not allow"):
        linker.complete(browser_at(authorization.url))
    assert (linked(app), attempts(app)) == ([], 0)


def test_a_wrong_client_secret_is_refused_at_the_exchange_without_showing_it(
    settings: Settings, x: FakeX, app: App
) -> None:
    wrong = make_app(settings, client_secret="n0t-th3-x-4pp-s3cr3t-0123456789abcdef")
    try:
        linker = Linker(wrong)
        authorization = linker.authorize("twitter", "alice", redirect_uri=REDIRECT)
        x.oauth.sign_in("jack")
        with pytest.raises(LinkError, match="invalid_client") as refused:
            linker.complete(browser_at(authorization.url))
    finally:
        wrong.close()
    assert "n0t-th3-x-4pp-s3cr3t" not in str(refused.value)
    assert (linked(app), attempts(app)) == ([], 0)


def test_without_trickles_app_the_error_says_where_to_register_it_and_the_redirect_uri(
    settings: Settings, app: App
) -> None:
    bare = make_app(settings, client_id=None, client_secret=None)
    try:
        with pytest.raises(LinkError) as missing:
            Linker(bare).authorize("twitter", "alice", redirect_uri=REDIRECT)
    finally:
        bare.close()
    message = str(missing.value)
    assert "https://developer.x.com/en/portal/dashboard" in message
    assert f"redirect URI {REDIRECT};" in message
    assert "[connectors.twitter] client_id and [connectors.twitter] client_secret" in message


def test_the_worker_polls_the_linked_account_and_renews_its_token_after_two_hours(
    app: App, x: FakeX
) -> None:
    old_post = x.post("maker", "liked before the link")
    x.like("jack", old_post, at=clock.now() - timedelta(days=3))
    browser_link(app, x)
    poll_due(app)  # the baseline: the old like is never paid
    assert flattrs(app) == 0
    first_access, first_refresh, _, _ = stored(app)

    clock.advance(timedelta(hours=3))  # the access token expired an hour ago
    new = x.post("maker", "liked after the link")
    x.like("jack", new)
    poll_due(app)

    assert flattrs(app) == 1
    access, refresh, expires_at, _ = stored(app)
    assert access != first_access
    assert refresh != first_refresh
    assert refresh == x.oauth.current_refresh_token("jack")  # the rotated one was saved
    assert x.oauth.refreshes["jack"] == 1
    assert expires_at == clock.now() + timedelta(hours=2)


def test_unlinking_revokes_the_token_at_x(app: App, x: FakeX) -> None:
    linker = browser_link(app, x)
    access, _, _, _ = stored(app)

    result = linker.unlink("twitter", "alice")

    assert result.revoked is True
    (revocation,) = x.oauth.revocations
    assert (revocation.client_id, revocation.username) == (CLIENT_ID, "jack")
    answer = requests.get(
        f"{x.base_url}/2/users/me", headers={"Authorization": f"Bearer {access}"}, timeout=5
    )
    assert answer.status_code == 401
    (account,) = linked(app)
    assert account.credentials is None
