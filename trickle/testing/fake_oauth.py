"""A made-up OAuth 2 platform on 127.0.0.1: an authorization server and the API it guards.

Tests of everything that renews credentials run against it: the session's
refresh, save and retry, the worker's saver, and the simulated week of
``tests/test_refresh_week.py``. It keeps to RFC 6749 where a client can tell:

- **The token endpoint**, ``POST /oauth/token`` (section 3.2): a form body,
  the grant type dispatched through :attr:`FakeOAuth.grant_types` (only
  ``refresh_token``, section 6, for now; an authorization-code grant with
  PKCE or a device grant is one more entry there, with its own endpoint),
  the client authenticated as section 2.3.1 says, by ``client_secret_basic``
  (HTTP Basic, id and secret form-urlencoded) or ``client_secret_post``
  (form fields), one method per request and the one the client registered.
  Answers are section 5.1's (``access_token``, ``token_type``,
  ``expires_in``, ``refresh_token``, ``scope``; ``Cache-Control: no-store``)
  and section 5.2's errors (``error``, ``error_description``; 401 and
  ``WWW-Authenticate`` for a client that failed HTTP Basic).
- **Single-use refresh tokens**: a refresh rotates the grant's refresh token;
  presenting one already used is ``invalid_grant`` and, as RFC 9700 section
  4.14.2 recommends, revokes the whole grant (``revoke_on_reuse``).
- **Expiring access tokens**, bearer tokens (RFC 6750) valid for
  ``access_token_lifetime`` on trickle's clock (an hour unless told), so a test
  that moves :data:`~trickle.core.clock.clock` moves their expiry too; an
  expired, revoked or unknown one is 401 with ``WWW-Authenticate: Bearer
  error="invalid_token"``.
- **The API**: ``GET /api/me`` (who the token belongs to) and ``GET
  /api/likes`` (the account's likes, newest first, ``limit`` per page and an
  opaque ``cursor`` to the next page, ``next_cursor`` in the body).

Tests stage the rest: :meth:`FakeOAuth.add_account` and :meth:`FakeOAuth.like`,
:meth:`FakeOAuth.issue` for an account's first tokens (what a completed
authorization hands out), :meth:`FakeOAuth.revoke`,
:meth:`FakeOAuth.expire_access_tokens`, and read :attr:`FakeOAuth.refreshes`,
:attr:`FakeOAuth.rotations` and :meth:`FakeOAuth.accepts`. A test may also
stop a request at a :class:`Phase` (:meth:`FakeOAuth.hook`): the week's
trials kill the worker while the platform holds a request there.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal
from urllib.parse import unquote_plus

from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.testing.fakeplatform import Answer, FakePlatform, FakeResponse, Request, route

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
ME_PATH = "/api/me"
LIKES_PATH = "/api/likes"
DEFAULT_LIFETIME = timedelta(hours=1)
MAX_PAGE = 100
DEFAULT_PAGE = 20
RATE_LIMITED = 429

ClientAuthMethod = Literal["client_secret_basic", "client_secret_post"]


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
            {**_NO_STORE, **self.headers},
        )


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


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
    """An application registered with the platform: its id, its secret and how it
    authenticates at the token endpoint (RFC 7591's ``token_endpoint_auth_method``)."""

    client_id: str
    client_secret: str
    auth_method: ClientAuthMethod = "client_secret_post"


@dataclass(frozen=True)
class FakeLike:
    """One like: an item of someone else's, when it was liked."""

    item_id: str
    liked_at: datetime
    author_id: str
    author_name: str


@dataclass
class FakeOAuthAccount:
    """A user of the platform: their likes newest first, and what tests made of them."""

    id: str
    username: str
    likes: list[FakeLike] = field(default_factory=list)
    rate_limited_until: datetime | None = None
    rewrite: Callable[[Request, FakeResponse], Answer] | None = None


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
    """An issued access token: whose grant, until when, and whether a refresh issued it."""

    grant: Grant
    expires_at: datetime
    scope: tuple[str, ...]
    from_refresh: bool


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint hands out (RFC 6749 section 5.1)."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: tuple[str, ...]
    token_type: str = "Bearer"  # noqa: S105 - the token type, not a token

    def to_json(self) -> dict[str, object]:
        """The token endpoint's JSON answer."""
        body: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": " ".join(self.scope),
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body

    def credentials(self) -> Credentials:
        """These tokens as trickle stores them, expiring ``expires_in`` from now on trickle's
        clock (as a connector reading this answer would)."""
        return Credentials(
            access_token=self.access_token,
            refresh_token=self.refresh_token,
            expires_at=clock.now() + timedelta(seconds=self.expires_in),
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


class FakeOAuth(FakePlatform):
    """An OAuth 2 authorization server and API on 127.0.0.1 (see the module)."""

    scope: tuple[str, ...] = ("likes:read", "profile")
    """What a grant is for, unless :meth:`issue` says otherwise."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        access_token_lifetime: timedelta = DEFAULT_LIFETIME,
        single_use_refresh_tokens: bool = True,
        revoke_on_reuse: bool = True,
    ) -> None:
        super().__init__(latency=latency)
        self.access_token_lifetime = access_token_lifetime
        self.single_use_refresh_tokens = single_use_refresh_tokens
        """False: a refresh answers no new refresh token and the old one stays valid."""
        self.revoke_on_reuse = revoke_on_reuse
        self.clients: dict[str, OAuthClient] = {}
        self.accounts: dict[str, FakeOAuthAccount] = {}  # by username
        self.grants: list[Grant] = []
        self.refreshes: Counter[str] = Counter()
        """Refreshes carried out, per username."""
        self.refused: Counter[str] = Counter()
        """Token requests answered ``invalid_grant``, per username."""
        self.reuses: Counter[str] = Counter()
        """Spent refresh tokens presented again, per username."""
        self.rotations: list[Rotation] = []
        self.grant_types: dict[str, Callable[[Request, OAuthClient], TokenSet]] = {
            "refresh_token": self._refresh_grant,
        }
        """The grant types the token endpoint serves (RFC 6749's ``grant_type``), each a
        handler of an authenticated client's request."""
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, Grant] = {}  # every refresh token ever issued: spent ones too
        self._used: set[str] = set()  # access tokens from refreshes that were used already
        self._hooks: dict[Phase, Hook] = {}
        self._ids = itertools.count(1)

    # -- setting the scene ---------------------------------------------------

    def register_client(
        self,
        client_id: str,
        client_secret: str,
        auth_method: ClientAuthMethod = "client_secret_post",
    ) -> OAuthClient:
        """Register an application that authenticates at the token endpoint as ``auth_method``."""
        client = OAuthClient(client_id, client_secret, auth_method)
        with self.lock:
            self.clients[client_id] = client
        return client

    def add_account(self, username: str) -> FakeOAuthAccount:
        """Create a user with no likes and no grant yet."""
        with self.lock:
            account = FakeOAuthAccount(id=f"u{next(self._ids)}", username=username)
            self.accounts[username] = account
            return account

    def like(
        self, username: str, item_id: str, *, at: datetime | None = None, author: str = "maker"
    ) -> FakeLike:
        """``username`` likes ``item_id`` by ``author`` at ``at`` (default: now on trickle's
        clock); the list stays newest first, a like at the same time goes first."""
        when = (at or clock.now()).astimezone(UTC)
        like = FakeLike(item_id, when, f"a-{author}", author)
        with self.lock:
            account = self.accounts[username]
            likes = [kept for kept in account.likes if kept.item_id != item_id]
            place = next((i for i, kept in enumerate(likes) if kept.liked_at <= when), len(likes))
            likes.insert(place, like)
            account.likes = likes
        return like

    def issue(
        self, username: str, client_id: str, *, scope: tuple[str, ...] | None = None
    ) -> TokenSet:
        """A new grant of ``username``'s to ``client_id`` and its first tokens, as a completed
        authorization (and its code exchanged) would hand out."""
        with self.lock:
            if client_id not in self.clients:
                raise KeyError(f"no client {client_id!r} is registered")
            account = self.accounts[username]
            grant = Grant(next(self._ids), account, client_id, scope or self.scope, None)
            self.grants.append(grant)
            return self._tokens(grant, grant.scope, from_refresh=False)

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
                if issued.grant.account.username == username and issued.expires_at > now:
                    self._access[token] = AccessToken(
                        issued.grant, now, issued.scope, issued.from_refresh
                    )

    def rate_limit(self, username: str, until: datetime) -> None:
        """The user's API requests answer 429 with ``Retry-After`` until ``until``."""
        with self.lock:
            self.accounts[username].rate_limited_until = until

    def tamper(
        self, username: str, rewrite: Callable[[Request, FakeResponse], Answer] | None
    ) -> None:
        """Pass every answer to the user's authenticated API requests through ``rewrite``
        (None stops it): malformed or hostile payloads."""
        with self.lock:
            self.accounts[username].rewrite = rewrite

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
            now = clock.now()
            issued = self._access.get(credentials.access_token or "")
            if issued is not None and not issued.grant.revoked and issued.expires_at > now:
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
            issued = self._access.get(_bearer(request) or "")
            return issued.grant.account.username if issued is not None else None

    # -- the authorization server -----------------------------------------------

    @route("POST", TOKEN_PATH)
    def token(self, request: Request) -> Answer:
        """``POST /oauth/token``: authenticate the client, then serve its grant type."""
        try:
            if not request.is_form:
                raise OAuthError(
                    "invalid_request", "the body must be application/x-www-form-urlencoded"
                )
            repeated = sorted(name for name, values in request.form.items() if len(values) > 1)
            if repeated:
                raise OAuthError("invalid_request", f"parameter {repeated[0]} is repeated")
            client = self._authenticate_client(request)
            grant_type = request.field("grant_type")
            if not grant_type:
                raise OAuthError("invalid_request", "grant_type is missing")
            serve = self.grant_types.get(grant_type)
            if serve is None:
                raise OAuthError("unsupported_grant_type", f"{grant_type} is not supported")
            tokens = serve(request, client)
        except OAuthError as error:
            return error.response()
        return FakeResponse(200, tokens.to_json(), dict(_NO_STORE))

    def _authenticate_client(self, request: Request) -> OAuthClient:
        """The client, by HTTP Basic or by form fields (RFC 6749 section 2.3.1): one method,
        the one it registered, with its secret."""
        header = request.header("Authorization") or ""
        basic = header[:6].lower() == "basic "
        in_form = request.field("client_secret") is not None
        if basic and in_form:
            raise OAuthError("invalid_request", "more than one client authentication method")
        if basic:
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
                raw_id, raw_secret = decoded.split(":", 1)
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise self._client_refused("malformed Basic credentials", basic=True) from None
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            method: ClientAuthMethod = "client_secret_basic"
        elif in_form:
            client_id = request.field("client_id") or ""
            secret = request.field("client_secret") or ""
            method = "client_secret_post"
        else:
            raise self._client_refused("no client authentication", basic=False)
        with self.lock:
            client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(
            secret.encode(), client.client_secret.encode()
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
        presented = request.field("refresh_token")
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
            asked = request.field("scope")
            scope = tuple(asked.split()) if asked else grant.scope
            if not set(scope) <= set(grant.scope):
                raise OAuthError("invalid_scope", "more scope than the grant gave")
            tokens = self._tokens(grant, scope, from_refresh=True)
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

    def _tokens(self, grant: Grant, scope: tuple[str, ...], *, from_refresh: bool) -> TokenSet:
        """New tokens of ``grant`` (under the lock): an access token, and a refresh token that
        replaces the grant's (unless refresh tokens are not single use and it has one)."""
        access = f"fo-at-{secrets.token_urlsafe(24)}"
        lifetime = self.access_token_lifetime
        self._access[access] = AccessToken(grant, clock.now() + lifetime, scope, from_refresh)
        refresh: str | None = None
        if self.single_use_refresh_tokens or grant.refresh_token is None:
            refresh = f"fo-rt-{secrets.token_urlsafe(24)}"
            grant.refresh_token = refresh
            self._refresh[refresh] = grant
        return TokenSet(access, refresh, int(lifetime.total_seconds()), scope)

    def _run_hook(self, phase: Phase, username: str) -> None:
        with self.lock:
            hook = self._hooks.get(phase)
        if hook is not None:
            hook(username)

    # -- the API ---------------------------------------------------------------

    def _authenticate(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        token = _bearer(request)
        first_use = False
        with self.lock:
            issued = self._access.get(token or "")
            live = (
                issued is not None and not issued.grant.revoked and issued.expires_at > clock.now()
            )
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
        until = account.rate_limited_until
        now = clock.now()
        if until is not None and until > now:
            wait = max(1, int((until - now).total_seconds() + 0.999))
            return FakeResponse(
                RATE_LIMITED,
                {"error": "rate_limited", "error_description": "too many requests"},
                {"Retry-After": str(wait)},
            )
        return account

    def _answer(
        self, account: FakeOAuthAccount, request: Request, response: FakeResponse
    ) -> Answer:
        rewrite = account.rewrite
        return rewrite(request, response) if rewrite is not None else response

    @route("GET", ME_PATH)
    def me(self, request: Request) -> Answer:
        """``GET /api/me``: who the access token belongs to."""
        account = self._authenticate(request)
        if isinstance(account, FakeResponse):
            return account
        body = {"id": account.id, "username": account.username}
        return self._answer(account, request, FakeResponse(200, body))

    @route("GET", LIKES_PATH)
    def likes(self, request: Request) -> Answer:
        """``GET /api/likes?limit=N&cursor=C``: likes newest first, ``next_cursor`` to the
        next page (null on the last)."""
        account = self._authenticate(request)
        if isinstance(account, FakeResponse):
            return account
        try:
            limit = min(MAX_PAGE, max(1, int(request.query.get("limit", DEFAULT_PAGE))))
            start = int(request.query.get("cursor", "0"))
        except ValueError:
            return FakeResponse(400, {"error": "invalid_request", "error_description": "bad page"})
        with self.lock:
            likes = list(account.likes)
        page = likes[start : start + limit]
        after = start + limit
        body = {
            "likes": [
                {
                    "id": like.item_id,
                    "liked_at": like.liked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "author": {"id": like.author_id, "name": like.author_name},
                }
                for like in page
            ],
            "next_cursor": str(after) if after < len(likes) else None,
        }
        return self._answer(account, request, FakeResponse(200, body))


def _bearer(request: Request) -> str | None:
    header = request.header("Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
