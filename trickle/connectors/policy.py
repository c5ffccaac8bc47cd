"""Error policy as data: what each answer of a platform means, declared per connector.

The HTTP layer reads every answer through an :class:`ErrorPolicy`: a table
from status code to :class:`Action` (the shared defaults, which a connector
overrides where its platform differs), and two hooks for platforms that say
more in the body than in the status: an error inside a 200 (Flickr's
``{"stat": "fail"}``) and a rate-limit reset in a 429's body (SoundCloud's).
A status may map to a rule instead of an action, a function of the answer
(its headers' rate-limit state and the platform's message): that is how
GitHub says that its 403 is a rate limit when the headers say the budget is
spent, in GitHub's own table rather than in the shared layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

import requests

from trickle.connectors.errors import ConnectorError
from trickle.connectors.ratelimits import RateLimit


class Action(Enum):
    """What an answer means for the request that got it."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    REAUTH = "reauth"
    """The credentials were refused: refresh once where the auth can, else :class:`AuthExpired`."""
    RATE_LIMIT = "rate_limit"
    """:class:`RateLimited`, until the time the answer names."""
    FORBIDDEN = "forbidden"
    """:class:`Forbidden`: allowed in, but not to this."""
    RETRY_LATER = "retry_later"
    """:class:`TransientError`."""
    FAIL = "fail"
    """:class:`PlatformError`."""


@dataclass(frozen=True)
class Answer:
    """What a status rule is shown of an answer: the response, its rate-limit headers read,
    and the platform's own message (redacted, escaped; empty when it gave none)."""

    response: requests.Response
    rate_limit: RateLimit
    detail: str


StatusRule = Action | Callable[[Answer], Action]
"""An action, or a function of the answer that picks one."""

DEFAULT_STATUSES: Mapping[int, StatusRule] = {
    200: Action.OK,
    201: Action.OK,
    204: Action.OK,
    304: Action.NOT_MODIFIED,
    401: Action.REAUTH,
    403: Action.FORBIDDEN,
    408: Action.RETRY_LATER,
    429: Action.RATE_LIMIT,
}
"""The shared defaults; a 5xx not listed is RETRY_LATER, anything else not listed FAIL."""

BodyError = Callable[[requests.Response, Any], ConnectorError | None]
"""Reads a successful answer's JSON and returns the error it reports, if it reports one. The
session redacts credentials from the error's text and then bounds it: quote the platform's
words whole (cut short first, an echoed token would no longer be recognised)."""
BodyRetryAt = Callable[[Any, datetime], datetime | None]
"""Reads a rate-limit answer's JSON (and now) and returns when to try again, if it says."""


@dataclass(frozen=True)
class ErrorPolicy:
    """How one connector reads its platform's answers (see the module)."""

    statuses: Mapping[int, StatusRule] = field(default_factory=lambda: dict(DEFAULT_STATUSES))
    error_in_body: BodyError | None = None
    retry_at_in_body: BodyRetryAt | None = None
    message_path: tuple[str, ...] = ()
    """Where an error answer's JSON holds the platform's message when not in a top-level key
    (App.net's and pnut.io's envelope: ``("meta", "error_message")``); the top-level keys
    (``message``, ``error_description``...) are read when it holds none."""

    def with_statuses(self, statuses: Mapping[int, StatusRule]) -> ErrorPolicy:
        """This policy with some statuses mapped differently (the others kept)."""
        return replace(self, statuses={**self.statuses, **statuses})

    def declared(self, status: int) -> StatusRule:
        """The rule for ``status``: the table's, else RETRY_LATER for a 5xx, else FAIL."""
        rule = self.statuses.get(status)
        if rule is not None:
            return rule
        return Action.RETRY_LATER if status >= 500 else Action.FAIL

    def wants_body(self, status: int) -> bool:
        """True when an answer with ``status`` is one the caller reads in full (not an error,
        whose body is read only as far as its message)."""
        return self.declared(status) in (Action.OK, Action.NOT_MODIFIED)

    def action(self, answer: Answer) -> Action:
        """What ``answer`` means."""
        rule = self.declared(answer.response.status_code)
        return rule if isinstance(rule, Action) else rule(answer)


DEFAULT_POLICY = ErrorPolicy()
"""The shared defaults, for connectors whose platform speaks plain HTTP."""

TOKEN_ENDPOINT_POLICY = ErrorPolicy(
    statuses={**DEFAULT_STATUSES, 400: Action.OK, 401: Action.OK, 403: Action.OK}
)
"""For an OAuth token endpoint: its 400s and 401s carry an OAuth error (``invalid_grant``...)
in the body, which the OAuth client reads; 429 and 5xx keep their meaning."""
