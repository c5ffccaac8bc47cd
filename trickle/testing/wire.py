"""The contract suite's HTTP client: it sees every request a connector sends, and can break answers.

A connector under test is built with a :class:`TappedHttpClient`, an
:class:`~trickle.connectors.http.HttpClient` like the worker's (the same
limits, deadline watchdog, retries, error policy and redaction) whose
transport is tapped: every attempt that goes out is written down in its
:class:`Tap` (the prepared request as it went on the wire, signed, and the
answer that came back), and while a :meth:`Tap.rewriting` block runs every
answer passes through a :data:`Rewrite` before the HTTP layer reads it. So
the suite counts requests and breaks answers itself, for any connector on
any platform, without asking the platform's adapter: a request a connector
sends is counted whether or not it went through the account's session.

The tap is a requests transport adapter mounted over the client's own on each
thread's session; :mod:`trickle.connectors.http` is not changed by it. The
answers are buffered whole (and decoded, their ``Content-Encoding`` removed)
before the HTTP layer reads them: right for the small answers of a test
platform, and the reason this client is for tests only.

The rewrites the suite uses are here too (:func:`html_error_page`,
:func:`truncated_json`, :func:`unavailable`, :func:`spent_rate_limit`), for a
connector's own tests as well.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import requests
import requests.adapters
import urllib3
from urllib3.exceptions import DecodeError, ReadTimeoutError

from trickle.connectors.http import HttpClient

__all__ = [
    "Exchange",
    "Reply",
    "Rewrite",
    "Tap",
    "TappedHttpClient",
    "html_error_page",
    "spent_rate_limit",
    "truncated_json",
    "unavailable",
]

_RATE_LIMIT_HEADERS = frozenset(
    {
        "retry-after",
        "ratelimit",
        *(
            f"{prefix}-{part}"
            for prefix in ("x-ratelimit", "x-rate-limit", "ratelimit")
            for part in ("limit", "remaining", "reset", "used", "resource")
        ),
    }
)
"""Every header :func:`~trickle.connectors.ratelimits.parse_rate_limit` reads (and GitHub's
``used`` and ``resource``), removed before :func:`spent_rate_limit` writes its own."""


@dataclass(frozen=True)
class Reply:
    """An answer as the tap holds it: status, headers and the whole body, decoded."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    reason: str = ""

    def header(self, name: str) -> str | None:
        """A header of the answer, case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def without_headers(self, names: frozenset[str]) -> dict[str, str]:
        """The headers but those in ``names`` (lower case)."""
        return {k: v for k, v in self.headers.items() if k.lower() not in names}

    def json(self) -> Any:
        """The body as JSON, or None when it is none."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


Rewrite = Callable[[requests.PreparedRequest, Reply], Reply]
"""What a rewrite does: the request as it went out and the platform's answer, to the answer
the connector gets instead."""


@dataclass(frozen=True)
class Exchange:
    """One attempt on the wire: the request as sent (signed) and what came back (None: the
    connection failed before an answer)."""

    request: requests.PreparedRequest
    reply: Reply | None
    rewritten: bool = False

    @property
    def method(self) -> str:
        """The request's method."""
        return self.request.method or "GET"

    @property
    def url(self) -> str:
        """The request's URL, query string included."""
        return self.request.url or ""

    def carries(self, secret: str) -> bool:
        """True when ``secret`` went out with the request: in its URL (percent-decoded or
        not), a header or the body."""
        if not secret:
            return False
        body = self.request.body
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        places = [self.url, unquote(self.url), *self.request.headers.values(), text, unquote(text)]
        return any(secret in place for place in places)


@dataclass
class Tap:
    """What one :class:`TappedHttpClient` (and every view of it) saw, and the rewrite in force.

    ``exchanges`` grows by one for every attempt, retries and token-endpoint requests
    included, in the order they went out.
    """

    exchanges: list[Exchange] = field(default_factory=list)
    rewrite: Rewrite | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def attempts(self) -> int:
        """Requests sent so far (each retry counts again)."""
        with self.lock:
            return len(self.exchanges)

    def since(self, start: int) -> list[Exchange]:
        """The exchanges from number ``start`` on (``start``: an earlier :attr:`attempts`)."""
        with self.lock:
            return list(self.exchanges[start:])

    @contextmanager
    def rewriting(self, rewrite: Rewrite) -> Iterator[None]:
        """While the block runs, every answer the client gets passes through ``rewrite``."""
        previous, self.rewrite = self.rewrite, rewrite
        try:
            yield
        finally:
            self.rewrite = previous

    def _record(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)


class _TapAdapter(requests.adapters.BaseAdapter):
    """A transport adapter over the client's own: sends through it, buffers the answer,
    rewrites it if a rewrite is in force, records the exchange, and hands on a fresh
    response over the (maybe rewritten) bytes."""

    def __init__(self, inner: requests.adapters.HTTPAdapter, tap: Tap) -> None:
        super().__init__()
        self.inner = inner
        self.tap = tap

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        try:
            response = self.inner.send(request, **kwargs)
            reply = _buffered(response, request)
        except requests.RequestException:
            self.tap._record(Exchange(request, None))
            raise
        rewrite = self.tap.rewrite
        rewritten = rewrite is not None
        if rewrite is not None:
            reply = rewrite(request, reply)
        self.tap._record(Exchange(request, reply, rewritten))
        return self.inner.build_response(request, _raw(reply, request))

    def close(self) -> None:
        self.inner.close()


def _buffered(response: requests.Response, request: requests.PreparedRequest) -> Reply:
    """``response`` read whole and decoded (the connection goes back to its pool)."""
    try:
        body = response.raw.read(decode_content=True) if response.raw is not None else b""
    except ReadTimeoutError as exc:
        raise requests.ReadTimeout(exc, request=request) from None
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc, request=request) from None
    except urllib3.exceptions.HTTPError as exc:
        raise requests.ConnectionError(exc, request=request) from None
    finally:
        response.close()
    dropped = frozenset({"content-encoding", "content-length", "transfer-encoding"})
    headers = {k: v for k, v in response.headers.items() if k.lower() not in dropped}
    return Reply(response.status_code, headers, body or b"", response.reason or "")


def _raw(reply: Reply, request: requests.PreparedRequest) -> urllib3.HTTPResponse:
    """A urllib3 response streaming ``reply``'s bytes, as the HTTP layer reads any answer."""
    headers = dict(reply.without_headers(frozenset({"content-length", "transfer-encoding"})))
    headers["Content-Length"] = str(len(reply.body))
    return urllib3.HTTPResponse(
        body=io.BytesIO(reply.body),
        headers=headers,
        status=reply.status,
        reason=reply.reason or None,
        preload_content=False,
        decode_content=False,
        request_method=request.method,
        request_url=request.url,
    )


class TappedHttpClient(HttpClient):
    """An :class:`HttpClient` whose every attempt is recorded in :attr:`tap` (and whose answers
    a rewrite may replace); views made with :meth:`with_limits` share the tap.

    The suite's: one retry and no back-off by default, so failures are quick to provoke.
    """

    def __init__(self, *, retries: int = 1, backoff_factor: float = 0.0, **kwargs: Any) -> None:
        super().__init__(retries=retries, backoff_factor=backoff_factor, **kwargs)
        self.retries = retries
        """Retries of a GET after a 5xx or a broken connection: a request costs at most
        ``retries + 1`` attempts."""
        self.tap = Tap()

    @property
    def session(self) -> requests.Session:
        """This thread's session, its transport tapped."""
        session = super().session
        for prefix in ("http://", "https://"):
            adapter = session.adapters[prefix]
            if not isinstance(adapter, _TapAdapter):
                if not isinstance(adapter, requests.adapters.HTTPAdapter):
                    raise TypeError(f"cannot tap a {type(adapter).__name__}")
                session.mount(prefix, _TapAdapter(adapter, self.tap))
        return session


# ---------------------------------------------------------------------------
# The rewrites the suite uses.

HTML_ERROR_PAGE = """<!DOCTYPE html>
<html><head><title>We'll be right back</title></head>
<body><h1>Service temporarily unavailable</h1>
<p>Our engineers have been notified. Please try again in a few minutes.</p></body></html>
"""


def _successful(reply: Reply) -> bool:
    return 200 <= reply.status < 300


def html_error_page(request: requests.PreparedRequest, reply: Reply) -> Reply:
    """A successful answer replaced by what a proxy in front of a platform sends when it is
    down: status 200, ``Content-Type: text/html``, an HTML page."""
    if not _successful(reply):
        return reply
    return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, HTML_ERROR_PAGE.encode())


def truncated_json(request: requests.PreparedRequest, reply: Reply) -> Reply:
    """A successful answer cut off half way (a connection closed early by a proxy), still
    labelled ``application/json``; cut further if the half happens to be JSON itself."""
    if not _successful(reply):
        return reply
    cut = reply.body[: len(reply.body) // 2]
    while cut and Reply(200, {}, cut).json() is not None:
        cut = cut[:-1]
    headers = reply.without_headers(frozenset({"content-type"}))
    headers["Content-Type"] = "application/json; charset=utf-8"
    return replace(reply, headers=headers, body=cut)


def unavailable(request: requests.PreparedRequest, reply: Reply) -> Reply:
    """Every answer is a 503 whose message echoes what the request was signed with (its
    ``Authorization`` header and its URL, query included), as careless platforms do: the
    error the connector raises must be a :class:`TransientError` and show none of it."""
    echoed = f"{request.headers.get('Authorization', '')} {request.url or ''}".strip()
    body = json.dumps({"message": f"Service Unavailable while serving {echoed}"})
    return Reply(503, {"Content-Type": "application/json"}, body.encode(), "Service Unavailable")


def spent_rate_limit(reset: datetime, limit: int = 5000) -> Rewrite:
    """A rewrite: every successful answer says, in ``x-ratelimit-*`` headers (whatever the
    platform's own dialect), that none of the window's ``limit`` requests is left until
    ``reset``; its other rate-limit headers are removed."""

    def rewrite(request: requests.PreparedRequest, reply: Reply) -> Reply:
        if not _successful(reply):
            return reply
        headers = reply.without_headers(_RATE_LIMIT_HEADERS)
        headers.update(
            {
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(reset.timestamp())),
            }
        )
        return replace(reply, headers=headers)

    return rewrite
