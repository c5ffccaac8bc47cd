"""GitHub in ``trickle demo``: stars on the fake GitHub, accounts linked three ways.

The demo's people link in turn through GitHub's device flow (the person
enters the code), its browser flow (the demo plays the signed-in browser
through the consent redirect, PKCE and all) and a personal access token, so
a newcomer sees every way a GitHub account joins trickle.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from trickle.connectors.github.connector import GitHubSettings
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.core.clock import clock
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server, approve_in_browser

APP_ID = "Iv1.demo0trickle0app"
APP_SECRET = "demo-app-secret-" + "0" * 24
WORDS = ["http", "yaml", "markdown", "engine", "notes", "frames", "patches", "lint"]


class GitHubDemo(DemoPlatform):
    """The fake GitHub with trickle's OAuth app registered on it."""

    name = "github"
    likes_are = "stars"

    def __init__(self) -> None:
        self.github = FakeGitHub()
        self._repo_ids = itertools.count(500)
        self._flows = itertools.cycle(("device", "browser", "device", "token"))

    def servers(self) -> Sequence[Server]:
        return [self.github]

    def ready(self) -> None:
        self.github.oauth.register_app(APP_ID, APP_SECRET)

    def settings(self, **common: Any) -> GitHubSettings:
        return GitHubSettings(
            base_url=self.github.base_url,
            oauth_base_url=self.github.base_url,
            client_id=APP_ID,
            client_secret=SecretStr(APP_SECRET),
            **common,
        )

    def add_person(self, name: str) -> None:
        self.github.add_user(name, token=f"ghp_demo_{secrets.token_hex(12)}")

    def publish(self, creator: str, count: int) -> list[Hashable]:
        owner = self.github.users[creator]
        kind = "User" if not creator.endswith("-collective") else "Organization"
        return [
            FakeRepo(
                next(self._repo_ids), f"{WORDS[n % len(WORDS)]}-{n}", owner.login, owner.id, kind
            )
            for n in range(count)
        ]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, FakeRepo)
        self.github.star(person, item, at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        flow = next(self._flows)
        if flow == "device":
            device = linker.start_device(self.name, person)
            self.github.oauth.enter_code(device.user_code, person)  # what the person does
            result = linker.wait_device(device, sleep=lambda s: clock.advance(timedelta(seconds=s)))
            return DemoLink(result, f"code {device.user_code} entered at {device.verification_uri}")
        if flow == "browser":
            authorization = linker.authorize(
                self.name, person, redirect_uri="http://127.0.0.1:8765/callback", kind="oauth2"
            )
            self.github.oauth.sign_in(person)
            result = linker.complete(
                approve_in_browser(authorization)
            )  # where GitHub sent the browser
            return DemoLink(result, "approved in the browser (PKCE)")
        result = linker.import_token(self.name, person, self.github.users[person].token)
        return DemoLink(result, "a personal access token pasted")

    def allow_redirect(self, redirect_uri: str) -> None:
        # GitHub accepts a redirect URI on the callback URL's host and port, at its path or
        # below; on a loopback host, any port. "/" covers the terminal's loopback /callback
        # and the web side's /link/github/callback alike.
        parts = urlsplit(redirect_uri)
        self.github.oauth.register_app(
            APP_ID, APP_SECRET, callback_url=f"{parts.scheme}://{parts.hostname}/"
        )

    def sign_in_browser(self, person: str) -> bool:
        self.github.oauth.sign_in(person)
        return True
