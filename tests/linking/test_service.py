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
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from pydantic import SecretStr, TypeAdapter
from sqlalchemy import func, select

from tests.conftest import make_settings
from trickle.app import App
from trickle.connectors.base import Identity
from trickle.connectors.flows import (
    AuthorizationCode,
    DeviceAuthorization,
    OAuth1Authorization,
    RegisteredApp,
)
from trickle.connectors.paginators import LinkHeader
from trickle.connectors.registry import Registry
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.events import LikeEvent
from trickle.core.models import LinkAttempt, LinkedAccount, OAuthApp
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker

API = "https://api.oauthy.test"
AUTH = "https://auth.oauthy.test"
CALLBACK = "http://127.0.0.1:8765/callback"
CLIENT_SECRET = "client-s3cret-value-0123456789"
ACCESS = "at-4cc3ss-t0ken-value-abcdefgh"
REFRESH = "rt-r3fr3sh-t0ken-value-abcdefgh"
CODE = "c0de-value-abcdefghijklmnop"


class AppSettings(ConnectorSettings):
    client_id: str | None = None
    client_secret: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None


ME = TypeAdapter(dict[str, str])


class Oauthy(RestConnector):
    """A platform of the OAuth 2 authorization code flow with PKCE."""

    name = "oauthy"
    display_name = "Oauthy"
    default_base_url = API
    settings_model = AppSettings
    link_flows = (
        AuthorizationCode(
            authorize_url=f"{AUTH}/authorize",
            token_url=f"{AUTH}/token",
            scopes=("likes.read", "offline"),
        ),
        DeviceAuthorization(device_url=f"{AUTH}/device/code", token_url=f"{AUTH}/token"),
    )
    likes_path = "/likes"
    paginator = LinkHeader()
    page_model = TypeAdapter(list[dict[str, str]])
    identity_path = "/me"
    identity_model = ME

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        raise AssertionError("linking never polls")

    def identity(self, payload: Any) -> Identity:
        return Identity(platform_user_id=payload["id"], handle=payload["name"])


class Signy(Oauthy):
    """A platform of OAuth 1.0a."""

    name = "signy"
    display_name = "Signy"
    link_flows = (
        OAuth1Authorization(
            request_token_url=f"{AUTH}/oauth/request_token",
            authorize_url=f"{AUTH}/oauth/authorize",
            access_token_url=f"{AUTH}/oauth/access_token",
            authorize_params={"perms": "read"},
        ),
    )


class Fedi(Oauthy):
    """A platform of many servers, each registering its apps."""

    name = "fedi"
    display_name = "Fedi"
    multi_host = True
    link_flows = (RegisteredApp(scopes=("read:favourites", "profile")),)


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path) -> Iterator[App]:
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.connectors = {
        "oauthy": {"client_id": "oauthy-app", "client_secret": CLIENT_SECRET},
        "signy": {"consumer_key": "signy-key", "consumer_secret": CLIENT_SECRET},
    }
    application = App(settings, registry=Registry.of([Oauthy, Signy, Fedi]))
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    yield application
    application.close()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{API}/me", json={"id": "u-77", "name": "alice-on-oauthy"})
        yield rsps


def attempts(app: App) -> int:
    with app.db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(LinkAttempt)) or 0)


def accounts(app: App) -> int:
    with app.db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(LinkedAccount)) or 0)


def back(authorization_url: str, **answer: str) -> str:
    """Where the platform sends the browser back: the callback with ``answer``."""
    state = parse_qs(urlsplit(authorization_url).query)["state"][0]
    query = "&".join(f"{k}={v}" for k, v in {"state": state, **answer}.items())
    return f"{CALLBACK}?{query}"


def token_answer(**changes: Any) -> dict[str, Any]:
    return {
        "access_token": ACCESS,
        "token_type": "Bearer",
        "expires_in": 7200,
        "refresh_token": REFRESH,
        "scope": "likes.read offline",
        **changes,
    }


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


def test_a_missing_app_credential_says_where_to_set_it(app: App) -> None:
    app.settings.connectors["oauthy"] = {"client_id": "oauthy-app"}
    app._connectors.clear()
    with pytest.raises(Exception, match=r"\[connectors.oauthy\] client_secret"):
        Linker(app).authorize("oauthy", "alice", redirect_uri=CALLBACK)


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
    assert [f.kind for f in linker.flows("oauthy")] == ["oauth2", "device"]
    assert linker.flow("oauthy").kind == "oauth2"
    with pytest.raises(LinkError, match=r"cannot be linked with 'oauth1' \(it offers: oauth2, dev"):
        linker.flow("oauthy", "oauth1")
    json.dumps([f.describe() for f in linker.flows("oauthy")])
