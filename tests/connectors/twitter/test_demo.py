"""X in ``trickle demo``: the demo's people get valid X usernames and link in the browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import make_settings
from trickle.app import App
from trickle.connectors.twitter.demo import TwitterDemo
from trickle.connectors.twitter.fake import XPost
from trickle.connectors.twitter.payloads import User
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.service import Linker


def test_a_person_links_through_the_consent_page_and_likes_reach_the_fake(
    sqlite_db: Database, tmp_path: Path
) -> None:
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    try:
        with TwitterDemo() as demo:
            settings = make_settings(sqlite_db.url, tmp_path)
            settings.connectors = {"twitter": demo.settings()}
            app = App(settings)
            try:
                for person in ("alice", "pydata-collective"):
                    demo.add_person(person)
                with app.db.session() as session:
                    add_user(session, "alice", Money(500, "EUR"))
                (post,) = demo.publish("pydata-collective", 1)
                assert isinstance(post, XPost)
                demo.like("alice", post, clock.now() - timedelta(days=1))

                link = demo.link(Linker(app), "alice")
            finally:
                app.close()
            author = demo.x.users["pydata_collecti"]
            assert User(id=author.id, username=author.username)  # a valid X username
            assert demo.x.users["alice"].likes[0][0] == post.id
    finally:
        clock.reset()
    assert (link.result.platform, link.result.handle) == ("twitter", "alice")
    assert link.how == "approved at X's consent page (OAuth 2.0, PKCE)"
