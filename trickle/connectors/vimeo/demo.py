"""Vimeo in ``trickle demo``: liked videos on the fake Vimeo, linked two ways.

The demo's people link in turn through Vimeo's browser flow (the demo plays
the signed-in member approving trickle's app on the fake ``api.vimeo.com``)
and a personal access token generated on the app's page, so a newcomer sees
both ways a Vimeo account joins trickle. Vimeo says when each video was liked,
so a like counts in the month it was made.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from trickle.connectors.vimeo.connector import SCOPES, VimeoSettings
from trickle.connectors.vimeo.fake import FakeVideo, FakeVimeo
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server, approve_in_browser

APP_ID = "demo0trickle0vimeo0app0000000000"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
WORDS = ["harbour", "stop motion", "night swim", "field notes", "paper boats", "long take"]


class VimeoDemo(DemoPlatform):
    """The fake Vimeo with trickle's app registered on it."""

    name = "vimeo"
    likes_are = "liked videos"

    def __init__(self) -> None:
        self.vimeo = FakeVimeo()
        self.secret = "demo-vimeo-secret-" + secrets.token_hex(12)
        self._flows = itertools.cycle(("browser", "browser", "token"))

    def servers(self) -> Sequence[Server]:
        return [self.vimeo]

    def ready(self) -> None:
        self.vimeo.register_client(
            APP_ID, self.secret, "client_secret_basic", redirect_uris=(REDIRECT_URI,)
        )

    def settings(self, **common: Any) -> VimeoSettings:
        return VimeoSettings(
            base_url=self.vimeo.base_url,
            oauth_base_url=self.vimeo.base_url,
            client_id=APP_ID,
            client_secret=SecretStr(self.secret),
            **common,
        )

    def add_person(self, name: str) -> None:
        self.vimeo.add_account(name)

    def publish(self, creator: str, count: int) -> list[Hashable]:
        return [self.vimeo.upload(creator, f"{WORDS[n % len(WORDS)]} {n}") for n in range(count)]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, FakeVideo)
        self.vimeo.like_video(person, item, at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        if next(self._flows) == "browser":
            authorization = linker.authorize(self.name, person, redirect_uri=REDIRECT_URI)
            self.vimeo.sign_in(person)  # what the person does: sign in, then "Allow"
            result = linker.complete(
                approve_in_browser(authorization)
            )  # where Vimeo sent the browser
            return DemoLink(result, "allowed in the browser")
        token = self.vimeo.issue(person, APP_ID, scope=SCOPES).access_token
        result = linker.import_token(self.name, person, token)
        return DemoLink(result, "a personal access token pasted")
