"""The typed errors of a connector: the only ways a poll, a link or a refresh may fail.

Every connector and the shared layers under it (HTTP, auth, paging) raise
these and nothing else, so the worker can treat each account's trouble by
its kind: relink (:class:`AuthExpired`), wait (:class:`RateLimited`), try
again later (:class:`TransientError`), or give up on this answer
(:class:`PlatformError`, :class:`NotConfigured`). They live apart from
``base.py`` and ``http.py`` so that both, and everything else, import them
without importing each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from trickle.core.clock import clock, ensure_utc
from trickle.core.errors import TrickleError

MAX_RATE_LIMIT_WAIT = timedelta(hours=24)
"""The longest a platform's rate limit may park an account (or pause a platform). GitHub's
windows reset hourly and X's every 15 minutes: a platform asking for more is wrong or hostile,
and waiting a day at most keeps every wait, jitter added, far inside the calendar."""

RateLimitScope = Literal["account", "app"]


class ConnectorError(TrickleError):
    """Base of the typed errors a connector raises."""


class AuthExpired(ConnectorError):
    """The platform no longer accepts the account's credentials (and a refresh, where the
    platform has them, was refused too): the user must link the account again."""


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

    def __init__(self, message: str, retry_at: datetime, scope: RateLimitScope = "account") -> None:
        super().__init__(message)
        self.retry_at = clamp_retry_at(retry_at)
        self.scope = scope


class TransientError(ConnectorError):
    """A failure worth retrying later: timeouts, connection resets, 5xx."""


class PlatformError(ConnectorError):
    """The platform answered something we cannot use (a malformed payload, an unexpected status)."""


class Forbidden(PlatformError):
    """A 403 that is not a rate limit: the credentials lack a permission the poll needs."""


class NotConfigured(ConnectorError):
    """The operator has not given the connector a setting it needs (an app's client id or
    secret, an API key): nothing the user can do, and nothing worth retrying until then."""
