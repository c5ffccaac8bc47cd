"""Instagram in ``trickle demo``: saved posts on the fake Instagram, accounts linked by login.

The demo's people link the way most Instagram users would: their username
and password (trickle keeps only the session the login makes), one of them
with a two-factor code, one with a session cookie pasted from a browser.
A save is the demo's like; Instagram dates neither, so each counts from when
the worker first saw it.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from trickle.connectors.flows import SecondFactor
from trickle.connectors.instagram.connector import InstagramSettings
from trickle.connectors.instagram.fake import FakeInstagram, FakePost
from trickle.linking.service import Linker
from trickle.testing.demo_platform import DemoLink, DemoPlatform, Server

TWO_FACTOR_CODE = "246810"


class InstagramDemo(DemoPlatform):
    """The fake Instagram; each person has a password there."""

    name = "instagram"
    likes_are = "saved posts"

    def __init__(self) -> None:
        self.instagram = FakeInstagram()
        self._passwords: dict[str, str] = {}
        self._posts = itertools.count(1)
        self._ways = itertools.cycle(("password", "two-factor", "password", "cookie"))

    def servers(self) -> Sequence[Server]:
        return [self.instagram]

    def settings(self, **common: Any) -> InstagramSettings:
        return InstagramSettings(base_url=self.instagram.base_url, **common)

    def add_person(self, name: str) -> None:
        handle = name.replace("-", "_")  # Instagram names have no hyphens
        password = f"demo-{secrets.token_urlsafe(12)}"
        self._passwords[handle] = password
        self.instagram.add_user(handle, password)

    def publish(self, creator: str, count: int) -> list[Hashable]:
        owner = self.instagram.users[creator.replace("-", "_")]
        return [
            FakePost(f"DeMo{next(self._posts):04d}x", owner.id, owner.username)
            for _ in range(count)
        ]

    def like(self, person: str, item: Hashable, at: datetime) -> None:
        assert isinstance(item, FakePost)
        self.instagram.save(person.replace("-", "_"), item, at)

    def link(self, linker: Linker, person: str) -> DemoLink:
        handle = person.replace("-", "_")
        way = next(self._ways)
        if way == "cookie":
            session_id = self.instagram.new_session(handle)
            result = linker.import_token(self.name, person, session_id)
            return DemoLink(result, "a browser's sessionid cookie pasted")
        user = self.instagram.users[handle]
        user.two_factor_code = TWO_FACTOR_CODE if way == "two-factor" else None
        outcome = linker.log_in(self.name, person, handle, self._passwords[handle])
        if isinstance(outcome, SecondFactor):
            result = linker.confirm_login(self.name, person, outcome, TWO_FACTOR_CODE)
            return DemoLink(result, "logged in with a password and a two-factor code")
        return DemoLink(outcome, "logged in with a password (only the session is kept)")
