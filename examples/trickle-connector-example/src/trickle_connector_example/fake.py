"""Pebble's API on 127.0.0.1, built on trickle's FakePlatform, for tests and demos.

It answers ``GET /v1/me`` and ``GET /v1/bookmarks`` as the README's API
reference describes: bookmarks newest saved first, ``limit`` and an opaque
``next_cursor`` that stays valid while new bookmarks arrive, 401 for an
unknown or revoked key, 429 with ``Retry-After`` and ``RateLimit-*`` headers
for a member who is slowed down. Tests can rewrite a member's answers
(:meth:`FakePebble.tamper`) to serve malformed payloads.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count

from trickle.core.clock import clock
from trickle.testing.fakeplatform import FakePlatform, FakeResponse, Request, route

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
REQUESTS_PER_WINDOW = 600

Rewrite = Callable[[Request, FakeResponse], FakeResponse]


@dataclass(frozen=True)
class PebblePost:
    """A pebble (a short post) someone can bookmark; its author is the creator who gets paid."""

    id: str
    author_uid: str
    author_username: str
    title: str = "A pebble"

    def payload(self) -> dict[str, object]:
        """The pebble object as the API sends it."""
        return {
            "id": self.id,
            "url": f"https://pebble.example/p/{self.id}",
            "title": self.title,
            "author": {"uid": self.author_uid, "username": self.author_username},
        }


@dataclass
class FakePebbleMember:
    """A Pebble account: its API key and its bookmarks, newest first."""

    uid: str
    username: str
    key: str
    bookmarks: list[tuple[datetime, int, PebblePost]] = field(default_factory=list)
    revoked: bool = False
    slowed_until: datetime | None = None
    rewrite: Rewrite | None = None


def _encode_cursor(saved_at: datetime, serial: int) -> str:
    raw = json.dumps([saved_at.isoformat(), serial]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        saved_at, serial = json.loads(raw)
        return datetime.fromisoformat(saved_at), int(serial)
    except (binascii.Error, ValueError, TypeError):
        return None


class FakePebble(FakePlatform):
    """A Pebble stand-in: add members and bookmarks, point the connector at :attr:`api_url`."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.members: dict[str, FakePebbleMember] = {}  # by username
        self._by_key: dict[str, FakePebbleMember] = {}
        self._serials = count(1)

    @property
    def api_url(self) -> str:
        """The API root to use as the connector's ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.base_url}/v1"

    # -- setting the scene -----------------------------------------------------

    def add_member(self, username: str, key: str, uid: str | None = None) -> FakePebbleMember:
        """Create an account with an API key."""
        with self.lock:
            member = FakePebbleMember(
                uid=uid or f"u_{next(self._serials):06d}", username=username, key=key
            )
            self.members[username] = member
            self._by_key[key] = member
            return member

    def bookmark(self, username: str, post: PebblePost, at: datetime | None = None) -> None:
        """``username`` bookmarks ``post`` at ``at`` (default: now on trickle's clock)."""
        when = (at or clock.now()).astimezone(UTC).replace(microsecond=0)
        with self.lock:
            member = self.members[username]
            kept = [b for b in member.bookmarks if b[2].id != post.id]
            kept.append((when, next(self._serials), post))
            member.bookmarks = sorted(kept, key=lambda b: (b[0], b[1]), reverse=True)

    def unbookmark(self, username: str, post_id: str) -> None:
        """Remove a bookmark."""
        with self.lock:
            member = self.members[username]
            member.bookmarks = [b for b in member.bookmarks if b[2].id != post_id]

    def revoke(self, username: str) -> None:
        """The member revoked the API key: every request answers 401."""
        with self.lock:
            self.members[username].revoked = True

    def slow_down(self, username: str, until: datetime) -> None:
        """The member's key is rate limited until ``until``: every request answers 429."""
        with self.lock:
            self.members[username].slowed_until = until

    def tamper(self, username: str, rewrite: Rewrite | None) -> None:
        """Pass every answer to the member's authenticated requests through ``rewrite``
        (tests use it to serve malformed payloads); None stops rewriting."""
        with self.lock:
            self.members[username].rewrite = rewrite

    # -- the API -------------------------------------------------------------

    def _authenticate(self, request: Request) -> FakePebbleMember | FakeResponse:
        header = request.header("Authorization") or ""
        key = header.removeprefix("Bearer ").strip()
        with self.lock:
            member = self._by_key.get(key)
        if member is None or member.revoked:
            return FakeResponse(
                401, {"error": "invalid_key", "message": "The API key is not valid."}
            )
        now = clock.now()
        if member.slowed_until is not None and member.slowed_until > now:
            wait = str(math.ceil((member.slowed_until - now).total_seconds()))
            return FakeResponse(
                429,
                {"error": "slow_down", "message": "Too many requests."},
                {
                    "Retry-After": wait,
                    "RateLimit-Limit": str(REQUESTS_PER_WINDOW),
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": wait,
                },
            )
        return member

    @staticmethod
    def _answer(member: FakePebbleMember, request: Request, response: FakeResponse) -> FakeResponse:
        rewrite = member.rewrite
        return rewrite(request, response) if rewrite is not None else response

    @route("GET", "/v1/me")
    def get_me(self, request: Request) -> FakeResponse:
        """``GET /v1/me``: the key's owner."""
        member = self._authenticate(request)
        if isinstance(member, FakeResponse):
            return member
        body = {"account": {"uid": member.uid, "username": member.username}}
        return self._answer(member, request, FakeResponse(200, body))

    @route("GET", "/v1/bookmarks")
    def get_bookmarks(self, request: Request) -> FakeResponse:
        """``GET /v1/bookmarks``: newest saved first, ``limit`` per page, ``next_cursor``."""
        member = self._authenticate(request)
        if isinstance(member, FakeResponse):
            return member
        try:
            limit = int(request.query.get("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return FakeResponse(
                400, {"error": "bad_limit", "message": f"limit must be 1 to {MAX_LIMIT}."}
            )
        with self.lock:
            bookmarks = list(member.bookmarks)
        cursor = request.query.get("cursor")
        if cursor is not None:
            after = _decode_cursor(cursor)
            if after is None:
                return FakeResponse(400, {"error": "bad_cursor", "message": "Unknown cursor."})
            bookmarks = [b for b in bookmarks if (b[0], b[1]) < after]
        chunk = bookmarks[:limit]
        next_cursor = None
        if len(bookmarks) > limit:
            last = chunk[-1]
            next_cursor = _encode_cursor(last[0], last[1])
        body = {
            "bookmarks": [
                {"saved_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "pebble": post.payload()}
                for at, _, post in chunk
            ],
            "next_cursor": next_cursor,
        }
        return self._answer(member, request, FakeResponse(200, body))
