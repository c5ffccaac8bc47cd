"""SoundCloud in ``trickle demo``: liked tracks on the fake SoundCloud, linked in the browser.

Every person links the way SoundCloud allows, through trickle's app in the
browser (OAuth 2.1, PKCE): the demo plays the signed-in person at the fake
``secure.soundcloud.com``, who approves, and hands the address SoundCloud
sent the browser back to to the linking service. Access tokens last an hour
on the demo's clock, so over the simulated month every poll renews the
account's token and stores the single-use refresh token it was given.
"""

from __future__ import annotations

import secrets
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from trickle.connectors.soundcloud.connector import SoundCloudSettings
from trickle.connectors.soundcloud.fake import FakeSoundCloud, FakeTrack
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server, approve_in_browser

APP_ID = "demo0trickle0soundcloud0app00000"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
WORDS = ["harbour", "tape loop", "dust choir", "night bus", "low tide", "paper moon", "static"]


class SoundCloudDemo(DemoPlatform):
    """The fake SoundCloud with trickle's app registered on it."""

    name = "soundcloud"
    likes_are = "liked tracks"

    def __init__(self) -> None:
        self.soundcloud = FakeSoundCloud()
        self.secret = "demo-sc-secret-" + secrets.token_hex(12)

    def servers(self) -> Sequence[Server]:
        return [self.soundcloud]

    def ready(self) -> None:
        self.soundcloud.register_client(APP_ID, self.secret, redirect_uris=(REDIRECT_URI,))

    def settings(self, **common: Any) -> SoundCloudSettings:
        return SoundCloudSettings(
            base_url=self.soundcloud.base_url,
            oauth_base_url=self.soundcloud.base_url,
            client_id=APP_ID,
            client_secret=SecretStr(self.secret),
            **common,
        )

    def add_person(self, name: str) -> None:
        self.soundcloud.add_account(name)

    def publish(self, creator: str, count: int) -> list[Hashable]:
        return [
            self.soundcloud.upload(creator, f"{WORDS[n % len(WORDS)]} {n}") for n in range(count)
        ]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, FakeTrack)
        self.soundcloud.like_track(person, item, at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        authorization = linker.authorize(self.name, person, redirect_uri=REDIRECT_URI)
        self.soundcloud.sign_in(person)  # what the person does: sign in, then "Connect"
        result = linker.complete(
            approve_in_browser(authorization)
        )  # where SoundCloud sent the browser
        return DemoLink(result, "connected in the browser (OAuth 2.1, PKCE)")
