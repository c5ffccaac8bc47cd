"""Linking Mastodon accounts: trickle's Linker against fake Mastodon servers, end to end.

trickle's app is registered on each server the first time one of its users
links (``POST /api/v1/apps``), kept sealed per server and redirect URI,
checked with a client-credentials token and reused, and registered again
once the server has forgotten it; the code flow runs on the user's server
with PKCE and the app's secret. ``trickle link mastodon --server HOST`` does
the same from a terminal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from tests.testing.linking_app import build_app, linked_accounts
from trickle.app import App
from trickle.cli import main
from trickle.connectors.hosts import HostRefused
from trickle.connectors.mastodon import MastodonConnector
from trickle.connectors.mastodon.fake import FakeMastodonServer
from trickle.core.db import Database
from trickle.core.models import OAuthApp
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker

CALLBACK = "http://127.0.0.1:53682/callback"
TRICKLE = (sys.executable, "-m", "trickle")
LINK_AS_ALICE = ("--user", "alice", "--no-browser")


@pytest.fixture
def server() -> Iterator[FakeMastodonServer]:
    with FakeMastodonServer() as fake:
        for name in ("ann", "ben"):
            fake.add_account(name)
        yield fake


@pytest.fixture
def other() -> Iterator[FakeMastodonServer]:
    with FakeMastodonServer() as fake:
        fake.add_account("ann")
        yield fake


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path) -> Iterator[App]:
    application = build_app(
        sqlite_db.url, tmp_path, [MastodonConnector], {"mastodon": {"allow_private_hosts": True}}
    )
    yield application
    application.close()


def link(app: App, server: FakeMastodonServer, person: str = "ann", user: str = "ann") -> str:
    """``person`` of ``server`` links for trickle's ``user`` in the browser; returns the
    authorization URL they were sent to."""
    linker = Linker(app)
    begun = linker.authorize("mastodon", user, redirect_uri=CALLBACK, host=server.base_url)
    server.sign_in(person)
    browser = requests.get(begun.url, allow_redirects=False, timeout=5)
    linker.complete(browser.headers["Location"])
    return begun.url


def stored_apps(app: App) -> list[OAuthApp]:
    with app.db.reader() as session:
        return list(session.scalars(select(OAuthApp).order_by(OAuthApp.id)))


def test_the_first_link_registers_trickles_app_and_runs_the_code_flow_with_pkce(
    app: App, server: FakeMastodonServer
) -> None:
    url = link(app, server)

    (registered,) = server.apps
    assert registered.scopes == ("read:favourites", "read:accounts")
    assert registered.redirect_uris == (CALLBACK,)
    asked = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path == "/oauth/authorize"
    assert asked["scope"] == ["read:favourites read:accounts"]
    assert asked["code_challenge_method"] == ["S256"]
    assert asked["client_id"] == [registered.client_id]
    (row,) = linked_accounts(app)
    assert row.platform_user_id == f"{server.base_url}/users/ann"
    assert row.handle == f"ann@{urlsplit(server.base_url).netloc}"
    assert row.host == server.base_url
    (kept,) = stored_apps(app)
    assert (kept.host, kept.client_id) == (server.base_url, registered.client_id)
    assert kept.client_secret is not None  # sealed, like every secret at rest


def test_the_app_is_reused_on_its_server_and_registered_anew_on_another(
    app: App, server: FakeMastodonServer, other: FakeMastodonServer
) -> None:
    link(app, server)
    with app.db.session() as session:
        add_user(session, "ben", Money(300, "EUR"))
    link(app, server, "ben", "ben")
    link(app, other)

    assert server.registrations == 1
    assert other.registrations == 1
    assert [a.host for a in stored_apps(app)] == [server.base_url, other.base_url]
    assert sorted(a.host or "" for a in linked_accounts(app)) == sorted(
        [server.base_url, server.base_url, other.base_url]
    )


def test_an_app_the_server_forgot_is_registered_again(app: App, server: FakeMastodonServer) -> None:
    link(app, server)
    (forgotten,) = server.forget_clients()  # what pre-4.3 servers' vacuum did

    link(app, server)  # relinking, after the token ended with its app

    assert server.registrations == 2
    (kept,) = stored_apps(app)
    assert kept.client_id != forgotten.client_id
    (row,) = linked_accounts(app)
    assert row.status == "active"


def test_an_app_forgotten_while_the_user_approves_links_nothing_and_the_next_try_works(
    app: App, server: FakeMastodonServer
) -> None:
    linker = Linker(app)
    begun = linker.authorize("mastodon", "ann", redirect_uri=CALLBACK, host=server.base_url)
    server.sign_in("ann")
    browser = requests.get(begun.url, allow_redirects=False, timeout=5)
    server.forget_clients()

    with pytest.raises(LinkError, match="forgot trickle's app while the link was waiting"):
        linker.complete(browser.headers["Location"])

    assert linked_accounts(app) == []
    link(app, server)
    assert server.registrations == 2
    assert len(linked_accounts(app)) == 1


def test_unlinking_revokes_the_token_at_the_server(app: App, server: FakeMastodonServer) -> None:
    link(app, server)
    (row,) = linked_accounts(app)
    token = app.box.open(row.credentials).access_token

    result = Linker(app).unlink("mastodon", "ann")

    assert result.revoked
    answer = requests.get(
        f"{server.base_url}/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 401
    assert answer.json() == {"error": "The access token is invalid"}


def test_a_pasted_token_links_the_account_on_the_named_server(
    app: App, server: FakeMastodonServer
) -> None:
    server.register_client("personal-app", "personal-secret-" + "p" * 20)
    token = server.issue("ann", "personal-app", scope=("read",)).access_token

    result = Linker(app).import_token("mastodon", "ann", token, host=server.base_url)

    assert result.platform_user_id == f"{server.base_url}/users/ann"
    (row,) = linked_accounts(app)
    assert row.host == server.base_url


def test_a_server_on_a_private_address_is_refused_unless_the_operator_allows_it(
    sqlite_db: Database, tmp_path: Path, server: FakeMastodonServer
) -> None:
    strict = build_app(sqlite_db.url, tmp_path, [MastodonConnector], {})
    try:
        with pytest.raises(HostRefused, match="over https only"):
            Linker(strict).authorize("mastodon", "ann", redirect_uri=CALLBACK, host=server.base_url)
        with pytest.raises(HostRefused, match=r"169\.254\.169\.254 is a link-local address"):
            Linker(strict).authorize(
                "mastodon", "ann", redirect_uri=CALLBACK, host="https://169.254.169.254"
            )
    finally:
        strict.close()
    assert server.total_requests == 0


# ---------------------------------------------------------------------------
# `trickle link mastodon --server HOST --user NAME`, from a terminal


@pytest.fixture
def terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRICKLE_") and k != "BROWSER"}
    env.update(
        TRICKLE_DATABASE_URL=f"sqlite:///{tmp_path / 'trickle.db'}",
        TRICKLE_SECRET_KEY=Fernet.generate_key().decode(),
        TRICKLE_CONNECTORS__MASTODON__ALLOW_PRIVATE_HOSTS="true",
    )
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("TRICKLE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("TRICKLE_"):
            monkeypatch.setenv(key, value)
    assert main(["init"]) == 0
    assert main(["users", "add", "alice", "--budget", "5"]) == 0
    return env


def test_trickle_link_mastodon_with_a_server_links_through_the_browser(
    terminal: dict[str, str], server: FakeMastodonServer
) -> None:
    server.sign_in("ann")
    command = subprocess.Popen(
        [*TRICKLE, "link", "mastodon", "--server", server.base_url, *LINK_AS_ALICE],
        env=terminal,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert command.stderr is not None
    seen: list[str] = []
    pattern = rf"^({re.escape(server.base_url)}/oauth/authorize\S+)"
    for line in iter(command.stderr.readline, ""):
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            break
    else:
        raise AssertionError("".join(seen))
    sent_back = requests.get(found[1], allow_redirects=False, timeout=10).headers["Location"]
    out, err = command.communicate(sent_back + "\n", timeout=60)

    assert command.returncode == 0, "".join(seen) + err
    listed = subprocess.run(
        [*TRICKLE, "accounts", "list", "--json"],
        env=terminal,
        capture_output=True,
        text=True,
        check=True,
    )
    (account,) = json.loads(listed.stdout)["accounts"]
    assert account["handle"] == f"ann@{urlsplit(server.base_url).netloc}"
    assert server.registrations == 1
    secret = server.clients[server.apps[0].client_id].client_secret
    code = parse_qs(urlsplit(sent_back).query)["code"][0]
    for value in (secret, code):
        assert value
        assert all(value not in text for text in (*seen, out, err))  # no secret is printed
