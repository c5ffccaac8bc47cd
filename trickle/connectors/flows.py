"""How an account is linked: the flows a connector declares, as values.

A connector lists its ``link_flows``, the preferred first; the linking
service (:mod:`trickle.linking`) runs them, for ``trickle link`` in a
terminal and for the web pages alike:

- :class:`TokenImport`: a token the user made at the platform, pasted in
  (GitHub's personal tokens), with a refresh token and expiry when there are.
- :class:`AuthorizationCode`: OAuth 2's authorization code flow with PKCE
  (S256): the user approves at the platform, which redirects back with a code.
- :class:`DeviceAuthorization`: RFC 8628's device flow (GitHub): the user
  enters a short code at the platform while trickle waits; no redirect.
- :class:`OAuth1Authorization`: OAuth 1.0a's three legs (Flickr, 500px).
- :class:`RegisteredApp`: an app registered on the user's own server first
  (Mastodon), then the authorization code flow there.
- :class:`AppPassword`: the account's identifier (a Bluesky handle) and an
  app password the user made at the platform, with which the connector signs
  in once to prove the account is theirs (``Connector.sign_in``); the
  password is never stored.
- :class:`SessionLogin`: the platform's own login form (username, password,
  a second-factor code when asked), run by the connector (:class:`LogsIn`),
  or a session file made by the platform's own client: for platforms with no
  OAuth at all (Instagram's private web API). Only the session is kept.

Every URL here is the real platform's. A connector's ``oauth_base_url``
setting replaces their origin (scheme, host and port), so a fake
authorization server on 127.0.0.1 can stand in for the platform in tests and
demos, the way ``base_url`` does for its API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from trickle.core.credentials import Credentials

ClientAuth = Literal["client_secret_post", "client_secret_basic", "none"]
"""How an app authenticates at a token endpoint (RFC 6749 section 2.3)."""


class LinkFlow:
    """One way of linking an account (see the module)."""

    kind: ClassVar[str]
    """Its name on the command line and in the docs: ``token``, ``oauth2``, ``device``..."""
    redirects: ClassVar[bool] = False
    """True when the platform sends the user back to a redirect URI of trickle's."""
    stable_redirect: ClassVar[bool] = False
    """True when the redirect URI should stay the same from one link to the next (an app
    registered per redirect URI): the terminal then uses a fixed port even when
    ``[linking] loopback_port`` leaves the choice to it."""
    finds_server: ClassVar[bool] = False
    """True when the flow finds the account's server itself (from a handle), so that a
    platform of many servers needs no ``--server`` for it."""

    @property
    def needs(self) -> tuple[str, ...]:
        """The connector settings this flow cannot run without (the app's credentials)."""
        return ()

    @property
    def register_at(self) -> str | None:
        """Where an operator registers trickle's app with the platform (None: nowhere)."""
        return None

    def describe(self) -> str:
        """A few words for ``trickle connectors list`` and ``trickle link --help``."""
        return self.kind


@dataclass(frozen=True)
class TokenImport(LinkFlow):
    """A token made at the platform and pasted in; ``how`` tells the user where to make one
    and which permissions it needs."""

    kind: ClassVar[str] = "token"
    how: str = ""

    def describe(self) -> str:
        return "a token made at the platform"


@dataclass(frozen=True)
class AuthorizationCode(LinkFlow):
    """OAuth 2's authorization code flow (RFC 6749 section 4.1), with PKCE S256 (RFC 7636)
    unless ``pkce`` is off for a platform that refuses it."""

    kind: ClassVar[str] = "oauth2"
    redirects: ClassVar[bool] = True
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    client_auth: ClientAuth = "client_secret_post"
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    """Extra parameters of the authorization request (``duration=permanent``...)."""
    revoke_url: str | None = None
    """RFC 7009 revocation endpoint, where the platform has one (used by unlink)."""
    app_page: str | None = None
    """Where the operator registers the app (shown when its credentials are not set)."""

    @property
    def needs(self) -> tuple[str, ...]:
        return ("client_id",) if self.client_auth == "none" else ("client_id", "client_secret")

    @property
    def register_at(self) -> str | None:
        return self.app_page

    def describe(self) -> str:
        return "OAuth 2 in the browser" + (" (PKCE)" if self.pkce else "")


@dataclass(frozen=True)
class DeviceAuthorization(LinkFlow):
    """RFC 8628's device flow: a user code to enter at ``verification_uri`` while trickle polls
    ``token_url``. Needs no redirect, so it suits a terminal on a machine without a browser."""

    kind: ClassVar[str] = "device"
    device_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    client_auth: ClientAuth = "none"
    """A public client (GitHub's: "the client_secret is not needed for the device flow"), or
    how a confidential one authenticates, at both endpoints (RFC 8628 section 3.1)."""
    revoke_url: str | None = None
    app_page: str | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        return ("client_id",) if self.client_auth == "none" else ("client_id", "client_secret")

    @property
    def register_at(self) -> str | None:
        return self.app_page

    def describe(self) -> str:
        return "a code entered at the platform (device flow)"


@dataclass(frozen=True)
class OAuth1Authorization(LinkFlow):
    """OAuth 1.0a's three legs (RFC 5849): a request token, the user's approval, the verifier
    exchanged for an access token and its secret."""

    kind: ClassVar[str] = "oauth1"
    redirects: ClassVar[bool] = True
    request_token_url: str
    authorize_url: str
    access_token_url: str
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    """Extra parameters of the authorization page (Flickr's ``perms=read``)."""
    app_page: str | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        return ("consumer_key", "consumer_secret")

    @property
    def register_at(self) -> str | None:
        return self.app_page

    def describe(self) -> str:
        return "OAuth 1.0a in the browser"


@dataclass(frozen=True)
class RegisteredApp(LinkFlow):
    """An app registered on the user's server (``registration_path``, Mastodon's
    ``POST /api/v1/apps``), kept and reused, then the authorization code flow on that server
    (paths below are on the server's origin)."""

    kind: ClassVar[str] = "registered-app"
    redirects: ClassVar[bool] = True
    stable_redirect: ClassVar[bool] = True
    scopes: tuple[str, ...]
    registration_path: str = "/api/v1/apps"
    authorize_path: str = "/oauth/authorize"
    token_path: str = "/oauth/token"  # noqa: S105 - a path, not a secret
    revoke_path: str | None = "/oauth/revoke"
    pkce: bool = True

    def describe(self) -> str:
        return "OAuth 2 in the browser, on the account's own server"


@dataclass(frozen=True)
class AppPassword(LinkFlow):
    """The account's ``identifier`` (its handle, ``example`` shows one) and an app password
    the user makes at ``app_page``; the connector's ``sign_in`` proves the account with them
    (Bluesky's ``createSession``) and says what to keep. The password is used once and never
    stored. No app of trickle's is registered anywhere, so the flow needs no settings."""

    kind: ClassVar[str] = "app-password"
    finds_server: ClassVar[bool] = True
    identifier: str = "handle"
    example: str = ""
    app_page: str | None = None
    """Where the user makes an app password (shown before it is asked for)."""

    def describe(self) -> str:
        return f"your {self.identifier} and an app password (not stored)"


@dataclass(frozen=True)
class SessionLogin(LinkFlow):
    """The platform's own login, run by the connector (which implements :class:`LogsIn`): a
    username and password, and a second-factor code when the platform asks for one, become a
    session; or a session file the user made with the platform's own client is read. The
    password is used for that one exchange and never stored, printed or logged: only the
    session is kept, sealed like any credentials."""

    kind: ClassVar[str] = "login"
    session_file: str = ""
    """How a user makes a session file the connector reads (empty: it reads none)."""
    warning: str = ""
    """What the user must know before giving the password (the platform's terms, say)."""

    def describe(self) -> str:
        also = ", or a session file" if self.session_file else ""
        return f"a login with the account's password{also}"


@dataclass(frozen=True, repr=False)
class SecondFactor:
    """A login the platform wants a second factor for: what to ask the user, and what its
    half-done login holds (secret: kept by the caller until the code comes back, never stored
    and never shown)."""

    prompt: str
    pending: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"SecondFactor(prompt={self.prompt!r}, pending=***)"

    def secret_values(self) -> list[str]:
        """The values of the half-done login, for redacting them from messages."""
        return [value for value in self.pending.values() if value]


@runtime_checkable
class LogsIn(Protocol):
    """What a connector declaring :class:`SessionLogin` does. Every method raises a connector
    error (:mod:`trickle.connectors.errors`) saying why a login failed, never quoting the
    password."""

    def log_in(self, username: str, password: str) -> Credentials | SecondFactor:
        """Log in: the session's credentials, or the second factor the platform asks for."""
        ...

    def confirm_login(self, pending: SecondFactor, code: str) -> Credentials:
        """Finish a login with the second-factor ``code`` the user was asked for."""
        ...

    def read_session_file(self, data: bytes) -> Credentials:
        """The credentials of a session file (its bytes, untrusted) made elsewhere."""
        ...


def on_origin(url: str, origin: str | None) -> str:
    """``url`` with its scheme, host and port replaced by ``origin``'s (None: unchanged)."""
    if not origin:
        return url
    parts, base = urlsplit(url), urlsplit(origin)
    return parts._replace(scheme=base.scheme, netloc=base.netloc).geturl()
