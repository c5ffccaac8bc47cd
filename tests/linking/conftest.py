"""The linking tests' app, which knows the made-up platforms of :mod:`tests.linking.platforms`,
and their ``responses`` mock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses

from tests.conftest import make_settings
from tests.linking.platforms import API, CLIENT_SECRET, Fedi, Oauthy, Passy, Signy
from trickle.app import App
from trickle.connectors.registry import Registry
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.money import Money
from trickle.core.users import add_user


@pytest.fixture
def app(sqlite_db: Database, tmp_path: Path) -> Iterator[App]:
    settings = make_settings(sqlite_db.url, tmp_path)
    settings.connectors = {
        "oauthy": {"client_id": "oauthy-app", "client_secret": CLIENT_SECRET},
        "signy": {"consumer_key": "signy-key", "consumer_secret": CLIENT_SECRET},
    }
    application = App(settings, registry=Registry.of([Oauthy, Signy, Fedi, Passy]))
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC), frozen=True)
    with application.db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    yield application
    application.close()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{API}/me", json={"id": "u-77", "name": "alice-on-oauthy"})
        yield rsps
