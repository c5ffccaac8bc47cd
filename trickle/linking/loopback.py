"""The terminal's side of a redirect flow: a listener on 127.0.0.1 for the platform's redirect.

RFC 8252 (OAuth 2.0 for native apps) section 7.3: the redirect URI is
``http://127.0.0.1:PORT/callback``, on the loopback IP literal rather than
``localhost`` (section 8.3: it cannot end up listening on another interface),
on an ephemeral port unless the operator registered a fixed one with the
platform (``[linking] loopback_port``: SoundCloud, for one, matches the port
exactly). The listener answers one request on the callback path, shows the
user a page saying they can go back to the terminal, and hands the address
it was called with to the linking service, which checks the ``state``.
"""

from __future__ import annotations

import errno
import html
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from trickle.config import LinkingSettings
from trickle.linking.accounts import LinkError

CALLBACK_PATH = "/callback"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trickle</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto; line-height: 1.5">
<h1>{title}</h1><p>{text}</p></body></html>
"""


def registered_redirect_uri(settings: LinkingSettings) -> str:
    """The redirect URI an operator registers with a platform for ``trickle link``."""
    if settings.loopback_port:
        return f"http://127.0.0.1:{settings.loopback_port}{CALLBACK_PATH}"
    return (
        f"http://127.0.0.1{CALLBACK_PATH} (any port; a platform that matches the port "
        "exactly needs [linking] loopback_port set and that port registered)"
    )


class _Server(HTTPServer):
    received: str | None
    path: str
    arrived: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if urlsplit(self.path).path != self.server.path or self.server.arrived.is_set():
            self._page(404, "Nothing here", "This is trickle's link listener.")
            return
        host, port = self.server.server_address[:2]
        self.server.received = f"http://{host!s}:{port}{self.path}"
        self._page(
            200,
            "Back to the terminal",
            "trickle has the answer and is finishing the link. You can close this window.",
        )
        self.server.arrived.set()

    def _page(self, status: int, title: str, text: str) -> None:
        body = PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the code is in this page's URL
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the URL holds the code: quiet
        return


class LoopbackRedirect:
    """A one-answer HTTP listener on 127.0.0.1 (``with LoopbackRedirect(port) as loop:``)."""

    def __init__(self, port: int = 0, path: str = CALLBACK_PATH) -> None:
        self.port = port
        self.path = path
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        try:
            server = _Server(("127.0.0.1", self.port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LinkError(
                    f"port {self.port} on 127.0.0.1 is taken by another program: free it, or "
                    "set [linking] loopback_port to another port (registered with the "
                    "platform as http://127.0.0.1:PORT/callback)"
                ) from None
            raise LinkError(
                f"cannot listen on 127.0.0.1:{self.port} for the platform's answer: "
                f"{exc.strerror or type(exc).__name__}"
            ) from None
        server.received = None
        server.path = self.path
        server.arrived = threading.Event()
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def redirect_uri(self) -> str:
        """The redirect URI to give the platform: ``http://127.0.0.1:PORT/callback``."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    def wait(self, timeout: float, tick: Callable[[int], None] | None = None) -> str:
        """The address the browser was sent back to, once it is; :class:`LinkError` after
        ``timeout`` seconds (the user closed the browser, or never approved).
        ``tick(seconds_left)`` is told about once a second, for a countdown."""
        if self._server is None:
            raise RuntimeError("the listener is not running")
        deadline = time.monotonic() + timeout
        while not self._server.arrived.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(
                    f"no answer from the browser within {timeout:.0f} s: nothing was linked "
                    "(run the link again, or use --no-browser to paste the address)"
                )
            if tick is not None:
                tick(int(left) + 1)
            self._server.arrived.wait(min(1.0, left))
        assert self._server.received is not None
        return self._server.received
