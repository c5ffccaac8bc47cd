"""The one HTTP layer every connector uses.

It gives each connector, for free: a ``requests`` session per thread with
connection pooling, timeouts, retries with exponential back-off on connection
errors and 5xx answers (urllib3's ``Retry``), a clear User-Agent, conditional
requests (``If-None-Match``), the platforms' many rate-limit header dialects
read into one :class:`RateLimit`, and an error policy (status code -> typed
error) kept as data rather than as ``if`` chains in every connector.
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from trickle import __version__
from trickle.connectors.base import (
    AuthExpired,
    PlatformError,
    RateLimited,
    TransientError,
    clamp_retry_at,
)
from trickle.core.clock import clock, ensure_utc
from trickle.core.credentials import redact

USER_AGENT = f"trickle/{__version__} (+https://github.com/trickle-pay/trickle)"
DEFAULT_RETRY_AFTER = timedelta(seconds=60)
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


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        value = lowered.get(name.lower())
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
    platform gave it; :func:`~trickle.connectors.base.clamp_retry_at` decides how long
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


class Forbidden(PlatformError):
    """A 403 that is not a rate limit: the credentials lack a permission the poll needs."""


class Action(Enum):
    """What an HTTP status means for a poll."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    REAUTH = "reauth"  # AuthExpired
    RATE_LIMIT = "rate_limit"  # RateLimited
    FORBIDDEN = "forbidden"  # RateLimited if the headers say so, else PlatformError
    RETRY_LATER = "retry_later"  # TransientError
    FAIL = "fail"  # PlatformError


DEFAULT_STATUS_POLICY: Mapping[int, Action] = {
    200: Action.OK,
    201: Action.OK,
    204: Action.OK,
    304: Action.NOT_MODIFIED,
    401: Action.REAUTH,
    403: Action.FORBIDDEN,
    408: Action.RETRY_LATER,
    429: Action.RATE_LIMIT,
}
"""Status -> action; 5xx not listed here is RETRY_LATER, anything else FAIL."""


def action_for(status: int, policy: Mapping[int, Action] = DEFAULT_STATUS_POLICY) -> Action:
    """Look ``status`` up in ``policy``."""
    if status in policy:
        return policy[status]
    if status >= 500:
        return Action.RETRY_LATER
    return Action.FAIL


class _Session(requests.Session):
    """A ``requests.Session`` that reads the proxy and CA-bundle environment once per origin.

    ``requests`` scans the whole process environment (``*_proxy``, ``no_proxy``,
    ``REQUESTS_CA_BUNDLE``) on every request: about a tenth of an unchanged poll's CPU in
    ``bench/poll.py``. The environment a worker starts with is the one it keeps, so each
    thread's session asks once per scheme and host, and then reuses the answer.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(str(url))
        origin = (parts.scheme, parts.netloc)
        settings = self._environment.get(origin)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, None, None, None)
            self._environment[origin] = settings
        return {k: dict(v) if isinstance(v, dict) else v for k, v in settings.items()}


class _ConnectorHeadersOnly(requests.auth.AuthBase):
    """Authentication is whatever headers the connector sends.

    Set as the session's ``auth``, it stops ``requests`` from replacing the
    connector's ``Authorization`` header with an entry of the operator's
    ``~/.netrc`` for the platform's host, which would poll every account as
    the operator.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class HttpClient:
    """Shared HTTP plumbing for connectors; one instance serves all threads of a worker."""

    def __init__(
        self,
        *,
        timeout: float = 20.0,
        retries: int = 3,
        backoff_factor: float = 0.5,
        pool_size: int = 32,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self._retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff_factor,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self._pool_size = pool_size
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        """This thread's session (``requests.Session`` is not meant to be shared by threads)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = _Session()
            adapter = HTTPAdapter(
                max_retries=self._retry,
                pool_connections=4,
                pool_maxsize=self._pool_size,
            )
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = self.user_agent
            session.auth = _ConnectorHeadersOnly()
            self._local.session = session
        return session

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
        timeout: float | None = None,
        secrets: list[str] | None = None,
        policy: Mapping[int, Action] = DEFAULT_STATUS_POLICY,
        rate_limit_scope: Literal["account", "app"] = "account",
    ) -> requests.Response:
        """GET ``url`` and turn every failure into a typed connector error.

        Returns the response for 2xx and 304 (``If-None-Match: etag`` is sent
        when ``etag`` is given). ``secrets`` are redacted from any message.
        """
        send_headers = dict(headers or {})
        if etag:
            send_headers["If-None-Match"] = etag
        try:
            response = self.session.get(
                url, params=params, headers=send_headers, timeout=timeout or self.timeout
            )
        except requests.exceptions.RetryError as exc:
            raise TransientError(
                redact(f"GET {url}: gave up after retries", secrets or [])
            ) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            message = f"GET {url}: {type(exc).__name__}"
            raise TransientError(redact(message, secrets or [])) from None
        except requests.RequestException as exc:
            raise PlatformError(redact(f"GET {url}: {exc}", secrets or [])) from None
        self.raise_for_status(
            response, secrets=secrets or [], policy=policy, rate_limit_scope=rate_limit_scope
        )
        return response

    def raise_for_status(
        self,
        response: requests.Response,
        *,
        secrets: list[str],
        policy: Mapping[int, Action] = DEFAULT_STATUS_POLICY,
        rate_limit_scope: Literal["account", "app"] = "account",
    ) -> None:
        """Raise the typed error ``policy`` assigns to the response's status, if any."""
        action = action_for(response.status_code, policy)
        if action in (Action.OK, Action.NOT_MODIFIED):
            return
        now = clock.now()
        where = redact(f"{response.request.method} {_without_query(response.url)}", secrets)
        detail = redact(_error_detail(response), secrets)
        status = f"{response.status_code}{' ' + detail if detail else ''}"
        if action is Action.REAUTH:
            raise AuthExpired(
                f"{where}: {status}: the credentials were refused, relink the account"
            )
        if action is Action.RETRY_LATER:
            raise TransientError(f"{where}: {status}")
        limits = parse_rate_limit(response.headers, now)
        if action is Action.RATE_LIMIT or (
            action is Action.FORBIDDEN
            and (limits.exhausted or limits.retry_after or "rate limit" in detail.lower())
        ):
            raise RateLimited(
                f"{where}: {status}: rate limited", limits.wait_until(now), rate_limit_scope
            )
        if action is Action.FORBIDDEN:
            raise Forbidden(f"{where}: {status}")
        raise PlatformError(f"{where}: {status}")


def _error_detail(response: requests.Response) -> str:
    """The platform's own error message when the body carries one, kept short."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:200]
    return ""


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or :class:`PlatformError` for HTML pages and truncated bodies."""
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        kind = response.headers.get("Content-Type", "unknown content type")
        raise PlatformError(
            f"GET {_without_query(response.url)}: expected JSON, got {kind} "
            f"({len(response.content)} bytes)"
        ) from None


def _without_query(url: str) -> str:
    """``url`` without its query string, which may carry an API key (Flickr's ``api_key``)."""
    return urlsplit(url)._replace(query="", fragment="").geturl()
