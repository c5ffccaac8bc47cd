"""Made-up platforms of every link flow (their endpoints mocked with ``responses`` by the
tests), and helpers to read what linking stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr, TypeAdapter
from sqlalchemy import func, select

from trickle.app import App
from trickle.connectors.base import Identity, SignedIn
from trickle.connectors.errors import AuthExpired
from trickle.connectors.flows import (
    AppPassword,
    AuthorizationCode,
    DeviceAuthorization,
    OAuth1Authorization,
    RegisteredApp,
    TokenImport,
)
from trickle.connectors.paginators import LinkHeader
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent
from trickle.core.models import LinkAttempt, LinkedAccount

API = "https://api.oauthy.test"
AUTH = "https://auth.oauthy.test"
CALLBACK = "http://127.0.0.1:8765/callback"
CLIENT_SECRET = "client-s3cret-value-0123456789"
ACCESS = "at-4cc3ss-t0ken-value-abcdefgh"
REFRESH = "rt-r3fr3sh-t0ken-value-abcdefgh"
CODE = "c0de-value-abcdefghijklmnop"
APP_PASSWORD = "abcd-2345-efgh-6789"
PASSY_PDS = "https://pds.passy.test"


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
            revoke_url=f"{AUTH}/revoke",
            app_page="https://oauthy.test/developers",
        ),
        DeviceAuthorization(
            device_url=f"{AUTH}/device/code", token_url=f"{AUTH}/token", revoke_url=f"{AUTH}/revoke"
        ),
        TokenImport(how="make a token at https://oauthy.test/settings/tokens"),
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


class Passy(Oauthy):
    """A platform of many servers whose accounts are proven with an app password (as
    Bluesky's are): the handle finds the server, and nothing is kept for polling."""

    name = "passy"
    display_name = "Passy"
    multi_host = True
    link_flows = (
        AppPassword(
            identifier="handle", example="ada.passy.test", app_page="https://passy.test/apps"
        ),
    )
    signed_in: ClassVar[list[str]] = []

    def sign_in(self, identifier: str, password: str) -> SignedIn:
        self.signed_in.append(identifier)
        if password != APP_PASSWORD:
            raise AuthExpired(f"POST {PASSY_PDS}/session: 401 Invalid identifier or password")
        return SignedIn(
            identity=Identity(f"did:passy:{identifier}", identifier, host=PASSY_PDS),
            credentials=Credentials(),
        )


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
