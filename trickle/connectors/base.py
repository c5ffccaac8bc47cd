"""What every connector is: the base class, its poll state and result, and its typed errors.

A connector knows one platform's API and nothing else. It is handed an
account (with decrypted credentials) and the state its previous poll left,
and returns the likes it has not returned before plus the new state. Storage,
scheduling, deduplication and the baseline are the worker's job.

Only five things may come out of a poll: a :class:`PollResult`, or one of
:class:`AuthExpired`, :class:`RateLimited`, :class:`TransientError`,
:class:`PlatformError`. The worker treats anything else as a bug in the
connector and the account as failed, and goes on with the others.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from trickle.core.clock import clock, ensure_utc
from trickle.core.credentials import Credentials
from trickle.core.errors import TrickleError
from trickle.core.events import LikeEvent

if TYPE_CHECKING:
    from trickle.connectors.http import HttpClient

KNOWN_ITEMS_KEPT = 500
"""How many of an account's most recent item ids the poll state remembers."""

MAX_RATE_LIMIT_WAIT = timedelta(hours=24)
"""The longest a platform's rate limit may park an account (or pause a platform). GitHub's
windows reset hourly and X's every 15 minutes: a platform asking for more is wrong or hostile,
and waiting a day at most keeps every wait, jitter added, far inside the calendar."""


MiB = 1 << 20

DEFAULT_TIMEOUT_SECONDS = 20.0
"""How long one connect, or one wait for data, may take by default."""
DEFAULT_DEADLINE_SECONDS = 60.0
"""How long one request may take by default, retries and reading the body included."""
DEFAULT_MAX_RESPONSE_BYTES = 4 * MiB
"""The most one answer may hold by default, after decompression. GitHub's page of 100 stars
is about 0.5 MB; a page eight times that size is not a page of likes."""
MAX_RESPONSE_BYTES_CEILING = 64 * MiB
"""The highest ``max_response_bytes`` may be set: every poll thread may hold that much."""


class ConnectorSettings(BaseModel):
    """Per-platform settings (``[connectors.NAME]``). Plugins may add keys of their own.

    ``timeout_seconds``, ``deadline_seconds`` and ``max_response_bytes`` bound every HTTP
    request the connector makes (see :class:`trickle.connectors.http.Limits`).
    """

    model_config = ConfigDict(extra="allow")

    base_url: str | None = None  # None: the platform's real API root
    min_interval_seconds: int = Field(default=300, ge=1)
    max_interval_seconds: int = Field(default=3600, ge=1)
    max_concurrency: int = Field(default=8, ge=1)
    timeout_seconds: float = Field(default=DEFAULT_TIMEOUT_SECONDS, gt=0, le=3600)
    deadline_seconds: float = Field(default=DEFAULT_DEADLINE_SECONDS, gt=0, le=3600)
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES, gt=0, le=MAX_RESPONSE_BYTES_CEILING
    )
    page_size: int | None = Field(default=None, ge=1)
    max_pages: int = Field(default=50, ge=1)

    def extra(self, key: str, default: Any = None) -> Any:
        """A plugin-specific key from ``[connectors.NAME]``."""
        return (self.model_extra or {}).get(key, default)


class Tier(StrEnum):
    """Connector quality tiers (after Home Assistant's integration quality scale)."""

    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"


# ---------------------------------------------------------------------------
# Errors: the only ways a poll may fail.


class ConnectorError(TrickleError):
    """Base of the typed errors a connector raises."""


class AuthExpired(ConnectorError):
    """The platform no longer accepts the account's credentials: the user must relink."""


def clamp_retry_at(retry_at: datetime, now: datetime | None = None) -> datetime:
    """``retry_at`` in UTC, but never before ``now`` (default: the clock's) and never more
    than :data:`MAX_RATE_LIMIT_WAIT` after it; a time whose offset puts it beyond the calendar
    in UTC (``9999-12-31T23:59:59-01:00``) counts as far away. Naive times are taken as UTC."""
    now = ensure_utc(now or clock.now())
    latest = now + MAX_RATE_LIMIT_WAIT
    try:
        when = ensure_utc(retry_at)
    except OverflowError:
        return latest if retry_at.year > now.year else now
    return min(max(when, now), latest)


class RateLimited(ConnectorError):
    """The platform asked us to wait until ``retry_at``; nothing is lost by waiting.

    ``retry_at`` is clamped (:func:`clamp_retry_at`): never in the past and at most
    :data:`MAX_RATE_LIMIT_WAIT` ahead, whatever a platform or a connector asks for.
    ``scope`` says whose budget ran out: ``"account"`` (only this account's
    token waits) or ``"app"`` (the whole platform pauses for every account).
    """

    def __init__(
        self,
        message: str,
        retry_at: datetime,
        scope: Literal["account", "app"] = "account",
    ) -> None:
        super().__init__(message)
        self.retry_at = clamp_retry_at(retry_at)
        self.scope = scope


class TransientError(ConnectorError):
    """A failure worth retrying later: timeouts, connection resets, 5xx."""


class PlatformError(ConnectorError):
    """The platform answered something we cannot use (a malformed payload, an unexpected status)."""


# ---------------------------------------------------------------------------
# Values passed in and out of a poll.


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an account is on its platform: the permanent id and the current handle."""

    platform_user_id: str
    handle: str


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The account a poll acts for."""

    id: int
    platform_user_id: str
    handle: str
    credentials: Credentials
    linked_at: datetime


@dataclass(frozen=True)
class PollState:
    """What the previous poll left for the next one, stored as JSON with the account.

    ``known`` holds the most recent item ids seen, newest first (bounded);
    paging stops at the first page that holds one of them. ``etag`` is the
    validator of the first page for a conditional request. ``cursor`` is the
    connector's own, opaque to everyone else.
    """

    linked_at: datetime
    baseline_done: bool = False
    known: tuple[str, ...] = ()
    etag: str | None = None
    cursor: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def _known_set(self) -> frozenset[str]:
        return frozenset(self.known)

    def is_known(self, item_id: str) -> bool:
        """True when ``item_id`` was seen by an earlier poll."""
        return item_id in self._known_set

    def advanced(
        self,
        new_item_ids: Iterable[str],
        *,
        etag: str | None,
        cursor: Mapping[str, Any] | None = None,
    ) -> PollState:
        """The state after a successful poll that saw ``new_item_ids`` (newest first)."""
        fresh = [i for i in dict.fromkeys(new_item_ids) if not self.is_known(i)]
        known = (*fresh, *self.known)[:KNOWN_ITEMS_KEPT]
        return replace(
            self,
            baseline_done=True,
            known=known,
            etag=etag,
            cursor=dict(self.cursor if cursor is None else cursor),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (``linked_at`` and ``baseline_done`` live in their own columns)."""
        return {"known": list(self.known), "etag": self.etag, "cursor": dict(self.cursor)}

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any] | None, *, linked_at: datetime, baseline_done: bool
    ) -> PollState:
        """Rebuild the state stored by :meth:`to_json`."""
        data = data or {}
        return cls(
            linked_at=ensure_utc(linked_at),
            baseline_done=baseline_done,
            known=tuple(str(i) for i in data.get("known") or ()),
            etag=data.get("etag"),
            cursor=dict(data.get("cursor") or {}),
        )


@dataclass(frozen=True)
class PollResult:
    """What a poll found: the new likes, the state to store, and a hint for the next poll."""

    events: list[LikeEvent]
    state: PollState
    next_poll_hint: timedelta | None = None
    requests: int = 0
    not_modified: bool = False


@dataclass(frozen=True)
class Page:
    """One page of a platform's list of likes, newest first, and whether another follows."""

    events: list[LikeEvent]
    has_next: bool


def collect_new(
    pages: Iterator[Page], state: PollState, max_pages: int
) -> tuple[list[LikeEvent], int]:
    """Walk pages newest first and keep the likes ``state`` does not know.

    Stops after the first page that holds a known item (everything beyond it
    is older), after ``max_pages``, and on a baseline poll after the first
    page that is not made entirely of likes the platform dates at or after
    the link (older likes are the baseline; likes made since the link, even
    more than a page of them, are all collected). Returns the new events and
    the number of pages fetched.
    """
    events: list[LikeEvent] = []
    fetched = 0
    for page in pages:
        fetched += 1
        events.extend(e for e in page.events if not state.is_known(e.item_id))
        reached_known = any(state.is_known(e.item_id) for e in page.events)
        if reached_known or not page.has_next or fetched >= max_pages:
            break
        if not state.baseline_done and not _all_since(page.events, state.linked_at):
            break
    return events, fetched


def _all_since(events: list[LikeEvent], since: datetime) -> bool:
    return bool(events) and all(e.liked_at is not None and e.liked_at >= since for e in events)


class Connector(abc.ABC):
    """Base class of every platform connector; see ``docs/writing-a-connector.md``.

    Subclasses set the class attributes and implement :meth:`identify` and
    :meth:`poll`. All HTTP goes through ``self.http`` (a shared
    :class:`~trickle.connectors.http.HttpClient`), so tests can stand in for
    the platform with ``responses`` and every connector gets timeouts,
    retries and rate-limit parsing.
    """

    name: ClassVar[str]
    """Registry key and the ``platform`` of every event: ``"github"``."""
    display_name: ClassVar[str]
    default_base_url: ClassVar[str]
    """The real API root, used unless ``[connectors.NAME] base_url`` says otherwise."""
    default_page_size: ClassVar[int] = 100
    tier: ClassVar[Tier] = Tier.BRONZE
    quality_rules: ClassVar[tuple[str, ...]] = ()
    """The rules of ``docs/connectors.md`` this connector meets, by id."""
    rate_limit_scope: ClassVar[Literal["account", "app"]] = "account"
    """Whose budget a platform rate limit counts: each token's, or the whole app's."""

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        self.settings = settings
        self.http = http

    @property
    def base_url(self) -> str:
        """API root without a trailing slash."""
        return (self.settings.base_url or self.default_base_url).rstrip("/")

    @property
    def page_size(self) -> int:
        """Items requested per page."""
        return self.settings.page_size or self.default_page_size

    @abc.abstractmethod
    def identify(self, credentials: Credentials) -> Identity:
        """Ask the platform who ``credentials`` belong to (used when linking)."""

    @abc.abstractmethod
    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        """Fetch the likes made since ``state``, newest first, and the state to keep."""
