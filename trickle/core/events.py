"""LikeEvent: one like, star or favourite, normalized across platforms.

Connectors turn whatever their platform returns into these; ingestion turns
them into flattrs. The creator is identified by the platform's permanent id
(``repo.owner.id`` on GitHub), never by a handle that can be renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trickle.core.clock import ensure_utc


@dataclass(frozen=True, slots=True)
class LikeEvent:
    """A like as trickle stores it.

    ``liked_at`` is the time of the like when the platform tells it (GitHub's
    ``starred_at``), else ``None``; ``observed_at`` is when trickle first saw
    it. The flattr's month is decided by :attr:`effective_at`.
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
        object.__setattr__(self, "observed_at", ensure_utc(self.observed_at))
        if self.liked_at is not None:
            object.__setattr__(self, "liked_at", ensure_utc(self.liked_at))

    @property
    def effective_at(self) -> datetime:
        """The time that decides the flattr's month: like time, else first seen.

        A like time later than the moment we saw it (a platform clock running
        ahead) is not believed: the like cannot be younger than our sighting.
        """
        if self.liked_at is None:
            return self.observed_at
        return min(self.liked_at, self.observed_at)
