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
connector, which it stores, is well-formed and holds no credential. A request
to a host a user named is sent with a :class:`~trickle.connectors.hosts.HostGuard`:
https to public addresses only, the connected socket's own address checked
before a byte is sent (see :mod:`trickle.connectors.hosts`).
"""

from __future__ import annotations

import contextlib
import copy
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
from datetime import datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol
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
from trickle.connectors.errors import (
    AuthExpired,
    Forbidden,
    PlatformError,
    RateLimited,
    RateLimitScope,
    TransientError,
    clamp_retry_at,
)
from trickle.connectors.hosts import HostGuard, HostRefused
from trickle.connectors.policy import DEFAULT_POLICY, Action, Answer, ErrorPolicy
from trickle.connectors.ratelimits import parse_rate_limit
from trickle.connectors.settings import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    ConnectorSettings,
)
from trickle.core.clock import clock, iso_utc
from trickle.core.credentials import contains_secret, redact
from trickle.core.text import printable

log = logging.getLogger(__name__)

USER_AGENT = f"trickle/{__version__} (+https://github.com/trickle-pay/trickle)"
ERROR_BODY_BYTES = 64 * 1024
"""The most read of an error answer's body: enough for its message, which is all trickle uses."""
MAX_ETAG_LENGTH = 256
"""The longest ETag trickle sends back and lets a connector store."""
DETAIL_LENGTH = 200
"""The longest platform error message quoted in an error."""
_READ_CHUNK = 64 * 1024


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


# ---------------------------------------------------------------------------
# The guard of user-named hosts
#
# A request sent with a HostGuard (trickle.connectors.hosts) sets it here for its thread;
# every connection made for it checks the addresses its host resolves to before connecting,
# and the address of the socket it did connect to before a byte is sent, so a name that
# resolves elsewhere the second time (DNS rebinding) is refused all the same; a pooled
# connection is checked again before each request it carries.

_GUARDS = threading.local()


def _current_guard() -> HostGuard | None:
    guard: HostGuard | None = getattr(_GUARDS, "current", None)
    return guard


class _GuardedConnection(urllib3.connection.HTTPConnection):
    """A connection that remembers the address it connected to and holds it to the request's
    guard, if it has one."""

    _trickle_peer: str | None = None

    def _new_conn(self) -> socket.socket:
        guard = _current_guard()
        tls = isinstance(self, urllib3.connection.HTTPSConnection)
        target = self._tunnel_host or self._dns_host
        if guard is not None:
            self._check_resolved(guard, target, self._tunnel_port or self.port, tls)
        sock = super()._new_conn()
        # Through a proxy the peer is the proxy, the operator's choice: only a direct
        # connection's peer is the server.
        self._trickle_peer = None if self.proxy is not None else _peer_address(sock)
        if guard is not None and self._trickle_peer is not None:
            try:
                guard.check_address(target, self._trickle_peer, tls=tls)
            except HostRefused:
                sock.close()
                raise
        return sock

    @staticmethod
    def _check_resolved(guard: HostGuard, host: str, port: int | None, tls: bool) -> None:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return  # unresolvable: the connect fails as it would unguarded
        for _family, _kind, _proto, _name, address in found:
            guard.check_address(host, str(address[0]), tls=tls)

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard = _current_guard()
        if guard is not None and self.sock is not None and self._trickle_peer is not None:
            tls = isinstance(self, urllib3.connection.HTTPSConnection)
            guard.check_address(self._dns_host, self._trickle_peer, tls=tls)  # a pooled one
        super().request(*args, **kwargs)


def _peer_address(sock: socket.socket) -> str | None:
    try:
        peer = sock.getpeername()
    except OSError:
        return None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


class _WatchedHTTPConnection(_GuardedConnection):
    """A connection that tells the watchdog which request is using it."""

    def connect(self) -> None:
        _WATCHDOG.attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _WATCHDOG.attach(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_GuardedConnection, urllib3.connection.HTTPSConnection):
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
    """A ``requests.Session`` that keeps no cookies and reads the proxy and CA-bundle
    environment once per origin.

    A thread's session serves every account the thread polls, so a cookie one account's
    answer set would travel with the next account's requests: the session's jar accepts
    none (an answer's own ``response.cookies`` still shows what it set, for a connector
    that reads them).

    ``requests`` scans the whole process environment (``*_proxy``, ``no_proxy``,
    ``REQUESTS_CA_BUNDLE``) on every request: about a tenth of an unchanged poll's CPU in
    ``bench/poll.py``. The environment a worker starts with is the one it keeps, so each
    thread's session asks once per scheme and host, and then reuses the answer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._environment: dict[tuple[str, str], Any] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
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
        policy: ErrorPolicy = DEFAULT_POLICY,
        rate_limit_scope: RateLimitScope = "account",
        auth: requests.auth.AuthBase | None = None,
        observer: Observer | None = None,
        until: float | None = None,
        guard: HostGuard | None = None,
    ) -> requests.Response:
        """GET ``url``: :meth:`request` with ``If-None-Match: etag`` when ``etag`` is one
        :func:`safe_etag` accepts; the response's ``ETag`` header is left only if it is one
        too."""
        secrets = list(secrets or [])
        send_headers = dict(headers or {})
        conditional = safe_etag(etag, secrets)
        if conditional:
            send_headers["If-None-Match"] = conditional
        response = self.request(
            "GET",
            url,
            params=params,
            headers=send_headers,
            timeout=timeout,
            secrets=secrets,
            policy=policy,
            rate_limit_scope=rate_limit_scope,
            auth=auth,
            observer=observer,
            until=until,
            guard=guard,
        )
        tag = response.headers.get("ETag")
        if tag is not None and safe_etag(tag, secrets) is None:
            del response.headers["ETag"]
        return response

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        secrets: list[str] | None = None,
        policy: ErrorPolicy = DEFAULT_POLICY,
        rate_limit_scope: RateLimitScope = "account",
        auth: requests.auth.AuthBase | None = None,
        observer: Observer | None = None,
        until: float | None = None,
        guard: HostGuard | None = None,
    ) -> requests.Response:
        """Send ``method url`` within :attr:`limits` and turn every failure into a typed
        connector error.

        Returns the response for the statuses ``policy`` accepts, with its body read
        (``response.content``, at most ``limits.max_bytes``). ``data`` is sent form-encoded
        (text and bytes as they are);
        ``auth`` signs the request (the auth layer's, never the operator's netrc).
        ``secrets`` are redacted from any message. ``timeout`` overrides the limits' for
        this call. ``observer`` is told of every attempt and of the final answer, whatever
        its status. ``until`` (a ``time.monotonic()`` value) ends the request sooner than its
        own deadline would, for a caller with a budget of its own (a whole poll). ``guard``
        holds a request to a user-named host to public servers over https
        (:mod:`trickle.connectors.hosts`; :class:`HostRefused` otherwise). Errors: the
        deadline passed, or retries (of GET and HEAD only) ran out on
        connection trouble or a 5xx -> :class:`TransientError`; a body over the cap, a body
        that does not decode, a request that cannot be sent -> :class:`PlatformError`;
        statuses as ``policy`` says.
        """
        secrets = list(secrets or [])
        response, attempts = self._fetch(
            method,
            url,
            params,
            data,
            dict(headers or {}),
            auth,
            timeout or self.limits.timeout,
            secrets,
            policy,
            observer,
            until,
            guard,
        )
        if observer is not None:
            observer.answered(response)
        self._raise_for_status(response, secrets, policy, rate_limit_scope, attempts)
        return response

    def _fetch(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | str | bytes | None,
        headers: Mapping[str, str],
        auth: requests.auth.AuthBase | None,
        timeout: float,
        secrets: list[str],
        policy: ErrorPolicy,
        observer: Observer | None,
        until: float | None,
        guard: HostGuard | None = None,
    ) -> tuple[requests.Response, int]:
        """Send until an answer is read whole or there is no point retrying; returns the last
        answer and the attempts made. Everything, back-off included, ends by the deadline."""
        if guard is not None:
            try:
                guard.check_url(url)
            except HostRefused as refused:
                raise HostRefused(f"{_where(method, url, secrets)}: {refused}") from None
        limits = self.limits
        start = time.monotonic()
        deadline = start + limits.deadline
        if until is not None and until < deadline:
            deadline = until  # the caller's budget ends first: it is this request's deadline
        retry = self._retry
        attempts = 0
        watch = _WATCHDOG.start(deadline)
        outer_guard = _current_guard()
        _GUARDS.current = guard
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _past_deadline(method, url, secrets, deadline - start, attempts)
                attempts += 1
                if observer is not None:
                    observer.sent()
                wait = min(timeout, left)
                failure: Exception
                try:
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        data=data,
                        headers=headers,
                        auth=auth,
                        timeout=(wait, wait),
                        stream=True,
                        allow_redirects=False,
                    )
                except HostRefused as refused:
                    raise HostRefused(f"{_where(method, url, secrets)}: {refused}") from None
                except (requests.ConnectionError, requests.Timeout) as exc:
                    failure = exc
                except requests.RequestException as exc:  # InvalidHeader, InvalidURL...
                    raise PlatformError(
                        f"{_where(method, url, secrets)}: {type(exc).__name__}{_problem(exc)}"
                    ) from None
                else:
                    wanted = policy.wants_body(response.status_code)
                    trouble = _read_body(response, wanted, limits, secrets)
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
                    raise _past_deadline(method, url, secrets, deadline - start, attempts)
                later = _increment(retry, method, url, error=_as_urllib3_error(failure))
                if later is None or not _back_off(later, deadline):
                    raise TransientError(
                        f"{_where(method, url, secrets)}: {type(failure).__name__}"
                        f"{_attempts(attempts)}"
                    ) from None
                retry = later
        finally:
            _GUARDS.current = outer_guard
            _WATCHDOG.end(watch)

    def raise_for_status(
        self,
        response: requests.Response,
        *,
        secrets: list[str],
        policy: ErrorPolicy = DEFAULT_POLICY,
        rate_limit_scope: RateLimitScope = "account",
    ) -> None:
        """Raise the typed error ``policy`` assigns to the response, if any."""
        self._raise_for_status(response, secrets, policy, rate_limit_scope, 1)

    def _raise_for_status(
        self,
        response: requests.Response,
        secrets: list[str],
        policy: ErrorPolicy,
        rate_limit_scope: RateLimitScope,
        attempts: int,
    ) -> None:
        if policy.wants_body(response.status_code):
            return
        now = clock.now()
        detail = _error_detail(response, secrets, policy.message_path)
        limits = parse_rate_limit(response.headers, now)
        action = policy.action(Answer(response, limits, detail))
        if action in (Action.OK, Action.NOT_MODIFIED):
            return
        where = _where(response.request.method or "GET", response.url, secrets)
        status = f"{response.status_code}{' ' + detail if detail else ''}"
        if action is Action.REAUTH:
            raise AuthExpired(
                f"{where}: {status}: the credentials were refused, relink the account"
            )
        if action is Action.RETRY_LATER:
            raise TransientError(f"{where}: {status}{_attempts(attempts)}")
        if action is Action.RATE_LIMIT:
            retry_at = clamp_retry_at(
                _retry_at_in_body(response, policy, now) or limits.wait_until(now), now
            )
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


class Observer(Protocol):
    """Told what one request did: every attempt sent, and the answer it ended with."""

    def sent(self) -> None:
        """One attempt went out (a retry counts again)."""

    def answered(self, response: requests.Response) -> None:
        """The request ended with ``response`` (whatever its status)."""


def _retry_at_in_body(
    response: requests.Response, policy: ErrorPolicy, now: datetime
) -> datetime | None:
    """When a rate-limit answer's body says to try again, if the policy reads bodies."""
    if policy.retry_at_in_body is None:
        return None
    try:
        return policy.retry_at_in_body(response.json(), now)
    except (ValueError, RecursionError, TypeError, KeyError, AttributeError):
        return None


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
    response: requests.Response, wanted: bool, limits: Limits, secrets: list[str]
) -> requests.RequestException | None:
    """Read the body into ``response.content``, streamed and within the cap; returns a failure
    worth retrying (the connection broke) or None. An answer the caller will use that is over
    the cap, or that does not decode, is a :class:`PlatformError`. Of an error answer only
    :data:`ERROR_BODY_BYTES` are kept, for its message. A body not read to its end is closed
    with its connection, never handed back to the pool half read."""
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
        response._content_consumed = True  # type: ignore[attr-defined]  # requests' own, unstubbed
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
    response._content_consumed = True  # type: ignore[attr-defined]  # requests' own, unstubbed
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
    method: str, url: str, secrets: list[str], seconds: float, attempts: int
) -> TransientError:
    tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
    return TransientError(
        f"{_where(method, url, secrets)}: no complete answer within the "
        f"{max(0.0, seconds):.3g} s deadline ({tries})"
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


def _error_detail(
    response: requests.Response, secrets: list[str], path: tuple[str, ...] = ()
) -> str:
    """The platform's own error message when the body carries one (at ``path``, else in a
    top-level key): redacted, escaped, short."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return ""
    if path:
        value: Any = body
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            return printable(redact(value, secrets), DETAIL_LENGTH)
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
