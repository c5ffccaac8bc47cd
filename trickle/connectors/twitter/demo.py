"""X in ``trickle demo``: liked posts on the fake X, every account linked in the browser.

X links only through OAuth 2.0 with PKCE, so the demo plays each person's
browser at the fake X's consent page: signed in, they approve trickle's app,
and the fake sends the browser back to trickle's loopback redirect URI with
the code. Access tokens last two hours, so the month the demo plays renews
every account's tokens (and saves each single-use refresh token) many times.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from trickle.connectors.twitter.connector import TwitterSettings
from trickle.connectors.twitter.fake import FakeX, XPost
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server, approve_in_browser

CLIENT_ID = "dHJpY2tsZS1kZW1vLWFwcDoxOmNp"
CLIENT_SECRET = "demo-x-client-secret-" + "0" * 29
REDIRECT_URI = "http://127.0.0.1:8765/callback"
WORDS = ["thread", "photo", "poll", "essay", "sketch", "joke", "chart", "clip"]


class TwitterDemo(DemoPlatform):
    """The fake X with trickle's app registered on it as a confidential client."""

    name = "twitter"
    likes_are = "likes"

    def __init__(self) -> None:
        self.x = FakeX()
        self._numbers = itertools.count(1)

    def servers(self) -> Sequence[Server]:
        return [self.x]

    def ready(self) -> None:
        self.x.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=(REDIRECT_URI,))

    def settings(self, **common: Any) -> TwitterSettings:
        return TwitterSettings(
            base_url=self.x.base_url,
            oauth_base_url=self.x.base_url,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            **common,
        )

    def add_person(self, name: str) -> None:
        self.x.add_user(name.replace("-", "_")[:15])

    def publish(self, creator: str, count: int) -> list[Hashable]:
        author = creator.replace("-", "_")[:15]
        return [
            self.x.post(author, f"a {WORDS[n % len(WORDS)]}, number {next(self._numbers)}")
            for n in range(count)
        ]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, XPost)
        self.x.like(person.replace("-", "_")[:15], item, at=at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        authorization = linker.authorize(self.name, person, redirect_uri=REDIRECT_URI)
        self.x.oauth.sign_in(person.replace("-", "_")[:15])  # the person, signed in at X
        result = linker.complete(approve_in_browser(authorization))
        return DemoLink(result, "approved at X's consent page (OAuth 2.0, PKCE)")
