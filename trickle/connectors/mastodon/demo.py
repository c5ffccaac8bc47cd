"""Mastodon in ``trickle demo``: two fake servers of one small fediverse.

The demo's people live on two servers in turn (alice on the first, bob on
the second, ...); a status is its author's, on the author's server, and a
favourite is given on the liker's own server, so an author is liked both by
people of their own server and, as a remote account, by people of the
other. Their actor URI is the same from both, so each favourite pays the
same creator whichever server it was given on, and ada, who joins late,
claims what was held for her from both. Each person links through the
browser on their own server; the first link on a server registers
trickle's app there, the others reuse it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from trickle.connectors.mastodon.fake import FakeMastodonServer, FakeStatus
from trickle.connectors.settings import ConnectorSettings
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server, approve_in_browser

REDIRECT_URI = "http://127.0.0.1:8765/callback"


class MastodonDemo(DemoPlatform):
    """Two fake Mastodon servers (see the module)."""

    name = "mastodon"
    likes_are = "favourites"

    def __init__(self) -> None:
        self.hosts = (FakeMastodonServer(), FakeMastodonServer())
        self.home: dict[str, FakeMastodonServer] = {}
        """Each person's server."""

    def servers(self) -> Sequence[Server]:
        return self.hosts

    def settings(self, **common: Any) -> ConnectorSettings:
        # The fakes listen on 127.0.0.1, which the host guard refuses unless the operator
        # allows private hosts.
        return ConnectorSettings(allow_private_hosts=True, **common)

    def add_person(self, name: str) -> None:
        server = self.hosts[len(self.home) % len(self.hosts)]
        server.add_account(name)
        self.home[name] = server

    def publish(self, creator: str, count: int) -> list[Hashable]:
        server = self.home[creator]
        return [server.post(creator, text=f"{creator}'s status {n + 1}") for n in range(count)]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, FakeStatus)
        self.home[person].favourite(person, item, at=at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        server = self.home[person]
        registered = server.registrations
        authorization = linker.authorize(
            self.name, person, redirect_uri=REDIRECT_URI, host=server.base_url
        )
        server.sign_in(person)  # the person, signed in at their server, approves
        result = linker.complete(approve_in_browser(authorization))
        app = (
            "trickle's app registered there"
            if server.registrations > registered
            else ("trickle's app reused")
        )
        return DemoLink(result, f"approved in the browser on {server.base_url} ({app}, PKCE)")
