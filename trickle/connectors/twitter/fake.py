"""A fake X on 127.0.0.1: the API v2 paths trickle reads, and X's OAuth 2.0 with PKCE.

:class:`FakeX` serves, on one origin (point both ``base_url`` and
``oauth_base_url`` at it), what the X API v2 reference and its OpenAPI
document (version 2.159) say of:

- ``GET /2/users/me``: ``{"data": {"id", "name", "username"}}``.
- ``GET /2/users/{id}/liked_tweets`` with ``max_results`` (10..100, default 100;
  anything else is a 400 ``invalid-request`` problem), ``pagination_token`` (an
  opaque base36 token naming the last like of the previous page, so paging
  stays right while new likes arrive), ``expansions=author_id``,
  ``tweet.fields`` and ``user.fields``: the user's likes, most recent first.
  Posts deleted after they were liked are left out of their page, which then
  holds fewer than ``max_results`` posts (or none: ``data`` is absent) and
  still names the next one; an author who is suspended is left out of
  ``includes.users`` and reported in ``errors`` beside the data. Likes are
  private: a token reads only its own user's (another id is a 200 with a
  ``not-authorized-for-resource`` problem, the fake's choice: X's exact answer
  is not documented), and needs ``like.read``.
- Rate limits: 75 requests per 15-minute window per user and endpoint, with
  ``x-rate-limit-limit``, ``x-rate-limit-remaining`` and ``x-rate-limit-reset``
  (Unix seconds) on every answer; over the limit, 429 with a problem body.
- Errors as problem details (``type``, ``title``, ``detail``, ``status``):
  401 for a token that is expired, revoked or unknown; 403 without the scopes.
- OAuth 2.0 (X's "OAuth 2.0 Authorization Code Flow with PKCE"): the consent page
  ``GET /i/oauth2/authorize`` (of ``x.com``), ``POST /2/oauth2/token`` (the code and
  refresh grants; a confidential client authenticates with HTTP Basic) and ``POST
  /2/oauth2/revoke``, by composing :class:`~trickle.testing.fake_authorize.
  FakeAuthorizationServer`: PKCE S256 required, codes good once, access tokens for two
  hours, and a refresh token only with ``offline.access``, replaced at every refresh
  (the one presented again is refused, and ends the grant).

Tests stage the rest: :meth:`FakeX.register_app`, :meth:`~FakeX.add_user`,
:meth:`~FakeX.post`, :meth:`~FakeX.like`, :meth:`~FakeX.delete_post`,
:meth:`~FakeX.suspend`, :meth:`~FakeX.issue`, :meth:`~FakeX.revoke`,
:meth:`~FakeX.expire_access_tokens`, :meth:`~FakeX.rate_limit`,
:meth:`~FakeX.tamper`, :meth:`~FakeX.make_unreadable`, and read :attr:`FakeX.oauth`
(the authorization server's records) and :attr:`FakeX.pages_served`.
"""

from __future__ import annotations

import itertools
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from trickle.connectors.twitter.connector import (
    LIKED_PATH,
    ME_PATH,
    PROBLEMS,
    SCOPES,
)
from trickle.core.clock import clock
from trickle.testing.fake_authorize import FakeAuthorizationServer
from trickle.testing.fake_oauth import Grant, TokenSet
from trickle.testing.fakeplatform import Answer, FakePlatform, FakeResponse, Request, route

AUTHORIZE_PATH = "/i/oauth2/authorize"
TOKEN_PATH = "/2/oauth2/token"  # noqa: S105 - a path, not a secret
REVOKE_PATH = "/2/oauth2/revoke"
ACCESS_TOKEN_LIFETIME = timedelta(hours=2)
WINDOW = timedelta(minutes=15)
REQUESTS_PER_WINDOW = 75
MIN_RESULTS, MAX_RESULTS, DEFAULT_RESULTS = 10, 100, 100
X_SCOPES = (
    "tweet.read", "tweet.write", "tweet.moderate.write", "users.read", "follows.read",
    "follows.write", "offline.access", "space.read", "mute.read", "mute.write", "like.read",
    "like.write", "list.read", "list.write", "block.read", "block.write", "bookmark.read",
    "bookmark.write", "dm.read", "dm.write", "media.write", "timeline.read",
)  # fmt: skip
"""The scopes X's OpenAPI document lists for OAuth 2.0 user tokens."""
READ_LIKES = ("tweet.read", "users.read", "like.read")
_BASE36 = string.digits + string.ascii_lowercase

Rewrite = Callable[[Request, FakeResponse], Answer]


def problem(status: int, title: str, detail: str, kind: str = "about:blank") -> dict[str, Any]:
    """An X problem details body (RFC 7807, as X's ``Problem`` schema has it)."""
    return {"title": title, "detail": detail, "type": kind, "status": status}


class XAuthorization(FakeAuthorizationServer):
    """The authorization server of :class:`FakeX`: X's scopes, ``bearer`` tokens for two
    hours, and refresh tokens only for grants that asked for ``offline.access``."""

    scope = SCOPES
    offered = X_SCOPES

    @property
    def offered_scopes(self) -> tuple[str, ...]:
        return self.offered

    def tokens(self, grant: Grant, scope: tuple[str, ...], *, from_refresh: bool) -> TokenSet:
        """New tokens of ``grant`` (under the lock), a refresh token only with
        ``offline.access``; X names the type ``bearer``."""
        kept = self.refresh_tokens
        self.refresh_tokens = kept and "offline.access" in grant.scope
        try:
            issued = super().tokens(grant, scope, from_refresh=from_refresh)
        finally:
            self.refresh_tokens = kept
        return replace(issued, token_type="bearer")  # noqa: S106 - the type, not a token


@dataclass(frozen=True)
class XPost:
    """A post: its id, author and text, and when it was posted."""

    id: str
    author: str
    """The author's username on the fake."""
    text: str
    created_at: datetime


@dataclass
class XUser:
    """A user of the fake X: their likes (post ids, most recent first) and what tests made
    of them."""

    id: str
    username: str
    name: str
    likes: list[tuple[str, datetime]] = field(default_factory=list)
    suspended: bool = False
    unreadable: bool = False
    rate_limited_until: datetime | None = None
    rewrite: Rewrite | None = None
    windows: dict[str, tuple[datetime, int]] = field(default_factory=dict)
    """Per endpoint: when the current rate-limit window ends, and requests made in it."""


class FakeX(FakePlatform):
    """X's API v2 and OAuth 2.0 on 127.0.0.1 (see the module)."""

    def __init__(
        self, *, latency: float = 0.0, access_token_lifetime: timedelta = ACCESS_TOKEN_LIFETIME
    ) -> None:
        super().__init__(latency=latency)
        self.oauth = XAuthorization(access_token_lifetime=access_token_lifetime)
        self.users: dict[str, XUser] = {}
        self.posts: dict[str, XPost] = {}
        self.deleted: set[str] = set()
        self.pages_served = 0
        """Pages of liked posts answered with status 200."""
        self._user_ids = itertools.count(1_480_000_000_000_000_000, 7_919)
        self._post_ids = itertools.count(1_860_000_000_000_000_000, 104_729)
        self._tokens: dict[str, tuple[str, str]] = {}  # pagination token: (username, post id)

    # -- setting the scene ---------------------------------------------------

    def register_app(
        self, client_id: str, client_secret: str, *, redirect_uris: tuple[str, ...]
    ) -> None:
        """Register trickle's app as a confidential client ("Web App, Automated App or Bot",
        authenticating with HTTP Basic) with its callback URLs."""
        self.oauth.register_client(
            client_id, client_secret, "client_secret_basic", redirect_uris=redirect_uris
        )

    def add_user(
        self, username: str, *, name: str | None = None, user_id: int | None = None
    ) -> XUser:
        """A user with no likes (and an account at the authorization server)."""
        with self.lock:
            user = XUser(
                str(user_id if user_id is not None else next(self._user_ids)),
                username,
                name or username.title(),
            )
            self.users[username] = user
        self.oauth.add_account(username)
        return user

    def post(self, author: str, text: str, *, at: datetime | None = None) -> XPost:
        """``author`` posts ``text``."""
        with self.lock:
            post = XPost(
                str(next(self._post_ids)), author, text, (at or clock.now()).astimezone(UTC)
            )
            self.posts[post.id] = post
        return post

    def like(self, username: str, post: XPost, *, at: datetime | None = None) -> None:
        """``username`` likes ``post`` at ``at`` (default now); the list stays most recent
        first, and liking a post again moves it to its new place."""
        when = (at or clock.now()).astimezone(UTC)
        with self.lock:
            self.posts.setdefault(post.id, post)
            user = self.users[username]
            likes = [kept for kept in user.likes if kept[0] != post.id]
            place = next((i for i, (_, t) in enumerate(likes) if t <= when), len(likes))
            likes.insert(place, (post.id, when))
            user.likes = likes

    def delete_post(self, post: XPost) -> None:
        """The post is deleted: it is left out of every page it would be on."""
        with self.lock:
            self.deleted.add(post.id)

    def suspend(self, username: str) -> None:
        """The user is suspended: left out of ``includes.users`` (an ``errors`` entry says
        so), and their own likes answer a 200 with a ``resource-unavailable`` problem."""
        with self.lock:
            self.users[username].suspended = True

    def make_unreadable(self, username: str) -> None:
        """The user's own requests answer 200 with ``errors`` and no ``data`` (as for a
        suspended account), whatever the endpoint."""
        with self.lock:
            self.users[username].unreadable = True

    def issue(self, username: str, client_id: str, scope: tuple[str, ...] = SCOPES) -> TokenSet:
        """Tokens of a completed authorization of ``client_id`` by ``username``."""
        return self.oauth.issue(username, client_id, scope=scope)

    def revoke(self, username: str) -> None:
        """The user revoked the app at X: every token of theirs is refused (401), and so is
        their refresh token."""
        self.oauth.revoke(username)

    def expire_access_tokens(self, username: str) -> None:
        """The user's access tokens expire now; their refresh token still renews them."""
        self.oauth.expire_access_tokens(username)

    def rate_limit(self, username: str, until: datetime) -> None:
        """The user's requests answer 429 (remaining 0, reset at ``until``) until then."""
        with self.lock:
            self.users[username].rate_limited_until = until

    def tamper(self, username: str, rewrite: Rewrite | None) -> None:
        """Pass every answer to the user's API requests through ``rewrite`` (None: stop)."""
        with self.lock:
            self.users[username].rewrite = rewrite

    # -- the OAuth 2.0 side --------------------------------------------------

    @route("GET", AUTHORIZE_PATH)
    def authorize(self, request: Request) -> Answer:
        """``GET https://x.com/i/oauth2/authorize``: the consent page's answer."""
        return self.oauth.authorize(request)

    @route("POST", TOKEN_PATH)
    def token(self, request: Request) -> Answer:
        """``POST /2/oauth2/token``: the authorization code and refresh token grants."""
        return self.oauth.token(request)

    @route("POST", REVOKE_PATH)
    def revoke_token(self, request: Request) -> Answer:
        """``POST /2/oauth2/revoke``."""
        return self.oauth.revoke_endpoint(request)

    # -- the API -------------------------------------------------------------

    def account_key(self, request: Request) -> str | None:
        """Requests are counted per user, by the access token they carry."""
        issued = self.oauth.access_token(request)
        return issued.grant.account.username if issued is not None else None

    def _caller(self, request: Request, endpoint: str) -> tuple[XUser, dict[str, str]] | Answer:
        """The user a request acts for and the rate-limit headers of its answer, or the
        answer refusing it (401, 429)."""
        issued = self.oauth.access_token(request)
        if issued is None:
            return FakeResponse(401, problem(401, "Unauthorized", "Unauthorized"))
        now = clock.now()
        with self.lock:
            user = self.users[issued.grant.account.username]
            if user.rate_limited_until is not None and user.rate_limited_until > now:
                return _too_many(user.rate_limited_until)
            ends, used = user.windows.get(endpoint, (now, 0))
            if ends <= now:
                ends, used = now + WINDOW, 0
            if used >= REQUESTS_PER_WINDOW:
                return _too_many(ends)
            used += 1
            user.windows[endpoint] = (ends, used)
            headers = {
                "x-rate-limit-limit": str(REQUESTS_PER_WINDOW),
                "x-rate-limit-remaining": str(REQUESTS_PER_WINDOW - used),
                "x-rate-limit-reset": str(int(ends.timestamp())),
            }
        if not set(READ_LIKES if endpoint == "likes" else READ_LIKES[:2]) <= set(issued.scope):
            return FakeResponse(403, problem(403, "Forbidden", "Forbidden"), headers)
        return user, headers

    def _answer(self, user: XUser, request: Request, response: FakeResponse) -> Answer:
        rewrite = user.rewrite
        return rewrite(request, response) if rewrite is not None else response

    @route("GET", ME_PATH)
    def me(self, request: Request) -> Answer:
        """``GET /2/users/me``."""
        caller = self._caller(request, "me")
        if not isinstance(caller, tuple):
            return caller
        user, headers = caller
        if user.unreadable:
            body: dict[str, Any] = {"errors": [_unavailable(user)]}
        else:
            body = {"data": {"id": user.id, "name": user.name, "username": user.username}}
        return self._answer(user, request, FakeResponse(200, body, headers))

    @route("GET", LIKED_PATH.replace("{platform_user_id}", "{id}"))
    def liked_tweets(self, request: Request) -> Answer:
        """``GET /2/users/{id}/liked_tweets``: one page of the user's likes."""
        caller = self._caller(request, "likes")
        if not isinstance(caller, tuple):
            return caller
        user, headers = caller
        asked = request.path_params["id"]
        if not asked.isdigit() or len(asked) > 19:
            return FakeResponse(400, _invalid("id", asked, "is not a valid user id"), headers)
        if user.unreadable or (asked == user.id and user.suspended):
            body: dict[str, Any] = {"errors": [_unavailable(user)]}
            return self._answer(user, request, FakeResponse(200, body, headers))
        if asked != user.id:
            body = {"errors": [_not_yours(asked)]}
            return self._answer(user, request, FakeResponse(200, body, headers))
        text = request.query.get("max_results", str(DEFAULT_RESULTS))
        if not text.isdigit() or not MIN_RESULTS <= int(text) <= MAX_RESULTS:
            return FakeResponse(
                400,
                _invalid(
                    "max_results",
                    text,
                    f"is not between {MIN_RESULTS} and {MAX_RESULTS}",
                ),
                headers,
            )
        with self.lock:
            likes = [post_id for post_id, _ in user.likes]
            start = 0
            token = request.query.get("pagination_token")
            if token is not None:
                after = self._tokens.get(token)
                if after is None or after[0] != user.username or after[1] not in likes:
                    return FakeResponse(
                        400, _invalid("pagination_token", token, "is not valid"), headers
                    )
                start = likes.index(after[1]) + 1
            chosen = likes[start : start + int(text)]
            body = self._page(
                user,
                chosen,
                more=start + int(text) < len(likes),
                fields=set(request.query.get("tweet.fields", "").split(",")),
                expand="author_id" in request.query.get("expansions", "").split(","),
            )
            self.pages_served += 1
        return self._answer(user, request, FakeResponse(200, body, headers))

    def _page(
        self, user: XUser, chosen: list[str], *, more: bool, fields: set[str], expand: bool
    ) -> dict[str, Any]:
        """The page body of ``chosen`` (under the lock): posts deleted since are left out;
        the ``tweet.fields`` asked for, and the authors when ``author_id`` is expanded."""
        posts = [self.posts[i] for i in chosen if i not in self.deleted]
        data = []
        for post in posts:
            item = {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}
            if "author_id" in fields:
                item["author_id"] = self.users[post.author].id
            if "created_at" in fields:
                item["created_at"] = post.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            data.append(item)
        authors = list(dict.fromkeys(post.author for post in posts)) if expand else []
        shown = [self.users[a] for a in authors if not self.users[a].suspended]
        hidden = [self.users[a] for a in authors if self.users[a].suspended]
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if shown:
            body["includes"] = {
                "users": [{"id": u.id, "name": u.name, "username": u.username} for u in shown]
            }
        if hidden:
            body["errors"] = [_hidden_author(u) for u in hidden]
        meta: dict[str, Any] = {"result_count": len(data)}
        if more and chosen:
            token = _base36_token()
            self._tokens[token] = (user.username, chosen[-1])
            meta["next_token"] = token
        body["meta"] = meta
        return body


def _too_many(reset: datetime) -> FakeResponse:
    return FakeResponse(
        429,
        problem(429, "Too Many Requests", "Too Many Requests"),
        {
            "x-rate-limit-limit": str(REQUESTS_PER_WINDOW),
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(reset.timestamp())),
        },
    )


def _invalid(parameter: str, value: str, why: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "parameters": {parameter: [value]},
                "message": f"The `{parameter}` query parameter value [{value}] {why}",
            }
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": PROBLEMS + "invalid-request",
    }


def _unavailable(user: XUser) -> dict[str, Any]:
    return {
        "value": user.id,
        "detail": f"User has been suspended: [{user.id}].",
        "title": "Forbidden",
        "resource_type": "user",
        "parameter": "id",
        "resource_id": user.id,
        "type": PROBLEMS + "resource-unavailable",
    }


def _not_yours(user_id: str) -> dict[str, Any]:
    return {
        "value": user_id,
        "detail": f"Sorry, you are not authorized to see the User with id: [{user_id}].",
        "title": "Authorization Error",
        "resource_type": "user",
        "parameter": "id",
        "resource_id": user_id,
        "section": "data",
        "type": PROBLEMS + "not-authorized-for-resource",
    }


def _hidden_author(user: XUser) -> dict[str, Any]:
    return {
        "value": user.id,
        "detail": f"User has been suspended: [{user.id}].",
        "title": "Forbidden",
        "resource_type": "user",
        "parameter": "author_id",
        "resource_id": user.id,
        "section": "includes",
        "type": PROBLEMS + "resource-unavailable",
    }


def _base36_token() -> str:
    """A pagination token as X's look: 45 characters of base36."""
    return "".join(secrets.choice(_BASE36) for _ in range(45))
