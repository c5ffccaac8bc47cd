"""Auth kinds: how a connector's requests prove whose they are, declared as values.

A connector says ``auth = Bearer()``, ``Bearer(scheme="OAuth")``,
``ApiKeyInQuery("api_key")``, ``OAuth1()`` or ``OAuth2(token_url=...)``; the
account's :class:`~trickle.connectors.session.AccountSession` signs every
request with it, so no connector builds an ``Authorization`` header by hand
and no call site handles a secret.

OAuth is Authlib's (``authlib``): its OAuth 1.0a signer for Flickr and 500px,
and its OAuth 2 client for refreshing tokens (the refresh request, the
client authentication methods, reading the token endpoint's answer and its
errors). Authlib's own requests sessions are not used: its OAuth 2 client is
given a transport that sends through trickle's HTTP layer, so a token
endpoint gets the same deadline, byte cap, error policy and redaction as
every other request.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import requests
import requests.auth
from authlib.integrations.requests_client import OAuth1Auth
from authlib.integrations.requests_client.oauth2_session import OAuth2ClientAuth
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.client import OAuth2Client

from trickle.connectors.errors import AuthExpired, PlatformError
from trickle.connectors.flows import on_origin
from trickle.connectors.policy import TOKEN_ENDPOINT_POLICY
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials, redact
from trickle.core.text import printable

MAX_TOKEN_LIFETIME = timedelta(days=3650)
"""The longest ``expires_in`` believed; longer is read as "does not expire"."""


@dataclass(frozen=True)
class Signed:
    """What signing adds to one request: headers, query parameters, a requests auth hook."""

    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    auth: requests.auth.AuthBase | None = None


@dataclass(frozen=True)
class AuthContext:
    """What an auth kind may use besides the credentials: the connector's settings, its
    name (for messages) and the HTTP layer (for a token endpoint)."""

    platform: str
    settings: ConnectorSettings
    http: Any  # trickle.connectors.http.HttpClient (not imported: http imports this module)
    secrets: list[str]


class Auth(abc.ABC):
    """An auth kind (see the module)."""

    refreshes: bool = False
    """True when credentials of this kind expire and can be renewed without the user."""

    @abc.abstractmethod
    def sign(self, credentials: Credentials, context: AuthContext) -> Signed:
        """What to add to a request made with ``credentials``."""

    def needs_refresh(self, credentials: Credentials, now: datetime) -> bool:
        """True when ``credentials`` should be renewed before the next request."""
        return False

    def refresh(self, credentials: Credentials, context: AuthContext) -> Credentials:
        """Renewed credentials; :class:`AuthExpired` when the platform refuses."""
        raise AuthExpired(
            f"{context.platform}: these credentials cannot be renewed: link the account again"
        )

    def app_secrets(self, settings: ConnectorSettings) -> list[str]:
        """The operator's secrets this kind sends (an API key, a client secret): they are
        redacted from messages like the account's own."""
        return settings.secret_values()


def _access_token(credentials: Credentials, platform: str) -> str:
    if not credentials.access_token:
        raise AuthExpired(f"no {platform} token is stored for this account: link it again")
    return credentials.access_token


@dataclass(frozen=True)
class NoAuth(Auth):
    """Public reads: nothing is added (Bluesky's repositories)."""

    def sign(self, credentials: Credentials, context: AuthContext) -> Signed:
        return Signed()


@dataclass(frozen=True)
class Bearer(Auth):
    """``Authorization: <scheme> <access token>``; the scheme is ``Bearer`` unless the platform
    says otherwise (SoundCloud: ``OAuth``)."""

    scheme: str = "Bearer"

    def sign(self, credentials: Credentials, context: AuthContext) -> Signed:
        token = _access_token(credentials, context.platform)
        return Signed(headers={"Authorization": f"{self.scheme} {token}"})


@dataclass(frozen=True)
class ApiKeyInQuery(Auth):
    """The operator's API key as the query parameter ``param``, from the setting ``setting``.
    (Error messages never show a query string, so the key stays out of them.)"""

    param: str = "api_key"
    setting: str = "api_key"

    def sign(self, credentials: Credentials, context: AuthContext) -> Signed:
        key = context.settings.secret(self.setting, platform=context.platform)
        return Signed(params={self.param: key})


@dataclass(frozen=True)
class OAuth1(Auth):
    """OAuth 1.0a (RFC 5849) HMAC-SHA1 signatures with the app's consumer key and secret (from
    the settings ``consumer_key`` and ``consumer_secret``) and the account's token and token
    secret; in the ``Authorization`` header, or the query for platforms that want that."""

    consumer_key: str = "consumer_key"
    consumer_secret: str = "consumer_secret"  # noqa: S105 - the setting's name
    placement: Literal["header", "query"] = "header"

    def sign(self, credentials: Credentials, context: AuthContext) -> Signed:
        token = _access_token(credentials, context.platform)
        if not credentials.token_secret:
            raise AuthExpired(
                f"no {context.platform} token secret is stored for this account: link it again"
            )
        signer = OAuth1Auth(
            client_id=context.settings.secret(self.consumer_key, platform=context.platform),
            client_secret=context.settings.secret(self.consumer_secret, platform=context.platform),
            token=token,
            token_secret=credentials.token_secret,
            signature_type="HEADER" if self.placement == "header" else "QUERY",
        )
        return Signed(auth=signer)


@dataclass(frozen=True)
class OAuth2(Auth):
    """OAuth 2 access tokens in the ``Authorization`` header (``scheme``), renewed with the
    refresh token at ``token_url`` (the setting ``token_url`` overrides it) ``leeway`` before
    they expire, and once after a 401. The app authenticates at the token endpoint as
    ``client_auth`` says, with the settings ``client_id`` and ``client_secret``."""

    token_url: str
    scheme: str = "Bearer"
    client_auth: Literal["client_secret_post", "client_secret_basic", "none"] = "client_secret_post"
    client_id: str = "client_id"
    client_secret: str = "client_secret"  # noqa: S105 - the setting's name
    leeway: timedelta = timedelta(seconds=60)

    refreshes = True

    def sign(self, credentials: Credentials, context: AuthContext) -> Signed:
        token = _access_token(credentials, context.platform)
        return Signed(headers={"Authorization": f"{self.scheme} {token}"})

    def needs_refresh(self, credentials: Credentials, now: datetime) -> bool:
        return bool(credentials.refresh_token) and credentials.expires_within(
            self.leeway.total_seconds(), now
        )

    def endpoint(self, settings: ConnectorSettings) -> str:
        """The token endpoint: the ``token_url`` setting if the connector has one set, else
        ``token_url`` on the ``oauth_base_url`` setting's origin when that is set."""
        given = getattr(settings, "token_url", None)
        return str(given) if given else on_origin(self.token_url, settings.oauth_base_url)

    def client(self, context: AuthContext) -> OAuth2Client:
        """Authlib's OAuth 2 client for this app, sending through trickle's HTTP layer."""
        secret = (
            None
            if self.client_auth == "none"
            else context.settings.secret(self.client_secret, platform=context.platform)
        )
        return _OAuth2Client(
            TokenTransport(context.http, context.secrets),
            client_id=context.settings.secret(self.client_id, platform=context.platform),
            client_secret=secret,
            token_endpoint_auth_method=self.client_auth,
        )

    def refresh(self, credentials: Credentials, context: AuthContext) -> Credentials:
        if not credentials.refresh_token:
            raise AuthExpired(
                f"{context.platform}: the access token expired and there is no refresh token: "
                "link the account again"
            )
        client = self.client(context)
        try:
            token = client.refresh_token(
                self.endpoint(context.settings), refresh_token=credentials.refresh_token
            )
        except OAuth2Error as exc:
            raise oauth_error(exc, context, "refreshing the token") from None
        except (requests.HTTPError, ValueError):
            raise PlatformError(
                f"{context.platform}: the token endpoint's answer to a refresh is not an "
                "OAuth token"
            ) from None
        return credentials_from_token(token, previous=credentials, now=clock.now())


class _OAuth2Client(OAuth2Client):  # type: ignore[misc]
    """Authlib's OAuth 2 client whose client authentication is a requests auth hook."""

    client_auth_class = OAuth2ClientAuth


class TokenTransport:
    """What Authlib's OAuth clients need of a session (``post``, ``request``), carried by
    trickle's HTTP layer within its limits, with OAuth error answers handed back to be read."""

    def __init__(self, http: Any, secrets: list[str], guard: Any = None) -> None:
        self.http = http
        self.secrets = secrets
        self.guard = guard
        """A :class:`~trickle.connectors.hosts.HostGuard` for a user-named server, or None."""

    def post(
        self,
        url: str,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: requests.auth.AuthBase | None = None,
        **_: Any,
    ) -> requests.Response:
        """POST a form to an OAuth endpoint."""
        return self.request("POST", url, data=data, headers=headers, auth=auth)

    def request(
        self,
        method: str,
        url: str,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: requests.auth.AuthBase | None = None,
        **_: Any,
    ) -> requests.Response:
        """Send ``method url`` through the HTTP layer (``TOKEN_ENDPOINT_POLICY``)."""
        response: requests.Response = self.http.request(
            method,
            url,
            data=data,
            headers=headers,
            auth=auth,
            secrets=self.secrets,
            policy=TOKEN_ENDPOINT_POLICY,
            guard=self.guard,
        )
        return response


REFUSED_GRANTS = frozenset({"invalid_grant", "invalid_token", "access_denied"})
"""OAuth errors that mean the user's grant is gone: relink."""


def oauth_error(exc: OAuth2Error, context: AuthContext, doing: str) -> Exception:
    """The typed error for an OAuth error answer: a refused grant is :class:`AuthExpired`,
    anything else (a wrong client secret, an unknown client) a :class:`PlatformError`."""
    code = printable(str(exc.error or "error"), 60)
    said = printable(redact(str(exc.description or ""), context.secrets), 200)
    detail = f"{code}{': ' + said if said else ''}"
    if exc.error in REFUSED_GRANTS:
        return AuthExpired(
            f"{context.platform}: the platform refused {doing} ({detail}): link the account again"
        )
    return PlatformError(f"{context.platform}: {doing} failed ({detail})")


def credentials_from_token(
    token: Mapping[str, Any], *, previous: Credentials | None, now: datetime
) -> Credentials:
    """Credentials from an OAuth 2 token endpoint's answer (RFC 6749 section 5.1).

    A refresh that returns no new refresh token keeps the previous one; ``expires_in`` is
    counted from ``now`` on trickle's clock; scopes may come as a string or a list.
    """
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise PlatformError("the token endpoint's answer has no access_token")
    refresh = token.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        refresh = previous.refresh_token if previous is not None else None
    expires_at = None
    given = token.get("expires_in")
    lifetime: int | None = None
    if isinstance(given, str) and given.strip().isdigit():
        lifetime = int(given)
    elif isinstance(given, int) and not isinstance(given, bool):
        lifetime = given
    if lifetime is not None and 0 < lifetime <= MAX_TOKEN_LIFETIME.total_seconds():
        expires_at = now + timedelta(seconds=lifetime)
    scope = token.get("scope")
    if isinstance(scope, str):
        scopes = tuple(scope.replace(",", " ").split())
    elif isinstance(scope, list):
        scopes = tuple(str(s) for s in scope)
    else:
        scopes = previous.scopes if previous is not None else ()
    kind = token.get("token_type")
    return Credentials(
        access_token=access,
        refresh_token=refresh,
        expires_at=expires_at,
        token_type=kind if isinstance(kind, str) else None,
        scopes=scopes,
        extra=dict(previous.extra) if previous is not None else {},
    )
