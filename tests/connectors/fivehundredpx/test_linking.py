"""Linking a 500px account through OAuth 1.0a on a server of the closed v1 API, end to end
with trickle's Linker against Fake500px; the link command warns that the API closed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.conftest import make_settings
from trickle.app import App
from trickle.connectors.errors import ConnectorError
from trickle.connectors.fivehundredpx.fake import Fake500px
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking.service import Linker

KEY = "px-4pp-k3y-000000000000"
SECRET = "px-4pp-s3cr3t-9b8c7d6e"
CALLBACK = "http://127.0.0.1:8765/callback"


@pytest.fixture
def server() -> Iterator[Fake500px]:
    with Fake500px() as fake:
        fake.register_consumer(KEY, SECRET)
        fake.add_user("vovko", user_id=173)
        yield fake


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path, server: Fake500px) -> Iterator[App]:
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.connectors = {
        "fivehundredpx": {
            "base_url": server.base_url,
            "consumer_key": KEY,
            "consumer_secret": SECRET,
        }
    }
    application = App(settings)
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    yield application
    application.close()


def test_an_account_links_through_the_three_legs_on_the_named_server(
    app: App, server: Fake500px
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("fivehundredpx", "alice", redirect_uri=CALLBACK)
    assert authorization.url.startswith(f"{server.base_url}/v1/oauth/authorize?oauth_token=")
    server.sign_in("vovko")

    browser = requests.get(authorization.url, allow_redirects=False, timeout=5)
    result = linker.complete(browser.headers["Location"])

    assert (result.platform, result.handle, result.platform_user_id) == (
        "fivehundredpx",
        "vovko",
        "173",
    )
    assert server.refusals == []


def test_a_deactivated_server_refuses_the_link_and_nothing_is_linked(
    app: App, server: Fake500px
) -> None:
    linker = Linker(app)
    authorization = linker.authorize("fivehundredpx", "alice", redirect_uri=CALLBACK)
    server.sign_in("vovko")
    back = requests.get(authorization.url, allow_redirects=False, timeout=5).headers["Location"]
    server.deactivate()

    with pytest.raises(ConnectorError, match="Application is deactivated"):
        linker.complete(back)
