"""A platform API on 127.0.0.1: the base for fake platforms in demos, tests and benchmarks.

Subclasses register routes (``@route("GET", "/user/starred")``; a segment in
braces, ``@route("DELETE", "/applications/{client_id}/token")``, matches any one
segment, read back from :attr:`Request.path_params`) that take a
:class:`Request` (its query, headers and body, a form's fields for an OAuth
token endpoint) and return a :class:`FakeResponse`. The server runs in a
background thread, can delay every answer (``latency``) to imitate a real
platform's round trip, and keeps a per-account log of concurrent requests,
so a test can assert that no account was ever polled by two workers at once, and
the most requests it ever served at once (``max_active``), for concurrency caps.

A platform can also misbehave, so tests can show that trickle survives it: a
:class:`FakeResponse` whose body is an iterator of bytes is streamed (chunked,
endless if the iterator is, at a drip with ``pace``), and a :class:`RawAnswer`
writes bytes no HTTP server would (headers one byte at a time) or holds the
connection without a word until the fake stops.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self, TypeVar, cast
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

MAX_BODY_BYTES = 1 << 20
"""The largest request body a fake platform reads (a token request is a few hundred bytes)."""

Handler = Callable[["FakePlatform", "Request"], "Answer"]
PlatformT = TypeVar("PlatformT", bound="FakePlatform")


@dataclass(frozen=True)
class Request:
    """An incoming request as a route sees it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    """The request's body as sent (empty for a GET)."""
    received: float = 0.0
    """``time.monotonic()`` when the platform had read the whole request."""
    path_params: Mapping[str, str] = field(default_factory=dict)
    """The segments a templated route's braces matched (``{"client_id": "Iv1.abc"}``)."""
    query_string: str = ""
    """The query as sent, undecoded: :attr:`query` keeps one value per name, while an OAuth
    server must see a parameter sent twice, and an OAuth 1.0a signature covers every one."""

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        """Every query parameter in the order sent, decoded, blank values kept."""
        return parse_qsl(self.query_string, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @property
    def is_form(self) -> bool:
        """True when the body is declared an HTML form (``application/x-www-form-urlencoded``),
        as OAuth token requests are (RFC 6749 section 4.1.3)."""
        kind = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        return kind == "application/x-www-form-urlencoded"

    @property
    def form(self) -> Mapping[str, list[str]]:
        """The form fields of the body, each with every value it was given (a parameter sent
        twice is something an OAuth server must refuse); empty unless :attr:`is_form`."""
        if not self.is_form:
            return {}
        text = self.body.decode("utf-8", errors="replace")
        return parse_qs(text, keep_blank_values=True)

    def field(self, name: str) -> str | None:
        """The form field ``name`` if it was given exactly once, else None."""
        values = self.form.get(name)
        return values[0] if values is not None and len(values) == 1 else None


@dataclass
class FakeResponse:
    """What a route answers.

    ``body`` is bytes or text as it is, an iterator of bytes to stream piece by piece
    (with ``Transfer-Encoding: chunked`` unless ``headers`` set a ``Content-Length``;
    an endless iterator makes an endless body), or anything else, sent as JSON.
    ``pace`` is the seconds to wait before each streamed piece: a slow drip.
    """

    status: int = 200
    body: bytes | str | Iterator[bytes] | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    pace: float = 0.0

    @property
    def streamed(self) -> bool:
        """True when the body is an iterator of pieces, sent as they come."""
        return isinstance(self.body, Iterator)

    def encoded(self) -> bytes:
        """The body as bytes; anything not bytes or str is sent as JSON."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        if self.streamed:
            raise TypeError("a streamed body has no encoded form: it is sent piece by piece")
        self.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return json.dumps(self.body).encode()


@dataclass
class RawAnswer:
    """Bytes written to the connection exactly as given, status line and headers included,
    ``pace`` seconds before each piece; then, with ``hold``, the connection stays open and
    silent until the fake platform stops. ``RawAnswer(hold=True)`` accepts a request and never
    answers it; ``RawAnswer(iter(b"HTTP/1.1 200 OK..."), pace=0.5)`` drips the headers."""

    data: Iterable[bytes] = ()
    pace: float = 0.0
    hold: bool = False


Answer = FakeResponse | RawAnswer
"""What a route may return."""


def route(
    method: str, path: str
) -> Callable[[Callable[[PlatformT, Request], Answer]], Callable[[PlatformT, Request], Answer]]:
    """Mark a FakePlatform method (of any subclass) as the handler of ``method path``."""

    def mark(
        handler: Callable[[PlatformT, Request], Answer],
    ) -> Callable[[PlatformT, Request], Answer]:
        handler.__fake_route__ = (method, path)  # type: ignore[attr-defined]
        return handler

    return mark


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    platform: FakePlatform

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (a killed worker, a timed-out request) is not news.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers, 40 ms on Linux, on every answer with a body.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        """A connection was accepted: count it."""
        super().setup()
        platform = self.server.platform
        with platform.lock:
            platform.connections += 1

    def do_GET(self) -> None:
        self.server.platform._serve(self, "GET")

    def do_POST(self) -> None:
        self.server.platform._serve(self, "POST")

    def do_DELETE(self) -> None:
        self.server.platform._serve(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


class FakePlatform:
    """Base class of fake platform APIs served on 127.0.0.1."""

    routes: ClassVar[dict[tuple[str, str], Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.routes = dict(getattr(cls, "routes", {}))
        for attribute in vars(cls).values():
            marked = getattr(attribute, "__fake_route__", None)
            if marked:
                cls.routes[marked] = attribute

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.lock = threading.RLock()
        self.requests: Counter[str] = Counter()  # per account key
        self.total_requests = 0
        self.connections = 0  # TCP connections accepted: keep-alive shows as fewer than requests
        self.overlaps: list[tuple[str, str]] = []
        self.max_active = 0  # the most requests served at the same time, all accounts together
        self._active: Counter[str] = Counter()
        self._active_total = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # ends drips and held connections when set

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        """Serve on a free port of 127.0.0.1 in a background thread."""
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _RequestHandler)
        server.platform = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for the loop to look: 0.5 s by default
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (streams, drips and held connections end too)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the fake platform is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def active(self) -> int:
        """Requests being served right now (read, not yet answered)."""
        with self.lock:
            return self._active_total

    # -- hooks -------------------------------------------------------------

    def account_key(self, request: Request) -> str | None:
        """Which account a request acts for (for the overlap log); None if none."""
        return request.header("Authorization")

    # -- serving -------------------------------------------------------------

    def _serve(self, handler: _RequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        declared = (handler.headers.get("Content-Length") or "0").strip()
        length = int(declared) if declared.isdigit() else -1
        if not 0 <= length <= MAX_BODY_BYTES:  # unreadable: answer, and drop the connection
            handler.close_connection = True
            self._write_whole(handler, FakeResponse(413, {"message": "bad request body length"}))
            return
        request = Request(
            method=method,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers=dict(handler.headers.items()),
            body=handler.rfile.read(length) if length else b"",
            received=time.monotonic(),
            query_string=parts.query,
        )
        key = self.account_key(request)
        with self.lock:
            self.total_requests += 1
            self._active_total += 1
            self.max_active = max(self.max_active, self._active_total)
            if key is not None:
                self.requests[key] += 1
                self._active[key] += 1
                if self._active[key] > 1:
                    self.overlaps.append((key, request.path))
        try:
            if self.latency:
                time.sleep(self.latency)
            found, params = self._route(method, request.path)
            if params:
                request = replace(request, path_params=params)
            response = (
                found(self, request) if found else FakeResponse(404, {"message": "Not Found"})
            )
        except Exception as exc:  # a broken fake must answer, not hang the client
            response = FakeResponse(500, {"message": f"fake platform error: {exc!r}"})
        finally:
            with self.lock:
                self._active_total -= 1
                if key is not None:
                    self._active[key] -= 1
        if isinstance(response, RawAnswer):
            self._write_raw(handler, response)
        elif response.streamed and response.status != 304:
            self._write_streamed(handler, response)
        else:
            self._write_whole(handler, response)

    def _route(self, method: str, path: str) -> tuple[Handler | None, dict[str, str]]:
        """The handler of ``method path`` (an exact route first, then a templated one) and
        what the template's braces matched."""
        exact = self.routes.get((method, path))
        if exact is not None:
            return exact, {}
        segments = path.split("/")
        for (verb, template), handler in self.routes.items():
            if verb != method or "{" not in template:
                continue
            pattern = template.split("/")
            if len(pattern) != len(segments):
                continue
            params: dict[str, str] = {}
            for expected, given in zip(pattern, segments, strict=True):
                if expected.startswith("{") and expected.endswith("}") and given:
                    params[expected[1:-1]] = unquote(given)
                elif expected != given:
                    break
            else:
                return handler, params
        return None, {}

    def _write_whole(self, handler: _RequestHandler, response: FakeResponse) -> None:
        body = b"" if response.status == 304 else response.encoded()
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if body:
            handler.wfile.write(body)

    def _write_streamed(self, handler: _RequestHandler, response: FakeResponse) -> None:
        chunked = not any(name.lower() == "content-length" for name in response.headers)
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        pieces = cast(Iterator[bytes], response.body)
        for piece in pieces:
            if response.pace and self._stopping.wait(response.pace):
                break
            if self._stopping.is_set():
                break
            if not piece:
                continue
            if chunked:  # three writes: no copy of a large piece
                handler.wfile.write(b"%x\r\n" % len(piece))
                handler.wfile.write(piece)
                handler.wfile.write(b"\r\n")
            else:
                handler.wfile.write(piece)
        else:
            if chunked:
                handler.wfile.write(b"0\r\n\r\n")
            return
        handler.close_connection = True  # stopped half way: the body is incomplete

    def _write_raw(self, handler: _RequestHandler, answer: RawAnswer) -> None:
        handler.close_connection = True
        for piece in answer.data:
            if answer.pace and self._stopping.wait(answer.pace):
                return
            handler.wfile.write(piece)
        if answer.hold:
            self._stopping.wait()
