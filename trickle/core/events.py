"""LikeEvent: one like, star or favourite, normalized across platforms.

Connectors turn whatever their platform returns into these; ingestion turns
them into flattrs. The creator is identified by the platform's permanent id
(``repo.owner.id`` on GitHub), never by a handle that can be renamed.

Like times are outside input, so they are held to a range every month can
hold: from :data:`EARLIEST_LIKE_TIME` (before any platform trickle connects
existed: a like dated earlier is bad data, not history) to
:data:`PLATFORM_CLOCK_SKEW` past the moment trickle saw the like.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trickle.core.clock import ensure_utc

EARLIEST_LIKE_TIME = datetime(2000, 1, 1, tzinfo=UTC)
"""The oldest like time trickle accepts (del.icio.us, the oldest platform a connector could
speak to, opened in 2003): older ones are bad data, and no stored flattr may be dated before."""

PLATFORM_CLOCK_SKEW = timedelta(days=1)
"""How far a platform's like time may lie ahead of trickle's own clock. Within it the like
counts from when trickle saw it (see :attr:`LikeEvent.effective_at`); beyond it, bad data."""


MAX_ID_LENGTH = 200
"""The longest item or creator id trickle stores (no platform's permanent ids come near it:
a Mastodon actor URI, a DID, an at:// URI do): a longer one is bad data."""
MAX_HANDLE_LENGTH = 200
"""The longest handle trickle stores; a longer one (handles are only shown) is shortened."""


def shortened_handle(handle: str) -> str:
    """``handle`` cut to :data:`MAX_HANDLE_LENGTH` characters, marked with an ellipsis when
    cut: handles are shown, never used as keys, so a long one costs nothing but its tail."""
    if len(handle) <= MAX_HANDLE_LENGTH:
        return handle
    return handle[: MAX_HANDLE_LENGTH - 1] + "\u2026"


class LikeTimeError(ValueError):
    """A like time no month can hold: before :data:`EARLIEST_LIKE_TIME`, too far in the
    future, or with an offset that pushes it out of the calendar."""


def checked_like_time(value: datetime, observed_at: datetime) -> datetime:
    """``value`` in UTC, if it is a like time trickle accepts for a like seen at
    ``observed_at``; otherwise :class:`LikeTimeError` saying why."""
    try:
        when = ensure_utc(value)
    except OverflowError:
        raise LikeTimeError(f"{value.isoformat()} is outside the calendar in UTC") from None
    if when < EARLIEST_LIKE_TIME:
        raise LikeTimeError(
            f"{when:%Y-%m-%dT%H:%M:%SZ} is before {EARLIEST_LIKE_TIME:%Y-%m-%d}, "
            "the earliest like time trickle accepts"
        )
    latest = ensure_utc(observed_at) + PLATFORM_CLOCK_SKEW
    if when > latest:
        raise LikeTimeError(f"{when:%Y-%m-%dT%H:%M:%SZ} is in the future")
    return when


@dataclass(frozen=True, slots=True)
class LikeEvent:
    """A like as trickle stores it.

    ``liked_at`` is the time of the like when the platform tells it (GitHub's
    ``starred_at``), else ``None``; ``observed_at`` is when trickle first saw
    it. The flattr's month is decided by :attr:`effective_at`. A like time
    outside the accepted range (see the module) is a :class:`LikeTimeError`.
    """

    platform: str
    item_id: str
    item_url: str
    creator_id: str
    creator_handle: str
    observed_at: datetime
    liked_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("platform", "item_id", "creator_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"LikeEvent.{name} must be a non-empty string, got {value!r}")
        for name in ("item_id", "creator_id"):
            if len(getattr(self, name)) > MAX_ID_LENGTH:
                raise ValueError(f"the like's {name} is longer than {MAX_ID_LENGTH} characters")
        object.__setattr__(self, "creator_handle", shortened_handle(self.creator_handle))
        observed = ensure_utc(self.observed_at)
        if observed < EARLIEST_LIKE_TIME:
            raise LikeTimeError(f"observed_at {observed.isoformat()} is before trickle's range")
        object.__setattr__(self, "observed_at", observed)
        if self.liked_at is not None:
            object.__setattr__(self, "liked_at", checked_like_time(self.liked_at, observed))

    @property
    def effective_at(self) -> datetime:
        """The time that decides the flattr's month: like time, else first seen.

        A like time later than the moment we saw it (a platform clock running
        ahead) is not believed: the like cannot be younger than our sighting.
        """
        if self.liked_at is None:
            return self.observed_at
        return min(self.liked_at, self.observed_at)
