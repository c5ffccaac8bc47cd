"""The linking service against authorization servers as the RFCs describe them (``responses``).

Every flow a connector may declare: OAuth 2's authorization code with PKCE,
RFC 8628's device flow, OAuth 1.0a's three legs, an app registered per
server; and every way one goes wrong, each a clear message with nothing
stored half-done and no secret in it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import select

from tests.linking.platforms import (
    ACCESS,
    API,
    APP_PASSWORD,
    AUTH,
    CALLBACK,
    CLIENT_SECRET,
    CODE,
    PASSY_PDS,
    REFRESH,
    Passy,
    accounts,
    attempts,
    back,
    token_answer,
)
from trickle.app import App
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.escrow import claim_creator
from trickle.core.models import LinkedAccount, OAuthApp
from trickle.core.money import Money
from trickle.core.users import add_user, current_budget, get_user, set_active
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker, normalize_server

# ---------------------------------------------------------------------------
# OAuth 2: the authorization code with PKCE


def test_the_authorization_url_carries_state_pkce_scopes_and_the_redirect(app: App) -> None:
    authorization = Linker(app).authorize("oauthy", "alice", redirect_uri=CALLBACK)

    url = urlsplit(authorization.url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{AUTH}/authorize"
    assert query["response_type"] == "code"
    assert query["client_id"] == "oauthy-app"
    assert query["redirect_uri"] == CALLBACK
    assert query["scope"] == "likes.read offline"
    assert query["state"] == authorization.state
    assert len(authorization.state) >= 32
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert CLIENT_SECRET not in authorization.url
    assert authorization.expires_at == clock.now() + timedelta(minutes=10)
    assert attempts(app) == 1


def test_the_code_is_exchanged_with_the_verifier_and_the_account_linked(
    app: App, mock: responses.RequestsMock
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("oauthy", "alice", redirect_uri=CALLBACK)
    challenge = parse_qs(urlsplit(authorization.url).query)["code_challenge"][0]
    exchange = mock.post(f"{AUTH}/token", json=token_answer())

    linked = linker.complete(back(authorization.url, code=CODE))

    assert (linked.user, linked.platform, linked.platform_user_id) == ("alice", "oauthy", "u-77")
    form = {k: v[0] for k, v in parse_qs(exchange.calls[0].request.body).items()}
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == CODE
    assert form["redirect_uri"] == CALLBACK
    assert form["client_id"] == "oauthy-app"
    assert form["client_secret"] == CLIENT_SECRET
    digest = hashlib.sha256(form["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    with app.db.reader() as session:
        account = session.scalars(select(LinkedAccount)).one()
    stored = app.box.open(account.credentials)
    assert (stored.access_token, stored.refresh_token) == (ACCESS, REFRESH)
    assert stored.expires_at == clock.now() + timedelta(hours=2)
    assert attempts(app) == 0


def test_a_state_is_good_once(app: App, mock: responses.RequestsMock) -> None:
    linker = Linker(app)
    authorization = linker.authorize("oauthy", "alice", redirect_uri=CALLBACK)
    mock.post(f"{AUTH}/token", json=token_answer())
    linker.complete(back(authorization.url, code=CODE))

    with pytest.raises(LinkError, match="not begun here, was already used, or has expired"):
        linker.complete(back(authorization.url, code=CODE))


@pytest.mark.parametrize(
    "redirected",
    [
        f"{CALLBACK}?code={CODE}&state=forged-state-of-someone-else",
        f"{CALLBACK}?code={CODE}",
        "not a url at all",
    ],
)
def test_a_state_that_was_not_begun_here_links_nothing(app: App, redirected: str) -> None:
    Linker(app).authorize("oauthy", "alice", redirect_uri=CALLBACK)
    with pytest.raises(LinkError, match=r"state|not begun here"):
        Linker(app).complete(redirected)
    assert accounts(app) == 0


def test_an_attempt_expires(app: App) -> None:
    linker = Linker(app)
    authorization = linker.authorize("oauthy", "alice", redirect_uri=CALLBACK)
    clock.advance(timedelta(minutes=11))
    with pytest.raises(LinkError, match="has expired"):
        linker.complete(back(authorization.url, code=CODE))
    assert accounts(app) == 0


def test_denied_consent_is_said_plainly_and_links_nothing(app: App) -> None:
    linker = Linker(app)
    authorization = linker.authorize("oauthy", "alice", redirect_uri=CALLBACK)
    with pytest.raises(LinkError, match="you did not allow trickle to read your oauthy likes"):
        linker.complete(back(authorization.url, error="access_denied"))
    assert (accounts(app), attempts(app)) == (0, 0)


@pytest.mark.parametrize(
    "description",
    ["The authorization code has expired", "Code was already used", "PKCE verification failed"],
)
def test_a_refused_code_is_a_clear_error_without_secrets(
    app: App, mock: responses.RequestsMock, description: str
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("oauthy", "alice", redirect_uri=CALLBACK)
    echoed = f"{description} ({CODE}, {CLIENT_SECRET})"
    mock.post(
        f"{AUTH}/token",
        status=400,
        json={"error": "invalid_grant", "error_description": echoed},
    )
    with pytest.raises(LinkError) as caught:
        linker.complete(back(authorization.url, code=CODE))
    message = str(caught.value)
    assert "invalid_grant" in message
    assert description in message
    assert CODE not in message
    assert CLIENT_SECRET not in message
    assert accounts(app) == 0


def test_a_missing_app_credential_says_where_to_register_and_which_redirect(app: App) -> None:
    app.settings.connectors["oauthy"] = {"client_id": "oauthy-app"}
    app._connectors.clear()
    with pytest.raises(LinkError) as caught:
        Linker(app).authorize("oauthy", "alice", redirect_uri=CALLBACK)
    message = str(caught.value)
    assert "registered with Oauthy at https://oauthy.test/developers" in message
    assert "the redirect URI http://127.0.0.1/callback (any port" in message
    assert "[connectors.oauthy] client_secret" in message
    assert "TRICKLE_CONNECTORS__OAUTHY__CLIENT_SECRET" in message
    assert attempts(app) == 0


def test_a_fixed_loopback_port_is_the_redirect_uri_to_register(app: App) -> None:
    app.settings.connectors["oauthy"] = {}
    app.settings.linking.loopback_port = 8765
    app._connectors.clear()
    with pytest.raises(LinkError, match=r"redirect URI http://127\.0\.0\.1:8765/callback;"):
        Linker(app).flow("oauthy", "oauth2")


# ---------------------------------------------------------------------------
# RFC 8628: the device flow


def device_code(mock: responses.RequestsMock, **changes: Any) -> None:
    mock.post(
        f"{AUTH}/device/code",
        json={
            "device_code": "dev1c3-c0de-0123456789",
            "user_code": "WDJB-MJHT",
            "verification_uri": f"{AUTH}/device",
            "expires_in": 900,
            "interval": 5,
            **changes,
        },
    )


def test_the_device_flow_waits_slows_down_and_links(app: App, mock: responses.RequestsMock) -> None:
    device_code(mock)
    answers = [
        {"error": "authorization_pending"},
        {"error": "slow_down", "interval": 10},
        {"error": "authorization_pending"},
        token_answer(expires_in=None, refresh_token=None),
    ]
    token = mock.post(f"{AUTH}/token", json=answers.pop(0))
    for answer in answers:
        mock.add(responses.POST, f"{AUTH}/token", json=answer)
    linker = Linker(app)
    slept: list[float] = []

    device = linker.start_device("oauthy", "alice")
    linked = linker.wait_device(device, sleep=slept.append)

    assert (device.user_code, device.verification_uri) == ("WDJB-MJHT", f"{AUTH}/device")
    assert linked.platform_user_id == "u-77"
    assert slept == [5, 5, 10, 10]  # slow_down adds five seconds for every later poll
    form = parse_qs(token.calls[0].request.body)
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:device_code"]
    assert form["device_code"] == ["dev1c3-c0de-0123456789"]
    assert form["client_id"] == ["oauthy-app"]
    assert "client_secret" not in form
    assert attempts(app) == 0


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("expired_token", "the oauthy code expired before it was entered"),
        ("access_denied", "you did not allow trickle to read your oauthy likes"),
    ],
)
def test_a_device_flow_that_ends_without_a_token_links_nothing(
    app: App, mock: responses.RequestsMock, error: str, message: str
) -> None:
    device_code(mock)
    mock.post(f"{AUTH}/token", status=400, json={"error": error})
    linker = Linker(app)
    device = linker.start_device("oauthy", "alice")
    with pytest.raises(LinkError, match=message):
        linker.wait_device(device, sleep=lambda _: None)
    assert (accounts(app), attempts(app)) == (0, 0)


def test_a_device_code_not_entered_in_time_expires(app: App, mock: responses.RequestsMock) -> None:
    device_code(mock, expires_in=12)
    mock.post(f"{AUTH}/token", json={"error": "authorization_pending"})
    linker = Linker(app)
    device = linker.start_device("oauthy", "alice")

    def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    with pytest.raises(LinkError, match="expired before it was entered"):
        linker.wait_device(device, sleep=sleep)
    assert accounts(app) == 0


# ---------------------------------------------------------------------------
# OAuth 1.0a


def test_oauth1_gets_a_request_token_sends_the_user_and_exchanges_the_verifier(
    app: App, mock: responses.RequestsMock
) -> None:
    request_token = mock.post(
        f"{AUTH}/oauth/request_token",
        body="oauth_token=rq-t0ken&oauth_token_secret=rq-s3cret&oauth_callback_confirmed=true",
        content_type="application/x-www-form-urlencoded",
    )
    access_token = mock.post(
        f"{AUTH}/oauth/access_token",
        body="oauth_token=ac-t0ken&oauth_token_secret=ac-s3cret&user_nsid=12037949754%40N01",
        content_type="application/x-www-form-urlencoded",
    )
    linker = Linker(app)

    authorization = linker.authorize("signy", "alice", redirect_uri=CALLBACK)
    query = parse_qs(urlsplit(authorization.url).query)
    assert query["oauth_token"] == ["rq-t0ken"]
    assert query["perms"] == ["read"]
    signed = request_token.calls[0].request.headers["Authorization"]
    assert signed.startswith("OAuth ")
    assert 'oauth_consumer_key="signy-key"' in signed
    assert "oauth_signature=" in signed
    assert "oauth_callback=" in signed
    assert CLIENT_SECRET not in signed

    linked = linker.complete(f"{CALLBACK}?oauth_token=rq-t0ken&oauth_verifier=v3rifier")

    assert linked.platform == "signy"
    assert 'oauth_verifier="v3rifier"' in access_token.calls[0].request.headers["Authorization"]
    with app.db.reader() as session:
        account = session.scalars(select(LinkedAccount)).one()
    stored = app.box.open(account.credentials)
    assert (stored.access_token, stored.token_secret) == ("ac-t0ken", "ac-s3cret")


def test_oauth1_without_a_verifier_links_nothing(app: App, mock: responses.RequestsMock) -> None:
    mock.post(
        f"{AUTH}/oauth/request_token",
        body="oauth_token=rq-t0ken&oauth_token_secret=rq-s3cret",
        content_type="application/x-www-form-urlencoded",
    )
    linker = Linker(app)
    linker.authorize("signy", "alice", redirect_uri=CALLBACK)
    with pytest.raises(LinkError, match="without a verifier"):
        linker.complete(f"{CALLBACK}?oauth_token=rq-t0ken")
    assert accounts(app) == 0


# ---------------------------------------------------------------------------
# apps registered per server


SERVER = "https://fedi.example"


def register(mock: responses.RequestsMock, client_id: str = "app-1") -> responses.BaseResponse:
    return mock.post(
        f"{SERVER}/api/v1/apps",
        json={
            "id": "563419",
            "name": "trickle",
            "client_id": client_id,
            "client_secret": f"{client_id}-s3cret",
            "redirect_uris": [CALLBACK],
        },
    )


def stored_apps(app: App) -> list[tuple[str, str, str]]:
    with app.db.reader() as session:
        return [
            (a.host, a.client_id, a.redirect_uri)
            for a in session.scalars(select(OAuthApp).order_by(OAuthApp.id))
        ]


def test_an_app_is_registered_on_the_users_server_once_and_reused(
    app: App, mock: responses.RequestsMock
) -> None:
    registration = register(mock)
    mock.post(f"{SERVER}/oauth/token", json={"access_token": "app-token", "token_type": "Bearer"})
    linker = Linker(app)

    first = linker.authorize("fedi", "alice", redirect_uri=CALLBACK, host=SERVER)
    second = linker.authorize("fedi", "alice", redirect_uri=CALLBACK, host=SERVER)

    assert len(registration.calls) == 1
    form = parse_qs(registration.calls[0].request.body)
    assert form["scopes"] == ["read:favourites profile"]
    assert form["redirect_uris"] == [CALLBACK]
    assert stored_apps(app) == [(SERVER, "app-1", CALLBACK)]
    for authorization in (first, second):
        url = urlsplit(authorization.url)
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{SERVER}/oauth/authorize"
        assert parse_qs(url.query)["client_id"] == ["app-1"]
    with app.db.reader() as session:
        sealed = session.scalars(select(OAuthApp.client_secret)).one()
    assert sealed is not None
    assert b"app-1-s3cret" not in sealed


def test_an_app_the_server_forgot_is_registered_again(
    app: App, mock: responses.RequestsMock
) -> None:
    register(mock, "app-1")
    mock.post(f"{SERVER}/oauth/token", json={"access_token": "app-token", "token_type": "Bearer"})
    linker = Linker(app)
    linker.authorize("fedi", "alice", redirect_uri=CALLBACK, host=SERVER)
    mock.replace(
        responses.POST,
        f"{SERVER}/oauth/token",
        status=401,
        json={"error": "invalid_client", "error_description": "Client authentication failed"},
    )
    mock.replace(
        responses.POST,
        f"{SERVER}/api/v1/apps",
        json={"client_id": "app-2", "client_secret": "app-2-s3cret"},
    )

    again = linker.authorize("fedi", "alice", redirect_uri=CALLBACK, host=SERVER)

    assert parse_qs(urlsplit(again.url).query)["client_id"] == ["app-2"]
    assert stored_apps(app) == [(SERVER, "app-2", CALLBACK)]


def test_a_server_that_registers_nothing_is_not_that_platform(
    app: App, mock: responses.RequestsMock
) -> None:
    mock.post(f"{SERVER}/api/v1/apps", status=200, json={"hello": "world"})
    with pytest.raises(LinkError, match="is it really a Fedi server"):
        Linker(app).authorize("fedi", "alice", redirect_uri=CALLBACK, host=SERVER)
    assert (stored_apps(app), attempts(app)) == ([], 0)


def test_the_flows_a_connector_offers_are_named(app: App) -> None:
    linker = Linker(app)
    assert [f.kind for f in linker.flows("oauthy")] == ["oauth2", "device", "token"]
    assert linker.flow("oauthy").kind == "oauth2"
    assert linker.flow("oauthy", redirects=True).kind == "oauth2"
    with pytest.raises(LinkError, match=r"cannot be linked with 'oauth1' \(it offers: oauth2, dev"):
        linker.flow("oauthy", "oauth1")
    json.dumps([f.describe() for f in linker.flows("oauthy")])


def test_the_preferred_flow_whose_app_is_set_up_is_chosen(app: App) -> None:
    app.settings.connectors["oauthy"] = {"client_id": "public-app"}  # no secret: no web flow
    app._connectors.clear()
    linker = Linker(app)
    assert linker.flow("oauthy").kind == "device"
    app.settings.connectors["oauthy"] = {}
    app._connectors.clear()
    assert linker.flow("oauthy").kind == "token"
    with pytest.raises(LinkError, match=r"in the browser .PKCE. needs trickle.s app registered"):
        linker.flow("oauthy", redirects=True)


# ---------------------------------------------------------------------------
# A token made at the platform


def test_an_imported_token_links_with_its_refresh_token_and_expiry(
    app: App, mock: responses.RequestsMock
) -> None:
    linked = Linker(app).import_token(
        "oauthy", "alice", f"  {ACCESS}\n", refresh_token=REFRESH, expires_in=3600
    )
    assert linked.platform_user_id == "u-77"
    stored = stored_credentials(app)
    assert (stored.access_token, stored.refresh_token) == (ACCESS, REFRESH)
    assert stored.expires_at == clock.now() + timedelta(hours=1)
    assert stored.issued_by == "token"


@pytest.mark.parametrize("lifetime", [0, -5, 10 * 366 * 86400])
def test_an_imported_token_has_a_lifetime_a_platform_could_give(app: App, lifetime: int) -> None:
    with pytest.raises(LinkError, match="lifetime"):
        Linker(app).import_token("oauthy", "alice", ACCESS, expires_in=lifetime)
    assert accounts(app) == 0


def test_every_flow_records_which_flow_issued_the_credentials(
    app: App, mock: responses.RequestsMock
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("oauthy", "alice", redirect_uri=CALLBACK)
    mock.post(f"{AUTH}/token", json=token_answer())
    linker.complete(back(authorization.url, code=CODE))
    assert stored_credentials(app).issued_by == "oauth2"


# ---------------------------------------------------------------------------
# Unlinking


def linked_by_code(app: App, mock: responses.RequestsMock) -> None:
    linker = Linker(app)
    authorization = linker.authorize("oauthy", "alice", redirect_uri=CALLBACK)
    mock.post(f"{AUTH}/token", json=token_answer())
    linker.complete(back(authorization.url, code=CODE))


def test_unlinking_revokes_the_token_drops_it_and_stops_polling(
    app: App, mock: responses.RequestsMock
) -> None:
    linked_by_code(app, mock)
    revoke = mock.post(f"{AUTH}/revoke", status=200)

    result = Linker(app).unlink("oauthy", "alice")

    assert (result.revoked, result.handle) == (True, "alice-on-oauthy")
    assert result.note == "the token was revoked at Oauthy"
    form = parse_qs(revoke.calls[0].request.body)
    assert form["token"] == [ACCESS]
    assert form["token_type_hint"] == ["access_token"]
    assert form["client_id"] == ["oauthy-app"]
    assert form["client_secret"] == [CLIENT_SECRET]
    with app.db.reader() as session:
        account = session.scalars(select(LinkedAccount)).one()
    assert account.status == "unlinked"
    assert (account.credentials, account.key_id, account.next_poll_at) == (None, None, None)


def test_a_refused_revocation_still_unlinks_and_says_what_to_do(
    app: App, mock: responses.RequestsMock
) -> None:
    linked_by_code(app, mock)
    mock.post(f"{AUTH}/revoke", status=503)

    result = Linker(app).unlink("oauthy", "alice")

    assert not result.revoked
    assert "did not revoke the token" in result.note
    assert "revoke trickle's access in your Oauthy settings" in result.note
    assert ACCESS not in result.note
    with app.db.reader() as session:
        assert session.scalars(select(LinkedAccount.credentials)).one() is None


def test_a_token_made_at_the_platform_is_left_to_the_user_to_revoke(
    app: App, mock: responses.RequestsMock
) -> None:
    Linker(app).import_token("oauthy", "alice", ACCESS)
    revoke = mock.post(f"{AUTH}/revoke", status=200)

    result = Linker(app).unlink("oauthy", "alice")

    assert not result.revoked
    assert result.note == "the token was made at Oauthy: revoke it there"
    assert not revoke.calls


def test_unlinking_names_the_account_when_there_are_several(
    app: App, mock: responses.RequestsMock
) -> None:
    Linker(app).import_token("oauthy", "alice", ACCESS)
    mock.replace(responses.GET, f"{API}/me", json={"id": "u-78", "name": "alice-two"})
    Linker(app).import_token("oauthy", "alice", REFRESH)
    with pytest.raises(LinkError, match=r"several oauthy accounts \(alice-on-oauthy, alice-two"):
        Linker(app).unlink("oauthy", "alice")
    assert Linker(app).unlink("oauthy", "alice", "u-78").handle == "alice-two"
    assert Linker(app).unlink("oauthy", "alice").handle == "alice-on-oauthy"
    with pytest.raises(LinkError, match="alice has no linked oauthy account"):
        Linker(app).unlink("oauthy", "alice")


def test_linking_an_unlinked_account_again_starts_a_new_baseline(
    app: App, mock: responses.RequestsMock
) -> None:
    Linker(app).import_token("oauthy", "alice", ACCESS)
    Linker(app).unlink("oauthy", "alice")
    clock.advance(timedelta(days=3))

    again = Linker(app).import_token("oauthy", "alice", REFRESH)

    assert again.relinked
    with app.db.reader() as session:
        account = session.scalars(select(LinkedAccount)).one()
    assert account.status == "active"
    assert account.linked_at == clock.now().replace(microsecond=0)
    assert not account.baseline_done  # likes made while unlinked are not paid


def test_nothing_is_linked_to_a_deactivated_user(app: App, mock: responses.RequestsMock) -> None:
    with app.db.session() as session:
        set_active(session, "alice", False)
    with pytest.raises(LinkError, match="alice is deactivated: `trickle users activate alice`"):
        Linker(app).import_token("oauthy", "alice", ACCESS)
    with pytest.raises(LinkError, match="deactivated"):
        Linker(app).authorize("oauthy", "alice", redirect_uri=CALLBACK)
    assert (accounts(app), attempts(app)) == (0, 0)


# ---------------------------------------------------------------------------
# Servers


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("mastodon.social", "https://mastodon.social"),
        (" https://Mastodon.Social/ ", "https://mastodon.social"),
        ("https://example.org:8443", "https://example.org:8443"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_a_server_is_named_by_its_origin(given: str, origin: str) -> None:
    assert normalize_server(given) == origin


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "empty"),
        ("https://example.org/@alice", "not a server"),
        ("https://user:pw@example.org", "not a server"),
        ("ftp://example.org", "not a server"),
        ("http://example.org", "https only"),
        ("https://example.org:99999", "port"),
        ("x" * 301, "longer than 300"),
        ("[bold]evil[/bold].example/\x1b[31m", "not"),
    ],
)
def test_a_server_that_is_not_one_is_a_clear_error(given: str, problem: str) -> None:
    with pytest.raises(LinkError, match=problem) as caught:
        normalize_server(given)
    assert "\x1b" not in str(caught.value)


def stored_credentials(app: App) -> Credentials:
    with app.db.reader() as session:
        sealed = session.scalars(select(LinkedAccount.credentials)).one()
    assert sealed is not None
    return app.box.open(sealed)


# ---------------------------------------------------------------------------
# An app password: the connector signs in once, and keeps what it says


def test_an_app_password_links_the_account_the_connector_proved_and_keeps_nothing(
    app: App, mock: responses.RequestsMock
) -> None:
    Passy.signed_in.clear()
    result = Linker(app).sign_in("passy", "alice", "ada.passy.test", APP_PASSWORD)

    assert (result.platform_user_id, result.handle) == (
        "did:passy:ada.passy.test",
        "ada.passy.test",
    )
    assert Passy.signed_in == ["ada.passy.test"]
    assert len(mock.calls) == 0, "the identity the sign-in proved is not asked for again"
    with app.db.reader() as session:
        stored = session.scalars(select(LinkedAccount)).one()
    assert stored.host == PASSY_PDS
    assert stored.credentials is not None
    kept = app.box.open(stored.credentials)
    assert kept.secret_values() == []
    assert kept.issued_by == "app-password"


def test_a_refused_app_password_links_nothing_and_is_never_shown(app: App) -> None:
    wrong = "zzzz-9999-yyyy-8888"
    with pytest.raises(LinkError, match="did not accept that app password") as raised:
        Linker(app).sign_in("passy", "alice", "ada.passy.test", wrong)

    assert wrong not in str(raised.value)
    assert accounts(app) == 0


def test_no_app_password_is_tried_for_a_deactivated_user(app: App) -> None:
    Passy.signed_in.clear()
    with app.db.session() as session:
        set_active(session, "alice", False)

    with pytest.raises(LinkError, match="deactivated"):
        Linker(app).sign_in("passy", "alice", "ada.passy.test", APP_PASSWORD)
    assert Passy.signed_in == []


def test_the_app_password_flow_needs_no_app_of_the_operator(app: App) -> None:
    flow = Linker(app).flow("passy")

    assert flow.kind == "app-password"
    assert flow.needs == ()
    assert flow.finds_server


def test_unlinking_an_account_linked_with_an_app_password_says_nothing_was_kept(
    app: App,
) -> None:
    linker = Linker(app)
    linker.sign_in("passy", "alice", "ada.passy.test", APP_PASSWORD)

    result = linker.unlink("passy", "alice")

    assert not result.revoked
    assert "kept no Passy token" in result.note
    assert accounts(app) == 1  # unlinked, with its flattrs, not deleted


# ---------------------------------------------------------------------------
# Signing in: a redirect flow begun for nobody, the account decides the user


def test_a_sign_in_with_an_account_nobody_linked_creates_its_user(
    app: App, mock: responses.RequestsMock
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("oauthy", None, redirect_uri=CALLBACK)
    mock.post(f"{AUTH}/token", json=token_answer())

    signed_in = linker.complete(back(authorization.url, code=CODE))

    assert signed_in.new_user
    assert signed_in.user == "alice-on-oauthy"  # named after the handle
    with app.db.reader() as session:
        user = get_user(session, "alice-on-oauthy")
        assert current_budget(session, user.id) == 0
        assert (user.currency, user.public, user.operator) == ("EUR", False, False)
        owner = session.scalars(select(LinkedAccount.user_id)).one()
    assert owner == user.id


def test_a_sign_in_with_a_linked_account_is_its_owner(
    app: App, mock: responses.RequestsMock
) -> None:
    linker = Linker(app)
    mock.post(f"{AUTH}/token", json=token_answer())
    linker.complete(back(linker.authorize("oauthy", "alice", redirect_uri=CALLBACK).url, code=CODE))

    signed_in = linker.complete(
        back(linker.authorize("oauthy", None, redirect_uri=CALLBACK).url, code=CODE)
    )

    assert (signed_in.user, signed_in.new_user, signed_in.relinked) == ("alice", False, True)
    assert accounts(app) == 1


def test_a_sign_in_as_a_claimed_creator_is_the_claimant(
    app: App, mock: responses.RequestsMock
) -> None:
    with app.db.session() as session:
        claim_creator(
            session, platform="oauthy", platform_id="u-77", user_id=get_user(session, "alice").id
        )
    linker = Linker(app)
    mock.post(f"{AUTH}/token", json=token_answer())

    signed_in = linker.complete(
        back(linker.authorize("oauthy", None, redirect_uri=CALLBACK).url, code=CODE)
    )

    assert (signed_in.user, signed_in.new_user) == ("alice", False)


def test_a_sign_in_takes_a_free_name_when_the_handle_is_taken(
    app: App, mock: responses.RequestsMock
) -> None:
    with app.db.session() as session:
        add_user(session, "alice-on-oauthy", Money(0, "EUR"))
        add_user(session, "alice-on-oauthy-2", Money(0, "EUR"))
    linker = Linker(app)
    mock.post(f"{AUTH}/token", json=token_answer())

    signed_in = linker.complete(
        back(linker.authorize("oauthy", None, redirect_uri=CALLBACK).url, code=CODE)
    )

    assert signed_in.user == "alice-on-oauthy-3"


def test_a_sign_in_as_a_deactivated_user_is_refused(app: App, mock: responses.RequestsMock) -> None:
    linker = Linker(app)
    mock.post(f"{AUTH}/token", json=token_answer())
    linker.complete(back(linker.authorize("oauthy", "alice", redirect_uri=CALLBACK).url, code=CODE))
    with app.db.session() as session:
        set_active(session, "alice", False)

    with pytest.raises(LinkError, match="alice is deactivated"):
        linker.complete(
            back(linker.authorize("oauthy", None, redirect_uri=CALLBACK).url, code=CODE)
        )
