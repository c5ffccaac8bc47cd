"""A trickle App to link accounts through, for the tests of the fake authorization servers
(the ``make_app`` fixture of ``conftest.py`` builds it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sqlalchemy import select

from tests.conftest import make_settings
from trickle.app import App
from trickle.connectors.base import Connector
from trickle.connectors.registry import Registry
from trickle.core.models import LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user

MakeApp = Callable[[Sequence[type[Connector]], Mapping[str, Mapping[str, object]]], App]
"""``make_app(connectors, tables)``: an App of those connectors with those
``[connectors.NAME]`` tables, on a migrated SQLite database with the user ``ann``."""


def build_app(
    database_url: str,
    tmp_path: Path,
    connectors: Sequence[type[Connector]],
    tables: Mapping[str, Mapping[str, object]],
) -> App:
    """An App of ``connectors`` (registered with ``Registry.of``) and the user ``ann``."""
    settings = make_settings(database_url, tmp_path)
    settings.connectors = {name: dict(table) for name, table in tables.items()}
    app = App(settings, registry=Registry.of(list(connectors)))
    with app.db.session() as session:
        add_user(session, "ann", Money(500, "EUR"))
    return app


def linked_accounts(app: App) -> list[LinkedAccount]:
    """Every account row of ``app``'s database, in id order."""
    with app.db.reader() as session:
        return list(session.scalars(select(LinkedAccount).order_by(LinkedAccount.id)))
