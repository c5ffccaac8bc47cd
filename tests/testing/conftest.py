"""Fixtures of the tests of trickle.testing: a trickle App to link through."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.testing.linking_app import MakeApp, build_app
from trickle.app import App
from trickle.connectors.base import Connector
from trickle.core.db import Database


@pytest.fixture
def make_app(sqlite_db: Database, tmp_path: Path) -> Iterator[MakeApp]:
    """Build the Apps a test links through (each closed after the test)."""
    apps: list[App] = []

    def build(
        connectors: Sequence[type[Connector]], tables: Mapping[str, Mapping[str, object]]
    ) -> App:
        app = build_app(sqlite_db.url, tmp_path, connectors, tables)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()
