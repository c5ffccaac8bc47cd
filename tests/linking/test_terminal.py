"""``trickle link`` at a keyboard: each flow as the person in front of the terminal meets it.

The terminal is played by the test (what it shows is kept, what it asks is
answered), the browser by a thread that follows the platform's redirect to
trickle's loopback listener, and the platform by ``responses``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from tests.linking.platforms import APP_PASSWORD, AUTH, CODE, accounts, attempts, token_answer
from trickle.app import App
from trickle.core.clock import clock
from trickle.linking.accounts import LinkError
from trickle.linking.service import Linker
from trickle.linking.terminal import STABLE_PORT, Terminal, run_flow


class Person:
    """What the test's person sees and does: lines shown, answers typed, countdown ticks."""

    def __init__(self, answers: list[str] | None = None) -> None:
        self.shown: list[str] = []
        self.answers = list(answers or [])
        self.ticks: list[int] = []
        self.waited_for: list[str] = []
        self.opened: list[str] = []

    def ask(self, prompt: str) -> str:
        self.shown.append(prompt)
        answer = self.answers.pop(0)
        if answer == "^C":
            raise KeyboardInterrupt
        return answer

    @contextmanager
    def countdown(self, description: str) -> Iterator[Callable[[int], None]]:
        self.waited_for.append(description)
        yield self.ticks.append

    def terminal(self, browser: Callable[[str], bool] | None) -> Terminal:
        def open_browser(url: str) -> bool:
            self.opened.append(url)
            return browser(url) if browser is not None else False

        return Terminal(
            show=self.shown.append,
            ask=self.ask,
            countdown=self.countdown,
            open_browser=open_browser if browser is not None else None,
            sleep=lambda seconds: clock.advance(timedelta(seconds=seconds)),
        )


def browser_that(**answer: str) -> Callable[[str], bool]:
    """A browser whose user approves (or, with ``error=...``, refuses) at the platform, which
    then sends it to the redirect URI of the authorization URL with ``answer`` and the state."""

    def open_browser(url: str) -> bool:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        back = {"state": query["state"], **answer}
        threading.Thread(
            target=requests.get, args=(query["redirect_uri"],), kwargs={"params": back}
        ).start()
        return True

    return open_browser


@pytest.fixture
def platform(mock: responses.RequestsMock) -> responses.RequestsMock:
    """The mocked platform, letting the browser reach trickle's listener on 127.0.0.1."""
    mock.add_passthru("http://127.0.0.1")
    mock.post(f"{AUTH}/token", json=token_answer())
    return mock


def link(app: App, person: Person, browser: Callable[[str], bool] | None, kind: str) -> object:
    linker = Linker(app)
    return run_flow(
        linker,
        linker.flow("oauthy", kind),
        "oauthy",
        "alice",
        terminal=person.terminal(browser),
        settings=app.settings.linking,
    )


# ---------------------------------------------------------------------------
# In the browser, answered on the loopback listener


def test_the_browser_is_sent_to_approve_and_its_answer_links_the_account(
    app: App, platform: responses.RequestsMock
) -> None:
    person = Person()

    link(app, person, browser_that(code=CODE), "oauth2")

    [url] = person.opened
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    assert redirect_uri.startswith("http://127.0.0.1:")
    assert redirect_uri.endswith("/callback")
    assert url in person.shown  # printed too, for a browser that did not open
    assert person.waited_for == ["waiting for the browser"]
    assert (accounts(app), attempts(app)) == (1, 0)


def test_a_browser_that_cannot_open_leaves_the_address_to_open_by_hand(
    app: App, platform: responses.RequestsMock
) -> None:
    person = Person()
    app.settings.linking.timeout_seconds = 0.3

    with pytest.raises(LinkError, match=r"no answer from the browser within 0 s"):
        link(app, person, lambda url: False, "oauth2")

    assert any("no browser could be opened here" in line for line in person.shown)
    assert person.ticks  # the countdown ran
    assert (accounts(app), attempts(app)) == (0, 0)  # the attempt is gone with the wait


def test_refused_consent_in_the_browser_links_nothing(
    app: App, platform: responses.RequestsMock
) -> None:
    with pytest.raises(LinkError, match="you did not allow trickle"):
        link(app, Person(), browser_that(error="access_denied"), "oauth2")
    assert (accounts(app), attempts(app)) == (0, 0)


def test_a_flow_whose_redirect_must_stay_the_same_listens_on_a_fixed_port() -> None:
    from trickle.config import LinkingSettings
    from trickle.connectors.flows import AuthorizationCode, RegisteredApp
    from trickle.linking.terminal import _port

    assert _port(RegisteredApp(scopes=()), LinkingSettings()) == STABLE_PORT
    assert _port(AuthorizationCode("https://a", "https://t"), LinkingSettings()) == 0
    assert _port(RegisteredApp(scopes=()), LinkingSettings(loopback_port=9000)) == 9000


# ---------------------------------------------------------------------------
# Without a browser: the address pasted back


def test_the_address_the_browser_was_sent_to_can_be_pasted_back(
    app: App, platform: responses.RequestsMock
) -> None:
    person = Person()
    linker = Linker(app)
    pasted: list[str] = []

    def type_the_address(prompt: str) -> str:
        url = next(line for line in person.shown if line.startswith(AUTH))
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        pasted.append(f"{query['redirect_uri']}?code={CODE}&state={query['state']}")
        return pasted[0]

    person.ask = type_the_address  # type: ignore[method-assign]
    run_flow(
        linker,
        linker.flow("oauthy", "oauth2"),
        "oauthy",
        "alice",
        terminal=person.terminal(None),
        settings=app.settings.linking,
    )

    assert person.opened == []
    assert any("may not load" in line for line in person.shown)
    assert (accounts(app), attempts(app)) == (1, 0)


@pytest.mark.parametrize("answer", ["", "   "])
def test_pasting_nothing_links_nothing(
    app: App, platform: responses.RequestsMock, answer: str
) -> None:
    with pytest.raises(LinkError, match="nothing was pasted"):
        link(app, Person([answer]), None, "oauth2")
    assert (accounts(app), attempts(app)) == (0, 0)


def test_giving_up_at_the_prompt_forgets_the_attempt(
    app: App, platform: responses.RequestsMock
) -> None:
    with pytest.raises(KeyboardInterrupt):
        link(app, Person(["^C"]), None, "oauth2")
    assert (accounts(app), attempts(app)) == (0, 0)


# ---------------------------------------------------------------------------
# The device flow


def test_the_device_flow_shows_the_code_and_waits_for_it(
    app: App, mock: responses.RequestsMock
) -> None:
    mock.post(
        f"{AUTH}/device/code",
        json={
            "device_code": "dev1c3-c0de",
            "user_code": "WDJB-MJHT",
            "verification_uri": f"{AUTH}/device",
            "expires_in": 900,
            "interval": 5,
        },
    )
    mock.post(f"{AUTH}/token", json={"error": "authorization_pending"})
    mock.add(responses.POST, f"{AUTH}/token", json=token_answer())
    person = Person()

    link(app, person, lambda url: True, "device")

    assert person.shown[0] == f"Open {AUTH}/device and enter the code WDJB-MJHT"
    assert person.opened == [f"{AUTH}/device"]
    assert person.waited_for == ["waiting for the code WDJB-MJHT"]
    assert person.ticks[0] == 900
    assert accounts(app) == 1


# ---------------------------------------------------------------------------
# An app password, typed without being shown


def test_the_app_password_flow_asks_the_handle_shown_and_the_password_hidden(app: App) -> None:
    person = Person(["ada.passy.test"])
    hidden: list[str] = []

    def ask_secret(prompt: str) -> str:
        hidden.append(prompt)
        return APP_PASSWORD

    linker = Linker(app)
    terminal = replace(person.terminal(None), ask_secret=ask_secret)
    result = run_flow(
        linker, linker.flow("passy"), "passy", "alice", terminal=terminal,
        settings=app.settings.linking,
    )  # fmt: skip

    assert result.handle == "ada.passy.test"
    assert person.shown[0] == "your handle (like ada.passy.test): "
    assert any("https://passy.test/apps" in line for line in person.shown)
    assert hidden == ["app password: "]
    assert not any(APP_PASSWORD in line for line in person.shown)


def test_a_terminal_that_cannot_hide_input_is_not_asked_for_an_app_password(app: App) -> None:
    person = Person(["ada.passy.test"])
    linker = Linker(app)

    with pytest.raises(LinkError, match="without hiding it"):
        run_flow(
            linker, linker.flow("passy"), "passy", "alice", terminal=person.terminal(None),
            settings=app.settings.linking,
        )  # fmt: skip
    assert accounts(app) == 0
