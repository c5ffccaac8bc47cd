"""Shared fixtures: databases (SQLite always, PostgreSQL when configured), clock, app."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
def restore_logging() -> Iterator[None]:
    """Put the logging configuration back as it was once the test is done (for tests that
    run `trickle` commands in this process, which configure logging). During the test the
    ``trickle`` logger passes everything on to the root, whatever an earlier test set (the
    demo silences it)."""
    root = logging.getLogger()
    named = [logging.getLogger(n) for n in ("trickle", "urllib3", "apscheduler", "alembic")]
    handlers, level, levels = list(root.handlers), root.level, [n.level for n in named]
    named[0].setLevel(logging.NOTSET)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for logger, before in zip(named, levels, strict=True):
        logger.setLevel(before)


@pytest.fixture
def now() -> datetime:
    """Freeze trickle's clock at a known instant (mid-October 2026) and return it."""
    instant = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
    clock.set(instant, frozen=True)
    return instant


def postgres_base_url() -> str | None:
    """The PostgreSQL server tests may use, if any."""
    return os.environ.get(POSTGRES_ENV) or None


@contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """Create an empty schema on ``base`` for the block; yields a URL whose search_path is it."""
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
def postgres_url() -> Iterator[str]:
    """A fresh, empty schema on the test PostgreSQL, as a URL whose search_path points at it."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(POSTGRES_SKIP)
    with postgres_schema(base) as url:
        yield url


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
def second_db(db: Database, tmp_path: Path) -> Iterator[Database]:
    """Another migrated database of the same dialect as ``db`` (to compare two histories)."""
    with ExitStack() as stack:
        if db.is_postgres:
            base = postgres_base_url()
            assert base is not None
            url = stack.enter_context(postgres_schema(base))
        else:
            url = f"sqlite:///{tmp_path / 'second.db'}"
        database = Database(url)
        stack.callback(database.dispose)
        upgrade(database.engine)
        yield database


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


JOINED = datetime(2026, 1, 1, tzinfo=UTC)
"""When the users of a World scenario joined, unless a test says otherwise."""


class World:
    """A small scenario builder over one database: users, likes, claims, settlements.

    Tests use it to say what happened ("alice liked two repos of carol's")
    rather than how rows are inserted.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._items = 0

    def user(
        self,
        name: str,
        budget: str = "5.00",
        funds: str | None = "100.00",
        *,
        joined: datetime | None = JOINED,
    ) -> int:
        """Create a user with a budget (and a deposit, unless ``funds`` is None); returns its id.

        The user (and their budget) dates from ``joined``, the start of 2026 unless a test
        says otherwise, so that the months the scenarios settle fall under that budget;
        ``joined=None`` means now on trickle's clock, as ``users add`` does.
        """
        from sqlalchemy import update

        from trickle.core.models import Budget, User
        from trickle.core.money import parse_money
        from trickle.core.users import add_user, fund

        with self.db.session() as session:
            user = add_user(session, name, parse_money(budget, "EUR"))
            if joined is not None:
                session.execute(update(User).where(User.id == user.id).values(created_at=joined))
                session.execute(
                    update(Budget).where(Budget.user_id == user.id).values(effective_at=joined)
                )
            if funds is not None and parse_money(funds, "EUR").minor > 0:
                fund(session, name, parse_money(funds, "EUR"), reference=f"initial-{name}")
            return user.id

    def like(
        self,
        user: str,
        creator: str,
        at: datetime,
        *,
        item: str | None = None,
        platform: str = "github",
    ) -> str:
        """``user`` likes an item by ``creator`` (a platform id) at ``at``; returns the item id."""
        from trickle.core.events import LikeEvent
        from trickle.core.ingest import store_flattrs
        from trickle.core.users import get_user

        if item is None:
            self._items += 1
            item = f"item-{self._items}"
        event = LikeEvent(
            platform=platform,
            item_id=item,
            item_url=f"https://example.test/{item}",
            creator_id=creator,
            creator_handle=f"handle-{creator}",
            liked_at=at,
            observed_at=at,
        )
        with self.db.session() as session:
            store_flattrs(
                session, user_id=get_user(session, user).id, account_id=None, events=[event]
            )
        return item

    def claim(self, creator: str, user: str, platform: str = "github") -> object:
        """``user`` claims the creator identity ``creator``."""
        from trickle.core.escrow import claim_creator
        from trickle.core.users import get_user

        with self.db.session() as session:
            return claim_creator(
                session,
                platform=platform,
                platform_id=creator,
                user_id=get_user(session, user).id,
            )

    def settle(self, month: str, *, force: bool = True, **options: object) -> object:
        """Settle ``month`` with the given SettleOptions fields."""
        from trickle.core.periods import Period
        from trickle.core.settlement import Settlement, SettleOptions

        return Settlement(self.db, SettleOptions(**options)).settle(  # type: ignore[arg-type]
            Period.parse(month), force=force
        )

    def funds(self, user: str) -> tuple[int, int]:
        """(balance, reserved) of ``user``'s EUR wallet."""
        from trickle.core.ledger import funds_of
        from trickle.core.users import get_user

        with self.db.reader() as session:
            found = funds_of(session, get_user(session, user).id, "EUR")
            return found.balance, found.reserved

    def shares(self, user: str | None = None) -> list[tuple[str, str, int, str]]:
        """(liker, creator platform id, amount, state) of every share, in id order."""
        from sqlalchemy import select

        from trickle.core.models import Creator, Share, User

        with self.db.reader() as session:
            stmt = (
                select(User.name, Creator.platform_id, Share.amount_minor, Share.state)
                .join(User, User.id == Share.user_id)
                .join(Creator, Creator.id == Share.creator_id)
                .order_by(Share.id)
            )
            if user is not None:
                stmt = stmt.where(User.name == user)
            return [tuple(row) for row in session.execute(stmt)]  # type: ignore[misc]

    def ledger(self) -> list[tuple[str, str, str, int]]:
        """Every ledger entry as (transaction key, account code, currency, amount), sorted."""
        from sqlalchemy import select

        from trickle.core.models import LedgerAccount, LedgerEntry, LedgerTransaction

        with self.db.reader() as session:
            rows = session.execute(
                select(
                    LedgerTransaction.key,
                    LedgerAccount.code,
                    LedgerEntry.currency,
                    LedgerEntry.amount_minor,
                )
                .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
                .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            )
            return sorted(tuple(row) for row in rows)  # type: ignore[misc]

    def violations(self) -> list[object]:
        """The ledger invariants that fail (empty when all hold)."""
        from trickle.core.invariants import check_ledger

        with self.db.reader() as session:
            return list(check_ledger(session))


@pytest.fixture
def world(db: Database) -> World:
    """A scenario builder on the (dialect-parametrized) database."""
    return World(db)


@pytest.fixture
def world_on() -> type[World]:
    """The World class, to build scenarios on more than one database in a test."""
    return World


@pytest.fixture
def postgres_urls() -> Iterator[object]:
    """A factory of fresh PostgreSQL schemas (as URLs), all dropped after the test."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(POSTGRES_SKIP)
    with ExitStack() as stack:
        yield lambda: stack.enter_context(postgres_schema(base))
