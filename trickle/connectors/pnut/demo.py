"""pnut.io and an App.net-compatible server in ``trickle demo``: bookmarks and stars on the
fakes, accounts linked two ways.

The demo's people link in turn through the platform's server-side flow (the
demo plays the signed-in browser through the consent redirect) and with a
token pasted in (on pnut.io, the one its ``urn:ietf:wg:oauth:2.0:oob`` page
shows), so a newcomer sees both ways an account joins trickle.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import SecretStr

from trickle.connectors.pnut.connector import AdnSettings, AppNetSettings
from trickle.connectors.pnut.fake import FakeAdnServer, FakeAppNet, FakePnut, FakePost
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server, approve_in_browser

APP_ID = "demo-trickle-client-0a1b2c3d4e5f"
APP_SECRET = "demo-trickle-secret-" + "0" * 24
REDIRECT_URI = "http://127.0.0.1:8765/callback"
WORDS = ["coffee", "bikes", "synths", "garden", "radio", "trains", "maps", "tea"]


class _AdnDemo(DemoPlatform):
    """A fake of the dialect with trickle's client registered on it."""

    fake_class: ClassVar[type[FakeAdnServer]]

    def __init__(self) -> None:
        self.fake = self.fake_class()
        self._flows = itertools.cycle(("browser", "token"))

    def servers(self) -> Sequence[Server]:
        return [self.fake]

    def ready(self) -> None:
        self.fake.register_client(APP_ID, APP_SECRET, redirect_uris=("http://127.0.0.1/callback",))

    def add_person(self, name: str) -> None:
        self.fake.add_account(name)

    def publish(self, creator: str, count: int) -> list[Hashable]:
        return [
            self.fake.post(creator, text=f"{creator} on {WORDS[n % len(WORDS)]}, part {n}")
            for n in range(count)
        ]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, FakePost)
        self.fake.save(person, item, at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        if next(self._flows) == "browser":
            authorization = linker.authorize(
                self.name, person, redirect_uri=REDIRECT_URI, kind="oauth2"
            )
            self.fake.sign_in(person)
            result = linker.complete(
                approve_in_browser(authorization)
            )  # where the server sent them
            return DemoLink(result, "approved in the browser")
        token = self.fake.issue(person, APP_ID).access_token
        result = linker.import_token(self.name, person, token)
        return DemoLink(result, "a token pasted")


class PnutDemo(_AdnDemo):
    """The fake pnut.io."""

    name = "pnut"
    likes_are = "bookmarks"
    fake_class = FakePnut

    @property
    def base_url(self) -> str:
        return self.fake.base_url + self.fake.api_root

    def settings(self, **common: Any) -> AdnSettings:
        return AdnSettings(
            base_url=self.base_url,
            oauth_base_url=self.fake.base_url,
            client_id=APP_ID,
            client_secret=SecretStr(APP_SECRET),
            **common,
        )


class AppNetDemo(_AdnDemo):
    """A fake App.net-compatible server (App.net itself closed in 2017)."""

    name = "appnet"
    likes_are = "stars"
    fake_class = FakeAppNet

    def settings(self, **common: Any) -> AppNetSettings:
        return AppNetSettings(
            base_url=self.fake.base_url,
            oauth_base_url=self.fake.base_url,
            client_id=APP_ID,
            client_secret=SecretStr(APP_SECRET),
            **common,
        )
