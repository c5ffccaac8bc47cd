"""The one HTTP layer every connector uses.

It gives each connector, for free: a ``requests`` session per thread with
connection pooling; :class:`Limits` on every request (a timeout for each
connect and each wait for data, a total deadline over connecting, waiting for
headers, every retry and its back-off and reading the body, and a cap on the
bytes read and inflated); retries with exponential back-off on connection
errors and 5xx answers (urllib3's ``Retry``, driven here so that the deadline
bounds them); a clear User-Agent; conditional requests (``If-None-Match``);
the platforms' many rate-limit header dialects read into one
:class:`RateLimit`; and an error policy (status code -> typed error) kept as
data rather than as ``if`` chains in every connector.

Every answer is untrusted input. A body is read streamed and stops at the cap
(a gzip bomb is inflated no further than the cap either); a server that drips
one byte at a time, never finishes its headers or never answers at all is cut
off at the deadline by a watchdog that shuts the request's socket; redirects
are not followed; errors name the method, the URL without its query string,
the exception type or status and the platform's own message (redacted,
escaped, bounded), never a library's exception text; and the ETag handed to a
connector, which it stores, is well-formed and holds no credential.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import heapq
import itertools
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3
import urllib3.connection
import urllib3.poolmanager
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from trickle import __version__
from trickle.connectors.base import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    AuthExpired,
    ConnectorSettings,
    PlatformError,
    RateLimited,
    TransientError,
    clamp_retry_at,
)
from trickle.core.clock import clock, ensure_utc, iso_utc
from trickle.core.credentials import contains_secret, redact
from trickle.core.text import printable

log = logging.getLogger(__name__)

USER_AGENT = f"trickle/{__version__} (+https://github.com/trickle-pay/trickle)"
DEFAULT_RETRY_AFTER = timedelta(seconds=60)
ERROR_BODY_BYTES = 64 * 1024
"""The most read of an error answer's body: enough for its message, which is all trickle uses."""
MAX_ETAG_LENGTH = 256
"""The longest ETag trickle sends back and lets a connector store."""
DETAIL_LENGTH = 200
"""The longest platform error message quoted in an error."""
_READ_CHUNK = 64 * 1024
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


# ---------------------------------------------------------------------------
# Limits and ETags


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may cost: ``timeout`` seconds for each connect and each wait for data,
    ``deadline`` seconds in all (connecting, waiting for headers, every retry and its back-off,
    reading the body), and ``max_bytes`` of body, counted both as received and as inflated.

    A connector's limits come from its ``[connectors.NAME]`` settings (:meth:`of`); they hold
    per request, so a client for one endpoint may hold other limits than one for another.
    """

    timeout: float = DEFAULT_TIMEOUT_SECONDS
    deadline: float = DEFAULT_DEADLINE_SECONDS
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        if not (self.timeout > 0 and self.deadline > 0 and self.max_bytes > 0):
            raise ValueError(f"every limit must be positive: {self}")

    @classmethod
    def of(cls, settings: ConnectorSettings) -> Limits:
        """The limits ``settings`` (``timeout_seconds``, ``deadline_seconds``,
        ``max_response_bytes``) set."""
        return cls(
            timeout=settings.timeout_seconds,
            deadline=settings.deadline_seconds,
            max_bytes=settings.max_response_bytes,
        )


# RFC 9110 entity-tag: an optional W/ and a quoted string; here of visible ASCII only.
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]*"')


def safe_etag(value: str | None, secrets: Iterable[str] = ()) -> str | None:
    """``value`` if it is an ETag trickle may send back and store, else None.

    That is: RFC 9110 entity-tag syntax (``W/"..."`` or ``"..."``) of visible ASCII, at most
    :data:`MAX_ETAG_LENGTH` characters, holding none of ``secrets`` in any form
    :func:`~trickle.core.credentials.contains_secret` finds. A poll state is stored as plain
    JSON, so an ETag that echoed the token would put the token in the database; refusing it
    costs one unconditional request.
    """
    if value is None or len(value) > MAX_ETAG_LENGTH or not _ENTITY_TAG.fullmatch(value):
        return None
    return None if contains_secret(value, secrets) else value


# ---------------------------------------------------------------------------
# The deadline watchdog
#
# A socket timeout bounds each wait for data, not a request: a server sending a byte
# every few seconds, or headers that never end, stays within it forever. So every
# request registers its deadline with one watchdog thread, and the connections it uses
# (their connect() and request() report in) are shut down if it is still running then:
# the blocked read returns at once and the request fails as past its deadline.


class _Watch:
    """One request's deadline and the connection it is using, as the watchdog sees them."""

    __slots__ = ("connection", "deadline", "done", "expired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connection: Any = None
        self.expired = False
        self.done = False


def _shut(connection: Any) -> None:
    """Shut the connection's socket down, so that whoever is blocked reading it returns."""
    sock = getattr(connection, "sock", None)
    if sock is not None and not isinstance(sock, socket.socket):
        sock = getattr(sock, "socket", None)  # urllib3's SSLTransport (TLS in TLS) wraps one
    if isinstance(sock, socket.socket):
        # The plain socket's shutdown, also for an SSLSocket (whose own drops its TLS state
        # under the reading thread); OSError: closed already, or never connected.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """Shuts down the connections of requests still running at their deadline."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()  # held with `with`: C-level, cheaper than a Condition's
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Watch]] = []
        self._sequence = itertools.count()
        self._live = 0
        self._thread: threading.Thread | None = None
        self._current = threading.local()

    def start(self, deadline: float) -> _Watch:
        """Watch the calling thread's request from now until :meth:`end`."""
        watch = _Watch(deadline)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="trickle-http-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._sequence), watch))
            self._live += 1
            if self._heap[0][2] is watch:
                self._wake.notify()
        self._current.watch = watch
        return watch

    def end(self, watch: _Watch) -> None:
        """The request is over: its connection is not shut down, whatever the time."""
        self._current.watch = None
        with self._lock:
            watch.done = True
            watch.connection = None
            self._live -= 1
            if len(self._heap) > 64 and len(self._heap) > 4 * self._live:
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)

    def attach(self, connection: Any) -> None:
        """The calling thread's request is about to use ``connection``."""
        watch: _Watch | None = getattr(self._current, "watch", None)
        if watch is None:
            return
        with self._lock:
            if not watch.done:
                watch.connection = connection
                if watch.expired:
                    _shut(connection)

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                _, _, watch = heapq.heappop(self._heap)
                watch.expired = True
                if watch.connection is not None:
                    try:
                        _shut(watch.connection)
                    except Exception:  # one odd connection must not end every deadline
                        log.exception("could not cut off a request past its deadline")


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG._reset)  # a forked child has no watchdog thread


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    """A connection that tells the watchdog which request is using it."""

    def connect(self) -> None:
        _WATCHDOG.attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _WATCHDOG.attach(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    """A TLS connection that tells the watchdog which request is using it (from before the
    handshake on)."""

    def connect(self) -> None:
        _WATCHDOG.attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _WATCHDOG.attach(self)
        super().request(*args, **kwargs)


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    """requests' adapter on pools of watched connections, retrying nothing itself
    (:class:`HttpClient` retries, within the deadline)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: Any, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # An HTTP(S) proxy's pools are the standard ones; a SOCKS proxy's are its own.
        if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


# ---------------------------------------------------------------------------
# Sessions


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
        if proxies or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(str(url))
        origin = (parts.scheme, parts.netloc)
        settings = self._environment.get(origin)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, None, None, None)
            self._environment[origin] = settings
        merged = {k: dict(v) if isinstance(v, dict) else v for k, v in settings.items()}
        if stream is not None:
            merged["stream"] = stream
        return merged


class _ConnectorHeadersOnly(requests.auth.AuthBase):
    """Authentication is whatever headers the connector sends.

    Set as the session's ``auth``, it stops ``requests`` from replacing the
    connector's ``Authorization`` header with an entry of the operator's
    ``~/.netrc`` for the platform's host, which would poll every account as
    the operator.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


# ---------------------------------------------------------------------------
# The client


class HttpClient:
    """Shared HTTP plumbing for connectors; one instance serves all threads of a worker.

    Each connector gets a view of the process's client with its own :class:`Limits`
    (:meth:`with_limits`), sharing the per-thread sessions and their connection pools.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        retries: int = 3,
        backoff_factor: float = 0.5,
        pool_size: int = 32,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.limits = Limits(timeout=timeout, deadline=deadline, max_bytes=max_response_bytes)
        self.user_agent = user_agent
        self._retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=retries,
            redirect=False,
            backoff_factor=backoff_factor,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self._pool_size = pool_size
        self._local = threading.local()

    @property
    def timeout(self) -> float:
        """Seconds each connect and each wait for data may take."""
        return self.limits.timeout

    def with_limits(self, limits: Limits) -> HttpClient:
        """A view of this client that holds ``limits``: same sessions, pools, retry policy and
        User-Agent, so it costs nothing to make one per connector (or per endpoint)."""
        view = copy.copy(self)
        view.limits = limits
        return view

    @property
    def session(self) -> requests.Session:
        """This thread's session (``requests.Session`` is not meant to be shared by threads)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = _Session()
            adapter = _Adapter(max_retries=0, pool_connections=4, pool_maxsize=self._pool_size)
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
        """GET ``url`` within :attr:`limits` and turn every failure into a typed connector error.

        Returns the response for 2xx and 304 with its body read (``response.content``, at most
        ``limits.max_bytes``). ``If-None-Match: etag`` is sent when ``etag`` is one
        :func:`safe_etag` accepts, and the response's ``ETag`` header is left only if it is one
        too. ``secrets`` are redacted from any message. ``timeout`` overrides the limits' for
        this call. Errors: the deadline passed, or retries ran out on connection trouble or a
        5xx -> :class:`TransientError`; a body over the cap, a body that does not decode, a
        request that cannot be sent -> :class:`PlatformError`; statuses as ``policy`` says.
        """
        secrets = list(secrets or [])
        send_headers = dict(headers or {})
        conditional = safe_etag(etag, secrets)
        if conditional:
            send_headers["If-None-Match"] = conditional
        response, attempts = self._fetch(
            "GET", url, params, send_headers, timeout or self.limits.timeout, secrets, policy
        )
        self._raise_for_status(response, secrets, policy, rate_limit_scope, attempts)
        tag = response.headers.get("ETag")
        if tag is not None and safe_etag(tag, secrets) is None:
            del response.headers["ETag"]
        return response

    def _fetch(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        timeout: float,
        secrets: list[str],
        policy: Mapping[int, Action],
    ) -> tuple[requests.Response, int]:
        """Send until an answer is read whole or there is no point retrying; returns the last
        answer and the attempts made. Everything, back-off included, ends by the deadline."""
        limits = self.limits
        deadline = time.monotonic() + limits.deadline
        retry = self._retry
        attempts = 0
        watch = _WATCHDOG.start(deadline)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _past_deadline(method, url, secrets, limits, attempts)
                attempts += 1
                wait = min(timeout, left)
                failure: Exception
                try:
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        headers=headers,
                        timeout=(wait, wait),
                        stream=True,
                        allow_redirects=False,
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    failure = exc
                except requests.RequestException as exc:  # InvalidHeader, InvalidURL...
                    raise PlatformError(
                        f"{_where(method, url, secrets)}: {type(exc).__name__}{_problem(exc)}"
                    ) from None
                else:
                    action = action_for(response.status_code, policy)
                    trouble = _read_body(response, action, limits, secrets)
                    if trouble is None:
                        if not retry.is_retry(method, response.status_code):
                            return response, attempts
                        raw = response.raw if isinstance(response.raw, BaseHTTPResponse) else None
                        later = _increment(retry, method, url, response=raw)
                        if later is None or not _back_off(later, deadline):
                            return response, attempts
                        retry = later
                        continue
                    failure = trouble
                if watch.expired or time.monotonic() >= deadline:
                    raise _past_deadline(method, url, secrets, limits, attempts)
                later = _increment(retry, method, url, error=_as_urllib3_error(failure))
                if later is None or not _back_off(later, deadline):
                    raise TransientError(
                        f"{_where(method, url, secrets)}: {type(failure).__name__}"
                        f"{_attempts(attempts)}"
                    ) from None
                retry = later
        finally:
            _WATCHDOG.end(watch)

    def raise_for_status(
        self,
        response: requests.Response,
        *,
        secrets: list[str],
        policy: Mapping[int, Action] = DEFAULT_STATUS_POLICY,
        rate_limit_scope: Literal["account", "app"] = "account",
    ) -> None:
        """Raise the typed error ``policy`` assigns to the response's status, if any."""
        self._raise_for_status(response, secrets, policy, rate_limit_scope, 1)

    def _raise_for_status(
        self,
        response: requests.Response,
        secrets: list[str],
        policy: Mapping[int, Action],
        rate_limit_scope: Literal["account", "app"],
        attempts: int,
    ) -> None:
        action = action_for(response.status_code, policy)
        if action in (Action.OK, Action.NOT_MODIFIED):
            return
        now = clock.now()
        where = _where(response.request.method or "GET", response.url, secrets)
        detail = _error_detail(response, secrets)
        status = f"{response.status_code}{' ' + detail if detail else ''}"
        if action is Action.REAUTH:
            raise AuthExpired(
                f"{where}: {status}: the credentials were refused, relink the account"
            )
        if action is Action.RETRY_LATER:
            raise TransientError(f"{where}: {status}{_attempts(attempts)}")
        limits = parse_rate_limit(response.headers, now)
        if action is Action.RATE_LIMIT or (
            action is Action.FORBIDDEN
            and (limits.exhausted or limits.retry_after or "rate limit" in detail.lower())
        ):
            retry_at = limits.wait_until(now)
            raise RateLimited(
                f"{where}: {status}: rate limited until {iso_utc(retry_at)}",
                retry_at,
                rate_limit_scope,
            )
        if action is Action.FORBIDDEN:
            raise Forbidden(f"{where}: {status}")
        if 300 <= response.status_code < 400:
            status += " (a redirect: not followed)"
        raise PlatformError(f"{where}: {status}")


_REQUEST_PROBLEMS: Mapping[type[Exception], str] = {
    requests.exceptions.InvalidHeader: ": a request header is not valid (a line break in it?)",
    requests.exceptions.InvalidURL: ": the URL is not valid",
    requests.exceptions.MissingSchema: ": the URL has no scheme",
    requests.exceptions.InvalidSchema: ": the URL's scheme is not http or https",
}
"""What a request that could not be sent means, by exception type: the exception's own text
may quote header values (credentials) and is never shown."""


def _problem(exc: requests.RequestException) -> str:
    """A few words on what went wrong, for the exception types that have them."""
    if isinstance(exc, requests.exceptions.InvalidHeader) and exc.request is not None:
        return ": the answer's headers are not valid"  # raised reading the answer, not sending
    return _REQUEST_PROBLEMS.get(type(exc), "")


def _read_body(
    response: requests.Response, action: Action, limits: Limits, secrets: list[str]
) -> requests.RequestException | None:
    """Read the body into ``response.content``, streamed and within the cap; returns a failure
    worth retrying (the connection broke) or None. An answer the caller will use that is over
    the cap, or that does not decode, is a :class:`PlatformError`. Of an error answer only
    :data:`ERROR_BODY_BYTES` are kept, for its message. A body not read to its end is closed
    with its connection, never handed back to the pool half read."""
    wanted = action in (Action.OK, Action.NOT_MODIFIED)
    cap = limits.max_bytes if wanted else min(limits.max_bytes, ERROR_BODY_BYTES)
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    length = response.headers.get("Content-Length", "").strip()
    complete = True
    chunks: list[bytes] = []
    if encoding in ("", "identity") and length.isdigit() and int(length) > cap:
        complete = False  # said so up front: not a byte is read
    else:
        size = 0
        raw = response.raw
        tell = raw.tell if isinstance(raw, BaseHTTPResponse) else None
        try:
            for chunk in response.iter_content(min(_READ_CHUNK, cap + 1)):
                size += len(chunk)
                chunks.append(chunk)
                if size > cap or (tell is not None and tell() > cap):
                    complete = False
                    break
        except requests.exceptions.ContentDecodingError:
            response.close()
            raise PlatformError(
                f"{_where(response.request.method or 'GET', response.url, secrets)}: "
                f"{response.status_code}: the body does not decode as its Content-Encoding "
                f"({printable(encoding, 40)}) says"
            ) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            response.close()
            return exc
    body = b"".join(chunks)
    if complete:
        response._content = body
        response._content_consumed = True
        response.close()  # read to its end: the connection goes back to the pool
        return None
    response.close()
    if wanted:
        raise PlatformError(
            f"{_where(response.request.method or 'GET', response.url, secrets)}: "
            f"{response.status_code}: the answer is larger than the {_size(cap)} limit "
            f"(max_response_bytes)"
        )
    response._content = body[:cap]
    response._content_consumed = True
    return None


def _as_urllib3_error(exc: Exception) -> Exception:
    """The urllib3 error behind a requests exception, which urllib3's ``Retry`` classifies
    (connect, read or other)."""
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.HTTPError):
        return cause
    if isinstance(exc, requests.ConnectTimeout):
        return ConnectTimeoutError("connect timed out")
    if isinstance(exc, requests.ReadTimeout):
        return ReadTimeoutError(None, "", "read timed out")  # type: ignore[arg-type]
    return ProtocolError("connection broken")


def _increment(
    retry: Retry,
    method: str,
    url: str,
    *,
    error: Exception | None = None,
    response: BaseHTTPResponse | None = None,
) -> Retry | None:
    """The retry policy after one more failure, or None when it allows no more attempts."""
    try:
        return retry.increment(
            method=method, url=_without_query(url), error=error, response=response
        )
    except urllib3.exceptions.HTTPError:  # MaxRetryError, or the error re-raised: none left
        return None


def _back_off(retry: Retry, deadline: float) -> bool:
    """Sleep the policy's back-off, if it ends before the deadline; False if it would not."""
    pause = retry.get_backoff_time()
    if pause >= deadline - time.monotonic():
        return False
    if pause > 0:
        time.sleep(pause)
    return True


def _past_deadline(
    method: str, url: str, secrets: list[str], limits: Limits, attempts: int
) -> TransientError:
    tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
    return TransientError(
        f"{_where(method, url, secrets)}: no complete answer within the "
        f"{limits.deadline:g} s deadline ({tries})"
    )


def _attempts(attempts: int) -> str:
    return f" ({attempts} attempts)" if attempts > 1 else ""


def _size(count: int) -> str:
    if count % (1 << 20) == 0:
        return f"{count >> 20} MiB"
    if count % 1024 == 0:
        return f"{count >> 10} KiB"
    return f"{count:,} bytes"


def _where(method: str, url: str, secrets: list[str]) -> str:
    """``METHOD URL`` as errors name a request: no query string, no secret, printable."""
    return printable(redact(f"{method} {_without_query(url)}", secrets), 300)


def _error_detail(response: requests.Response, secrets: list[str]) -> str:
    """The platform's own error message when the body carries one: redacted, escaped, short."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return ""
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str):
                return printable(redact(value, secrets), DETAIL_LENGTH)
    return ""


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or :class:`PlatformError` for HTML pages, truncated bodies and JSON
    nested too deeply to decode."""
    where = _where(response.request.method or "GET", response.url, [])
    try:
        return response.json()
    except RecursionError:
        raise PlatformError(
            f"{where}: the JSON is nested too deeply ({len(response.content)} bytes)"
        ) from None
    except ValueError:
        kind = printable(response.headers.get("Content-Type", "unknown content type"), 100)
        raise PlatformError(
            f"{where}: expected JSON, got {kind} ({len(response.content)} bytes)"
        ) from None


def _without_query(url: str) -> str:
    """``url`` without its query string, which may carry an API key (Flickr's ``api_key``)."""
    try:
        return urlsplit(url)._replace(query="", fragment="").geturl()
    except ValueError:  # not a URL at all ("http://[::1"): keep what precedes any query
        return url.partition("?")[0].partition("#")[0]
