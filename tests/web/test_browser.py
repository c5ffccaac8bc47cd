"""The web side in a real browser: headless Chromium driven by Selenium against the web side
served by waitress on 127.0.0.1 (a free port), with the fake GitHub (API and OAuth) and a
fake Mastodon server beside it.

Where the other web tests use Flask's test client, these go through what a person's browser
does: real cookies (their flags as Chromium stores them), CSRF tokens read from the forms
it renders, redirects to the fake GitHub and back, forms submitted without JavaScript.

They need Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; ``.ci/run`` installs them when missing). Without them the tests
are skipped, saying so, unless ``CI`` is set: then they fail, so CI never loses them
silently. Each browser session is a fresh Chromium profile; the fake GitHub has one
signed-in browser, which a test switches to the person at the browser before each visit.
A phone's width is emulated (Chromium's devtools metrics): a window is never narrower
than 500 pixels.

Screenshots of the pages go to the test's pytest tmp path (``.../screenshots/``), and when
``TRICKLE_TEST_ARTIFACTS`` names a directory they are copied there too, one folder per test
(``TRICKLE_TEST_ARTIFACTS=artifacts python -m pytest tests/web/test_browser.py``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait

from tests.web.conftest import Site, running_site
from trickle.config import WebSettings
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.money import Money
from trickle.core.periods import Period
from trickle.core.users import fund, set_operator
from trickle.scheduler import settle_closed_months
from trickle.web.serve import WebServer, web_server

DESKTOP = (1280, 900)
PHONE = (390, 844)
PAGE_SECONDS = 10


def _chromium() -> tuple[str, str]:
    """The Chromium and chromedriver executables; skipped (failed under CI) without them."""
    browser = next(
        (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))),
        None,
    )
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p)
    reason = (
        f"the browser tests need {missing}: apt-get install chromium chromium-driver "
        "(.ci/run installs them)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Browsers:
    """Fresh headless Chromium sessions (each its own profile) and their screenshots."""

    executables: tuple[str, str]
    profiles: Path
    screenshots: Path
    opened: list[WebDriver] = field(default_factory=list)

    def open(self, size: tuple[int, int] = DESKTOP) -> WebDriver:
        browser, driver = self.executables
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        profile = self.profiles / f"profile-{len(self.opened)}"
        for argument in (
            "--headless=new",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-gpu",
        ):
            options.add_argument(argument)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            options.add_argument("--no-sandbox")  # Chromium refuses its sandbox as root
        session = webdriver.Chrome(options=options, service=Service(driver))
        session.set_page_load_timeout(PAGE_SECONDS)
        # a window is never narrower than Chromium's minimum (500 pixels): a phone's
        # viewport is emulated, as its developer tools do
        session.execute_cdp_cmd(  # type: ignore[attr-defined]
            "Emulation.setDeviceMetricsOverride",
            {"width": size[0], "height": size[1], "deviceScaleFactor": 1,
             "mobile": size[0] < DESKTOP[0]},
        )  # fmt: skip
        self.opened.append(session)
        return session

    def shoot(self, session: WebDriver, name: str) -> Path:
        """Save the whole page (not only the window) as ``NAME.png``."""
        metrics = session.execute_cdp_cmd("Page.getLayoutMetrics", {})  # type: ignore[attr-defined]
        size = metrics["cssContentSize"]
        shot = session.execute_cdp_cmd(  # type: ignore[attr-defined]
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                         "scale": 1},
            },
        )  # fmt: skip
        path = self.screenshots / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        for session in self.opened:
            with contextlib.suppress(WebDriverException):  # a browser that died is closed
                session.quit()


@pytest.fixture
def browsers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browsers]:
    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    found = Browsers(_chromium(), tmp_path / "profiles", screenshots)
    try:
        yield found
    finally:
        found.close()
        target = os.environ.get("TRICKLE_TEST_ARTIFACTS")
        if target:
            shutil.copytree(screenshots, Path(target) / request.node.name, dirs_exist_ok=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Live:
    """The web side served for real on 127.0.0.1, and the fake GitHub."""

    site: Site
    server: WebServer

    @property
    def url(self) -> str:
        return self.server.address

    def github_id(self, login: str) -> str:
        return str(self.site.github.github.users[login].id)


@pytest.fixture
def live(sqlite_db: Database, tmp_path: Path) -> Iterator[Live]:
    port = _free_port()
    web = WebSettings(
        base_url=f"http://127.0.0.1:{port}",
        cookie_secret=SecretStr("s" * 40),
        sign_in_attempts_per_minute=50,
        threads=4,
    )
    with running_site(sqlite_db, tmp_path, web) as site:
        server = web_server(site.app, host="127.0.0.1", port=port).start()
        try:
            yield Live(site, server)
        finally:
            server.stop()


def click(session: WebDriver, label: str) -> None:
    """Press the button whose text is ``label`` (a form's submit: no JavaScript involved)
    and wait until the browser has left the page for the one the form led to."""
    page = session.find_element(By.TAG_NAME, "html")
    session.find_element(By.XPATH, f"//button[normalize-space()={label!r}]").click()
    WebDriverWait(session, PAGE_SECONDS).until(staleness_of(page))


def text(session: WebDriver) -> str:
    return " ".join(session.find_element(By.TAG_NAME, "main").text.split())


def test_a_month_in_the_browser_from_sign_in_to_the_creator_claiming(
    live: Live, browsers: Browsers
) -> None:
    """alice signs in with GitHub, links her Mastodon account (naming her server), sees
    the star she gave ada appear as a flattr after a poll and sets her budget; the month
    settles with the share held for ada, who claims it in a browser of her own from her
    creator page."""
    ada = live.github_id("ada")
    repo = live.site.github.publish("ada", 1)[0]
    alice = browsers.open()

    alice.get(live.url + "/")
    browsers.shoot(alice, "01-home")
    live.site.github.sign_in_browser("alice")  # alice is signed in at GitHub, and approves
    click(alice, "Sign in with GitHub")
    assert alice.current_url == live.url + "/me"
    assert "Welcome, alice: your trickle account was created." in text(alice)
    cookie = alice.get_cookie("trickle_session")
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, False, "Lax")

    live.site.mastodon.sign_in("alice")  # and at her Mastodon server
    alice.find_element(By.ID, "link-server-mastodon").send_keys(live.site.mastodon.base_url)
    click(alice, "Link a Mastodon account")
    assert alice.current_url == live.url + "/me"
    assert "Linked mastodon account alice@" in text(alice)
    browsers.shoot(alice, "02-me-linked")

    live.site.poll_everything()  # the baseline of her accounts
    clock.advance(timedelta(hours=1))
    live.site.github.like("alice", repo, clock.now())
    clock.advance(timedelta(hours=5))
    live.site.poll_everything()
    with live.site.app.db.session() as session:
        fund(session, "alice", Money(2000, "EUR"))  # the operator: trickle users fund
    alice.refresh()
    assert "1 flattr(s)." in text(alice)
    assert "ada" in alice.find_element(By.CSS_SELECTOR, "table tbody").text
    browsers.shoot(alice, "03-me-flattr")

    field = alice.find_element(By.ID, "budget")
    field.clear()
    field.send_keys("7.50")
    click(alice, "Set budget")
    assert "Your monthly budget is now 7.50 EUR." in text(alice)
    assert "Monthly budget 7.50 EUR" in text(alice)
    browsers.shoot(alice, "04-me-budget")

    clock.set(Period.parse("2026-10").end + timedelta(hours=25), frozen=True)
    live.site.poll_everything()
    assert settle_closed_months(live.site.app)

    creator = browsers.open()  # ada's own browser: a fresh profile, no cookie of alice's
    creator.get(f"{live.url}/c/github/{ada}")
    assert "Waiting for ada: 7.50 EUR in 1 share(s)" in text(creator)
    browsers.shoot(creator, "05-creator-waiting")
    live.site.github.sign_in_browser("ada")
    click(creator, "Sign in with this account to claim it")
    assert creator.current_url == live.url + "/me"
    assert "1 waiting share(s) were paid to you." in text(creator)
    assert "Received as a creator 7.50 EUR" in text(creator)
    browsers.shoot(creator, "06-creator-me")
    creator.get(f"{live.url}/c/github/{ada}")
    assert "ada is on trickle" in text(creator)
    browsers.shoot(creator, "07-creator-claimed")


PAGES = {
    "me": "/me",
    "statement": "/me/months/2026-10",
    "creator": "/c/github/{ada}",
    "admin": "/admin",
    "not-found": "/c/github/nobody",
}


def overflow(session: WebDriver) -> int:
    """How many CSS pixels the page is wider than the window (0: nothing to scroll sideways)."""
    width = session.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return int(width)


HIDDEN_SCROLLERS = """return [...document.querySelectorAll("main *")].filter(e => {
    const x = getComputedStyle(e).overflowX;
    return (x === "auto" || x === "scroll") && e.scrollWidth > e.clientWidth && e.tabIndex < 0;
}).length"""
"""Boxes that scroll sideways but that a keyboard cannot reach to scroll."""


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two CSS ``rgb(...)`` colours."""

    def luminance(color: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", color)[:3]]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_pages_fit_a_phone_and_a_desktop(live: Live, browsers: Browsers) -> None:
    """Every page at a phone's width (390x844) and a desktop's: nothing wider than the
    window (a wide table scrolls in a box the keyboard can reach), every field labelled,
    the skip link the first stop of the keyboard, its focus ring visible (3:1 at least
    against the page, WCAG 2.2's non-text contrast)."""
    ada = live.site.waiting_money_for_ada()
    with live.site.app.db.session() as session:
        set_operator(session, "alice", True)
    for size in (PHONE, DESKTOP):
        browser = browsers.open(size)
        browser.get(live.url + "/me/months/2026-10")  # signed out: sign in first, come back
        assert browser.current_url == live.url + "/?next=/me/months/2026-10"
        browsers.shoot(browser, f"sign-in-{size[0]}x{size[1]}")
        assert overflow(browser) == 0, size
        live.site.github.sign_in_browser("alice")
        click(browser, "Sign in with GitHub")
        assert browser.current_url == live.url + "/me/months/2026-10"
        for name, path in PAGES.items():
            browser.get(live.url + path.format(ada=ada))
            browsers.shoot(browser, f"{name}-{size[0]}x{size[1]}")
            assert browser.execute_script("return window.innerWidth") == size[0]
            assert overflow(browser) == 0, (name, size)
            assert browser.execute_script(HIDDEN_SCROLLERS) == 0, (name, size)
            for box in browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden])"):
                labels = browser.find_elements(
                    By.CSS_SELECTOR, f"label[for='{box.get_attribute('id')}']"
                )
                assert [label.text.strip() != "" for label in labels] == [True], name
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        skip = browser.switch_to.active_element
        assert skip.text == "Skip to the content"
        assert skip.is_displayed()
        assert skip.location["x"] >= 0  # on the screen once focused
        ring = skip.value_of_css_property("outline-color")
        page = browser.find_element(By.TAG_NAME, "body").value_of_css_property("background-color")
        assert contrast(ring, page) >= 3, (ring, page)
