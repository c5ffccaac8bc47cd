"""Flickr in ``trickle demo``: favorites on the fake Flickr, accounts linked by OAuth 1.0a.

Each of the demo's people links through Flickr's three legs: trickle asks the
fake for a request token, the demo plays the signed-in browser on the
authorization page (``perms=read``) and follows Flickr's redirect back to
trickle's callback, and trickle exchanges the verifier for token credentials.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from trickle.connectors.flickr.connector import FlickrSettings
from trickle.connectors.flickr.fake import FakeFlickr, FakePhoto
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server, approve_in_browser

APP_KEY = "demo0trickle0flickr0key0000000000"
APP_SECRET = "demo-flickr-secret-" + "0" * 13
CALLBACK = "http://127.0.0.1:8765/callback"
SUBJECTS = ["harbour", "fern", "tram", "dunes", "lantern", "heron", "glacier", "market"]


class FlickrDemo(DemoPlatform):
    """The fake Flickr with trickle's app registered on it."""

    name = "flickr"
    likes_are = "favorites"

    def __init__(self) -> None:
        self.flickr = FakeFlickr()

    def servers(self) -> Sequence[Server]:
        return [self.flickr]

    def ready(self) -> None:
        self.flickr.register_consumer(APP_KEY, APP_SECRET)

    def settings(self, **common: Any) -> FlickrSettings:
        return FlickrSettings(
            base_url=self.flickr.base_url,
            oauth_base_url=self.flickr.base_url,
            consumer_key=APP_KEY,
            consumer_secret=SecretStr(APP_SECRET),
            **common,
        )

    def add_person(self, name: str) -> None:
        self.flickr.add_member(name)

    def publish(self, creator: str, count: int) -> list[Hashable]:
        return [
            self.flickr.photo(creator, f"{SUBJECTS[n % len(SUBJECTS)]} {n}") for n in range(count)
        ]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, FakePhoto)
        self.flickr.fave(person, item, at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        authorization = linker.authorize(self.name, person, redirect_uri=CALLBACK)
        self.flickr.sign_in(person)  # the person, signed in at Flickr, approves
        result = linker.complete(approve_in_browser(authorization))
        return DemoLink(result, "approved at Flickr (OAuth 1.0a, perms=read)")
