"""Schema upgrades with Alembic, and refusing to run on a database that is not current."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from trickle.core.db import DatabaseError, create_db_engine
from trickle.core.models import Base
from trickle.core.schema import (
    alembic_config,
    current_revision,
    head_revision,
    require_current,
    upgrade,
)


@pytest.fixture
def empty_engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database (both dialects)."""
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


def test_trickle_ships_a_head_revision() -> None:
    assert head_revision()


def test_an_empty_database_has_no_revision(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None


def test_upgrade_creates_every_table_of_the_models(empty_engine: Engine) -> None:
    assert upgrade(empty_engine) == (None, head_revision())
    tables = set(inspect(empty_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_upgrade_creates_the_columns_of_the_models(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    inspector = inspect(empty_engine)
    for name, table in Base.metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert columns == {c.name for c in table.columns}, name


def test_the_migrated_schema_matches_the_models_exactly(empty_engine: Engine) -> None:
    # Tables, columns, types, indexes and constraints: a model change without a
    # migration (or the reverse) shows up here.
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_is_safe_to_run_twice(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (name, currency, created_at) "
                "VALUES ('alice', 'EUR', '2026-10-15 12:00:00')"
            )
        )
    assert upgrade(empty_engine) == (head_revision(), head_revision())
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM users")).scalars().all() == ["alice"]


def test_a_database_from_every_earlier_revision_upgrades_and_keeps_its_rows(
    empty_engine: Engine,
) -> None:
    config = alembic_config(empty_engine)
    command.upgrade(config, "0001")
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (name, currency, created_at) "
                "VALUES ('alice', 'EUR', '2026-10-15 12:00:00')"
            )
        )
    assert upgrade(empty_engine) == ("0001", head_revision())
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM users")).scalars().all() == ["alice"]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_every_migration_downgrades_to_an_empty_database(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    command.downgrade(alembic_config(empty_engine), "base")
    assert current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}


def test_a_current_database_passes_the_check(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    require_current(empty_engine)


def test_an_empty_database_asks_to_run_trickle_init(empty_engine: Engine) -> None:
    with pytest.raises(DatabaseError, match=r"not initialized: run `trickle init` first"):
        require_current(empty_engine)


def test_a_database_at_another_revision_asks_to_run_trickle_init(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    with pytest.raises(
        DatabaseError,
        match=rf"schema is at older, this trickle needs {head_revision()}: .*trickle init",
    ):
        require_current(empty_engine)


def test_a_database_in_a_missing_directory_is_a_database_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match=r"cannot create the database .*does not exist"):
        create_db_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")


def test_a_database_that_cannot_be_opened_is_a_database_error(tmp_path: Path) -> None:
    (tmp_path / "x.db").write_bytes(b"this is not a database, it is a text file" * 100)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(DatabaseError, match="cannot open the database"):
            require_current(engine)
    finally:
        engine.dispose()


def test_an_unreachable_postgresql_is_a_database_error() -> None:
    engine = create_db_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    try:
        with pytest.raises(DatabaseError, match="cannot open the database"):
            require_current(engine)
    finally:
        engine.dispose()


def test_0003_repairs_rows_no_month_can_hold_and_then_refuses_them(empty_engine: Engine) -> None:
    """A like dated 1969 stored before 0003 counts from when it was seen, a budget beyond
    the maximum is lowered to it, and afterwards the database refuses both outright."""
    command.upgrade(alembic_config(empty_engine), "0002")
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, name, currency, created_at) "
                "VALUES (1, 'alice', 'EUR', '2026-10-15 12:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO budgets (user_id, amount_minor, effective_at) "
                "VALUES (1, 99999999999999, '2026-10-15 12:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO creators (id, platform, platform_id, handle) "
                "VALUES (1, 'github', '7', 'someone')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO flattrs (user_id, platform, item_id, item_url, creator_id, "
                "liked_at, observed_at, effective_at) VALUES (1, 'github', 'old', 'u', 1, "
                "'1969-12-31 23:59:59', '2026-10-15 12:00:00', '1969-12-31 23:59:59')"
            )
        )

    upgrade(empty_engine)

    with empty_engine.connect() as connection:
        liked, effective = connection.execute(
            text("SELECT liked_at, effective_at FROM flattrs")
        ).one()
        assert liked is None
        assert str(effective).startswith("2026-10-15 12:00:00")
        assert connection.execute(text("SELECT amount_minor FROM budgets")).scalar() == 10**9
    for statement in (
        "UPDATE flattrs SET effective_at = '1999-12-31 23:59:59'",
        "UPDATE flattrs SET liked_at = '1970-01-01 00:00:00'",
        "UPDATE budgets SET amount_minor = 1000000001",
        "UPDATE budgets SET amount_minor = -1",
    ):
        with pytest.raises(IntegrityError), empty_engine.begin() as connection:
            connection.execute(text(statement))
