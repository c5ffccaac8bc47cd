"""Linking Instagram accounts end to end: trickle's Linker logs in at the fake Instagram (a
password, a two-factor code, a checkpoint), reads instaloader session files, takes a pasted
sessionid, and keeps only the session; the first poll then reads the saved posts."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import make_settings
from trickle.app import App
from trickle.config import Settings
from trickle.connectors.base import AccountRef, PollState
from trickle.connectors.flows import SecondFactor
from trickle.connectors.instagram.fake import FakeInstagram, FakePost
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.db import Database
from trickle.core.models import LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker

PASSWORD = "s3cret-passw0rd-of-ada-makes"


@pytest.fixture
def instagram() -> Iterator[FakeInstagram]:
    with FakeInstagram() as fake:
        fake.add_user("ada.makes", PASSWORD, user_id=25025320)
        yield fake


@pytest.fixture
def settings(sqlite_db: Database, tmp_path: Path, instagram: FakeInstagram) -> Settings:
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.connectors = {"instagram": {"base_url": instagram.base_url}}
    return settings


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = App(settings)
    with application.db.session() as session:
        add_user(session, "ada", Money(500, "EUR"))
    yield application
    application.close()


def stored(app: App) -> Credentials:
    with app.db.reader() as session:
        account = session.scalars(select(LinkedAccount)).one()
        assert account.credentials is not None
        return app.box.open(account.credentials)


def test_a_password_login_links_the_account_and_keeps_only_the_session(
    app: App, instagram: FakeInstagram
) -> None:
    result = Linker(app).log_in("instagram", "ada", "ada.makes", PASSWORD)

    assert not isinstance(result, SecondFactor)
    assert (result.platform_user_id, result.handle) == ("25025320", "ada.makes")
    credentials = stored(app)
    assert credentials.issued_by == "login"
    assert credentials.access_token in instagram.users["ada.makes"].sessions
    assert PASSWORD not in json.dumps(credentials.to_json())


def test_the_linked_session_polls_the_saved_posts(app: App, instagram: FakeInstagram) -> None:
    Linker(app).log_in("instagram", "ada", "ada.makes", PASSWORD)
    instagram.save("ada.makes", FakePost("DQx1aB2cD3e", 787132, "nasa"))
    connector = app.connector("instagram")

    result = connector.poll(
        AccountRef(1, "25025320", "ada.makes", clock.now(), connector.session(stored(app))),
        PollState(linked_at=clock.now()),
    )

    assert [(e.item_id, e.creator_id) for e in result.events] == [("DQx1aB2cD3e", "787132")]


def test_a_two_factor_login_links_with_the_code(app: App, instagram: FakeInstagram) -> None:
    instagram.users["ada.makes"].two_factor_code = "246810"
    linker = Linker(app)

    pending = linker.log_in("instagram", "ada", "ada.makes", PASSWORD)
    assert isinstance(pending, SecondFactor)
    assert "security code" in pending.prompt

    with pytest.raises(LinkError, match="refused the code"):
        linker.confirm_login("instagram", "ada", pending, "111111")
    assert linker.confirm_login("instagram", "ada", pending, "246810").handle == "ada.makes"


@pytest.mark.parametrize(
    ("password", "prepare", "said"),
    [
        ("wrong-" + PASSWORD, None, "wrong password"),
        (PASSWORD, "checkpoint", "confirmed first"),
    ],
)
def test_a_refused_login_links_nothing_and_shows_no_password(
    app: App, instagram: FakeInstagram, password: str, prepare: str | None, said: str
) -> None:
    if prepare == "checkpoint":
        instagram.require_checkpoint("ada.makes")

    with pytest.raises(LinkError, match=said) as refused:
        Linker(app).log_in("instagram", "ada", "ada.makes", password)

    assert password not in str(refused.value)
    with app.db.reader() as session:
        assert session.scalars(select(LinkedAccount)).all() == []


def test_an_instaloader_session_file_links(
    app: App, instagram: FakeInstagram, tmp_path: Path
) -> None:
    session_id = instagram.new_session("ada.makes")
    data = pickle.dumps({"sessionid": session_id, "csrftoken": "abc123", "ds_user_id": "1"})

    result = Linker(app).import_session_file("instagram", "ada", data)

    assert result.handle == "ada.makes"
    assert stored(app).access_token == session_id


def test_a_pasted_sessionid_links_too(app: App, instagram: FakeInstagram) -> None:
    session_id = instagram.new_session("ada.makes")

    assert Linker(app).import_token("instagram", "ada", session_id).handle == "ada.makes"
