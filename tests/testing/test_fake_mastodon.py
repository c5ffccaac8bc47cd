"""The Mastodon-like fake registers apps as Mastodon's API does, grants client_credentials to the
apps it knows and forgets them when told, holds to Mastodon's scopes; and trickle's Linker links
accounts on one server or several through it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.testing.linking_app import MakeApp, linked_accounts
from trickle.app import App
from trickle.core.clock import clock
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.testing.fake_authorize import s256
from trickle.testing.fake_mastodon import FakeMastodon
from trickle.testing.mastodon_connector import FakeMastodonConnector

CALLBACK = "http://127.0.0.1:53682/callback"


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeMastodon]:
    with FakeMastodon() as server:
        server.add_account("alice")
        server.sign_in("alice")
        yield server


def register(fake: FakeMastodon, **fields: Any) -> requests.Response:
    form = {"client_name": "trickle", "redirect_uris": CALLBACK, "scopes": "read", **fields}
    return requests.post(f"{fake.base_url}/api/v1/apps", data=form, timeout=5)


def app_token(fake: FakeMastodon, app: dict[str, Any], **form: str) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        **form,
    }
    return requests.post(f"{fake.base_url}/oauth/token", data=data, timeout=5)


def user_token(fake: FakeMastodon, app: dict[str, Any], scope: str) -> str:
    """A user's token for ``app`` through the authorization endpoint and the code grant."""
    verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": CALLBACK,
        "scope": scope,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    back = requests.get(
        f"{fake.base_url}/oauth/authorize", params=query, allow_redirects=False, timeout=5
    )
    code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
    }
    tokens = requests.post(f"{fake.base_url}/oauth/token", data=form, timeout=5).json()
    assert "expires_in" not in tokens
    assert "refresh_token" not in tokens
    token: str = tokens["access_token"]
    return token


def api(fake: FakeMastodon, path: str, token: str, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{fake.base_url}{path}", headers=headers, params=params, timeout=5)


# ---------------------------------------------------------------------------
# POST /api/v1/apps


def test_an_app_is_registered_and_answered_as_mastodon_does(fake: FakeMastodon) -> None:
    answer = register(fake, scopes="read:accounts read:favourites", website="https://t.example")
    assert answer.status_code == 200
    app = answer.json()
    assert set(app) == {
        "id",
        "name",
        "website",
        "scopes",
        "redirect_uri",
        "redirect_uris",
        "vapid_key",
        "client_id",
        "client_secret",
        "client_secret_expires_at",
    }
    assert (app["name"], app["website"]) == ("trickle", "https://t.example")
    assert app["scopes"] == ["read:accounts", "read:favourites"]
    assert (app["redirect_uri"], app["redirect_uris"]) == (CALLBACK, [CALLBACK])
    assert app["client_secret_expires_at"] == 0
    client = fake.clients[app["client_id"]]
    assert (client.client_secret, client.auth_method) == (
        app["client_secret"],
        "client_secret_post",
    )
    assert client.scopes == ("read:accounts", "read:favourites")
    assert fake.registrations == 1


def test_an_app_may_register_as_json_with_an_array_of_redirect_uris(fake: FakeMastodon) -> None:
    uris = [CALLBACK, "https://trickle.example/back"]
    body = {"client_name": "trickle", "redirect_uris": uris, "scopes": "read"}
    answer = requests.post(f"{fake.base_url}/api/v1/apps", json=body, timeout=5)
    assert answer.json()["redirect_uris"] == uris
    assert answer.json()["redirect_uri"] == "\n".join(uris)


@pytest.mark.parametrize(
    "form",
    [
        [("redirect_uris", f"{CALLBACK}\nhttps://trickle.example/back")],
        [("redirect_uris[]", CALLBACK), ("redirect_uris[]", "https://trickle.example/back")],
    ],
)
def test_a_form_gives_several_redirect_uris_in_one_string_or_as_an_array(
    fake: FakeMastodon, form: list[tuple[str, str]]
) -> None:
    data = [("client_name", "trickle"), *form]
    answer = requests.post(f"{fake.base_url}/api/v1/apps", data=data, timeout=5)
    assert answer.json()["redirect_uris"] == [CALLBACK, "https://trickle.example/back"]


def test_an_app_registered_without_scopes_has_read(fake: FakeMastodon) -> None:
    answer = requests.post(
        f"{fake.base_url}/api/v1/apps",
        data={"client_name": "trickle", "redirect_uris": CALLBACK},
        timeout=5,
    )
    assert answer.json()["scopes"] == ["read"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"client_name": ""}, "client_name can't be blank"),
        ({"client_name": "x" * 61}, "too long"),
        ({"redirect_uris": ""}, "Redirect URI can't be blank"),
        ({"redirect_uris": "/callback"}, "must be an absolute URI"),
        ({"redirect_uris": "https://t.example/cb#frag"}, "must be an absolute URI"),
        ({"redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}, "must be an absolute URI"),
        ({"scopes": "read admin:everything"}, "Scopes are invalid: admin:everything"),
    ],
)
def test_a_registration_mastodon_would_refuse_is_422(
    fake: FakeMastodon, fields: dict[str, str], says: str
) -> None:
    answer = register(fake, **fields)
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("Validation failed: ")
    assert says in answer.json()["error"]
    assert (fake.registrations, fake.apps) == (0, [])


def test_a_registration_that_is_neither_form_nor_json_is_422(fake: FakeMastodon) -> None:
    answer = requests.post(f"{fake.base_url}/api/v1/apps", data=b"client_name=x", timeout=5)
    assert answer.status_code == 422
    broken = requests.post(
        f"{fake.base_url}/api/v1/apps",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert broken.status_code == 422


# ---------------------------------------------------------------------------
# client_credentials, and apps the server forgot


def test_a_known_app_gets_a_token_of_its_own(fake: FakeMastodon) -> None:
    app = register(fake, scopes="read write").json()
    answer = app_token(fake, app, scope="read")
    assert answer.status_code == 200
    assert set(answer.json()) == {"access_token", "token_type", "scope"}
    assert answer.json()["scope"] == "read"
    assert app_token(fake, app, scope="push").json()["error"] == "invalid_scope"
    wrong = app_token(fake, {**app, "client_secret": "guessed"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")


def test_an_apps_own_token_is_not_a_users(fake: FakeMastodon) -> None:
    app = register(fake).json()
    token = app_token(fake, app).json()["access_token"]
    answer = api(fake, "/api/v1/accounts/verify_credentials", token)
    assert answer.status_code == 422
    assert answer.json()["error"] == "This method requires an authenticated user"


def test_a_forgotten_app_is_invalid_client_and_its_tokens_end(fake: FakeMastodon) -> None:
    app = register(fake, scopes="read").json()
    token = user_token(fake, app, "read")
    assert api(fake, "/api/v1/accounts/verify_credentials", token).status_code == 200

    (forgotten,) = fake.forget_clients()

    assert forgotten.client_id == app["client_id"]
    refused = app_token(fake, app)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert api(fake, "/api/v1/accounts/verify_credentials", token).status_code == 401
    page = requests.get(
        f"{fake.base_url}/oauth/authorize",
        params={"response_type": "code", "client_id": app["client_id"], "redirect_uri": CALLBACK},
        allow_redirects=False,
        timeout=5,
    )
    assert page.status_code == 400
    assert fake.forget_clients() == []  # nothing left to forget
    assert register(fake).json()["client_id"] in fake.clients  # registering again works


# ---------------------------------------------------------------------------
# Mastodon's scopes and tokens


def test_read_covers_read_favourites_but_an_app_gets_no_more_than_it_registered(
    fake: FakeMastodon,
) -> None:
    wide = register(fake, scopes="read").json()
    assert api(fake, "/api/v1/favourites", user_token(fake, wide, "read:favourites")).ok
    narrow = register(fake, scopes="read:accounts").json()
    query = {
        "response_type": "code",
        "client_id": narrow["client_id"],
        "redirect_uri": CALLBACK,
        "scope": "read:favourites",
        "state": "s",
    }
    back = requests.get(
        f"{fake.base_url}/oauth/authorize", params=query, allow_redirects=False, timeout=5
    )
    assert parse_qs(urlsplit(back.headers["Location"]).query)["error"] == ["invalid_scope"]


def test_pkce_is_accepted_but_not_required(fake: FakeMastodon) -> None:
    app = register(fake).json()
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": CALLBACK}
    back = requests.get(
        f"{fake.base_url}/oauth/authorize", params=query, allow_redirects=False, timeout=5
    )
    assert "code" in parse_qs(urlsplit(back.headers["Location"]).query)
    assert fake.codes[0].scope == ("read",)  # Mastodon's default


def test_a_users_token_does_not_expire(fake: FakeMastodon) -> None:
    token = user_token(fake, register(fake).json(), "read")
    clock.advance(timedelta(days=3650))
    assert api(fake, "/api/v1/accounts/verify_credentials", token).status_code == 200


# ---------------------------------------------------------------------------
# the API


def test_verify_credentials_is_the_tokens_account(fake: FakeMastodon) -> None:
    token = user_token(fake, register(fake).json(), "read:accounts")
    account = api(fake, "/api/v1/accounts/verify_credentials", token).json()
    assert (account["username"], account["acct"]) == ("alice", "alice")
    assert account["url"] == f"{fake.base_url}/@alice"
    assert account["uri"] == f"{fake.base_url}/users/alice"
    assert account["id"] == fake.accounts["alice"].id


def test_a_token_without_the_scope_an_endpoint_needs_is_403(fake: FakeMastodon) -> None:
    token = user_token(fake, register(fake).json(), "read:favourites")
    answer = api(fake, "/api/v1/accounts/verify_credentials", token)
    assert (answer.status_code, answer.json()["error"]) == (
        403,
        "This action is outside the authorized scopes",
    )
    assert api(fake, "/api/v1/favourites", token).status_code == 200
    assert api(fake, "/api/v1/favourites", "made-up").status_code == 401


def test_favourites_come_newest_first_with_the_next_page_in_the_link_header(
    fake: FakeMastodon, now: datetime
) -> None:
    for n in range(5):
        fake.like("alice", f"10{n}", at=now - timedelta(hours=5 - n), author=f"maker{n}")
    token = user_token(fake, register(fake).json(), "read")
    first = api(fake, "/api/v1/favourites", token, limit="2")
    assert [status["id"] for status in first.json()] == ["104", "103"]
    status = first.json()[0]
    assert status["uri"] == f"{fake.base_url}/users/maker4/statuses/104"
    assert status["account"]["url"] == f"{fake.base_url}/@maker4"
    pages = [first]
    while "next" in pages[-1].links:
        pages.append(
            requests.get(
                pages[-1].links["next"]["url"],
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
        )
    assert [[s["id"] for s in p.json()] for p in pages] == [["104", "103"], ["102", "101"], ["100"]]
    most = api(fake, "/api/v1/favourites", token, limit="500")
    assert len(most.json()) == 5
    assert "next" not in most.links


# ---------------------------------------------------------------------------
# trickle's Linker against the fake


def app_for(make_app: MakeApp) -> App:
    return make_app([FakeMastodonConnector], {})


def link(linker: Linker, fake: FakeMastodon, *, redirect_uri: str = CALLBACK) -> Any:
    authorization = linker.authorize(
        "fake_mastodon", "ann", redirect_uri=redirect_uri, host=fake.base_url
    )
    browser = requests.get(authorization.url, allow_redirects=False, timeout=5)
    return linker.complete(browser.headers["Location"])


def test_trickle_registers_its_app_on_the_server_and_links_the_account(
    fake: FakeMastodon, make_app: MakeApp
) -> None:
    app = app_for(make_app)

    linked = link(Linker(app), fake)

    assert (linked.platform_user_id, linked.handle) == (
        f"{fake.base_url}/@alice",
        f"alice@{urlsplit(fake.base_url).netloc}",
    )
    (registered,) = fake.apps
    assert (registered.name, registered.scopes) == ("trickle", ("read:accounts", "read:favourites"))
    assert registered.redirect_uris == (CALLBACK,)
    assert fake.codes[0].challenge is not None  # trickle sends PKCE though it is optional here
    (account,) = linked_accounts(app)
    assert account.host == fake.base_url
    credentials = app.box.open(account.credentials)
    assert credentials.expires_at is None
    assert credentials.extra["client_id"] == registered.client_id
    assert fake.accepts(credentials)


def test_trickle_reuses_its_app_while_the_server_knows_it(
    fake: FakeMastodon, make_app: MakeApp
) -> None:
    linker = Linker(app_for(make_app))
    link(linker, fake)
    fake.add_account("bob")
    fake.sign_in("bob")
    linked = link(linker, fake)
    assert linked.handle.startswith("bob@")
    assert fake.registrations == 1


def test_trickle_registers_again_when_the_server_forgot_its_app(
    fake: FakeMastodon, make_app: MakeApp
) -> None:
    app = app_for(make_app)
    linker = Linker(app)
    link(linker, fake)
    fake.forget_clients()

    relinked = link(linker, fake)

    assert relinked.relinked
    assert fake.registrations == 2
    (account,) = linked_accounts(app)
    assert fake.accepts(app.box.open(account.credentials))


def test_an_app_forgotten_while_the_person_was_at_the_server_links_nothing(
    fake: FakeMastodon, make_app: MakeApp
) -> None:
    """The code was issued to the app the link began with: it is exchanged with that app,
    not with one registered afresh, and the server's refusal says to start again."""
    app = app_for(make_app)
    linker = Linker(app)
    authorization = linker.authorize(
        "fake_mastodon", "ann", redirect_uri=CALLBACK, host=fake.base_url
    )
    browser = requests.get(authorization.url, allow_redirects=False, timeout=5)
    fake.forget_clients()
    with pytest.raises(LinkError, match="forgot trickle's app while the link was waiting"):
        linker.complete(browser.headers["Location"])
    assert linked_accounts(app) == []
    assert fake.registrations == 1
    link(linker, fake)  # starting again registers a new app, and works
    assert fake.registrations == 2
    assert len(linked_accounts(app)) == 1


def test_a_denied_consent_on_the_server_links_nothing(
    fake: FakeMastodon, make_app: MakeApp
) -> None:
    app = app_for(make_app)
    fake.sign_in("alice", consent="deny")
    with pytest.raises(LinkError, match="you did not allow trickle"):
        link(Linker(app), fake)
    assert linked_accounts(app) == []


def test_the_same_name_on_two_servers_is_two_accounts(
    fake: FakeMastodon, make_app: MakeApp, now: datetime
) -> None:
    app = app_for(make_app)
    linker = Linker(app)
    with FakeMastodon() as other:
        other.add_account("alice")
        other.sign_in("alice")
        here, there = link(linker, fake), link(linker, other)
        assert here.platform_user_id != there.platform_user_id
        assert [a.host for a in linked_accounts(app)] == [fake.base_url, other.base_url]
        assert (fake.registrations, other.registrations) == (1, 1)


def test_each_redirect_uri_has_an_app_of_its_own_on_the_server(
    fake: FakeMastodon, make_app: MakeApp
) -> None:
    """trickle keeps a server's app per exact redirect URI: nothing says a server accepts
    another loopback port than the one registered, so ``trickle link`` keeps one fixed port
    for these flows (tests/linking/test_terminal.py) and registers once."""
    linker = Linker(app_for(make_app))
    link(linker, fake, redirect_uri="http://127.0.0.1:8765/callback")
    link(linker, fake, redirect_uri="http://127.0.0.1:8765/callback")
    assert fake.registrations == 1
    link(linker, fake, redirect_uri="http://127.0.0.1:40411/callback")
    assert fake.registrations == 2


def test_unlinking_revokes_the_token_with_the_servers_app(
    fake: FakeMastodon, make_app: MakeApp
) -> None:
    linker = Linker(app_for(make_app))
    link(linker, fake)
    assert linker.unlink("fake_mastodon", "ann").revoked
    assert [r.kind for r in fake.revocations] == ["access_token"]
