"""Alembic environment: run trickle's migrations on the engine trickle hands in."""

from __future__ import annotations

from alembic import context

from trickle.core.db import create_db_engine
from trickle.core.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    # Developers running `alembic` by hand: use trickle's own configuration.
    from trickle.config import load_settings

    engine = create_db_engine(load_settings().database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
