"""Flickr's demo platform: the demo's people are Flickr members who link through the three
legs, and what they fave is what trickle polls (the month itself: tests/test_demo.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.conftest import make_settings
from trickle.app import App
from trickle.connectors.base import AccountRef, PollState
from trickle.connectors.flickr.demo import FlickrDemo
from trickle.connectors.flickr.fake import FakePhoto
from trickle.core.db import Database
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.service import Linker


def test_a_person_links_at_the_fake_flickr_and_their_faves_are_polled(
    sqlite_db: Database, tmp_path: Path, now: datetime
) -> None:
    with FlickrDemo() as demo:
        settings = make_settings(sqlite_db.url, tmp_path)
        settings.connectors = {"flickr": demo.settings(min_interval_seconds=3600)}
        app = App(settings)
        try:
            with app.db.session() as session:
                add_user(session, "alice", Money(500, "EUR"))
            for person in ("alice", "carol"):
                demo.add_person(person)
            photos = demo.publish("carol", 2)
            demo.like("alice", photos[1], now - timedelta(minutes=3))

            link = demo.link(Linker(app), "alice")

            assert (link.result.user, link.result.handle) == ("alice", "alice")
            assert link.how == "approved at Flickr (OAuth 1.0a, perms=read)"
            assert all(isinstance(p, FakePhoto) for p in photos)
            carol = demo.flickr.accounts["carol"].id
            assert [p.owner for p in photos] == [carol, carol]
            connector = app.connector("flickr")
            (issued,) = demo.flickr.access_tokens
            ref = AccountRef(
                1,
                link.result.platform_user_id,
                "alice",
                now - timedelta(hours=1),
                connector.session(issued.credentials()),
            )
            polled = connector.poll(ref, PollState(linked_at=now - timedelta(hours=1)))
            assert [(e.item_id, e.creator_id) for e in polled.events] == [(photos[1].id, carol)]
        finally:
            app.close()
