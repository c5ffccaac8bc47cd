"""On PostgreSQL, two `trickle settle` processes started together settle the month once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from sqlalchemy import text

from trickle.core.db import Database
from trickle.core.periods import Period
from trickle.core.schema import upgrade
from trickle.core.settlement import Settlement, SettleOptions

OCT = datetime(2026, 10, 12, tzinfo=UTC)


def _story(world) -> None:
    world.user("carol", budget="0", funds=None)
    world.claim("carol-gh", "carol")
    for n in range(40):
        name = f"user{n:02d}"
        world.user(name, budget=f"{n % 7 + 1}.{n:02d}", funds="6.00")
        for k in range(n % 5 + 1):
            world.like(name, "carol-gh" if k % 2 else f"creator-{k % 3}", OCT)


def test_two_settles_started_together_settle_the_month_once(postgres_urls, world_on):
    url, reference_url = postgres_urls(), postgres_urls()
    databases = [Database(url), Database(reference_url)]
    for database in databases:
        upgrade(database.engine)
        _story(world_on(database))
    concurrent, reference = databases

    env = dict(os.environ, TRICKLE_DATABASE_URL=url, TRICKLE_FEE_BPS="300")
    command = [sys.executable, "-m", "trickle", "settle", "2026-10", "--force", "--json"]
    children = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        results.append(json.loads(out)["result"])

    assert sorted(results) == ["already_settled", "settled"]
    Settlement(reference, SettleOptions(fee_bps=300)).settle(Period(2026, 10), force=True)
    assert world_on(concurrent).ledger() == world_on(reference).ledger()
    assert world_on(concurrent).shares() == world_on(reference).shares()
    assert world_on(concurrent).violations() == []
    for database in databases:
        database.dispose()


def test_a_settlement_leaves_fresh_statistics_for_the_tables_it_filled(postgres_urls, world_on):
    # Without them, `ledger check` right after a large month nested loops over every
    # user's settle transaction (minutes at 100,000 users) until autovacuum caught up.
    database = Database(postgres_urls())
    upgrade(database.engine)
    _story(world_on(database))
    Settlement(database, SettleOptions()).settle(Period(2026, 10), force=True)
    tables = ("flattrs", "shares", "settlement_users", "ledger_transactions", "ledger_entries")
    with database.reader() as session:
        analyzed = {
            name: last
            for name, last in session.execute(
                text(
                    "SELECT relname, last_analyze FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema()"
                )
            )
        }
    database.dispose()
    assert all(analyzed[name] is not None for name in tables), analyzed
