"""A made-up OAuth 2 platform on 127.0.0.1: an authorization server and the API it guards.

Tests of everything that renews credentials run against it: the session's
refresh, save and retry, the worker's saver, and the simulated week of
``tests/test_refresh_week.py``. It keeps to RFC 6749 where a client can tell:

- **The token endpoint**, ``POST /oauth/token`` (section 3.2): a form body,
  no parameter twice (section 3.1), the grant type dispatched through
  :attr:`FakeOAuth.grant_types` (``refresh_token``, section 6, here; the
  authorization code and device grants are added by
  :mod:`~trickle.testing.fake_authorize` and :mod:`~trickle.testing.fake_device`),
  the client authenticated as section 2.3.1 says, by ``client_secret_basic``
  (HTTP Basic, id and secret form-urlencoded) or ``client_secret_post``
  (form fields), one method per request and the one the client registered;
  a public client (``none``, RFC 7591) sends its ``client_id`` alone and is
  refused if it sends a secret. Answers are section 5.1's (``access_token``,
  ``token_type``, ``expires_in``, ``refresh_token``, ``scope``;
  ``Cache-Control: no-store``) and section 5.2's errors (``error``,
  ``error_description``; 401 and ``WWW-Authenticate`` for a client that
  failed HTTP Basic).
- **Single-use refresh tokens**: a refresh rotates the grant's refresh token;
  presenting one already used is ``invalid_grant`` and, as RFC 9700 section
  4.14.2 recommends, revokes the whole grant (``revoke_on_reuse``).
- **Expiring access tokens**, bearer tokens (RFC 6750) valid for
  ``access_token_lifetime`` on trickle's clock (an hour unless told; None:
  they never expire and the answer has no ``expires_in``), so a test
  that moves :data:`~trickle.core.clock.clock` moves their expiry too; an
  expired, revoked or unknown one is 401 with ``WWW-Authenticate: Bearer
  error="invalid_token"``.
- **Revocation** (RFC 7009), ``POST /oauth/revoke``: the client authenticated
  as at the token endpoint, ``token`` and an optional ``token_type_hint``;
  an access or refresh token of the client's ends its whole grant, a token
  the server does not know is 200 all the same (section 2.2), one issued to
  another client is refused. Every revocation is in :attr:`FakeOAuth.revocations`.
- **The API** (:mod:`~trickle.testing.fake_likes`): ``GET /api/me`` and
  ``GET /api/likes``.

Tests stage the rest: :meth:`FakeOAuth.register_client`, ``add_account`` and
``like``, :meth:`FakeOAuth.issue` for an account's first tokens (what a
completed authorization hands out), :meth:`FakeOAuth.revoke`,
:meth:`FakeOAuth.expire_access_tokens`, and read :attr:`FakeOAuth.refreshes`,
:attr:`FakeOAuth.rotations` and :meth:`FakeOAuth.accepts`. A test may also
stop a request at a :class:`Phase` (:meth:`FakeOAuth.hook`): the week's
trials kill the worker while the platform holds a request there.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, TypedDict
from urllib.parse import unquote_plus, urlsplit

from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.testing.fake_likes import LIKES_PATH as LIKES_PATH
from trickle.testing.fake_likes import ME_PATH as ME_PATH
from trickle.testing.fake_likes import FakeLike as FakeLike
from trickle.testing.fake_likes import FakeLikesPlatform
from trickle.testing.fake_likes import FakeOAuthAccount as FakeOAuthAccount
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
REVOKE_PATH = "/oauth/revoke"
DEFAULT_LIFETIME = timedelta(hours=1)

ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
TokenKind = Literal["access_token", "refresh_token"]


class OAuthError(Exception):
    """An error answer of the authorization server (RFC 6749 section 5.2), as an exception the
    token endpoint turns into its JSON."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> FakeResponse:
        """The JSON answer, never cached (section 5.2)."""
        return FakeResponse(
            self.status,
            {"error": self.error, "error_description": self.description},
            {**NO_STORE, **self.headers},
        )


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""Headers of every answer that carries a token or a code (RFC 6749 section 5.1)."""


def check_form(request: Request) -> None:
    """Refuse a request to an OAuth endpoint that is not a form, or that sends a parameter
    twice (RFC 6749 section 3.1): ``invalid_request``."""
    if not request.is_form:
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    repeated = sorted(name for name, values in request.form.items() if len(values) > 1)
    if repeated:
        raise OAuthError("invalid_request", f"parameter {repeated[0]} is repeated")


def given(request: Request, name: str) -> str | None:
    """The form field ``name``; sent empty is not sent at all (RFC 6749 section 3.1)."""
    return request.field(name) or None


class Phase(StrEnum):
    """Points in the platform's handling of a request where a test may hold it
    (:meth:`FakeOAuth.hook`)."""

    ROTATED = "rotated"
    """A refresh was carried out (the old refresh token is spent, the new one issued) and its
    answer is not sent yet: a client that dies now has lost the grant."""
    FIRST_USE = "first-use"
    """The first API request with an access token issued by a refresh, before it is served."""


Hook = Callable[[str], None]
"""Called with the account's username in the request's own thread; the request waits for it."""


@dataclass(frozen=True)
class OAuthClient:
    """An application registered with the platform: its id, its secret (None for a public
    client), how it authenticates at the token endpoint (RFC 7591's
    ``token_endpoint_auth_method``), its redirect URIs and the most scope it may ask for
    (None: any the server offers)."""

    client_id: str
    client_secret: str | None
    auth_method: ClientAuthMethod = "client_secret_post"
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] | None = None

    @property
    def public(self) -> bool:
        """True for a client that has no secret (RFC 6749 section 2.1: a native app)."""
        return self.auth_method == "none"


@dataclass
class Grant:
    """One authorization: an account's consent to a client for a scope, and the tokens it
    stands behind. Revoking it ends every token it issued."""

    id: int
    account: FakeOAuthAccount
    client_id: str
    scope: tuple[str, ...]
    refresh_token: str | None
    revoked: bool = False


@dataclass(frozen=True)
class AccessToken:
    """An issued access token: whose grant, until when (None: no end), and whether a refresh
    issued it."""

    grant: Grant
    expires_at: datetime | None
    scope: tuple[str, ...]
    from_refresh: bool

    def live(self, now: datetime) -> bool:
        """True while the token is accepted: its grant stands and it has not expired."""
        return not self.grant.revoked and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint hands out (RFC 6749 section 5.1)."""

    access_token: str
    refresh_token: str | None
    expires_in: int | None
    scope: tuple[str, ...]
    token_type: str = "Bearer"  # noqa: S105 - the token type, not a token

    def to_json(self) -> dict[str, object]:
        """The token endpoint's JSON answer."""
        body: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "scope": " ".join(self.scope),
        }
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body

    def credentials(self) -> Credentials:
        """These tokens as trickle stores them, expiring ``expires_in`` from now on trickle's
        clock (as a connector reading this answer would)."""
        expires_at = (
            clock.now() + timedelta(seconds=self.expires_in)
            if self.expires_in is not None
            else None
        )
        return Credentials(
            access_token=self.access_token,
            refresh_token=self.refresh_token,
            expires_at=expires_at,
            token_type=self.token_type,
            scopes=self.scope,
        )


@dataclass(frozen=True)
class Rotation:
    """One refresh the platform carried out: the account, the refresh token spent and the one
    issued, and when (trickle's clock; ``time.monotonic()`` when the request had arrived and
    when the rotation took effect)."""

    account: str
    grant_id: int
    spent: str
    issued: str | None
    at: datetime
    received: float
    monotonic: float


@dataclass(frozen=True)
class Revocation:
    """One request to the revocation endpoint: which client, the hint it gave, what the
    token turned out to be (None: a token the server did not know) and whose, and when on
    trickle's clock."""

    client_id: str
    hint: str | None
    kind: TokenKind | None
    username: str | None
    grant_id: int | None
    at: datetime


class OAuthOptions(TypedDict, total=False):
    """:class:`FakeOAuth`'s keyword arguments, for the subclasses that pass them on."""

    latency: float
    access_token_lifetime: timedelta | None
    single_use_refresh_tokens: bool
    refresh_tokens: bool
    revoke_on_reuse: bool


class FakeOAuth(FakeLikesPlatform):
    """An OAuth 2 authorization server and API on 127.0.0.1 (see the module)."""

    scope: tuple[str, ...] = ("likes:read", "profile")
    """What a grant is for, unless :meth:`issue` (or the authorization request) says
    otherwise; the scopes the server offers (:attr:`offered_scopes`) by default."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        access_token_lifetime: timedelta | None = DEFAULT_LIFETIME,
        single_use_refresh_tokens: bool = True,
        refresh_tokens: bool = True,
        revoke_on_reuse: bool = True,
    ) -> None:
        super().__init__(latency=latency)
        self.access_token_lifetime = access_token_lifetime
        """None: access tokens never expire (Mastodon's)."""
        self.single_use_refresh_tokens = single_use_refresh_tokens
        """False: a refresh answers no new refresh token and the old one stays valid."""
        self.refresh_tokens = refresh_tokens
        """False: no grant has a refresh token (Mastodon's tokens do not expire)."""
        self.revoke_on_reuse = revoke_on_reuse
        self.clients: dict[str, OAuthClient] = {}
        self.grants: list[Grant] = []
        self.refreshes: Counter[str] = Counter()
        """Refreshes carried out, per username."""
        self.refused: Counter[str] = Counter()
        """Token requests answered ``invalid_grant``, per username."""
        self.reuses: Counter[str] = Counter()
        """Spent refresh tokens presented again, per username."""
        self.rotations: list[Rotation] = []
        self.revocations: list[Revocation] = []
        """Every request the revocation endpoint accepted, in order."""
        self.grant_types: dict[str, Callable[[Request, OAuthClient], TokenSet]] = {
            "refresh_token": self._refresh_grant,
        }
        """The grant types the token endpoint serves (RFC 6749's ``grant_type``), each a
        handler of an authenticated client's request."""
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, Grant] = {}  # every refresh token ever issued: spent ones too
        self._used: set[str] = set()  # access tokens from refreshes that were used already
        self._hooks: dict[Phase, Hook] = {}

    @property
    def offered_scopes(self) -> tuple[str, ...]:
        """Every scope a client may ask for here."""
        return self.scope

    # -- setting the scene ---------------------------------------------------

    def register_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        auth_method: ClientAuthMethod | None = None,
        *,
        redirect_uris: tuple[str, ...] = (),
        scopes: tuple[str, ...] | None = None,
    ) -> OAuthClient:
        """Register an application: a confidential one with ``client_secret``, authenticating
        as ``auth_method`` (``client_secret_post`` unless told), or a public one without
        (``none``); with the redirect URIs it may use (absolute, no fragment: RFC 6749
        section 3.1.2) and the most scope it may ask for."""
        method: ClientAuthMethod = auth_method or (
            "client_secret_post" if client_secret is not None else "none"
        )
        if (method == "none") != (client_secret is None):
            raise ValueError("a public client has no secret, and a confidential one has one")
        for uri in redirect_uris:
            parts = urlsplit(uri)
            if not parts.scheme or not parts.netloc or parts.fragment or "#" in uri:
                raise ValueError(f"{uri!r} is not an absolute URI without a fragment")
        client = OAuthClient(client_id, client_secret, method, tuple(redirect_uris), scopes)
        with self.lock:
            self.clients[client_id] = client
        return client

    def issue(
        self, username: str, client_id: str, *, scope: tuple[str, ...] | None = None
    ) -> TokenSet:
        """A new grant of ``username``'s to ``client_id`` and its first tokens, as a completed
        authorization (and its code exchanged) would hand out."""
        with self.lock:
            if client_id not in self.clients:
                raise KeyError(f"no client {client_id!r} is registered")
            grant = self.new_grant(self.accounts[username], client_id, scope or self.scope)
            return self.tokens(grant, grant.scope, from_refresh=False)

    def revoke(self, username: str) -> None:
        """The user revoked every grant of theirs: each token they issued is refused from now."""
        with self.lock:
            for grant in self.grants:
                if grant.account.username == username:
                    grant.revoked = True

    def expire_access_tokens(self, username: str) -> None:
        """End the user's access tokens now, ahead of their expiry (a platform may: a password
        change, a restart that lost its sessions); their refresh tokens stay valid."""
        with self.lock:
            now = clock.now()
            for token, issued in list(self._access.items()):
                if issued.grant.account.username == username and issued.live(now):
                    self._access[token] = AccessToken(
                        issued.grant, now, issued.scope, issued.from_refresh
                    )

    def hook(self, phase: Phase, hook: Hook | None) -> None:
        """Call ``hook(username)`` when a request reaches ``phase`` (None: stop); the request
        waits for it to return. The hook runs outside the platform's lock."""
        with self.lock:
            if hook is None:
                self._hooks.pop(phase, None)
            else:
                self._hooks[phase] = hook

    # -- what tests read -----------------------------------------------------

    def current_refresh_token(self, username: str) -> str | None:
        """The refresh token of the user's latest live grant (None: no live grant)."""
        with self.lock:
            live = [g for g in self.grants if g.account.username == username and not g.revoked]
            return live[-1].refresh_token if live else None

    def accepts(self, credentials: Credentials) -> bool:
        """True when these credentials still work here: their access token is live, or their
        refresh token is the current one of a live grant."""
        with self.lock:
            issued = self._access.get(credentials.access_token or "")
            if issued is not None and issued.live(clock.now()):
                return True
            grant = self._refresh.get(credentials.refresh_token or "")
            return (
                grant is not None
                and not grant.revoked
                and grant.refresh_token == credentials.refresh_token
            )

    def account_key(self, request: Request) -> str | None:
        """Requests are counted per account (the user a token belongs to), whichever of its
        tokens they carry: the overlap log then covers refreshes and API calls alike."""
        with self.lock:
            if request.path == TOKEN_PATH:
                grant = self._refresh.get(request.field("refresh_token") or "")
                return grant.account.username if grant is not None else None
            issued = self._access.get(bearer(request) or "")
            return issued.grant.account.username if issued is not None else None

    # -- the authorization server -----------------------------------------------

    @route("POST", TOKEN_PATH)
    def token(self, request: Request) -> Answer:
        """``POST /oauth/token``: authenticate the client, then serve its grant type."""
        try:
            check_form(request)
            client = self.authenticate_client(request)
            grant_type = given(request, "grant_type")
            if not grant_type:
                raise OAuthError("invalid_request", "grant_type is missing")
            serve = self.grant_types.get(grant_type)
            if serve is None:
                raise OAuthError("unsupported_grant_type", f"{grant_type} is not supported")
            tokens = serve(request, client)
        except OAuthError as error:
            return error.response()
        return FakeResponse(200, tokens.to_json(), dict(NO_STORE))

    def authenticate_client(self, request: Request) -> OAuthClient:
        """The client, by HTTP Basic or by form fields (RFC 6749 section 2.3.1): one method,
        the one it registered, with its secret; a public client by its ``client_id`` alone."""
        header = request.header("Authorization") or ""
        basic = header[:6].lower() == "basic "
        in_form = request.field("client_secret") is not None
        if basic and in_form:
            raise OAuthError("invalid_request", "more than one client authentication method")
        secret: str | None
        if basic:
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
                raw_id, raw_secret = decoded.split(":", 1)
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise self._client_refused("malformed Basic credentials", basic=True) from None
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            named = request.field("client_id")
            if named is not None and named != client_id:
                raise OAuthError("invalid_request", "client_id is not the authenticated client")
            method: ClientAuthMethod = "client_secret_basic"
        elif in_form:
            client_id = request.field("client_id") or ""
            secret = request.field("client_secret") or ""
            method = "client_secret_post"
        else:
            client_id = given(request, "client_id") or ""
            if not client_id:
                raise self._client_refused("no client authentication", basic=False)
            secret, method = None, "none"
        with self.lock:
            client = self.clients.get(client_id)
        if client is None:
            raise self._client_refused("unknown client or wrong secret", basic=basic)
        if client.public != (method == "none"):
            raise self._client_refused(
                f"this client authenticates with {client.auth_method}", basic=basic
            )
        if method == "none":
            return client
        if client.client_secret is None or not hmac.compare_digest(
            (secret or "").encode(), client.client_secret.encode()
        ):
            raise self._client_refused("unknown client or wrong secret", basic=basic)
        if method != client.auth_method:
            raise self._client_refused(
                f"this client authenticates with {client.auth_method}", basic=basic
            )
        return client

    @staticmethod
    def _client_refused(description: str, *, basic: bool) -> OAuthError:
        headers = {"WWW-Authenticate": 'Basic realm="fake-oauth"'} if basic else {}
        return OAuthError("invalid_client", description, status=401, headers=headers)

    def _refresh_grant(self, request: Request, client: OAuthClient) -> TokenSet:
        """``grant_type=refresh_token`` (RFC 6749 section 6): the current refresh token of a
        live grant of this client's, for at most the grant's scope."""
        presented = given(request, "refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is missing")
        with self.lock:
            grant = self._refresh.get(presented)
            if grant is None or grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown refresh token")
            username = grant.account.username
            if grant.revoked:
                self.refused[username] += 1
                raise OAuthError("invalid_grant", "the grant was revoked")
            if presented != grant.refresh_token:
                self.refused[username] += 1
                self.reuses[username] += 1
                if self.revoke_on_reuse:
                    grant.revoked = True
                raise OAuthError("invalid_grant", "the refresh token was used already")
            asked = given(request, "scope")
            scope = tuple(asked.split()) if asked else grant.scope
            if not set(scope) <= set(grant.scope):
                raise OAuthError("invalid_scope", "more scope than the grant gave")
            tokens = self.tokens(grant, scope, from_refresh=True)
            self.refreshes[username] += 1
            self.rotations.append(
                Rotation(
                    username,
                    grant.id,
                    presented,
                    tokens.refresh_token,
                    clock.now(),
                    request.received,
                    time.monotonic(),
                )
            )
        self._run_hook(Phase.ROTATED, username)
        return tokens

    def new_grant(self, account: FakeOAuthAccount, client_id: str, scope: tuple[str, ...]) -> Grant:
        """A new grant of ``account``'s to ``client_id`` (under the lock), no token yet."""
        grant = Grant(next(self._ids), account, client_id, scope, None)
        self.grants.append(grant)
        return grant

    def tokens(self, grant: Grant, scope: tuple[str, ...], *, from_refresh: bool) -> TokenSet:
        """New tokens of ``grant`` (under the lock): an access token, and a refresh token that
        replaces the grant's (unless refresh tokens are not single use and it has one, or the
        platform issues none)."""
        access = f"fo-at-{secrets.token_urlsafe(24)}"
        lifetime = self.access_token_lifetime
        expires_at = clock.now() + lifetime if lifetime is not None else None
        self._access[access] = AccessToken(grant, expires_at, scope, from_refresh)
        refresh: str | None = None
        if self.refresh_tokens and (self.single_use_refresh_tokens or grant.refresh_token is None):
            refresh = f"fo-rt-{secrets.token_urlsafe(24)}"
            grant.refresh_token = refresh
            self._refresh[refresh] = grant
        expires_in = int(lifetime.total_seconds()) if lifetime is not None else None
        return TokenSet(access, refresh, expires_in, scope)

    def _run_hook(self, phase: Phase, username: str) -> None:
        with self.lock:
            hook = self._hooks.get(phase)
        if hook is not None:
            hook(username)

    # -- revocation (RFC 7009) ---------------------------------------------------

    @route("POST", REVOKE_PATH)
    def revoke_endpoint(self, request: Request) -> Answer:
        """``POST /oauth/revoke``: the client authenticated as at the token endpoint; an
        access or refresh token of its own ends its grant; an unknown token is 200 too."""
        try:
            check_form(request)
            client = self.authenticate_client(request)
            token = given(request, "token")
            if not token:
                raise OAuthError("invalid_request", "token is missing")
            hint = given(request, "token_type_hint")
            with self.lock:
                found = self._find_token(token, hint)
                grant = found[1] if found is not None else None
                if grant is not None and grant.client_id != client.client_id:
                    raise OAuthError("invalid_grant", "the token was issued to another client")
                if grant is not None:
                    grant.revoked = True
                self.revocations.append(
                    Revocation(
                        client.client_id,
                        hint,
                        found[0] if found is not None else None,
                        grant.account.username if grant is not None else None,
                        grant.id if grant is not None else None,
                        clock.now(),
                    )
                )
        except OAuthError as error:
            return error.response()
        return FakeResponse(200, b"", dict(NO_STORE))

    def _find_token(self, token: str, hint: str | None) -> tuple[TokenKind, Grant] | None:
        """The token's kind and grant, looked up where the hint says first and then
        everywhere (RFC 7009 section 2.1: the hint only speeds the search up)."""
        issued = self._access.get(token)
        refreshed = self._refresh.get(token)
        found: list[tuple[TokenKind, Grant]] = []
        if issued is not None:
            found.append(("access_token", issued.grant))
        if refreshed is not None:
            found.append(("refresh_token", refreshed))
        found.sort(key=lambda pair: pair[0] != hint)
        return found[0] if found else None

    # -- the API ---------------------------------------------------------------

    def authenticate(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The bearer token's account (RFC 6750), or 401 ``invalid_token``."""
        token = bearer(request)
        first_use = False
        with self.lock:
            issued = self._access.get(token or "")
            live = issued is not None and issued.live(clock.now())
            if issued is not None and live and issued.from_refresh:
                first_use = token not in self._used
                self._used.add(token or "")
        if issued is None or not live:
            return FakeResponse(
                401,
                {"error": "invalid_token", "error_description": "the access token is not valid"},
                {"WWW-Authenticate": 'Bearer realm="fake-oauth", error="invalid_token"'},
            )
        account = issued.grant.account
        if first_use:
            self._run_hook(Phase.FIRST_USE, account.username)
        return account

    def access_token(self, request: Request) -> AccessToken | None:
        """The live access token a request carries, if any (for APIs that check its scope)."""
        with self.lock:
            issued = self._access.get(bearer(request) or "")
            return issued if issued is not None and issued.live(clock.now()) else None


def bearer(request: Request) -> str | None:
    """The token of a request's ``Authorization: Bearer`` header (RFC 6750), if any."""
    header = request.header("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
