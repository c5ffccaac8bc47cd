"""Linking pnut.io and App.net accounts: trickle's real linking service against each fake.

Both declare the server-side flow (authorization code, no PKCE: neither reference has it)
and a pasted token. trickle's :class:`~trickle.linking.service.Linker` runs the flow
against the fake's ``/oauth/authenticate`` and token endpoint, whose answer is the
platform's own shape (the access token and a Token object, no ``token_type``), with
``oauth_base_url`` and ``base_url`` pointing at the one fake. Unlinking deletes the token
at ``DELETE /token``. An App.net link needs the compatible server named twice over: its
API (``base_url``) and its OAuth origin (``oauth_base_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from tests.conftest import make_settings
from trickle.app import App
from trickle.config import Settings
from trickle.connectors.errors import NotConfigured
from trickle.connectors.pnut.fake import FakeAdnServer, FakeAppNet, FakePnut
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.models import LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker

CLIENT_ID = "tr1ckl3-pnut-cl13nt-4f0e9a"
SECRET = "tr1ckl3-pnut-s3cr3t-0123456789abcdef"
REDIRECT = "http://127.0.0.1:5173/callback"


def fake_for(dialect: str) -> FakeAdnServer:
    return FakePnut() if dialect == "pnut" else FakeAppNet()


@pytest.fixture(params=["pnut", "appnet"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake(dialect: str) -> Iterator[FakeAdnServer]:
    with fake_for(dialect) as server:
        server.add_account("robert", user_id=1)
        server.register_client(CLIENT_ID, SECRET, redirect_uris=("http://127.0.0.1/callback",))
        yield server


def api_root(fake: FakeAdnServer) -> str:
    return fake.base_url + (fake.api_root if isinstance(fake, FakePnut) else "")


def table(fake: FakeAdnServer, **changes: Any) -> dict[str, Any]:
    values = {
        "base_url": api_root(fake),
        "oauth_base_url": fake.base_url,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


@pytest.fixture
def settings(sqlite_db: Database, tmp_path: Path) -> Settings:
    return make_settings(sqlite_db.url, tmp_path)


def make_app(settings: Settings, dialect: str, fake: FakeAdnServer, **changes: Any) -> App:
    changed = settings.model_copy(deep=True)
    changed.connectors = {dialect: table(fake, **changes)}
    application = App(changed)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    return application


@pytest.fixture
def app(settings: Settings, dialect: str, fake: FakeAdnServer) -> Iterator[App]:
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    application = make_app(settings, dialect, fake)
    yield application
    application.close()


def linked(app: App) -> list[LinkedAccount]:
    with app.db.reader() as session:
        return list(session.scalars(select(LinkedAccount)))


def token_works(fake: FakeAdnServer, token: str) -> bool:
    answer = requests.get(
        f"{api_root(fake)}{'' if isinstance(fake, FakePnut) else '/stream/0'}/users/me",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    return answer.status_code == 200


def test_the_server_side_flow_links_the_signed_in_user(
    app: App, dialect: str, fake: FakeAdnServer
) -> None:
    linker = Linker(app)
    authorization = linker.authorize(dialect, "alice", redirect_uri=REDIRECT)
    asked = urlsplit(authorization.url)
    fake.sign_in("robert")
    back = requests.get(authorization.url, allow_redirects=False, timeout=5).headers["Location"]

    result = linker.complete(back)

    assert asked.path == "/oauth/authenticate"
    query = parse_qs(asked.query)
    assert query["scope"] == ["basic"]
    assert query["response_type"] == ["code"]
    assert "code_challenge" not in query  # neither reference has PKCE
    assert (result.platform, result.platform_user_id, result.handle) == (dialect, "1", "robert")
    (account,) = linked(app)
    assert account.credentials is not None
    credentials = app.box.open(account.credentials)
    assert credentials.issued_by == "oauth2"
    assert credentials.refresh_token is None
    assert credentials.access_token is not None
    assert token_works(fake, credentials.access_token)


def test_a_user_who_denies_links_nothing(app: App, dialect: str, fake: FakeAdnServer) -> None:
    linker = Linker(app)
    authorization = linker.authorize(dialect, "alice", redirect_uri=REDIRECT)
    fake.sign_in("robert", consent="deny")
    back = requests.get(authorization.url, allow_redirects=False, timeout=5).headers["Location"]

    with pytest.raises(LinkError, match="did not allow trickle"):
        linker.complete(back)

    assert linked(app) == []


def test_a_pasted_token_links_and_unlinking_leaves_it_to_its_owner(
    app: App, dialect: str, fake: FakeAdnServer
) -> None:
    token = fake.issue("robert", CLIENT_ID).access_token
    linker = Linker(app)

    result = linker.import_token(dialect, "alice", token)
    unlinked = linker.unlink(dialect, "alice")

    assert (result.platform_user_id, result.handle) == ("1", "robert")
    assert not unlinked.revoked
    assert "revoke it there" in unlinked.note
    assert token_works(fake, token)


def test_unlinking_deletes_the_token_trickles_app_obtained(
    app: App, dialect: str, fake: FakeAdnServer
) -> None:
    linker = Linker(app)
    authorization = linker.authorize(dialect, "alice", redirect_uri=REDIRECT)
    fake.sign_in("robert")
    linker.complete(
        requests.get(authorization.url, allow_redirects=False, timeout=5).headers["Location"]
    )
    (account,) = linked(app)
    assert account.credentials is not None
    token = app.box.open(account.credentials).access_token
    assert token is not None

    unlinked = linker.unlink(dialect, "alice")

    assert unlinked.revoked
    assert not token_works(fake, token)


def test_without_trickles_client_the_operator_is_told_where_to_register(
    settings: Settings,
) -> None:
    with FakePnut() as fake:
        app = make_app(settings, "pnut", fake, client_id=None, client_secret=None)
        try:
            with pytest.raises(LinkError) as caught:
                Linker(app).authorize("pnut", "alice", redirect_uri=REDIRECT)
        finally:
            app.close()

    message = str(caught.value)
    assert "https://pnut.io/dev" in message
    assert "redirect URI" in message
    assert "[connectors.pnut] client_id" in message


def test_appnet_will_not_send_a_user_to_the_closed_account_app_net(settings: Settings) -> None:
    with FakeAppNet() as fake:
        app = make_app(settings, "appnet", fake, oauth_base_url=None)
        try:
            with pytest.raises(LinkError) as caught:
                Linker(app).authorize("appnet", "alice", redirect_uri=REDIRECT)
        finally:
            app.close()

    assert "[connectors.appnet] oauth_base_url" in str(caught.value)


def test_appnet_without_a_server_links_no_token(settings: Settings) -> None:
    with FakeAppNet() as fake:
        fake.add_account("robert")
        fake.register_client(CLIENT_ID, SECRET)
        token = fake.issue("robert", CLIENT_ID).access_token
        app = make_app(settings, "appnet", fake, base_url=None)
        try:
            with pytest.raises(NotConfigured, match="closed on 2017-03-15"):
                Linker(app).import_token("appnet", "alice", token)
        finally:
            app.close()
        assert fake.total_requests == 0
