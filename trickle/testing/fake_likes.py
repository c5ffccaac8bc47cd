"""The likes API the made-up platforms share: accounts, their likes, and two endpoints.

:class:`~trickle.testing.fake_oauth.FakeOAuth` (bearer tokens) and
:class:`~trickle.testing.fake_oauth1.FakeOAuth1` (OAuth 1.0a signatures)
guard the same API and differ only in how a request proves whose it is
(:meth:`FakeLikesPlatform.authenticate`), so their connectors can share
payload models and a test written for one reads the same for the other:

- ``GET /api/me``: who the credentials belong to (``id``, ``username``).
- ``GET /api/likes``: the account's likes, newest first, ``limit`` per page
  and an opaque ``cursor`` to the next page (``next_cursor`` in the body).

Tests stage accounts (:meth:`~FakeLikesPlatform.add_account`), likes
(:meth:`~FakeLikesPlatform.like`), rate limits and rewritten answers
(:meth:`~FakeLikesPlatform.tamper`).
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from trickle.core.clock import clock
from trickle.testing.fakeplatform import Answer, FakePlatform, FakeResponse, Request, route

ME_PATH = "/api/me"
LIKES_PATH = "/api/likes"
MAX_PAGE = 100
DEFAULT_PAGE = 20
RATE_LIMITED = 429


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


class FakeLikesPlatform(FakePlatform, abc.ABC):
    """A platform whose users like items, with the likes API above; subclasses say how a
    request is authenticated."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.accounts: dict[str, FakeOAuthAccount] = {}  # by username
        self._ids = itertools.count(1)

    # -- setting the scene ---------------------------------------------------

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

    # -- the API -------------------------------------------------------------

    @abc.abstractmethod
    def authenticate(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The account an API request acts for, or the answer refusing it (401)."""

    def api_account(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The account an API request acts for, once authenticated and not rate limited;
        else the answer refusing it."""
        account = self.authenticate(request)
        if isinstance(account, FakeResponse):
            return account
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

    def answer(self, account: FakeOAuthAccount, request: Request, response: FakeResponse) -> Answer:
        """``response``, through the account's rewrite if a test set one."""
        rewrite = account.rewrite
        return rewrite(request, response) if rewrite is not None else response

    @route("GET", ME_PATH)
    def me(self, request: Request) -> Answer:
        """``GET /api/me``: who the credentials belong to."""
        account = self.api_account(request)
        if isinstance(account, FakeResponse):
            return account
        body = {"id": account.id, "username": account.username}
        return self.answer(account, request, FakeResponse(200, body))

    @route("GET", LIKES_PATH)
    def likes(self, request: Request) -> Answer:
        """``GET /api/likes?limit=N&cursor=C``: likes newest first, ``next_cursor`` to the
        next page (null on the last)."""
        account = self.api_account(request)
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
        return self.answer(account, request, FakeResponse(200, body))
