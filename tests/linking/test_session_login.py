"""The platform's own login as a link flow: a username and password (and a second-factor code
when the platform asks) or a session file become a linked session; the password is never
kept, stored or shown.

The platform is a made-up one whose connector logs in from memory (what a real one sends is
its own tests' business) and whose ``GET /me`` is mocked with ``responses``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from pydantic import TypeAdapter
from sqlalchemy import select

from tests.conftest import make_settings
from tests.linking.test_terminal import Person
from trickle.app import App
from trickle.connectors.base import Identity
from trickle.connectors.errors import AuthExpired, PlatformError
from trickle.connectors.flows import LogsIn, SecondFactor, SessionLogin, TokenImport
from trickle.connectors.paginators import LinkHeader
from trickle.connectors.registry import Registry
from trickle.connectors.rest import RestConnector
from trickle.core.credentials import Credentials
from trickle.core.db import Database
from trickle.core.events import LikeEvent
from trickle.core.models import LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import MAX_SESSION_FILE_BYTES, Linker
from trickle.linking.terminal import Terminal, run_flow

API = "https://api.logbook.test"
PASSWORD = "hunter2-correct-horse-battery"
SESSION = "sess-5e55i0n-value-0123456789abcdef"
PENDING = "half-d0ne-login-value-0123456789"
CODE = "482913"


class Logbook(RestConnector):
    """A platform whose accounts link by logging in: ``ada``/``PASSWORD`` logs in at once,
    ``bea`` needs the code ``CODE`` too; a session file is ``{"session": ...}``."""

    name = "logbook"
    display_name = "Logbook"
    default_base_url = API
    link_flows = (
        SessionLogin(session_file="logbook --save-session", warning="Logbook may lock you out."),
        TokenImport(),
    )
    likes_path = "/likes"
    paginator = LinkHeader()
    page_model = TypeAdapter(list[dict[str, str]])
    identity_path = "/me"
    identity_model = TypeAdapter(dict[str, str])

    def log_in(self, username: str, password: str) -> Credentials | SecondFactor:
        if password != PASSWORD:
            # a careless platform echoes what it was sent; the linker must not show it
            raise AuthExpired(f"wrong password {password!r} for {username}")
        if username == "bea":
            return SecondFactor("code from your app: ", {"login": PENDING})
        return Credentials(access_token=SESSION)

    def confirm_login(self, pending: SecondFactor, code: str) -> Credentials:
        if pending.pending.get("login") != PENDING:
            raise PlatformError("that login is not pending")
        if code != CODE:
            raise AuthExpired(f"the code {code} is wrong (login {PENDING})")
        return Credentials(access_token=SESSION)

    def read_session_file(self, data: bytes) -> Credentials:
        try:
            return Credentials(access_token=json.loads(data)["session"])
        except (ValueError, KeyError, TypeError):
            raise PlatformError("not a Logbook session file") from None

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        raise NotImplementedError

    def identity(self, payload: Any) -> Identity:
        return Identity(platform_user_id=payload["id"], handle=payload["name"])


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path) -> Iterator[App]:
    application = App(make_settings(sqlite_db.url, tmp_path), registry=Registry.of([Logbook]))
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    yield application
    application.close()


@pytest.fixture
def me() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            f"{API}/me",
            json={"id": "lb-1", "name": "ada-on-logbook"},
            match=[responses.matchers.header_matcher({"Authorization": f"Bearer {SESSION}"})],
        )
        yield mock


def stored(app: App) -> Credentials:
    with app.db.reader() as session:
        account = session.scalars(select(LinkedAccount)).one()
        assert account.credentials is not None
        return app.box.open(account.credentials)


def test_a_connector_of_the_login_flow_implements_logs_in() -> None:
    assert isinstance(Logbook.__new__(Logbook), LogsIn)
    assert SessionLogin.kind == "login"
    assert "session file" in SessionLogin(session_file="x").describe()
    assert "session file" not in SessionLogin().describe()


def test_a_login_links_the_session_and_keeps_no_password(
    app: App, me: responses.RequestsMock
) -> None:
    result = Linker(app).log_in("logbook", "alice", " ada ", PASSWORD)

    assert not isinstance(result, SecondFactor)
    assert (result.platform_user_id, result.handle) == ("lb-1", "ada-on-logbook")
    credentials = stored(app)
    assert credentials.access_token == SESSION
    assert credentials.issued_by == "login"
    assert PASSWORD not in json.dumps(credentials.to_json())


def test_a_second_factor_is_asked_for_then_the_code_links(
    app: App, me: responses.RequestsMock
) -> None:
    linker = Linker(app)

    pending = linker.log_in("logbook", "alice", "bea", PASSWORD)

    assert isinstance(pending, SecondFactor)
    assert PENDING not in repr(pending)
    assert linker.confirm_login("logbook", "alice", pending, f" {CODE} ").handle == (
        "ada-on-logbook"
    )


def test_a_refused_password_links_nothing_and_is_never_shown(app: App) -> None:
    with pytest.raises(LinkError) as refused:
        Linker(app).log_in("logbook", "alice", "ada", "wrong-" + PASSWORD)

    message = str(refused.value)
    assert message.startswith("Logbook login failed: wrong password")
    assert "nothing was linked" in message
    assert PASSWORD not in message
    assert refused.value.__cause__ is None
    assert refused.value.__suppress_context__
    with app.db.reader() as session:
        assert session.scalars(select(LinkedAccount)).all() == []


def test_a_refused_code_shows_neither_the_code_nor_the_pending_login(app: App) -> None:
    linker = Linker(app)
    pending = linker.log_in("logbook", "alice", "bea", PASSWORD)
    assert isinstance(pending, SecondFactor)

    with pytest.raises(LinkError, match="nothing was linked") as refused:
        linker.confirm_login("logbook", "alice", pending, "000000")

    assert "000000" not in str(refused.value)
    assert PENDING not in str(refused.value)


@pytest.mark.parametrize(("username", "password"), [("", PASSWORD), ("ada", ""), ("  ", "x")])
def test_a_login_needs_a_username_and_a_password(app: App, username: str, password: str) -> None:
    with pytest.raises(LinkError, match="needs a username and a password"):
        Linker(app).log_in("logbook", "alice", username, password)


def test_a_login_for_an_unknown_user_asks_the_platform_nothing(app: App) -> None:
    with pytest.raises(Exception, match="nobody"):
        Linker(app).log_in("logbook", "nobody", "ada", PASSWORD)


def test_a_session_file_links_its_session(app: App, me: responses.RequestsMock) -> None:
    result = Linker(app).import_session_file(
        "logbook", "alice", json.dumps({"session": SESSION}).encode()
    )

    assert result.handle == "ada-on-logbook"
    assert stored(app).issued_by == "login"


def test_a_session_file_that_is_not_one_is_refused_clearly(app: App) -> None:
    with pytest.raises(LinkError, match=r"logbook: not a Logbook session file: nothing"):
        Linker(app).import_session_file("logbook", "alice", b"\x80\x04garbage")


def test_a_session_file_too_large_is_refused_unread(app: App) -> None:
    with pytest.raises(LinkError, match="larger than 64 KiB"):
        Linker(app).import_session_file("logbook", "alice", b"{" * (MAX_SESSION_FILE_BYTES + 1))


class SecretPerson(Person):
    """A person at a terminal that can hide what is typed: hidden answers are kept apart."""

    def __init__(self, answers: list[str], hidden: list[str]) -> None:
        super().__init__(answers)
        self.hidden = list(hidden)
        self.asked_hidden: list[str] = []

    def ask_secret(self, prompt: str) -> str:
        self.asked_hidden.append(prompt)
        return self.hidden.pop(0)

    def login_terminal(self) -> Terminal:
        plain = self.terminal(None)
        return Terminal(
            show=plain.show,
            ask=plain.ask,
            countdown=plain.countdown,
            open_browser=None,
            ask_secret=self.ask_secret,
        )


def test_the_terminal_warns_asks_the_password_hidden_and_then_the_code(
    app: App, me: responses.RequestsMock
) -> None:
    person = SecretPerson(answers=["bea", CODE], hidden=[PASSWORD])
    flow = Linker(app).flow("logbook")

    result = run_flow(
        Linker(app), flow, "logbook", "alice", terminal=person.login_terminal(),
        settings=app.settings.linking,
    )  # fmt: skip

    assert result.handle == "ada-on-logbook"
    assert person.shown == [
        "Logbook may lock you out.",
        "logbook username: ",
        "code from your app: ",
    ]
    assert person.asked_hidden == ["logbook password for bea: "]
    assert all(PASSWORD not in line for line in person.shown)


def test_a_terminal_that_cannot_hide_input_never_asks_for_the_password(app: App) -> None:
    person = Person(answers=["ada"])

    with pytest.raises(LinkError, match="cannot read a password without showing it"):
        run_flow(
            Linker(app), Linker(app).flow("logbook"), "logbook", "alice",
            terminal=person.terminal(None), settings=app.settings.linking,
        )  # fmt: skip
    assert person.shown == []
