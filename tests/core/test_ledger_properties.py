"""Property test: whatever users, budgets, funds, flattrs, claims, settlements and expiries
happen, in whatever order, the ledger's invariants hold and no money appears or vanishes."""

from __future__ import annotations

import shutil
import uuid
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.escrow import ClaimError, expire_reserved
from trickle.core.invariants import check_ledger
from trickle.core.ledger import AccountKind, balance_of_kind, funds_of
from trickle.core.money import Money
from trickle.core.periods import Period
from trickle.core.schema import upgrade
from trickle.core.settlement import Settlement, SettleOptions
from trickle.core.users import get_user, set_budget

CREATORS = [f"c{i}" for i in range(6)]
ESCROW_DAYS = 45


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty migrated SQLite database to copy for every example."""
    path = tmp_path_factory.mktemp("ledger-props") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()
    return path


class LedgerMachine(RuleBasedStateMachine):
    """Random histories of a small trickle installation."""

    template: Path
    world_on: type

    users = Bundle("users")

    def __init__(self) -> None:
        super().__init__()
        path = self.template.with_name(f"{uuid.uuid4().hex}.db")
        shutil.copy(self.template, path)
        self.path = path
        self.db = Database(f"sqlite:///{path}")
        self.world = self.world_on(self.db)
        self.month = Period(2026, 10)
        clock.set(self.month.start + timedelta(days=9), frozen=True)
        self.deposited = 0
        self.names = 0

    def teardown(self) -> None:
        self.db.dispose()
        clock.reset()
        self.path.unlink(missing_ok=True)

    @rule(target=users, budget=st.integers(0, 400), funds=st.integers(0, 400))
    def add_user(self, budget: int, funds: int) -> str:
        self.names += 1
        name = f"user{self.names}"
        self.world.user(name, budget=f"{budget / 100:.2f}", funds=f"{funds / 100:.2f}")
        self.deposited += funds
        return name

    @rule(user=users, amount=st.integers(1, 300))
    def fund(self, user: str, amount: int) -> None:
        from trickle.core.users import fund

        with self.db.session() as session:
            fund(session, user, Money(amount, "EUR"))
        self.deposited += amount

    @rule(user=users, budget=st.integers(0, 400))
    def change_budget(self, user: str, budget: int) -> None:
        with self.db.session() as session:
            set_budget(session, user, Money(budget, "EUR"))

    @rule(user=users, creator=st.sampled_from(CREATORS), likes=st.integers(1, 3))
    def like(self, user: str, creator: str, likes: int) -> None:
        for _ in range(likes):
            self.world.like(user, creator, clock.now())

    @rule(user=users, creator=st.sampled_from(CREATORS))
    def claim(self, user: str, creator: str) -> None:
        with suppress(ClaimError):  # someone else has it: refused, nothing may change
            self.world.claim(creator, user)

    @rule(fee_bps=st.sampled_from([0, 150, 10_000]), policy=st.sampled_from(["reserve", "skip"]))
    def settle_month(self, fee_bps: int, policy: str) -> None:
        clock.set(self.month.end + timedelta(days=2), frozen=True)
        Settlement(
            self.db,
            SettleOptions(fee_bps=fee_bps, escrow_days=ESCROW_DAYS, unclaimed=policy),  # type: ignore[arg-type]
        ).settle(self.month, force=True)
        self.month = self.month.next()
        clock.set(self.month.start + timedelta(days=9), frozen=True)

    @rule(days=st.integers(0, 60))
    def expire(self, days: int) -> None:
        # Expiry looks ahead without moving the month: likes keep landing in the open month.
        with self.db.session() as session:
            expire_reserved(session, clock.now() + timedelta(days=days))

    @invariant()
    def ledger_is_sound(self) -> None:
        with self.db.reader() as session:
            assert check_ledger(session) == []

    @invariant()
    def money_is_conserved(self) -> None:
        with self.db.reader() as session:
            wallets = sum(
                funds_of(session, get_user(session, f"user{n}").id, "EUR").balance
                for n in range(1, self.names + 1)
            )
            fees = balance_of_kind(session, AccountKind.FEES, "EUR")
            outside = balance_of_kind(session, AccountKind.DEPOSITS, "EUR")
        assert wallets + fees == self.deposited == -outside

    @invariant()
    def nobody_spends_what_they_do_not_have(self) -> None:
        with self.db.reader() as session:
            for n in range(1, self.names + 1):
                funds = funds_of(session, get_user(session, f"user{n}").id, "EUR")
                assert funds.balance >= 0
                assert funds.available >= 0


def test_random_histories_keep_the_ledger_sound(template, world_on) -> None:
    LedgerMachine.template = template
    LedgerMachine.world_on = world_on
    runner = LedgerMachine.TestCase
    runner.settings = settings(
        max_examples=30,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    runner().runTest()
