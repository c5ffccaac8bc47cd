"""Crash-safety evidence: `trickle settle` killed with SIGKILL anywhere, then resumed, ends
with the ledger an uninterrupted run writes, row for row."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from trickle.core.db import Database
from trickle.core.invariants import check_ledger
from trickle.core.models import (
    Budget,
    Creator,
    Flattr,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    SettlementRun,
    SettlementUser,
    Share,
    User,
)
from trickle.core.periods import Period
from trickle.core.schema import upgrade
from trickle.core.settlement import Settlement, SettleOptions

USERS = 2500
FLATTRS_PER_USER = 6
CREATORS = 300
TRIALS = 32
OPTIONS = SettleOptions(fee_bps=175)
BATCH_USERS = 25
CREATED = datetime(2026, 9, 1, tzinfo=UTC)


def build_month(engine: Engine, *, users: int, per_user: int, seed: int = 1) -> None:
    """Users with budgets and funds, creators (a quarter claimed), October flattrs."""
    rng = random.Random(seed)
    with engine.begin() as c:
        c.execute(
            insert(User),
            [
                {"id": u, "name": f"u{u}", "currency": "EUR", "created_at": CREATED}
                for u in range(1, users + 1)
            ],
        )
        c.execute(
            insert(Budget),
            [
                {"user_id": u, "amount_minor": rng.randint(100, 1500), "effective_at": CREATED}
                for u in range(1, users + 1)
            ],
        )
        c.execute(
            insert(LedgerAccount),
            [
                {
                    "id": 1,
                    "code": "deposits:EUR",
                    "kind": "deposits",
                    "user_id": None,
                    "currency": "EUR",
                }
            ]
            + [
                {
                    "id": u + 1,
                    "code": f"wallet:{u}:EUR",
                    "kind": "wallet",
                    "user_id": u,
                    "currency": "EUR",
                }
                for u in range(1, users + 1)
            ],
        )
        c.execute(
            insert(LedgerTransaction),
            [
                {
                    "id": u,
                    "key": f"deposit:seed-{u}",
                    "kind": "deposit",
                    "user_id": u,
                    "created_at": CREATED,
                }
                for u in range(1, users + 1)
            ],
        )
        entries = []
        for u in range(1, users + 1):
            amount = rng.randint(0, 2000)
            entries += [
                {"transaction_id": u, "account_id": 1, "currency": "EUR", "amount_minor": -amount},
                {
                    "transaction_id": u,
                    "account_id": u + 1,
                    "currency": "EUR",
                    "amount_minor": amount,
                },
            ]
        c.execute(insert(LedgerEntry), entries)
        c.execute(
            insert(Creator),
            [
                {
                    "id": k,
                    "platform": "github",
                    "platform_id": str(10_000 + k),
                    "handle": f"creator{k}",
                    "user_id": rng.randint(1, users) if k % 4 == 0 else None,
                }
                for k in range(1, CREATORS + 1)
            ],
        )
        flattrs = []
        for u in range(1, users + 1):
            for item in rng.sample(range(1, 5000), per_user):
                at = datetime(2026, 10, rng.randint(1, 31), rng.randint(0, 23), tzinfo=UTC)
                flattrs.append(
                    {
                        "user_id": u,
                        "platform": "github",
                        "item_id": str(item),
                        "item_url": f"https://github.com/r/{item}",
                        "creator_id": rng.randint(1, CREATORS),
                        "liked_at": at,
                        "observed_at": at,
                        "effective_at": at,
                    }
                )
        c.execute(insert(Flattr), flattrs)


def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Everything settlement writes, without surrogate ids or timestamps."""
    with db.reader() as s:
        return {
            "entries": sorted(
                tuple(row)
                for row in s.execute(
                    select(
                        LedgerTransaction.key,
                        LedgerAccount.code,
                        LedgerEntry.currency,
                        LedgerEntry.amount_minor,
                    )
                    .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
                    .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                )
            ),
            "transactions": sorted(
                tuple(row)
                for row in s.execute(
                    select(
                        LedgerTransaction.key,
                        LedgerTransaction.kind,
                        LedgerTransaction.period,
                        LedgerTransaction.user_id,
                    )
                )
            ),
            "shares": sorted(
                tuple(row)
                for row in s.execute(
                    select(
                        Share.flattr_id,
                        Share.user_id,
                        Share.creator_id,
                        Share.recipient_user_id,
                        Share.amount_minor,
                        Share.state,
                        Share.was_reserved,
                    )
                )
            ),
            "plan": sorted(
                tuple(row)
                for row in s.execute(
                    select(
                        SettlementUser.user_id,
                        SettlementUser.flattrs,
                        SettlementUser.budget_minor,
                        SettlementUser.funds_minor,
                        SettlementUser.spend_minor,
                        SettlementUser.fee_minor,
                        SettlementUser.posted,
                    )
                )
            ),
            "flattr_periods": sorted(
                tuple(row) for row in s.execute(select(Flattr.id, Flattr.period))
            ),
        }


def stage_after_kill(db: Database) -> str:
    """Where the killed run stopped: not started, planning (nothing committed), posting, done."""
    with db.reader() as s:
        status = s.scalar(select(SettlementRun.status))
        if status is None:
            return "not started"
        if status == "planning":
            return "planning"
        return "posting" if status == "posting" else str(status)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database holding the month, and its uninterrupted settlement."""
    folder = tmp_path_factory.mktemp("settle-crash")
    path = folder / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    build_month(db.engine, users=USERS, per_user=FLATTRS_PER_USER)
    db.dispose()  # the last connection to close folds the WAL into the file
    assert not Path(f"{path}-wal").exists()
    return path


def _settle_command(path: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(
        os.environ,
        TRICKLE_DATABASE_URL=f"sqlite:///{path}",
        TRICKLE_FEE_BPS=str(OPTIONS.fee_bps),
        # 100 posting transactions, so kills land between and inside many of them.
        TRICKLE_SETTLE_BATCH_USERS=str(BATCH_USERS),
    )
    env.pop("TRICKLE_CONFIG", None)
    return [sys.executable, "-m", "trickle", "settle", "2026-10", "--force", "--json"], env


def _copy(template: Path, to: Path) -> Database:
    shutil.copy(template, to)
    return Database(f"sqlite:///{to}")


def test_settle_killed_at_random_points_resumes_to_the_uninterrupted_ledger(template, tmp_path):
    reference_db = _copy(template, tmp_path / "reference.db")
    command, env = _settle_command(tmp_path / "reference.db")
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)
    reference = snapshot(reference_db)
    with reference_db.reader() as s:
        run = s.scalars(select(SettlementRun)).one()
        plan_seconds = (run.planned_at - run.started_at).total_seconds()
        assert check_ledger(s) == []
    reference_db.dispose()
    assert len(reference["shares"]) > USERS  # the month really spends

    rng = random.Random(20261124)
    stages: Counter[str] = Counter()
    for trial in range(TRIALS):
        path = tmp_path / f"trial-{trial}.db"
        db = _copy(template, path)
        command, env = _settle_command(path)
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        # Even trials aim at the plan (a random time into it), odd ones at the posting: at
        # a random point of its progress (after some number of users were posted), then a
        # few milliseconds more, to land between or inside the next batches. Aiming by
        # progress, not by the reference run's timings, keeps the kills in the posting on a
        # machine that is faster or slower now than when the reference ran.
        if trial % 2 == 0:
            if _wait_for(db, child, _status_is("planning")):
                time.sleep(rng.uniform(0, plan_seconds))
        else:
            target = rng.randrange(0, USERS * 9 // 10)
            if _wait_for(db, child, _posted_at_least(target)):
                time.sleep(rng.uniform(0, 0.01))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        stages[stage_after_kill(db)] += 1

        Settlement(db, OPTIONS).settle(Period(2026, 10), force=True)

        assert snapshot(db) == reference, f"trial {trial} differs from the uninterrupted run"
        with db.reader() as s:
            assert check_ledger(s) == []
        db.dispose()
        path.unlink()

    # The kills really landed in both stages.
    assert stages["planning"] >= 5, stages
    assert stages["posting"] >= 10, stages


def _status_is(status: str) -> Callable[[Session], bool]:
    """The run row is committed with ``status``."""
    return lambda s: s.scalar(select(SettlementRun.status)) == status


def _posted_at_least(users: int) -> Callable[[Session], bool]:
    """The posting has begun and at least ``users`` users are posted."""

    def check(s: Session) -> bool:
        if s.scalar(select(SettlementRun.status)) != "posting":
            return False
        posted = select(func.count()).where(SettlementUser.posted.is_(True))
        return (s.scalar(posted) or 0) >= users

    return check


def _wait_for(
    db: Database, child: subprocess.Popen[bytes], ready: Callable[[Session], bool]
) -> bool:
    """Poll the child's database until ``ready``; False if the child ended first or a minute
    passed."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        with db.reader() as s:
            if ready(s):
                return True
        time.sleep(0.002)
    return False
