"""pnut.io and an App.net-compatible server on 127.0.0.1, for tests, the demo and benchmarks.

Each fake is trickle's :class:`~trickle.testing.fake_authorize.FakeAuthorizationServer`
(clients, the authorization endpoint, the code grant, revocable grants)
with what the platform's reference adds, on the platform's own paths:

- **The API** (:class:`FakeAdnServer`, shared): ``GET {root}/users/me`` and the user's list
  (``GET {root}/users/{user_id}/bookmarks`` on pnut.io, ``.../stars`` on App.net), the
  ``user_id`` a numeric id, ``me`` or ``@username``; every answer in the envelope
  ``{"meta": {"code", ...}, "data": ...}``, an error as ``meta.code`` and
  ``meta.error_message`` without ``data``. Lists are newest first and paged as the
  references say: ``count`` 1 to 200 (or -200 to -1, the oldest; anything else ignored, 20),
  ``before_id`` and ``since_id`` against each object's ``pagination_id`` (the bookmark's or
  the star's, which grows with the time it was made, unlike the post ids), and
  ``meta.more``, ``meta.min_id``, ``meta.max_id``. Every answer carries ``X-RateLimit-Limit``,
  ``-Remaining`` and ``-Reset`` (seconds until the window resets); a rate-limited token gets
  429 with ``Retry-After`` (and on pnut.io ``meta.retry_in``). ``DELETE {root}/token``
  deauthorizes the token it is sent with.
- **The server-side flow**: ``GET /oauth/authenticate`` (and ``/oauth/authorize``, which
  always asks) with ``client_id``, ``redirect_uri``, ``scope``, ``response_type=code`` and
  ``state``, no PKCE; the token endpoint answers the platform's own shape, the access token
  and the Token object (``{"access_token", "token": {...}}``, pnut.io adding ``user_id`` and
  ``username``) with no expiry and no refresh token. pnut.io's scopes are comma-delimited,
  App.net's space-separated.

Tests stage accounts (:meth:`FakeAdnServer.add_account`, numeric ids), posts
(:meth:`FakeAdnServer.post`), bookmarks or stars (:meth:`FakeAdnServer.save`), tokens
(:meth:`~trickle.testing.fake_oauth.FakeOAuth.issue` for a registered client), and from
trickle's shared fakes: ``revoke``, ``rate_limit`` and ``tamper``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from trickle.core.clock import clock
from trickle.testing.fake_authorize import FakeAuthorizationServer
from trickle.testing.fake_likes import FakeOAuthAccount
from trickle.testing.fake_oauth import Grant, OAuthClient, OAuthError, TokenSet, bearer
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

RATE_LIMIT = 5000
"""Authenticated GET requests per token and window (both references)."""
RATE_WINDOW_SECONDS = 3600
DEFAULT_COUNT = 20
MAX_COUNT = 200
ALPHA_CLIENT_ID = "udxGzAVBdXwGtkHmvswR5MbMEeVnq6n4"


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FakePost:
    """A post someone can bookmark or star; its author is the creator who gets paid."""

    id: int
    author: str
    """The author's username on the fake."""
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Saved:
    """One bookmark or star: its pagination id (growing with the time it was made), the post,
    and when."""

    pagination_id: int
    post: FakePost
    at: datetime


@dataclass
class _Lists:
    """What the fake keeps of one account beyond the shared fakes' account: its saved posts,
    newest first, and its use of the rate limit."""

    saved: list[Saved] = field(default_factory=list)
    used: int = 0


class FakeAdnServer(FakeAuthorizationServer, ABC):
    """What pnut.io and App.net share (see the module); a dialect names its paths and shapes."""

    api_root: ClassVar[str]
    """Where the API's paths begin (``/v1``, ``/stream/0``)."""
    list_name: ClassVar[str]
    """The list's name in paths and messages (``bookmarks``, ``stars``)."""
    scope: tuple[str, ...] = (
        "basic",
        "stream",
        "write_post",
        "follow",
        "update_profile",
        "messages",
    )
    offers_retry_in: ClassVar[bool] = False

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(
            latency=latency, require_pkce=False, access_token_lifetime=None, refresh_tokens=False
        )
        self.posts: dict[int, FakePost] = {}
        self.deleted_users: set[str] = set()
        self._by_id: dict[str, FakeOAuthAccount] = {}
        self._lists: dict[str, _Lists] = {}
        self._user_ids = itertools.count(1001)
        self._post_ids = itertools.count(20001)
        self._token_grants: dict[str, Grant] = {}
        self._pagination_ids: set[int] = set()

    # -- setting the scene -----------------------------------------------------

    def add_account(self, username: str, *, user_id: int | None = None) -> FakeOAuthAccount:
        """Create a user (a numeric id, the next one unless given) with nothing saved."""
        with self.lock:
            number = user_id if user_id is not None else next(self._user_ids)
            account = FakeOAuthAccount(id=str(number), username=username)
            self.accounts[username] = account
            self._by_id[account.id] = account
            self._lists[username] = _Lists()
            return account

    def post(
        self, author: str, *, post_id: int | None = None, text: str = "", at: datetime | None = None
    ) -> FakePost:
        """``author`` (made a user here if they are not one) writes a post."""
        with self.lock:
            if author not in self.accounts:
                self.add_account(author)
            number = post_id if post_id is not None else next(self._post_ids)
            post = FakePost(number, author, text or f"post {number}", (at or clock.now()))
            self.posts[number] = post
            return post

    def save(self, username: str, post: FakePost, at: datetime | None = None) -> Saved:
        """``username`` bookmarks (stars) ``post`` at ``at`` (default: now on trickle's clock);
        saving it again moves it to the top with a new pagination id."""
        when = (at or clock.now()).astimezone(UTC)
        with self.lock:
            lists = self._lists[username]
            number = int(when.timestamp() * 1_000_000)
            while number in self._pagination_ids:
                number += 1
            self._pagination_ids.add(number)
            saved = Saved(number, post, when)
            kept = [s for s in lists.saved if s.post.id != post.id] + [saved]
            lists.saved = sorted(kept, key=lambda s: -s.pagination_id)
            return saved

    def save_many(self, username: str, saves: Iterable[tuple[FakePost, datetime | None]]) -> None:
        """Many :meth:`save` calls, in order."""
        for post, at in saves:
            self.save(username, post, at)

    def delete_user(self, username: str) -> None:
        """The user's account is gone: their posts come without ``user``."""
        with self.lock:
            self.deleted_users.add(username)

    def saved(self, username: str) -> list[Saved]:
        """The user's bookmarks (stars), newest first."""
        with self.lock:
            return list(self._lists[username].saved)

    # -- tokens -----------------------------------------------------------------

    def tokens(self, grant: Grant, scope: tuple[str, ...], *, from_refresh: bool) -> TokenSet:
        """New tokens of ``grant``, remembered by access token (for the Token object and for
        ``DELETE /token``)."""
        issued = super().tokens(grant, scope, from_refresh=from_refresh)
        self._token_grants[issued.access_token] = grant
        return issued

    def token_answer(self, grant: Grant, access_token: str) -> dict[str, Any]:
        """The token endpoint's successful answer (the dialect's shape)."""
        return {"access_token": access_token, "token": self.token_object(grant)}

    def token_object(self, grant: Grant) -> dict[str, Any]:
        """The Token object of a grant's token."""
        return {
            "app": {"id": grant.client_id, "name": grant.client_id, "url": "https://example.com"},
            "scopes": list(grant.scope),
            "user": self.user_json(grant.account),
        }

    def exchange(self, request: Request) -> Answer:
        """The token endpoint: the shared OAuth 2 one, its token answered in the platform's
        shape (an error as RFC 6749 says: the references follow it there)."""
        answer = self.token(request)
        if not isinstance(answer, FakeResponse) or answer.status != 200:
            return answer
        body = answer.body
        access = body["access_token"] if isinstance(body, dict) else None
        with self.lock:
            grant = self._token_grants.get(access or "")
        if grant is None or access is None:
            return answer
        return FakeResponse(200, self.token_answer(grant, access), dict(answer.headers))

    # -- the API's answers -------------------------------------------------------

    def envelope(
        self, code: int, data: Any = None, headers: dict[str, str] | None = None, **meta: Any
    ) -> FakeResponse:
        """``{"meta": {"code": ..., ...}, "data": ...}`` (no ``data`` for an error)."""
        body: dict[str, Any] = {"meta": {"code": code, **meta}}
        if data is not None or code < 400:
            body["data"] = data
        return FakeResponse(code, body, dict(headers or {}))

    def error(self, code: int, message: str, headers: dict[str, str] | None = None) -> FakeResponse:
        """An error answer: ``meta.code`` and ``meta.error_message``."""
        return self.envelope(code, None, headers, error_message=message)

    def api_user(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The token's user, once its token is good and not rate limited; else the answer."""
        token = bearer(request)
        with self.lock:
            grant = self._token_grants.get(token or "")
        if grant is None:
            return self.error(401, "Call requires authentication: Invalid token.")
        if grant.revoked:
            return self.error(401, "Call requires authentication: Token is not authorized.")
        account = grant.account
        until = account.rate_limited_until
        now = clock.now()
        if until is not None and until > now:
            wait = max(1, math.ceil((until - now).total_seconds()))
            meta = {"retry_in": wait} if self.offers_retry_in else {}
            headers = {"Retry-After": str(wait), **self._limit_headers(0, wait)}
            return self.envelope(429, None, headers, error_message="Too many requests.", **meta)
        return account

    def _limit_headers(self, remaining: int, reset: int | None = None) -> dict[str, str]:
        if reset is None:
            reset = RATE_WINDOW_SECONDS - int(clock.now().timestamp()) % RATE_WINDOW_SECONDS
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(reset),
        }

    def _counted(self, account: FakeOAuthAccount) -> dict[str, str]:
        with self.lock:
            lists = self._lists[account.username]
            lists.used += 1
            return self._limit_headers(RATE_LIMIT - lists.used)

    def lookup(self, user_id: str, me: FakeOAuthAccount) -> FakeOAuthAccount | None:
        """A user by numeric id, ``me`` or ``@username`` (usernames are not case-sensitive)."""
        with self.lock:
            if user_id == "me":
                return me
            if user_id.startswith("@"):
                wanted = user_id[1:].lower()
                return next(
                    (a for a in self.accounts.values() if a.username.lower() == wanted), None
                )
            return self._by_id.get(user_id)

    def serve_me(self, request: Request) -> Answer:
        """``GET {root}/users/me``."""
        account = self.api_user(request)
        if isinstance(account, FakeResponse):
            return account
        response = self.envelope(200, self.user_json(account), self._counted(account))
        return self.answer(account, request, response)

    def serve_list(self, request: Request) -> Answer:
        """``GET {root}/users/{user_id}/bookmarks`` (``/stars``): newest first, paged."""
        account = self.api_user(request)
        if isinstance(account, FakeResponse):
            return account
        headers = self._counted(account)
        owner = self.lookup(request.path_params.get("user_id", ""), account)
        if owner is None:
            return self.answer(account, request, self.error(404, "User not found.", headers))
        try:
            before = _pagination_param(request, "before_id")
            since = _pagination_param(request, "since_id")
        except ValueError as exc:
            return self.answer(account, request, self.error(400, str(exc), headers))
        count = _count(request.query.get("count"))
        with self.lock:
            matching = [
                s
                for s in self._lists[owner.username].saved
                if (before is None or s.pagination_id < before)
                and (since is None or s.pagination_id > since)
            ]
        page = matching[:count] if count > 0 else matching[count:]
        meta: dict[str, Any] = {"more": len(matching) > len(page)}
        if page:
            meta["min_id"] = str(page[-1].pagination_id)
            meta["max_id"] = str(page[0].pagination_id)
        data = [
            {
                **self.post_json(s.post, request, viewer=account),
                "pagination_id": str(s.pagination_id),
            }
            for s in page
        ]
        return self.answer(account, request, self.envelope(200, data, headers, **meta))

    def serve_delete_token(self, request: Request) -> Answer:
        """``DELETE {root}/token``: the token is deauthorized; the answer is its Token object."""
        account = self.api_user(request)
        if isinstance(account, FakeResponse):
            return account
        with self.lock:
            grant = self._token_grants[bearer(request) or ""]
            grant.revoked = True
        return self.envelope(200, self.token_object(grant), self._limit_headers(RATE_LIMIT))

    # -- the dialect's objects ----------------------------------------------------

    @abstractmethod
    def user_json(self, account: FakeOAuthAccount) -> dict[str, Any]:
        """A User object."""

    @abstractmethod
    def post_json(
        self, post: FakePost, request: Request, *, viewer: FakeOAuthAccount
    ) -> dict[str, Any]:
        """A Post object as ``viewer`` sees it."""

    def author(self, post: FakePost) -> FakeOAuthAccount | None:
        """The post's author, None when their account was deleted."""
        with self.lock:
            if post.author in self.deleted_users:
                return None
            return self.accounts[post.author]

    def you_saved(self, post: FakePost, viewer: FakeOAuthAccount) -> bool:
        with self.lock:
            return any(s.post.id == post.id for s in self._lists[viewer.username].saved)


def _pagination_param(request: Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 20:
        raise ValueError(f"{name} must be an id")
    return int(value)


def _count(value: str | None) -> int:
    """``count``: 1 to 200 or -200 to -1; anything else is ignored (the default, 20)."""
    try:
        number = int(value) if value is not None else DEFAULT_COUNT
    except ValueError:
        return DEFAULT_COUNT
    if number == 0 or abs(number) > MAX_COUNT:
        return DEFAULT_COUNT
    return number


def _flag(request: Request, name: str) -> bool:
    """A general parameter ``name`` (0 or 1), true unless sent as 0."""
    return request.query.get(name) != "0"


class FakePnut(FakeAdnServer):
    """pnut.io: ``/v1``, bookmarks, comma-delimited scopes, ``meta.retry_in``."""

    api_root = "/v1"
    list_name = "bookmarks"
    scope = (
        "basic",
        "stream",
        "write_post",
        "follow",
        "update_profile",
        "presence",
        "messages",
        "public_messages",
        "files",
        "polls",
        "email",
    )
    offers_retry_in = True

    @property
    def api_url(self) -> str:
        """The API root to give the connector as ``base_url`` (``.../v1``)."""
        return self.base_url + self.api_root

    def requested_scope(self, client: OAuthClient, asked: str | None) -> tuple[str, ...]:
        """pnut.io's ``scope`` is a comma-separated list."""
        if asked is not None:
            if " " in asked:
                raise OAuthError("invalid_scope", "scope is a comma-separated list")
            asked = " ".join(asked.split(","))
        return super().requested_scope(client, asked)

    def token_answer(self, grant: Grant, access_token: str) -> dict[str, Any]:
        """pnut.io adds the user's id and username to the token and its Token object."""
        return {
            **super().token_answer(grant, access_token),
            "user_id": grant.account.id,
            "username": grant.account.username,
        }

    def token_object(self, grant: Grant) -> dict[str, Any]:
        return {**super().token_object(grant), "storage": {"available": 0, "total": 0}}

    def user_json(self, account: FakeOAuthAccount) -> dict[str, Any]:
        """pnut.io's User object (the fields that matter and a few more)."""
        return {
            "created_at": "2017-01-08T14:43:21Z",
            "id": account.id,
            "locale": "en_US",
            "timezone": "America/Chicago",
            "type": "human",
            "username": account.username,
            "name": account.username.title(),
            "content": {
                "text": f"{account.username} on pnut",
                "entities": {"links": [], "mentions": [], "tags": []},
                "avatar_image": {
                    "is_default": True,
                    "height": 200,
                    "width": 200,
                    "url": f"https://pnut.io/@{account.username}/avatar",
                },
            },
        }

    def post_json(
        self, post: FakePost, request: Request, *, viewer: FakeOAuthAccount
    ) -> dict[str, Any]:
        """pnut.io's Post object; ``include_html=0`` and ``include_counts=0`` leave those out."""
        body: dict[str, Any] = {
            "created_at": _time(post.created_at),
            "id": str(post.id),
            "source": {"id": "3PFPMSet53RutGINA8e5HWqYg_UCDHad", "name": "Broadsword", "url": ""},
            "thread_id": str(post.id),
            "content": {
                "text": post.text,
                "entities": {"links": [], "mentions": [], "tags": []},
            },
            "you_bookmarked": self.you_saved(post, viewer),
            "you_reposted": False,
        }
        author = self.author(post)
        if author is not None:
            body["user"] = self.user_json(author)
        else:
            with self.lock:
                body["user_id"] = self.accounts[post.author].id
        if _flag(request, "include_html") and _flag(request, "include_post_html"):
            body["content"]["html"] = f"<span>{post.text}</span>"
        if _flag(request, "include_counts"):
            body["counts"] = {"bookmarks": 1, "replies": 0, "reposts": 0, "threads": 0}
        return body

    @route("GET", "/v1/users/me")
    def get_me(self, request: Request) -> Answer:
        """``GET /v1/users/me``."""
        return self.serve_me(request)

    @route("GET", "/v1/users/{user_id}/bookmarks")
    def get_bookmarks(self, request: Request) -> Answer:
        """``GET /v1/users/{user_id}/bookmarks``."""
        return self.serve_list(request)

    @route("DELETE", "/v1/token")
    def delete_token(self, request: Request) -> Answer:
        """``DELETE /v1/token``."""
        return self.serve_delete_token(request)

    @route("GET", "/oauth/authenticate")
    def authenticate_page(self, request: Request) -> Answer:
        """``GET https://pnut.io/oauth/authenticate``: the server-side flow's first step."""
        return self.authorize(request)

    @route("POST", "/v1/oauth/access_token")
    def access_token_endpoint(self, request: Request) -> Answer:
        """``POST https://api.pnut.io/v1/oauth/access_token``."""
        return self.exchange(request)


class FakeAppNet(FakeAdnServer):
    """An App.net-compatible server: ``/stream/0``, stars, space-separated scopes."""

    api_root = "/stream/0"
    list_name = "stars"

    def user_json(self, account: FakeOAuthAccount) -> dict[str, Any]:
        """App.net's User object (the fields that matter and a few more)."""
        return {
            "id": account.id,
            "username": account.username,
            "name": account.username.title(),
            "description": {
                "text": f"{account.username} on App.net",
                "html": f"<span>{account.username} on App.net</span>",
                "entities": {"mentions": [], "hashtags": [], "links": []},
            },
            "timezone": "US/Pacific",
            "locale": "en_US",
            "type": "human",
            "created_at": "2012-07-16T17:23:34Z",
            "counts": {"following": 0, "followers": 0, "posts": 0, "stars": 0},
        }

    def post_json(
        self, post: FakePost, request: Request, *, viewer: FakeOAuthAccount
    ) -> dict[str, Any]:
        """App.net's Post object."""
        body: dict[str, Any] = {
            "id": str(post.id),
            "created_at": _time(post.created_at),
            "text": post.text,
            "html": f"<span>{post.text}</span>",
            "source": {
                "client_id": "udxGzAVBdXwGtkHmvswR5MbMEeVnq6n4",
                "name": "Alpha",
                "link": "",
            },
            "machine_only": False,
            "reply_to": None,
            "thread_id": str(post.id),
            "canonical_url": f"{self.base_url}/{post.author}/post/{post.id}",
            "num_replies": 0,
            "num_reposts": 0,
            "num_stars": 1,
            "entities": {"mentions": [], "hashtags": [], "links": []},
            "you_reposted": False,
            "you_starred": self.you_saved(post, viewer),
        }
        author = self.author(post)
        if author is not None:
            body["user"] = self.user_json(author)
        return body

    @route("GET", "/stream/0/users/me")
    def get_me(self, request: Request) -> Answer:
        """``GET /stream/0/users/me``."""
        return self.serve_me(request)

    @route("GET", "/stream/0/users/{user_id}/stars")
    def get_stars(self, request: Request) -> Answer:
        """``GET /stream/0/users/{user_id}/stars``."""
        return self.serve_list(request)

    @route("DELETE", "/stream/0/token")
    def delete_token(self, request: Request) -> Answer:
        """``DELETE /stream/0/token``."""
        return self.serve_delete_token(request)

    @route("GET", "/oauth/authenticate")
    def authenticate_page(self, request: Request) -> Answer:
        """``GET /oauth/authenticate`` (``account.app.net``'s): the server-side flow."""
        return self.authorize(request)

    @route("POST", "/oauth/access_token")
    def access_token_endpoint(self, request: Request) -> Answer:
        """``POST /oauth/access_token``."""
        return self.exchange(request)
