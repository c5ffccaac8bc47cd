"""Linking Vimeo accounts: trickle's real linking service against the fake Vimeo.

Vimeo's connector declares the authorization code flow with trickle's app (scopes
``public private``, the app authenticated with HTTP Basic at ``/oauth/access_token``)
and a personal access token; the :class:`~trickle.linking.service.Linker` runs both
against :class:`~trickle.connectors.vimeo.fake.FakeVimeo` (``base_url`` and
``oauth_base_url`` on the one fake). Unlinking deletes the token at ``DELETE /tokens``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from tests.conftest import make_settings
from trickle.app import App
from trickle.connectors.vimeo.fake import FakeVimeo
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.models import LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker

CLIENT_ID = "Tr1ckl3V1m30App0123456789abcdef0"
SECRET = "Tr1ckl3-V1m30-secret-0123456789abcdef"
REDIRECT_URI = "http://127.0.0.1:8765/callback"


@pytest.fixture
def vimeo() -> Iterator[FakeVimeo]:
    with FakeVimeo() as fake:
        fake.add_account("ines")
        fake.register_client(
            CLIENT_ID, SECRET, "client_secret_basic", redirect_uris=(REDIRECT_URI,)
        )
        yield fake


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path, vimeo: FakeVimeo) -> Iterator[App]:
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.connectors = {
        "vimeo": {
            "base_url": vimeo.base_url,
            "oauth_base_url": vimeo.base_url,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
        }
    }
    application = App(settings)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    yield application
    application.close()
    clock.reset()


def linked(app: App) -> list[LinkedAccount]:
    with app.db.reader() as session:
        return list(session.scalars(select(LinkedAccount)))


def test_a_vimeo_account_links_in_the_browser_for_public_and_private(
    app: App, vimeo: FakeVimeo
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("vimeo", "alice", redirect_uri=REDIRECT_URI)
    asked = parse_qs(urlsplit(authorization.url).query)
    assert urlsplit(authorization.url).path == "/oauth/authorize"
    assert asked["scope"] == ["public private"]
    vimeo.sign_in("ines")
    answer = requests.get(authorization.url, allow_redirects=False, timeout=5)

    result = linker.complete(answer.headers["Location"])

    assert (result.platform_user_id, result.handle) == (vimeo.accounts["ines"].id, "ines")
    (account,) = linked(app)
    assert account.credentials is not None
    credentials = app.box.open(account.credentials)
    assert credentials.issued_by == "oauth2"
    assert credentials.expires_at is None  # Vimeo's tokens do not expire
    assert credentials.scopes == ("public", "private")


def test_a_member_who_does_not_allow_links_nothing(app: App, vimeo: FakeVimeo) -> None:
    linker = Linker(app)
    authorization = linker.authorize("vimeo", "alice", redirect_uri=REDIRECT_URI)
    vimeo.sign_in("ines", consent="deny")
    answer = requests.get(authorization.url, allow_redirects=False, timeout=5)

    with pytest.raises(LinkError, match="you did not allow trickle"):
        linker.complete(answer.headers["Location"])
    assert linked(app) == []


def test_a_personal_access_token_links_too(app: App, vimeo: FakeVimeo) -> None:
    token = vimeo.issue("ines", CLIENT_ID, scope=("public", "private")).access_token

    result = Linker(app).import_token("vimeo", "alice", token)

    assert result.handle == "ines"


def test_unlinking_deletes_the_token_at_vimeo(app: App, vimeo: FakeVimeo) -> None:
    linker = Linker(app)
    authorization = linker.authorize("vimeo", "alice", redirect_uri=REDIRECT_URI)
    vimeo.sign_in("ines")
    answer = requests.get(authorization.url, allow_redirects=False, timeout=5)
    linker.complete(answer.headers["Location"])
    (account,) = linked(app)
    assert account.credentials is not None
    credentials = app.box.open(account.credentials)

    result = linker.unlink("vimeo", "alice")

    assert result.revoked
    assert vimeo.revoked_tokens == 1
    assert not vimeo.accepts(credentials)
