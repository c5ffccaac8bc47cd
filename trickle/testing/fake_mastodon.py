"""A Mastodon-like server on 127.0.0.1: apps registered by anyone, then OAuth 2 on the server.

Each :class:`FakeMastodon` is one server of a platform of many (its
``base_url`` is the account's host); a test of several servers starts
several. It is the :class:`~trickle.testing.fake_authorize.FakeAuthorizationServer`
(authorization endpoint, code grant with PKCE, revocation) with what
Mastodon adds and answers, as its API documentation says:

- ``POST /api/v1/apps`` (a form or JSON): ``client_name``, ``redirect_uris``
  (a string of URIs separated by white space, or an array), ``scopes`` (a
  string, ``read`` unless given), ``website``. The answer is Mastodon's
  Application with its credentials (``id``, ``name``, ``website``,
  ``scopes``, ``redirect_uri``, ``redirect_uris``, ``client_id``,
  ``client_secret``, ``client_secret_expires_at``, ``vapid_key``); a refusal
  is 422 ``{"error": "Validation failed: ..."}``. Apps authenticate with
  ``client_secret_post``. :attr:`FakeMastodon.registrations` counts them.
- The ``client_credentials`` grant (an app's own token, no user), which is
  how a client learns whether the server still knows its app; after
  :meth:`FakeMastodon.forget_clients` (what the servers' vacuum did to apps
  before Mastodon 4.3) every app registered so far is ``invalid_client``.
- Mastodon's scopes (``read`` covers ``read:favourites``); ``read`` when none
  is asked; PKCE accepted (S256) but not required (``require_pkce=False``);
  access tokens that never expire and no refresh tokens.
- ``GET /api/v1/accounts/verify_credentials`` (the token's Account:
  ``id``, ``username``, ``acct``, ``url``, ``uri``...; it needs
  ``read:accounts`` or ``profile``) and ``GET /api/v1/favourites`` (Statuses
  the account favourited, newest first, ``limit`` up to 40, the next page in
  the ``Link`` header; it needs ``read:favourites``). A token lacking the
  scope is 403, an app's own token 422, as Mastodon answers them.

Accounts and favourites are staged as on every fake (``add_account``,
``like``: the item is a status of the author's on this server).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Unpack
from urllib.parse import urlsplit

from trickle.testing.fake_authorize import AuthorizeOptions, FakeAuthorizationServer
from trickle.testing.fake_likes import FakeLike, FakeOAuthAccount
from trickle.testing.fake_oauth import OAuthClient, OAuthError, TokenSet, bearer, given
from trickle.testing.fake_pages import with_query
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

APPS_PATH = "/api/v1/apps"
VERIFY_CREDENTIALS_PATH = "/api/v1/accounts/verify_credentials"
FAVOURITES_PATH = "/api/v1/favourites"
MASTODON_SCOPES = (
    "read",
    "write",
    "push",
    "profile",
    "read:accounts",
    "read:favourites",
    "read:statuses",
    "write:favourites",
    "write:statuses",
)
MAX_NAME = 60
MAX_FAVOURITES = 40
DEFAULT_FAVOURITES = 20


@dataclass
class MastodonApp:
    """An application registered through ``POST /api/v1/apps``."""

    id: str
    name: str
    website: str | None
    client_id: str
    scopes: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    forgotten: bool = False


class AppRefused(Exception):
    """A registration Mastodon would refuse: its 422 answer."""

    def response(self) -> FakeResponse:
        """``422 {"error": "Validation failed: ..."}``."""
        return FakeResponse(422, {"error": f"Validation failed: {self}"})


class FakeMastodon(FakeAuthorizationServer):
    """One server of a Mastodon-like platform (see the module)."""

    scope = ("read",)
    """Mastodon's scope when none is asked for."""

    def __init__(self, **options: Unpack[AuthorizeOptions]) -> None:
        options.setdefault("require_pkce", False)
        options.setdefault("access_token_lifetime", None)
        options.setdefault("refresh_tokens", False)
        super().__init__(**options)
        self.apps: list[MastodonApp] = []
        """Every app registered through the API, forgotten ones too."""
        self.registrations = 0
        self.grant_types["client_credentials"] = self._client_credentials_grant
        self._app_tokens: dict[str, str] = {}  # an app's own token -> its client id

    @property
    def offered_scopes(self) -> tuple[str, ...]:
        """Mastodon's scopes."""
        return MASTODON_SCOPES

    def covers(self, granted: Iterable[str], scope: str) -> bool:
        """Mastodon's rule: a scope covers itself, and ``read`` covers every ``read:...``."""
        kept = set(granted)
        return scope in kept or (":" in scope and scope.split(":", 1)[0] in kept)

    # -- what tests do --------------------------------------------------------------

    def forget_clients(self) -> list[MastodonApp]:
        """The server forgets every app registered so far (and their tokens end): their
        credentials are ``invalid_client`` from now on."""
        with self.lock:
            forgotten = [app for app in self.apps if not app.forgotten]
            ids = {app.client_id for app in forgotten}
            for app in forgotten:
                app.forgotten = True
                self.clients.pop(app.client_id, None)
            for grant in self.grants:
                if grant.client_id in ids:
                    grant.revoked = True
            for token, client_id in list(self._app_tokens.items()):
                if client_id in ids:
                    del self._app_tokens[token]
            return forgotten

    # -- registering apps -------------------------------------------------------------

    @route("POST", APPS_PATH)
    def register_app(self, request: Request) -> Answer:
        """``POST /api/v1/apps``: register an application, answer it with its credentials."""
        try:
            fields = _app_fields(request)
            name = _text(fields, "client_name", required=True)
            if len(name) > MAX_NAME:
                raise AppRefused(f"Application name is too long (at most {MAX_NAME})")
            uris = _redirect_uris(fields.get("redirect_uris"))
            scopes = tuple((_text(fields, "scopes") or "read").split())
            unknown = [s for s in scopes if s not in MASTODON_SCOPES]
            if unknown or not scopes:
                raise AppRefused(f"Scopes are invalid: {' '.join(unknown)}")
            website = _text(fields, "website") or None
        except AppRefused as refused:
            return refused.response()
        client_id = secrets.token_urlsafe(32)
        secret = secrets.token_urlsafe(32)
        self.register_client(
            client_id, secret, "client_secret_post", redirect_uris=uris, scopes=scopes
        )
        with self.lock:
            self.registrations += 1
            app = MastodonApp(str(next(self._ids)), name, website, client_id, scopes, uris)
            self.apps.append(app)
        body = {
            "id": app.id,
            "name": name,
            "website": website,
            "scopes": list(scopes),
            "redirect_uri": "\n".join(uris),
            "redirect_uris": list(uris),
            "vapid_key": "BFake-vapid-key-" + client_id[:16],
            "client_id": client_id,
            "client_secret": secret,
            "client_secret_expires_at": 0,
        }
        return FakeResponse(200, body, {"Cache-Control": "no-store"})

    def _client_credentials_grant(self, request: Request, client: OAuthClient) -> TokenSet:
        """``grant_type=client_credentials`` (RFC 6749 section 4.4): the app's own token."""
        if client.public:
            raise OAuthError("unauthorized_client", "a public client has no credentials")
        scope = self.requested_scope(client, given(request, "scope"))
        token = f"fm-app-{secrets.token_urlsafe(24)}"
        with self.lock:
            self._app_tokens[token] = client.client_id
        return TokenSet(token, None, None, scope)

    # -- the API ------------------------------------------------------------------------

    def _scoped(self, request: Request, needs: tuple[str, ...]) -> FakeOAuthAccount | FakeResponse:
        """The account of a user's token that has one of the scopes ``needs``."""
        with self.lock:
            if bearer(request) in self._app_tokens:
                return FakeResponse(422, {"error": "This method requires an authenticated user"})
        account = self.api_account(request)
        if isinstance(account, FakeResponse):
            return account
        issued = self.access_token(request)
        if issued is None or not any(self.covers(issued.scope, scope) for scope in needs):
            return FakeResponse(403, {"error": "This action is outside the authorized scopes"})
        return account

    @route("GET", VERIFY_CREDENTIALS_PATH)
    def verify_credentials(self, request: Request) -> Answer:
        """``GET /api/v1/accounts/verify_credentials``: the token's account."""
        account = self._scoped(request, ("read:accounts", "profile"))
        if isinstance(account, FakeResponse):
            return account
        body = self._account_json(account.id, account.username)
        return self.answer(account, request, FakeResponse(200, body))

    @route("GET", FAVOURITES_PATH)
    def favourites(self, request: Request) -> Answer:
        """``GET /api/v1/favourites?limit=N&max_id=C``: favourited statuses newest first, the
        next page in the ``Link`` header."""
        account = self._scoped(request, ("read:favourites",))
        if isinstance(account, FakeResponse):
            return account
        try:
            limit = int(request.query.get("limit", DEFAULT_FAVOURITES))
            start = int(request.query.get("max_id", "0"))
        except ValueError:
            return FakeResponse(422, {"error": "Validation failed: limit or max_id"})
        limit = min(MAX_FAVOURITES, max(1, limit))
        with self.lock:
            likes = list(account.likes)
        page = likes[start : start + limit]
        headers: dict[str, str] = {}
        if start + limit < len(likes):
            after = {"limit": str(limit), "max_id": str(start + limit)}
            headers["Link"] = f'<{with_query(self.base_url + FAVOURITES_PATH, after)}>; rel="next"'
        body = [self._status_json(like) for like in page]
        return self.answer(account, request, FakeResponse(200, body, headers))

    def _account_json(self, account_id: str, username: str) -> dict[str, Any]:
        base = self.base_url
        return {
            "id": account_id,
            "username": username,
            "acct": username,
            "display_name": username,
            "locked": False,
            "bot": False,
            "url": f"{base}/@{username}",
            "uri": f"{base}/users/{username}",
            "created_at": "2024-01-01T00:00:00.000Z",
        }

    def _status_json(self, like: FakeLike) -> dict[str, Any]:
        base, author = self.base_url, like.author_name
        return {
            "id": like.item_id,
            "uri": f"{base}/users/{author}/statuses/{like.item_id}",
            "url": f"{base}/@{author}/{like.item_id}",
            "created_at": like.liked_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "content": f"<p>a status of {author}'s</p>",
            "account": self._account_json(like.author_id, author),
        }


def _app_fields(request: Request) -> Mapping[str, Any]:
    """The registration's fields, from a form (``redirect_uris`` or ``redirect_uris[]`` may
    repeat) or a JSON object."""
    if request.is_form:
        fields: dict[str, Any] = {}
        for name, values in request.form.items():
            key = name.removesuffix("[]")
            fields[key] = values if name.endswith("[]") or len(values) > 1 else values[0]
        return fields
    kind = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = json.loads(request.body)
        except ValueError:
            raise AppRefused("the body is not JSON") from None
        if isinstance(body, dict):
            return body
    raise AppRefused("send a form or a JSON object")


def _text(fields: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise AppRefused(f"{name} can't be blank")
        return ""
    if not isinstance(value, str):
        raise AppRefused(f"{name} must be a string")
    return value


def _redirect_uris(value: Any) -> tuple[str, ...]:
    """The redirect URIs of a registration: a string of them or an array, each absolute and
    without a fragment (an out-of-band ``urn:`` is not served here)."""
    if isinstance(value, str):
        uris = value.split()
    elif isinstance(value, list) and all(isinstance(uri, str) for uri in value):
        uris = [uri for uri in value if uri]
    else:
        raise AppRefused("Redirect URI can't be blank")
    if not uris:
        raise AppRefused("Redirect URI can't be blank")
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or "#" in uri:
            raise AppRefused("Redirect URI must be an absolute URI.")
    return tuple(dict.fromkeys(uris))
