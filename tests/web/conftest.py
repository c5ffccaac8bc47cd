"""The web side on a migrated SQLite database, with the fake GitHub (API and OAuth) up on
127.0.0.1 and trickle's app registered there with the web side's callback, and a fake
Mastodon server beside it (a platform whose accounts live on servers: trickle registers
its app there at the first link)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from tests.conftest import make_settings
from trickle.app import App
from trickle.config import WebSettings
from trickle.connectors.github.demo import GitHubDemo
from trickle.connectors.mastodon.fake import FakeMastodonServer
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.logins import create_login_link
from trickle.core.money import Money
from trickle.core.periods import Period
from trickle.core.users import add_user, fund
from trickle.linking.service import Linker
from trickle.polling import Worker
from trickle.scheduler import settle_closed_months
from trickle.web import create_app

BASE = "http://trickle.test"
CSRF = "test-csrf-token"


@dataclass
class Site:
    """The web side under test: its App, Flask app and the fake GitHub."""

    app: App
    flask: Flask
    github: GitHubDemo
    mastodon: FakeMastodonServer

    def client(self) -> FlaskClient:
        client = self.flask.test_client()
        with client.session_transaction() as session:
            session["csrf"] = CSRF
        return client

    def user(self, name: str, budget: int = 500, funds: int = 0) -> str:
        with self.app.db.session() as session:
            add_user(session, name, Money(budget, "EUR"))
            if funds:
                fund(session, name, Money(funds, "EUR"))
        return name

    def signed_in(self, name: str) -> FlaskClient:
        """A client signed in as ``name`` through a login link."""
        client = self.client()
        with self.app.db.session() as session:
            token = create_login_link(session, name, timedelta(hours=1))
        answer = client.post(f"/login/{token}", data={"csrf_token": CSRF})
        assert answer.status_code == 302, answer.text
        with client.session_transaction() as session:  # signing in began a new session
            session["csrf"] = CSRF
        return client

    def through_github(self, client: FlaskClient, start: str, as_login: str) -> str:
        """POST ``start`` (a sign-in or link), play the browser at the fake GitHub signed in
        as ``as_login``, and come back: the callback's path and query."""
        begun = client.post(start, data={"csrf_token": CSRF})
        assert begun.status_code == 302, begun.text
        self.github.sign_in_browser(as_login)
        approved = requests.get(begun.headers["Location"], allow_redirects=False, timeout=10)
        back = approved.headers["Location"]
        assert back.startswith(f"{BASE}/link/github/callback?")
        return back.removeprefix(BASE)

    def through_mastodon(self, client: FlaskClient, start: str, as_login: str) -> str:
        """POST ``start`` naming the fake Mastodon server, play the browser there signed in
        as ``as_login``, and come back: the callback's path and query."""
        begun = client.post(start, data={"csrf_token": CSRF, "server": self.mastodon.base_url})
        assert begun.status_code == 302, begun.text
        assert begun.headers["Location"].startswith(self.mastodon.base_url + "/oauth/authorize?")
        self.mastodon.sign_in(as_login)
        approved = requests.get(begun.headers["Location"], allow_redirects=False, timeout=10)
        back = approved.headers["Location"]
        assert back.startswith(f"{BASE}/link/mastodon/callback?"), back
        return back.removeprefix(BASE)

    def poll_everything(self) -> None:
        worker = Worker(self.app, threads=2)
        try:
            assert worker.poll_until_idle(timeout=30)
        finally:
            worker.shutdown(grace=5)

    def waiting_money_for_ada(self) -> str:
        """alice (budget 5 EUR, funds 10 EUR) stars one of ada's repositories in October
        2026; the month settles with the share reserved for ada, who has not joined.
        Returns ada's GitHub id."""
        self.user("alice", budget=500, funds=1000)
        self.github.link(Linker(self.app), "alice")
        repo = self.github.publish("ada", 1)[0]
        self.poll_everything()  # the baseline
        clock.advance(timedelta(hours=1))
        self.github.like("alice", repo, clock.now())
        clock.advance(timedelta(hours=5))
        self.poll_everything()
        clock.set(Period.parse("2026-10").end + timedelta(hours=25), frozen=True)
        self.poll_everything()
        assert settle_closed_months(self.app)
        return str(self.github.github.users["ada"].id)


def words(page: str) -> str:
    """A page's text as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", page, flags=re.S))
    return re.sub(r"\s+", " ", html.unescape(text)).replace(" ,", ",").replace(" .", ".")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


@contextmanager
def running_site(
    database: Database,
    tmp_path: Path,
    web: WebSettings,
    connectors: dict[str, Any] | None = None,
) -> Iterator[Site]:
    """The web side of ``web`` on ``database``, on 15 October 2026 (trickle's clock frozen),
    with alice, bob and ada on the fake GitHub and the fake Mastodon server, and any more
    ``[connectors.NAME]`` tables in ``connectors``."""
    clock.set(datetime(2026, 10, 15, 12, tzinfo=UTC), frozen=True)
    mastodon = FakeMastodonServer()
    with GitHubDemo() as github, mastodon:
        settings = make_settings(database.url, tmp_path, web=web)
        settings.connectors = {
            "github": github.settings(),
            # the fake listens on 127.0.0.1, which the host guard refuses unless allowed
            "mastodon": ConnectorSettings(allow_private_hosts=True),
            **(connectors or {}),
        }
        app = App(settings)
        github.allow_redirect(web.callback_url("github"))
        for person in ("alice", "bob", "ada"):
            github.add_person(person)
            mastodon.add_account(person)
        try:
            yield Site(app, create_app(app), github, mastodon)
        finally:
            app.close()


def web_settings() -> WebSettings:
    """The ``[web]`` settings of the test client's site."""
    return WebSettings(
        base_url=BASE,
        cookie_secret=SecretStr("s" * 40),
        sign_in_attempts_per_minute=50,
        allowed_hosts=["localhost"],  # the test client's
    )


@pytest.fixture
def site(sqlite_db: Database, tmp_path: Path) -> Iterator[Site]:
    with running_site(sqlite_db, tmp_path, web_settings()) as site:
        yield site
