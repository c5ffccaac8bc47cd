"""Serving the web side with waitress, a production WSGI server in pure Python (threads, no
fork, works the same on every platform trickle runs on)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from waitress.server import create_server

from trickle.app import App
from trickle.web.app import create_app

log = logging.getLogger(__name__)


@dataclass
class WebServer:
    """A waitress server bound to its address; :meth:`serve` blocks, :meth:`start` runs it
    in a thread, :meth:`stop` closes it."""

    server: Any
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    @property
    def address(self) -> str:
        return f"http://{self.server.effective_host}:{self.port}"

    def serve(self) -> None:
        self.server.run()

    def start(self) -> WebServer:
        self.thread = threading.Thread(target=self.serve, name="trickle-web", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.close()
        if self.thread is not None:
            self.thread.join(5)


def web_server(app: App, *, host: str | None = None, port: int | None = None) -> WebServer:
    """The web side of ``app`` bound to ``[web] listen`` and ``port`` (or those given)."""
    web = app.settings.web
    flask = create_app(app)
    server = create_server(
        flask,
        host=host if host is not None else web.listen,
        port=port if port is not None else web.port,
        threads=web.threads,
        ident="trickle",
        clear_untrusted_proxy_headers=web.proxies == 0,
    )
    log.info("web side listening on %s:%s for %s", server.effective_host, server.effective_port,
             web.base_url)  # fmt: skip
    return WebServer(server)
