"""Pebble: a bookmark is a like, the bookmarked pebble's author is the creator.

Pebble is a made-up bookmarking site (its API is described in this
package's README). The connector is a declaration on trickle's
:class:`~trickle.connectors.rest.RestConnector`; it uses two endpoints,
both with ``Authorization: Bearer <API key>``:

- ``GET /me``: who the key belongs to (``account.uid`` is permanent,
  ``account.username`` can change).
- ``GET /bookmarks?limit=N&cursor=C``: the account's bookmarks, newest saved
  first, ``{"bookmarks": [...], "next_cursor": "..." | null}``; the next page
  is asked for with the previous page's ``next_cursor``.

Everything else (auth, timeouts, retries, 401/429 handling, the rate-limit
headers, paging that stops at known items, the baseline) comes from trickle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

from trickle.connectors.base import Identity
from trickle.connectors.paginators import NextToken
from trickle.connectors.payloads import PlatformTime
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.core.events import LikeEvent

MAX_LIMIT = 100
"""The largest ``limit`` Pebble accepts."""

NonEmpty = Annotated[str, StringConstraints(min_length=1, strict=True)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Author(_Payload):
    uid: NonEmpty
    username: NonEmpty


class _Pebble(_Payload):
    id: NonEmpty
    url: NonEmpty
    author: _Author


class _Bookmark(_Payload):
    saved_at: PlatformTime
    pebble: _Pebble


class _BookmarkPage(_Payload):
    bookmarks: list[_Bookmark]
    next_cursor: NonEmpty | None


class _Account(_Payload):
    uid: NonEmpty
    username: NonEmpty


class _Me(_Payload):
    account: _Account


class PebbleConnector(RestConnector):
    """Bookmarks of the API key's owner on Pebble, with the time each was saved."""

    name = "pebble"
    display_name = "Pebble"
    default_base_url = "https://api.pebble.example/v1"
    default_page_size = 50
    tier = Tier.SILVER
    # Pebble says when a bookmark was saved, and its 429 carries RateLimit-* headers, but it
    # sends no ETag and no rate-limit state on other answers: "conditional-requests" and
    # "reads-rate-limits" do not apply to it.
    capabilities = frozenset({Capability.LIKE_TIME})
    quality_rules = (
        "links-with-token",
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "like-time",
        "fixtures-from-reference",
        "fake-platform",
    )

    likes_path = "/bookmarks"
    page_size_param = "limit"
    paginator = NextToken(("next_cursor",), "cursor")
    page_model = TypeAdapter(_BookmarkPage)
    identity_path = "/me"
    identity_model = TypeAdapter(_Me)

    @property
    def page_size(self) -> int:
        """Bookmarks asked for per page, at most Pebble's maximum."""
        return min(super().page_size, MAX_LIMIT)

    def items(self, page: Any) -> list[_Bookmark]:
        """A page's bookmarks, newest saved first."""
        return list(page.bookmarks)

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A bookmark as a like of the pebble, made by its author."""
        bookmark: _Bookmark = item
        pebble = bookmark.pebble
        return LikeEvent(
            platform=self.name,
            item_id=pebble.id,
            item_url=pebble.url,
            creator_id=pebble.author.uid,
            creator_handle=pebble.author.username,
            liked_at=bookmark.saved_at,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The key's owner: permanent uid and current username."""
        me: _Me = payload
        return Identity(platform_user_id=me.account.uid, handle=me.account.username)
