"""Engines, sessions and schema upgrades, the same for SQLite and PostgreSQL.

SQLite is the embedded default: WAL mode, foreign keys on, and write
transactions that take the write lock up front (``BEGIN IMMEDIATE``) so that
several threads never deadlock upgrading a read lock. PostgreSQL is used as
is. Everything above this module writes plain SQLAlchemy and asks
:func:`insert` for the dialect's ``INSERT ... ON CONFLICT`` construct.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from trickle.core.errors import TrickleError

SQLITE_BUSY_TIMEOUT_MS = 60_000
# Page cache per connection, in KiB (SQLite's default is 2 MiB): a month's settlement
# writes millions of index entries, and with the default most of them miss the cache.
# It is a ceiling, filled only as pages are read.
SQLITE_CACHE_KIB = 64 * 1024


class DatabaseError(TrickleError):
    """The database cannot be reached, or its schema is not the one this trickle needs."""


def display_url(url: str) -> str:
    """``url`` as trickle shows it anywhere: with its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def is_memory_sqlite(url: str) -> bool:
    """True for an in-memory SQLite URL (``sqlite://``, ``sqlite:///:memory:``)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with trickle's per-dialect settings.

    A new SQLite file is created readable by its owner only (it holds sealed tokens and the
    ledger); SQLite gives its ``-wal`` and ``-shm`` files the same mode.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise DatabaseError(
            f"not a database URL: {display_url(url)!r} (e.g. sqlite:///trickle.db or "
            "postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # One connection shared by every thread, so that all of them see the same
            # database; pool sizes mean nothing here.
            kwargs = {k: v for k, v in kwargs.items() if k not in ("pool_size", "max_overflow")}
            kwargs["poolclass"] = StaticPool
        else:
            _create_private_file(Path(parsed.database))
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    if parsed.drivername in ("postgres", "postgresql"):  # postgres:// as many hosts write it
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    except (NoSuchModuleError, ImportError):  # unknown dialect (postgres://) or missing driver
        raise DatabaseError(
            f"unsupported database URL: {parsed.render_as_string(hide_password=True)!r} "
            "(use sqlite:///trickle.db or postgresql+psycopg://user@host/db)"
        ) from None


def _create_private_file(path: Path) -> None:
    """Create an empty database file with mode 0600 if there is none yet."""
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except FileNotFoundError:
        raise DatabaseError(
            f"cannot create the database {path}: the directory {path.parent} does not exist"
        ) from None
    except OSError as exc:
        raise DatabaseError(
            f"cannot create the database {path}: {exc.strerror or type(exc).__name__}"
        ) from None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("trickle_readonly"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (its result is a cursor result; typed as any result)."""
    return cast(CursorResult[Any], result).rowcount or 0


def is_postgres(bind: Engine | Session) -> bool:
    """True when ``bind`` talks to PostgreSQL (row locks, advisory locks available)."""
    engine = bind if isinstance(bind, Engine) else bind.get_bind()
    return engine.dialect.name == "postgresql"


def insert(bind: Engine | Session, table: Table) -> Any:
    """The dialect's INSERT construct for ``table``, which has ``on_conflict_do_nothing``."""
    if is_postgres(bind):
        return postgresql.insert(table)
    return sqlite.insert(table)


class Database:
    """An engine plus the session factories the rest of trickle uses."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_db_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readonly = sessionmaker(
            self.engine.execution_options(trickle_readonly=True), expire_on_commit=False
        )

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL."""
        return is_postgres(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write unit of work: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only session that does not take SQLite's write lock."""
        with self._readonly() as session, session.begin():
            yield session

    @contextmanager
    def scratch(self) -> Iterator[Session]:
        """A read-write transaction that is always rolled back: for "what would happen if"
        questions answered by the code that would make it happen (a dry run of a settlement).

        It holds write locks while it runs (SQLite's database lock, PostgreSQL's row locks),
        like the real thing would.
        """
        with self._sessions() as session:
            session.begin()
            try:
                yield session
            finally:
                session.rollback()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
