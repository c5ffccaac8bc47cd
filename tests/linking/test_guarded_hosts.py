"""The linking service holds its requests to a user-named server to the connector's host guard:
registering the app, checking that the server still knows it, exchanging the code, revoking."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from tests.testing.linking_app import build_app, linked_accounts
from trickle.app import App
from trickle.connectors.hosts import HostGuard, HostRefused
from trickle.core.db import Database
from trickle.linking.service import Linker
from trickle.testing.fake_mastodon import FakeMastodon
from trickle.testing.mastodon_connector import FakeMastodonConnector

CALLBACK = "http://127.0.0.1:53682/callback"


class GuardedMastodon(FakeMastodonConnector):
    """The Mastodon-like test connector, its servers named by users (as Mastodon's are)."""

    name: ClassVar[str] = "guarded_mastodon"
    user_supplied_hosts: ClassVar[bool] = True


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with FakeMastodon() as server:
        server.add_account("alice")
        server.sign_in("alice")
        yield server


def make(sqlite_db: Database, tmp_path: Path, *, allow: bool) -> App:
    return build_app(
        sqlite_db.url,
        tmp_path,
        [GuardedMastodon],
        {"guarded_mastodon": {"allow_private_hosts": allow}},
    )


def allow(app: App, allowed: bool) -> None:
    """The operator changes ``allow_private_hosts`` (the connector is the App's one)."""
    connector = app.connector("guarded_mastodon")
    connector.settings = connector.settings.model_copy(update={"allow_private_hosts": allowed})


def test_a_server_on_a_private_address_is_refused_before_the_app_is_registered(
    fake: FakeMastodon, sqlite_db: Database, tmp_path: Path
) -> None:
    app = make(sqlite_db, tmp_path, allow=False)
    with pytest.raises(HostRefused, match=r"POST .*/api/v1/apps: .*over https only"):
        Linker(app).authorize("guarded_mastodon", "ann", redirect_uri=CALLBACK, host=fake.base_url)
    assert fake.registrations == 0
    assert fake.total_requests == 0
    app.close()


def test_the_connectors_guard_follows_its_setting(sqlite_db: Database, tmp_path: Path) -> None:
    app = make(sqlite_db, tmp_path, allow=True)
    assert app.connector("guarded_mastodon").host_guard == HostGuard(allow_private=True)
    allow(app, False)
    assert app.connector("guarded_mastodon").host_guard == HostGuard(allow_private=False)
    app.close()


def test_the_code_exchange_and_the_apps_check_are_guarded_too(
    fake: FakeMastodon, sqlite_db: Database, tmp_path: Path
) -> None:
    app = make(sqlite_db, tmp_path, allow=True)
    linker = Linker(app)
    begun = linker.authorize("guarded_mastodon", "ann", redirect_uri=CALLBACK, host=fake.base_url)
    browser = requests.get(begun.url, allow_redirects=False, timeout=5)
    sent = fake.total_requests

    allow(app, False)
    with pytest.raises(HostRefused, match=r"/oauth/token: .*over https only"):
        linker.complete(browser.headers["Location"])
    with pytest.raises(HostRefused, match=r"/oauth/token: .*over https only"):
        linker.authorize("guarded_mastodon", "ann", redirect_uri=CALLBACK, host=fake.base_url)
    assert fake.total_requests == sent  # neither the exchange nor the app's check went out
    assert linked_accounts(app) == []
    app.close()


def test_an_allowed_server_links_and_is_polled_through_the_guard(
    fake: FakeMastodon, sqlite_db: Database, tmp_path: Path
) -> None:
    app = make(sqlite_db, tmp_path, allow=True)
    linker = Linker(app)
    begun = linker.authorize("guarded_mastodon", "ann", redirect_uri=CALLBACK, host=fake.base_url)
    browser = requests.get(begun.url, allow_redirects=False, timeout=5)
    linker.complete(browser.headers["Location"])
    (row,) = linked_accounts(app)
    connector = app.connector("guarded_mastodon")
    session = connector.session(app.box.open(row.credentials), host=row.host)
    assert session.guard == HostGuard(allow_private=True)

    allow(app, False)
    refused = connector.session(app.box.open(row.credentials), host=row.host)
    with pytest.raises(HostRefused, match=r"verify_credentials: .*over https only"):
        connector.identify(refused)
    app.close()
