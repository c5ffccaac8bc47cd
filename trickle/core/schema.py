"""Create or upgrade the database schema with Alembic, and check it is current."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from trickle.core.db import DatabaseError

SCRIPT_LOCATION = "trickle:migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at trickle's migrations (and ``engine`` if given)."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    """The newest migration this trickle ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None when it has never been initialized)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest migration; returns (before, after). Safe to repeat."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, current_revision(engine)


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that is missing or behind: tell the operator what to run."""
    try:
        current = current_revision(engine)
    except Exception as exc:  # the driver's own connection errors vary by dialect
        raise DatabaseError(f"cannot open the database: {exc}") from exc
    head = head_revision()
    if current is None:
        raise DatabaseError("the database is not initialized: run `trickle init` first")
    if current != head:
        raise DatabaseError(
            f"the database schema is at {current}, this trickle needs {head}: "
            "run `trickle init` to upgrade it"
        )
