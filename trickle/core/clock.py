"""The one clock every part of trickle reads the time from.

Polling, settlement and expiry all ask :data:`clock` for "now", never
``datetime.now()`` directly, so the demo can play a month in seconds and the
tests can pin time, while the code paths stay the ones production runs. A
clock can also follow another source of time (:meth:`Clock.follow`), so that
a test and the worker processes it starts live at the same simulated instant.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class Clock:
    """Real UTC time unless someone has set or frozen it.

    A set clock keeps running from the time it was set to (so timeouts still
    expire); a frozen clock stands still until it is advanced; a following
    clock tells whatever its source tells.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen: datetime | None = None
        self._source: Callable[[], datetime] | None = None

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        with self._lock:
            source = self._source
            if source is None:
                if self._frozen is not None:
                    return self._frozen
                return datetime.now(UTC) + self._offset
        return ensure_utc(source())  # outside the lock: the source may take its own

    def follow(self, source: Callable[[], datetime]) -> None:
        """Tell the time ``source()`` tells from here on, until :meth:`set` or :meth:`reset`:
        a clock shared by several processes (a test and the ``trickle run`` workers it
        starts), which only its owner moves."""
        with self._lock:
            self._source = source

    def set(self, when: datetime, *, frozen: bool = False) -> None:
        """Make ``now()`` return ``when`` from here on (running or frozen); a clock that was
        following a source stops following it."""
        when = ensure_utc(when)
        with self._lock:
            self._source = None
            if frozen:
                self._frozen = when
            else:
                self._frozen = None
                self._offset = when - datetime.now(UTC)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta`` (a following clock is moved at its source)."""
        with self._lock:
            if self._source is not None:
                raise RuntimeError("this clock follows another source: move that one")
            if self._frozen is not None:
                self._frozen += delta
            else:
                self._offset += delta

    def reset(self) -> None:
        """Go back to real time."""
        with self._lock:
            self._source = None
            self._frozen = None
            self._offset = timedelta(0)


def ensure_utc(when: datetime) -> datetime:
    """Return ``when`` as an aware UTC datetime; naive values are taken as UTC.

    Raises ``OverflowError`` when the offset moves it out of the years 1 to 9999
    (``9999-12-31T23:00-05:00``); code reading outside input catches that.
    """
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def iso_utc(when: datetime | None) -> str | None:
    """``when`` as ISO 8601 in UTC with a ``Z`` (``2026-11-02T00:00:00Z``), the one form
    trickle prints and writes to JSON; None stays None."""
    if when is None:
        return None
    return ensure_utc(when).isoformat().replace("+00:00", "Z")


clock = Clock()
"""The process-wide clock."""
