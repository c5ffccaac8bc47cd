"""Rate limits as platforms report them, read into one :class:`RateLimit`.

Platforms speak many dialects: GitHub's and Mastodon's ``x-ratelimit-*``, X's
``x-rate-limit-*``, Bluesky's ``RateLimit-*``, the IETF draft's combined
``RateLimit`` header, ``Retry-After``; resets as Unix seconds, seconds from
now, ISO 8601 dates (Mastodon) or HTTP dates. Every answer is read, not only
the refusals, so the worker can slow a platform whose budget is nearly spent
before it answers 429. Reading never raises, whatever a header says.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from requests.structures import CaseInsensitiveDict

from trickle.connectors.errors import clamp_retry_at
from trickle.core.clock import clock, ensure_utc

DEFAULT_RETRY_AFTER = timedelta(seconds=60)
"""How long to wait after a refusal that names no time."""
_EPOCH_THRESHOLD = 1_000_000_000  # larger reset values are Unix times, smaller ones deltas


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A platform's rate-limit state as read from one response's headers."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: datetime | None = None
    retry_after: datetime | None = None

    @property
    def exhausted(self) -> bool:
        """True when the platform says no request is left in this window."""
        return self.remaining is not None and self.remaining <= 0

    def wait_until(self, now: datetime) -> datetime:
        """When to try again: Retry-After, else the window's reset, else a minute from now;
        never before ``now`` nor more than ``MAX_RATE_LIMIT_WAIT`` after it."""
        return clamp_retry_at(self.retry_after or self.reset_at or now + DEFAULT_RETRY_AFTER, now)

    def nearly_spent(self, reserve: float) -> bool:
        """True when the platform says no more than ``reserve`` of the window's requests
        are left (``reserve`` a fraction of the limit, at least one request)."""
        if self.remaining is None:
            return False
        if self.limit is None or self.limit <= 0:
            return self.remaining <= 0
        return self.remaining <= max(1, int(self.limit * reserve))


def _lowered(headers: Mapping[str, str]) -> Mapping[str, str]:
    """Headers looked up case-insensitively: requests' own headers already are."""
    if isinstance(headers, CaseInsensitiveDict):
        return headers
    return {k.lower(): v for k, v in headers.items()}


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` (lower case) with a non-blank value in ``headers``."""
    for name in names:
        value = headers.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):  # "abc", "inf", "1e400"
        return None


_LATEST = datetime.max.replace(tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _in_utc(parsed: datetime) -> datetime:
    """``parsed`` in UTC (naive: taken as UTC); beyond the calendar in UTC, its nearest end."""
    try:
        return ensure_utc(parsed)
    except OverflowError:  # 9999-12-31T23:59:59-01:00, 0001-01-01T00:00:00+01:00
        return _LATEST if parsed.year == _LATEST.year else _EARLIEST


def _after(now: datetime, seconds: int) -> datetime:
    """``seconds`` after ``now``, or the calendar's end when that lies beyond it."""
    try:
        return now + timedelta(seconds=seconds)
    except OverflowError:
        return _LATEST if seconds > 0 else _EARLIEST


def parse_reset(value: str | None, now: datetime) -> datetime | None:
    """Read a reset time: Unix seconds, seconds from now, ISO 8601 or an HTTP date.

    Never raises: a value it cannot read is None, and a time beyond the calendar (year
    99999, an offset past 9999-12-31) reads as the calendar's end. The time is as the
    platform gave it; :func:`~trickle.connectors.errors.clamp_retry_at` decides how long
    trickle actually waits.
    """
    if value is None:
        return None
    number = _int(value) if re.fullmatch(r"\d+(\.\d+)?", value) else None
    if number is not None:
        if number < _EPOCH_THRESHOLD:
            return _after(now, number)
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):  # beyond year 9999
            return _LATEST
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return _in_utc(parsed)


def parse_rate_limit(headers: Mapping[str, str], now: datetime | None = None) -> RateLimit:
    """Read ``x-ratelimit-*``, ``x-rate-limit-*``, ``RateLimit*`` and ``Retry-After`` headers.

    Never raises, whatever the header values (see :func:`parse_reset`).
    """
    now = now or clock.now()
    headers = _lowered(headers)
    limit = _int(_header(headers, "x-ratelimit-limit", "x-rate-limit-limit", "ratelimit-limit"))
    remaining = _int(
        _header(headers, "x-ratelimit-remaining", "x-rate-limit-remaining", "ratelimit-remaining")
    )
    reset = parse_reset(
        _header(headers, "x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset"), now
    )
    combined = _header(headers, "ratelimit")  # IETF draft: "limit=100, remaining=0, reset=30"
    if combined:
        fields = dict(re.findall(r"(\w+)\s*=\s*([^,;\s]+)", combined))
        limit = limit if limit is not None else _int(fields.get("limit"))
        remaining = remaining if remaining is not None else _int(fields.get("remaining"))
        if reset is None and "reset" in fields:
            reset = _after(now, _int(fields["reset"]) or 0)
    retry_after = parse_reset(_header(headers, "retry-after"), now)
    return RateLimit(limit=limit, remaining=remaining, reset_at=reset, retry_after=retry_after)
