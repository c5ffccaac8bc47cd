"""Bluesky in ``trickle demo``: a fake PDS, PLC directory, handles' web server and DNS.

Each person's handle is ``NAME.bsky.test``, resolved in turn through a DNS
TXT record and through the well-known page; their posts are records in
their repositories; linking resolves the handle, checks it both ways and
signs in once with an app password the person made, which trickle keeps
nowhere.
"""

from __future__ import annotations

import itertools
import secrets
import string
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from trickle.connectors.bluesky.connector import BlueskySettings
from trickle.connectors.bluesky.fake import FakeBluesky, Resolution, tid
from trickle.core.clock import clock
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server

HANDLE_DOMAIN = "bsky.test"
LETTERS = string.ascii_lowercase + string.digits


def app_password() -> str:
    """A fresh app password, ``xxxx-xxxx-xxxx-xxxx`` as Bluesky makes them."""
    return "-".join("".join(secrets.choice(LETTERS) for _ in range(4)) for _ in range(4))


class BlueskyDemo(DemoPlatform):
    """The fake Bluesky, its people resolving through DNS or HTTPS in turn."""

    name = "bluesky"
    likes_are = "likes"

    def __init__(self) -> None:
        self.bluesky = FakeBluesky()
        self.passwords: dict[str, str] = {}
        self._resolutions: itertools.cycle[Resolution] = itertools.cycle(("dns", "web"))
        self._posts = itertools.count(1)

    def servers(self) -> Sequence[Server]:
        return [self.bluesky]

    def settings(self, **common: Any) -> BlueskySettings:
        return BlueskySettings(**self.bluesky.settings(), **common)

    def handle(self, name: str) -> str:
        return f"{name}.{HANDLE_DOMAIN}"

    def add_person(self, name: str) -> None:
        password = app_password()
        self.passwords[name] = password
        self.bluesky.add_account(self.handle(name), password, resolution=next(self._resolutions))

    def publish(self, creator: str, count: int) -> list[Hashable]:
        did = self._did(creator)
        now = clock.now()
        return [
            f"at://{did}/app.bsky.feed.post/{tid(now, next(self._posts) % 1024)}"
            for _ in range(count)
        ]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, str)
        self.bluesky.pds.like(self._did(person), item, at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        handle = self.handle(person)
        result = linker.sign_in(self.name, person, handle, self.passwords[person])
        return DemoLink(result, f"{handle} resolved and checked both ways, an app password")

    def _did(self, name: str) -> str:
        handle = self.handle(name)
        return next(r.did for r in self.bluesky.pds.repos.values() if r.handle == handle)
