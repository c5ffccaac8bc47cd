"""Linking GitHub accounts: trickle's real linking service against the fake GitHub.

GitHub's connector declares the device flow, the web flow (authorization code
with PKCE) and a personal token; trickle's :class:`~trickle.linking.service.Linker`
runs them against the fake GitHub's login side, which answers as GitHub's
documentation says (errors in HTTP 200 bodies, ``slow_down`` adding five
seconds, ``bad_verification_code``...), with ``oauth_base_url`` and
``base_url`` both pointing at the one fake. Each way a link can fail ends in a
clear :class:`LinkError` with nothing linked and no attempt left behind;
unlinking revokes a token trickle's app obtained, and leaves a personal token
for its owner to revoke.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import make_settings
from trickle.app import App
from trickle.config import Settings
from trickle.connectors.github.fake import FakeGitHub
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.models import LinkAttempt, LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.accounts import LinkError
from trickle.linking.service import DeviceCode, Linker

CLIENT_ID = "Iv1.7r1ckl3d3v1c3fl0w"
SECRET = "7r1ckl3-4pp-s3cr3t-0123456789abcdef0123"
PERSONAL = "ghp_Th3Us3rsP3rs0n4lT0k3nXy7Qw2Lm9Zp4Kd0"
OCTOCAT_ID = 583231


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user("octocat", PERSONAL, user_id=OCTOCAT_ID)
        fake.oauth.register_app(CLIENT_ID, SECRET, callback_url="http://127.0.0.1/callback")
        yield fake


@pytest.fixture
def settings(sqlite_db: Database, tmp_path: Path, github: FakeGitHub) -> Settings:
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.connectors = {
        "github": {
            "base_url": github.base_url,
            "oauth_base_url": github.base_url,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
        }
    }
    return settings


def make_app(settings: Settings, **github: str) -> App:
    """An App (GitHub is installed as an entry point) with ``github`` settings changed."""
    changed = settings.model_copy(deep=True)
    changed.connectors["github"].update(github)
    return App(changed)


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = make_app(settings)
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    yield application
    application.close()


def linked(app: App) -> list[LinkedAccount]:
    with app.db.reader() as session:
        return list(session.scalars(select(LinkedAccount).order_by(LinkedAccount.id)))


def attempts(app: App) -> int:
    with app.db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(LinkAttempt)) or 0)


def stored_token(app: App) -> tuple[str | None, str | None]:
    """The linked account's stored access token, and the flow that issued it."""
    (account,) = linked(app)
    assert account.credentials is not None
    credentials = app.box.open(account.credentials)
    return credentials.access_token, credentials.issued_by


def sleeper(
    slept: list[float], *, when: int | None = None, then: Callable[[], object] = lambda: None
) -> Callable[[float], None]:
    """A ``sleep`` for :meth:`Linker.wait_device`: trickle's clock moves on by the seconds
    asked, which are recorded; at sleep number ``when`` (from 1) ``then`` happens meanwhile,
    as a user entering the code in their browser would."""

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(timedelta(seconds=seconds))
        if len(slept) == when:
            then()

    return sleep


def user_api(github: FakeGitHub, token: str) -> int:
    answer = requests.get(
        f"{github.base_url}/user", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    return answer.status_code


def device_link(app: App, github: FakeGitHub) -> tuple[Linker, DeviceCode]:
    """A device-flow link of octocat's account for alice, done."""
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    github.oauth.enter_code(device.user_code, "octocat")
    linker.wait_device(device, sleep=sleeper([]))
    return linker, device


# ---------------------------------------------------------------------------
# The device flow


def test_the_device_flow_links_the_account_whose_user_entered_the_code(
    app: App, github: FakeGitHub
) -> None:
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    assert device.verification_uri == f"{github.base_url}/login/device"
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", device.user_code)
    assert (device.interval, device.expires_at) == (5, clock.now() + timedelta(seconds=900))
    slept: list[float] = []
    enter = lambda: github.oauth.enter_code(device.user_code, "octocat")  # noqa: E731

    result = linker.wait_device(device, sleep=sleeper(slept, when=2, then=enter))

    assert (result.user, result.platform, result.handle) == ("alice", "github", "octocat")
    assert result.platform_user_id == str(OCTOCAT_ID)
    assert slept == [5, 5]  # GitHub's interval, and no slow_down
    assert github.oauth.slow_downs == 0
    token, issued_by = stored_token(app)
    assert github.oauth.tokens_of("octocat") == [token]
    assert issued_by == "device"
    assert attempts(app) == 0


def test_the_code_may_be_entered_at_the_device_page_in_a_browser(
    app: App, github: FakeGitHub
) -> None:
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    github.oauth.sign_in("octocat")

    def browser() -> None:
        page = requests.post(
            device.verification_uri,
            data={"user_code": device.user_code, "authorize": "allow"},
            timeout=5,
        )
        assert page.status_code == 200

    result = linker.wait_device(device, sleep=sleeper([], when=1, then=browser))
    assert result.handle == "octocat"


def test_slow_down_lengthens_every_later_wait_by_five_seconds(app: App, github: FakeGitHub) -> None:
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    slept: list[float] = []

    def drifting(seconds: float) -> None:  # a clock that runs fast, as WSL's does
        slept.append(seconds)
        clock.advance(timedelta(seconds=seconds - 1 if len(slept) <= 2 else seconds))
        if len(slept) == 4:
            github.oauth.enter_code(device.user_code, "octocat")

    result = linker.wait_device(device, sleep=drifting)

    assert result.handle == "octocat"
    assert slept == [5, 10, 15, 15]
    assert github.oauth.slow_downs == 2  # and none once trickle waited GitHub's new interval


def test_a_code_github_expired_links_nothing(app: App, github: FakeGitHub) -> None:
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    expire = lambda: github.oauth.expire_code(device.user_code)  # noqa: E731
    with pytest.raises(LinkError, match="the github code expired before it was entered"):
        linker.wait_device(device, sleep=sleeper([], when=2, then=expire))
    assert (linked(app), attempts(app)) == ([], 0)


def test_a_code_nobody_enters_within_fifteen_minutes_links_nothing(
    app: App, github: FakeGitHub
) -> None:
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    slept: list[float] = []
    with pytest.raises(LinkError, match="expired before it was entered: start the link again"):
        linker.wait_device(device, sleep=sleeper(slept))
    assert sum(slept) == 900
    assert (linked(app), attempts(app)) == ([], 0)
    assert github.oauth.slow_downs == 0


def test_a_user_who_cancels_at_github_links_nothing(app: App, github: FakeGitHub) -> None:
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    deny = lambda: github.oauth.deny_code(device.user_code)  # noqa: E731
    with pytest.raises(LinkError, match="you did not allow trickle to read your github likes"):
        linker.wait_device(device, sleep=sleeper([], when=1, then=deny))
    assert (linked(app), attempts(app)) == ([], 0)


def test_an_app_without_the_device_flow_enabled_cannot_start_one(
    app: App, github: FakeGitHub
) -> None:
    github.oauth.set_device_flow(CLIENT_ID, False)
    with pytest.raises(LinkError, match=r"GitHub's app does not allow the device flow: the op"):
        Linker(app).start_device("github", "alice")
    assert (linked(app), attempts(app)) == ([], 0)


def test_the_device_flow_turned_off_while_the_user_enters_the_code_links_nothing(
    app: App, github: FakeGitHub
) -> None:
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    github.oauth.enter_code(device.user_code, "octocat")
    github.oauth.set_device_flow(CLIENT_ID, False)
    with pytest.raises(LinkError, match=r"tick 'Enable Device Flow'"):
        linker.wait_device(device, sleep=sleeper([]))
    assert (linked(app), attempts(app)) == ([], 0)
    assert github.oauth.tokens_issued == 0


def test_an_app_deleted_while_the_user_enters_the_code_links_nothing(
    app: App, github: FakeGitHub
) -> None:
    linker = Linker(app)
    device = linker.start_device("github", "alice")
    github.oauth.delete_app(CLIENT_ID)
    with pytest.raises(LinkError, match=r"GitHub knows no app with the client id"):
        linker.wait_device(device, sleep=sleeper([]))
    assert (linked(app), attempts(app)) == ([], 0)


def test_a_client_id_github_does_not_know_is_a_clear_link_error(
    settings: Settings, app: App
) -> None:
    wrong = make_app(settings, client_id="Iv1.n0such4pp")
    try:
        with pytest.raises(LinkError, match=r"GitHub knows no app with the client id in \[connect"):
            Linker(wrong).start_device("github", "alice")
    finally:
        wrong.close()
    assert (linked(app), attempts(app)) == ([], 0)


# ---------------------------------------------------------------------------
# The web flow: the authorization code with PKCE


def browser_at(url: str) -> str:
    """The browser opens ``url``; the address GitHub sends it back to."""
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["Location"]
    return location


def test_the_web_flow_links_the_signed_in_user_on_any_loopback_port(
    app: App, github: FakeGitHub
) -> None:
    linker = Linker(app)
    authorization = linker.authorize(
        "github", "alice", redirect_uri="http://127.0.0.1:50123/callback"
    )
    assert authorization.url.startswith(f"{github.base_url}/login/oauth/authorize?")
    assert "code_challenge_method=S256" in authorization.url
    assert SECRET not in authorization.url
    github.oauth.sign_in("octocat")

    back = browser_at(authorization.url)
    assert back.startswith("http://127.0.0.1:50123/callback?code=")
    result = linker.complete(back)

    assert (result.user, result.handle, result.platform_user_id) == (
        "alice",
        "octocat",
        str(OCTOCAT_ID),
    )
    token, issued_by = stored_token(app)
    assert github.oauth.tokens_of("octocat") == [token]
    assert issued_by == "oauth2"
    assert attempts(app) == 0


def test_a_user_who_denies_at_github_links_nothing(app: App, github: FakeGitHub) -> None:
    linker = Linker(app)
    authorization = linker.authorize("github", "alice", redirect_uri="http://127.0.0.1:5/callback")
    github.oauth.sign_in("octocat")
    github.oauth.consent("deny")
    back = browser_at(authorization.url)
    with pytest.raises(LinkError, match="you did not allow trickle to read your github likes"):
        linker.complete(back)
    assert (linked(app), attempts(app)) == ([], 0)
    assert github.oauth.tokens_issued == 0


def test_a_redirect_uri_off_the_apps_callback_url_comes_back_as_redirect_uri_mismatch(
    app: App, github: FakeGitHub
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("github", "alice", redirect_uri="http://127.0.0.1:5/else")
    github.oauth.sign_in("octocat")
    back = browser_at(authorization.url)
    assert back.startswith("http://127.0.0.1/callback?error=redirect_uri_mismatch")  # registered
    with pytest.raises(LinkError, match=r"github refused the link \(redirect_uri_mismatch"):
        linker.complete(back)
    assert (linked(app), attempts(app)) == ([], 0)


def test_a_code_github_refuses_links_nothing(app: App, github: FakeGitHub) -> None:
    linker = Linker(app)
    authorization = linker.authorize("github", "alice", redirect_uri="http://127.0.0.1:5/callback")
    github.oauth.sign_in("octocat")
    back = browser_at(authorization.url)
    code = back.split("code=")[1].split("&")[0]
    mistyped = back.replace(code, "0" * len(code))
    with pytest.raises(
        LinkError,
        match=r"github refused exchanging the code \(bad_verification_code: "
        r"The code passed is incorrect or expired\.\)",
    ):
        linker.complete(mistyped)
    assert (linked(app), attempts(app)) == ([], 0)
    assert github.oauth.tokens_issued == 0


def test_a_wrong_client_secret_is_refused_at_the_exchange_without_showing_it(
    settings: Settings, app: App, github: FakeGitHub
) -> None:
    wrong = make_app(settings, client_secret="n0t-th3-4pps-s3cr3t-at-all-0123456789")
    try:
        linker = Linker(wrong)
        authorization = linker.authorize(
            "github", "alice", redirect_uri="http://127.0.0.1:5/callback"
        )
        github.oauth.sign_in("octocat")
        with pytest.raises(LinkError, match=r"\(incorrect_client_credentials: ") as refused:
            linker.complete(browser_at(authorization.url))
    finally:
        wrong.close()
    assert "n0t-th3-4pps-s3cr3t" not in str(refused.value)
    assert (linked(app), attempts(app)) == ([], 0)


# ---------------------------------------------------------------------------
# Unlinking


def test_unlinking_revokes_a_token_trickles_app_obtained(app: App, github: FakeGitHub) -> None:
    linker, _ = device_link(app, github)
    token, _ = stored_token(app)
    assert token is not None
    assert user_api(github, token) == 200

    result = linker.unlink("github", "alice")

    assert (result.revoked, result.note) == (True, "the token was revoked at GitHub")
    assert github.oauth.tokens_revoked == 1
    assert user_api(github, token) == 401
    (account,) = linked(app)
    assert account.credentials is None


def test_unlinking_leaves_a_personal_token_to_be_revoked_at_github(
    app: App, github: FakeGitHub
) -> None:
    linker = Linker(app)
    linker.import_token("github", "alice", PERSONAL)

    result = linker.unlink("github", "alice")

    assert result.revoked is False
    assert result.note == "the token was made at GitHub: revoke it there"
    assert github.oauth.tokens_revoked == 0
    assert user_api(github, PERSONAL) == 200  # only its owner can revoke it, at GitHub


def test_unlinking_with_app_credentials_github_refuses_still_forgets_the_token(
    settings: Settings, app: App, github: FakeGitHub
) -> None:
    device_link(app, github)
    token, _ = stored_token(app)
    assert token is not None
    wrong = make_app(settings, client_secret="n0t-th3-4pps-s3cr3t-at-all-0123456789")
    try:
        result = Linker(wrong).unlink("github", "alice")
    finally:
        wrong.close()
    assert result.revoked is False
    assert "GitHub did not revoke the token" in result.note
    assert "revoke trickle's access in your GitHub settings" in result.note
    assert "n0t-th3-4pps-s3cr3t" not in result.note
    assert user_api(github, token) == 200
    (account,) = linked(app)
    assert account.credentials is None


def test_unlinking_a_token_the_user_already_revoked_says_so(app: App, github: FakeGitHub) -> None:
    device_link(app, github)
    github.oauth.revoke_grant("octocat", CLIENT_ID)
    result = Linker(app).unlink("github", "alice")
    assert result.revoked is True  # GitHub knows the token no more: it is dead either way
    assert result.note == "the token was revoked at GitHub"
