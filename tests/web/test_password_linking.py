"""Linking from the account page an account that no redirect links: a Bluesky handle and
an app password typed into a form, against the fake Bluesky (PDS, PLC directory, DNS) on
127.0.0.1; and the note beside a legacy platform's button."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.web.conftest import CSRF, Site, running_site, web_settings, words
from trickle.connectors.bluesky.fake import FakeBluesky
from trickle.core.db import Database
from trickle.core.models import LinkedAccount, User
from trickle.web.auth import RateLimit

APP_PASSWORD = "k3xq-7mvz-2pla-9wrd"
HANDLE = "ada.pds.test"
FORM = "/link/bluesky/password"


@pytest.fixture
def bluesky() -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        fake.add_account(HANDLE, APP_PASSWORD)
        yield fake


@pytest.fixture
def site(sqlite_db: Database, tmp_path: Path, bluesky: FakeBluesky) -> Iterator[Site]:
    connectors = {
        "bluesky": bluesky.settings(),
        "fivehundredpx": {  # a legacy platform whose browser flow is set up
            "base_url": "http://127.0.0.1:9",
            "consumer_key": "key",
            "consumer_secret": "secret",
            "allow_private_hosts": True,
        },
    }
    with running_site(sqlite_db, tmp_path, web_settings(), connectors) as site:
        yield site


def accounts_of(site: Site, name: str) -> list[tuple[str, str]]:
    with site.app.db.reader() as session:
        rows = session.execute(
            select(LinkedAccount.platform, LinkedAccount.handle)
            .join(User, User.id == LinkedAccount.user_id)
            .where(User.name == name)
        )
        return [(platform, handle) for platform, handle in rows]


def session_text(site: Site, client: FlaskClient) -> str:
    """The session cookie as sent, and what it holds once its signature is checked."""
    cookie = client.get_cookie("trickle_session")
    assert cookie is not None
    serializer = site.flask.session_interface.get_signing_serializer(site.flask)  # type: ignore[attr-defined]
    return cookie.value + json.dumps(serializer.loads(cookie.value))


def test_the_account_page_asks_for_a_handle_and_an_app_password_not_kept(site: Site) -> None:
    page = site.signed_in(site.user("alice")).get("/me").text

    assert f'action="{FORM}"' in page
    assert 'name="identifier"' in page
    password = re.search(r'<input[^>]*name="password"[^>]*>', page)
    assert password is not None
    assert 'type="password"' in password[0]
    assert 'autocomplete="off"' in password[0]
    assert "value=" not in password[0]
    assert "keeps nothing of it" in words(page)


def test_a_handle_and_its_app_password_link_the_account_and_leave_no_trace(
    site: Site, bluesky: FakeBluesky, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = site.signed_in(site.user("alice"))

    answer = client.post(
        FORM, data={"csrf_token": CSRF, "identifier": f"@{HANDLE}", "password": APP_PASSWORD}
    )
    page = client.get(answer.headers["Location"])

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/me"
    assert "Linked bluesky account ada.pds.test." in words(page.text)
    assert "bluesky ada.pds.test: polling" in words(page.text)
    assert accounts_of(site, "alice") == [("bluesky", HANDLE)]
    assert bluesky.pds.sessions_created == 1
    for trace in (answer.text, page.text, caplog.text, session_text(site, client)):
        assert APP_PASSWORD not in trace


def test_a_wrong_app_password_links_nothing_and_says_so_without_echoing_it(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = site.signed_in(site.user("alice"))
    wrong = "zzzz-zzzz-zzzz-zzzz"

    page = client.post(
        FORM,
        data={"csrf_token": CSRF, "identifier": HANDLE, "password": wrong},
        follow_redirects=True,
    )

    assert "did not accept that app password for ada.pds.test" in words(page.text)
    assert 'class="flash error"' in page.text
    assert accounts_of(site, "alice") == []
    for trace in (page.text, caplog.text, session_text(site, client)):
        assert wrong not in trace


def test_a_form_without_this_sessions_csrf_token_is_refused_before_bluesky_is_asked(
    site: Site, bluesky: FakeBluesky
) -> None:
    client = site.signed_in(site.user("alice"))
    form = {"identifier": HANDLE, "password": APP_PASSWORD}

    assert client.post(FORM, data=form).status_code == 400
    assert client.post(FORM, data={**form, "csrf_token": "another"}).status_code == 400
    assert bluesky.pds.sessions_created == 0
    assert accounts_of(site, "alice") == []


def test_only_a_signed_in_user_links_and_only_into_their_own_trickle_account(
    site: Site, bluesky: FakeBluesky
) -> None:
    site.user("bob")
    form = {"csrf_token": CSRF, "identifier": HANDLE, "password": APP_PASSWORD}
    anonymous = site.client().post(FORM, data=form)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/?next=")

    bob = site.signed_in("bob")
    bob.post(FORM, data={**form, "user": "alice"})  # the user is the session's, not a field
    alice = site.signed_in(site.user("alice"))
    page = alice.post(FORM, data=form, follow_redirects=True)

    assert accounts_of(site, "bob") == [("bluesky", HANDLE)]
    assert accounts_of(site, "alice") == []
    assert "is already linked to another trickle user" in words(page.text)
    assert "bob" not in words(page.text)


def test_html_in_a_handle_is_shown_as_text(site: Site) -> None:
    client = site.signed_in(site.user("alice"))
    handle = "<script>alert(1)</script>.pds.test"

    page = client.post(
        FORM,
        data={"csrf_token": CSRF, "identifier": handle, "password": APP_PASSWORD},
        follow_redirects=True,
    )

    assert 'class="flash error"' in page.text
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.pds.test is not a handle" in page.text


def test_app_password_attempts_are_rate_limited_like_sign_ins(site: Site) -> None:
    client = site.signed_in(site.user("alice"))
    site.flask.extensions["trickle_sign_in_limit"] = RateLimit(1)
    form = {"csrf_token": CSRF, "identifier": HANDLE, "password": "wrong"}

    assert client.post(FORM, data=form).status_code == 302
    assert client.post(FORM, data=form).status_code == 429


def test_a_platform_without_an_app_password_flow_has_no_such_form(site: Site) -> None:
    client = site.signed_in(site.user("alice"))
    form = {"csrf_token": CSRF, "identifier": "alice", "password": "x"}

    assert client.post("/link/github/password", data=form).status_code == 404
    assert client.post("/link/nosuch/password", data=form).status_code == 404
    assert 'action="/link/github/password"' not in client.get("/me").text


def test_a_legacy_platforms_button_says_its_api_closed(site: Site) -> None:
    note = "500px's public API closed on"

    account_page = words(site.signed_in(site.user("alice")).get("/me").text)
    sign_in_page = words(site.client().get("/").text)

    assert "Link a 500px account " + note in account_page
    assert "Sign in with 500px " + note in sign_in_page
    assert "Sign in with GitHub " + note[:5] not in sign_in_page
