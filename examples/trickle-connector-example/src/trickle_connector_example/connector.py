"""Pebble: a bookmark is a like, the bookmarked pebble's author is the creator.

Pebble is a made-up bookmarking site (its API is described in this
package's README). The connector uses two endpoints, both with
``Authorization: Bearer <API key>``:

- ``GET /me``: who the key belongs to (``account.uid`` is permanent,
  ``account.username`` can change).
- ``GET /bookmarks?limit=N&cursor=C``: the account's bookmarks, newest saved
  first, ``{"bookmarks": [...], "next_cursor": "..." | null}``; the next page
  is asked for with the previous page's ``next_cursor``.

Everything else (timeouts, retries, 401/429 handling, the rate-limit headers,
paging that stops at known items, the baseline) comes from trickle.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import requests
from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

from trickle.connectors.base import (
    AccountRef,
    Connector,
    Identity,
    Page,
    PollResult,
    PollState,
    Tier,
    collect_new,
)
from trickle.connectors.http import json_body
from trickle.connectors.payloads import PlatformTime, parse_payload
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
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


_PAGE = TypeAdapter(_BookmarkPage)
_ME = TypeAdapter(_Me)


class PebbleConnector(Connector):
    """Bookmarks of the API key's owner on Pebble, with the time each was saved."""

    name = "pebble"
    display_name = "Pebble"
    default_base_url = "https://api.pebble.example/v1"
    default_page_size = 50
    tier = Tier.SILVER
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
    # Not "conditional-requests": Pebble sends no ETag, so it cannot reach gold.

    @property
    def page_size(self) -> int:
        """Bookmarks asked for per page, at most Pebble's maximum."""
        return min(super().page_size, MAX_LIMIT)

    def _get(self, path: str, credentials: Credentials, **params: Any) -> requests.Response:
        return self.http.get(
            f"{self.base_url}{path}",
            params=params or None,
            headers={"Authorization": f"Bearer {credentials['token']}"},
            secrets=credentials.secret_values(),
            rate_limit_scope=self.rate_limit_scope,
        )

    def identify(self, credentials: Credentials) -> Identity:
        """``GET /me``: the account's permanent uid and its current username."""
        response = self._get("/me", credentials)
        me = parse_payload(_ME, json_body(response), where="GET /me")
        return Identity(platform_user_id=me.account.uid, handle=me.account.username)

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        """New bookmarks since ``state``, newest first, following ``next_cursor``."""
        requests_made = 0

        def pages() -> Iterator[Page]:
            nonlocal requests_made
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": self.page_size}
                if cursor is not None:
                    params["cursor"] = cursor
                response = self._get("/bookmarks", account.credentials, **params)
                requests_made += 1
                page = parse_payload(_PAGE, json_body(response), where="GET /bookmarks")
                observed = clock.now()  # after parsing, as PlatformTime read the clock then
                cursor = page.next_cursor
                events = [self._event(bookmark, observed) for bookmark in page.bookmarks]
                yield Page(events, has_next=cursor is not None)
                if cursor is None:
                    return

        events, _ = collect_new(pages(), state, self.settings.max_pages)
        new_state = state.advanced((event.item_id for event in events), etag=None)
        return PollResult(events=events, state=new_state, requests=requests_made)

    def _event(self, bookmark: _Bookmark, observed_at: datetime) -> LikeEvent:
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
