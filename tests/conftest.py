"""Shared fixtures: databases (SQLite always, PostgreSQL when configured), clock, app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from trickle.app import App
from trickle.config import Settings, WorkerSettings
from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.schema import upgrade

POSTGRES_ENV = "TRICKLE_TEST_POSTGRES_URL"
POSTGRES_SKIP = (
    f"PostgreSQL tests need {POSTGRES_ENV} "
    "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test); .ci/run sets it"
)


@pytest.fixture(autouse=True)
def _real_clock_after_each_test() -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture
def now() -> datetime:
    """Freeze trickle's clock at a known instant (mid-October 2026) and return it."""
    instant = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
    clock.set(instant, frozen=True)
    return instant


def postgres_base_url() -> str | None:
    """The PostgreSQL server tests may use, if any."""
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty schema on the test PostgreSQL, as a URL whose search_path points at it."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(POSTGRES_SKIP)
    schema = f"trickle_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite database file."""
    return f"sqlite:///{tmp_path / 'trickle.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database (both dialects)."""
    database = Database(db_url)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """A migrated SQLite database, for tests that need only one dialect."""
    database = Database(sqlite_url)
    upgrade(database.engine)
    yield database
    database.dispose()


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test: a fresh key, no config file, quick worker."""
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": SecretStr(Fernet.generate_key().decode()),
        "secret_key_file": tmp_path / "trickle.key",
        "worker": WorkerSettings(threads=4, tick_seconds=0.1, jitter=0.0),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    """Settings pointing at the migrated ``db``."""
    return make_settings(db.url, tmp_path)


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    """An App on the migrated ``db``."""
    application = App(settings)
    yield application
    application.close()
