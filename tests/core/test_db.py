"""Engines and sessions: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from trickle.core.db import Database, DatabaseError, create_db_engine, insert, is_postgres
from trickle.core.models import Budget, User

INSTANT = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("url", ["not a url", "", "sqlite//trickle.db", "postgresql://u@h:port/db"])
def test_a_string_that_is_not_a_url_is_refused_with_examples(url: str) -> None:
    with pytest.raises(DatabaseError, match=r"not a database URL: .*sqlite:///trickle\.db"):
        create_db_engine(url)


@pytest.mark.parametrize(
    "url",
    ["nosuchdb://u:hunter2@host/x", "mysql://u:hunter2@h/db"],
)
def test_an_unsupported_database_is_refused_without_showing_the_password(url: str) -> None:
    with pytest.raises(DatabaseError, match="unsupported database URL") as caught:
        create_db_engine(url)
    assert "hunter2" not in str(caught.value)
    assert "postgresql+psycopg://" in str(caught.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_plain_postgresql_url_uses_psycopg_3(scheme: str) -> None:
    engine = create_db_engine(f"{scheme}://user@db.example/trickle")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert is_postgres(engine)
    finally:
        engine.dispose()


def test_a_url_that_does_not_parse_is_refused_without_showing_the_password() -> None:
    with pytest.raises(DatabaseError, match="not a database URL") as caught:
        create_db_engine("postgresql://u:hunter2@h:port/db")
    assert "hunter2" not in str(caught.value)


def test_a_sqlite_file_is_in_wal_mode_with_foreign_keys_on(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000
        assert (tmp_path / "wal.db").exists()
        assert not database.is_postgres
    finally:
        database.dispose()


def test_an_in_memory_sqlite_database_still_enforces_foreign_keys() -> None:
    engine = create_db_engine("sqlite://")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(db: Database) -> None:
    def add_budget_of_nobody() -> None:
        with db.session() as session:
            session.add(Budget(user_id=424242, amount_minor=1, effective_at=INSTANT))

    with pytest.raises(IntegrityError):
        add_budget_of_nobody()
    with db.reader() as session:
        assert session.scalars(select(Budget)).all() == []


def test_a_session_commits_on_success(db: Database) -> None:
    with db.session() as session:
        session.add(User(name="alice", currency="EUR", created_at=INSTANT))
    with db.reader() as session:
        assert session.scalars(select(User.name)).all() == ["alice"]


def test_a_session_rolls_back_everything_on_error(db: Database) -> None:
    def fail_after_writing() -> None:
        with db.session() as session:
            session.add(User(name="alice", currency="EUR", created_at=INSTANT))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_after_writing()
    with db.reader() as session:
        assert session.scalars(select(User)).all() == []


def test_insert_offers_on_conflict_do_nothing_on_both_dialects(db: Database) -> None:
    row = {"name": "alice", "currency": "EUR", "created_at": INSTANT}
    with db.session() as session:
        for _ in range(2):
            session.execute(
                insert(session, User.__table__)
                .values(row)
                .on_conflict_do_nothing(index_elements=["name"])
            )
    with db.reader() as session:
        assert session.scalars(select(User.name)).all() == ["alice"]
        assert is_postgres(session) == db.is_postgres
        assert db.is_postgres == (db.engine.dialect.name == "postgresql")


def test_sqlite_writers_queue_instead_of_failing_to_upgrade_a_read_lock(
    sqlite_db: Database,
) -> None:
    # Each writer reads, pauses, then writes in one transaction. Taking the
    # write lock at BEGIN serializes them, so every writer sees the previous
    # writers' rows and none fails with "database is locked".
    seen: list[int] = []
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            with sqlite_db.session() as session:
                count = session.execute(text("SELECT count(*) FROM users")).scalar_one()
                time.sleep(0.02)
                session.add(User(name=name, currency="EUR", created_at=INSTANT))
            seen.append(count)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(f"user{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(seen) == list(range(8))


def test_a_sqlite_reader_does_not_block_a_writer(sqlite_db: Database) -> None:
    with sqlite_db.reader() as reader:
        assert reader.execute(text("SELECT count(*) FROM users")).scalar() == 0
        with sqlite_db.session() as writer:
            writer.add(User(name="alice", currency="EUR", created_at=INSTANT))
    with sqlite_db.reader() as reader:
        assert reader.scalars(select(User.name)).all() == ["alice"]
