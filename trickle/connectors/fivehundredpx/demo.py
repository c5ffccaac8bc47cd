"""500px in ``trickle demo``: favorites on a fake server of the closed v1 API, accounts
linked by OAuth 1.0a.

500px closed its API in 2018; the demo plays a month on a server that still
speaks it (the fake), linking each person through the three legs.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from trickle.connectors.fivehundredpx.connector import FiveHundredPxSettings
from trickle.connectors.fivehundredpx.fake import Fake500px, FakePhoto
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server, approve_in_browser

APP_KEY = "demo0trickle0500px0key00000000000"
APP_SECRET = "demo-500px-secret-" + "0" * 14
CALLBACK = "http://127.0.0.1:8765/callback"
SUBJECTS = ["skyline", "fog", "portrait", "canyon", "neon", "aurora", "pier", "meadow"]


class FiveHundredPxDemo(DemoPlatform):
    """A fake 500px v1 server with trickle's app registered on it."""

    name = "fivehundredpx"
    likes_are = "favorites"

    def __init__(self) -> None:
        self.server = Fake500px()

    def servers(self) -> Sequence[Server]:
        return [self.server]

    def ready(self) -> None:
        self.server.register_consumer(APP_KEY, APP_SECRET)

    def settings(self, **common: Any) -> FiveHundredPxSettings:
        return FiveHundredPxSettings(
            base_url=self.server.base_url,
            consumer_key=APP_KEY,
            consumer_secret=SecretStr(APP_SECRET),
            **common,
        )

    def add_person(self, name: str) -> None:
        self.server.add_user(name)

    def publish(self, creator: str, count: int) -> list[Hashable]:
        return [
            self.server.photo(creator, f"{SUBJECTS[n % len(SUBJECTS)]} {n}") for n in range(count)
        ]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, FakePhoto)
        self.server.favorite(person, item, at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        authorization = linker.authorize(self.name, person, redirect_uri=CALLBACK)
        self.server.sign_in(person)  # the person, signed in on the server, approves
        result = linker.complete(approve_in_browser(authorization))
        return DemoLink(result, "approved on the 500px v1 server (OAuth 1.0a)")
