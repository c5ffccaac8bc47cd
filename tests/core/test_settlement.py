"""Monthly settlement: exact shares, the right spend, once and only once."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from trickle.core.clock import clock
from trickle.core.models import (
    AccountStatus,
    Flattr,
    LinkedAccount,
    SettlementRun,
    SettlementUser,
    User,
)
from trickle.core.money import parse_money, split_evenly, split_rank_key
from trickle.core.periods import Period
from trickle.core.settlement import (
    MonthNotClosed,
    Settlement,
    SettlementBusy,
    SettlementError,
    SettleOptions,
    closing_of,
    first_open_period,
)
from trickle.core.users import set_budget

OCT = datetime(2026, 10, 10, 12, tzinfo=UTC)
NOV = datetime(2026, 11, 10, 12, tzinfo=UTC)
AFTER_OCT = datetime(2026, 11, 3, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _november() -> None:
    clock.set(AFTER_OCT, frozen=True)


def test_a_budget_is_split_exactly_over_the_months_flattrs(world):
    world.user("alice", budget="5.00")
    for _ in range(3):
        world.like("alice", "creator-1", OCT)

    world.settle("2026-10")

    amounts = sorted(amount for _, _, amount, _ in world.shares("alice"))
    assert amounts == [166, 167, 167]
    assert sum(amounts) == 500
    assert world.violations() == []


def test_the_extra_cents_go_to_the_flattrs_the_rank_hash_picks(world, db):
    alice = world.user("alice", budget="1.00")
    for _ in range(7):
        world.like("alice", "creator-1", OCT)

    world.settle("2026-10")

    with db.reader() as session:
        ids = sorted(session.scalars(select(Flattr.id).where(Flattr.user_id == alice)))
    keys = [split_rank_key(Period(2026, 10).index, alice, i) for i in ids]
    expected = split_evenly(100, keys)
    assert [amount for _, _, amount, _ in world.shares("alice")] == [
        expected[ids.index(i)] for i in _share_flattr_ids(db)
    ]


def _share_flattr_ids(db) -> list[int]:
    from trickle.core.models import Share

    with db.reader() as session:
        return list(session.scalars(select(Share.flattr_id).order_by(Share.id)))


def test_a_user_spends_at_most_their_funds(world):
    world.user("alice", budget="5.00", funds="2.00")
    world.like("alice", "creator-1", OCT)
    world.like("alice", "creator-2", OCT)

    world.settle("2026-10")

    assert sum(a for _, _, a, _ in world.shares("alice")) == 200
    assert world.funds("alice") == (200, 200)  # unclaimed creators: held, not moved


def test_a_user_without_funds_spends_nothing(world):
    world.user("alice", budget="5.00", funds=None)
    world.like("alice", "creator-1", OCT)

    world.settle("2026-10")

    assert world.shares("alice") == []
    assert world.funds("alice") == (0, 0)
    assert world.violations() == []


def test_a_month_without_flattrs_spends_nothing(world):
    world.user("alice", budget="5.00", funds="20.00")

    outcome = world.settle("2026-10")

    assert outcome.status == "settled"
    assert world.funds("alice") == (2000, 0)


def test_the_fee_is_floored_and_posted_to_the_operator(world):
    world.user("alice", budget="5.00")
    world.user("carol", budget="0", funds=None)
    world.claim("creator-1", "carol")
    world.like("alice", "creator-1", OCT)

    world.settle("2026-10", fee_bps=250)

    ledger = world.ledger()
    settle_rows = [r for r in ledger if r[0] == "settle:2026-10:user:1"]
    assert ("settle:2026-10:user:1", "fees:EUR", "EUR", 12) in settle_rows  # 500 * 2.5 % = 12.5
    assert ("settle:2026-10:user:1", f"wallet:{2}:EUR", "EUR", 488) in settle_rows
    assert ("settle:2026-10:user:1", "wallet:1:EUR", "EUR", -500) in settle_rows
    assert world.violations() == []


def test_claimed_creators_are_paid_and_unclaimed_ones_are_reserved(world):
    world.user("alice", budget="4.00", funds="10.00")
    world.user("carol", budget="0", funds=None)
    world.claim("carol-on-github", "carol")
    world.like("alice", "carol-on-github", OCT)
    world.like("alice", "stranger", OCT)

    world.settle("2026-10")

    assert sorted((c, s) for _, c, _, s in world.shares()) == [
        ("carol-on-github", "paid"),
        ("stranger", "reserved"),
    ]
    assert world.funds("carol") == (200, 0)
    assert world.funds("alice") == (800, 200)  # the reserved 2.00 still sits with alice


def test_flattrs_of_ones_own_content_are_not_counted(world):
    world.user("alice", budget="3.00")
    world.claim("alice-on-github", "alice")
    world.like("alice", "alice-on-github", OCT)
    world.like("alice", "creator-1", OCT)

    world.settle("2026-10")

    assert [(c, a) for _, c, a, _ in world.shares()] == [("creator-1", 300)]


def test_the_skip_policy_splits_over_claimed_creators_only(world):
    world.user("alice", budget="3.00")
    world.user("bob", budget="3.00")
    world.user("carol", budget="0", funds=None)
    world.claim("carol-on-github", "carol")
    world.like("alice", "carol-on-github", OCT)
    world.like("alice", "stranger", OCT)
    world.like("bob", "stranger", OCT)

    world.settle("2026-10", unclaimed="skip")

    assert [(u, c, a, s) for u, c, a, s in world.shares()] == [
        ("alice", "carol-on-github", 300, "paid")
    ]
    assert world.funds("bob") == (10000, 0)  # only unclaimed creators: nothing spent


def test_the_budget_in_force_at_the_end_of_the_month_applies(world, db):
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    world.user("alice", budget="5.00")
    world.user("bob", budget="5.00")
    world.like("alice", "creator-1", OCT)
    world.like("bob", "creator-1", OCT)
    clock.set(datetime(2026, 10, 20, tzinfo=UTC), frozen=True)
    with db.session() as session:
        set_budget(session, "alice", parse_money("2.00", "EUR"))  # during October: applies
    clock.set(datetime(2026, 11, 2, tzinfo=UTC), frozen=True)
    with db.session() as session:
        set_budget(session, "bob", parse_money("9.00", "EUR"))  # after October: does not

    world.settle("2026-10")

    spent = {u: a for u, _, a, _ in world.shares()}
    assert spent == {"alice": 200, "bob": 500}


def test_a_month_before_any_budget_of_the_user_costs_them_nothing(world):
    """A user who joined in December was charged a full budget for likes imported into
    August (and January 1970): a month that ended before their first budget costs nothing."""
    clock.set(datetime(2026, 12, 5, tzinfo=UTC), frozen=True)
    world.user("alice", budget="5.00", joined=None)  # joins now, in December
    world.like("alice", "creator-1", datetime(2026, 8, 10, tzinfo=UTC))
    world.like("alice", "creator-2", datetime(2026, 12, 6, tzinfo=UTC))

    world.settle("2026-08")
    clock.set(datetime(2027, 1, 3, tzinfo=UTC), frozen=True)
    for month in ("2026-09", "2026-10", "2026-11", "2026-12"):
        world.settle(month)

    assert world.shares("alice") == [("alice", "creator-2", 500, "reserved")]
    assert world.funds("alice") == (10000, 500)
    assert world.violations() == []


def test_settling_twice_changes_nothing_and_says_so(world):
    world.user("alice", budget="5.00")
    world.like("alice", "creator-1", OCT)
    first = world.settle("2026-10")
    ledger = world.ledger()
    shares = world.shares()

    second = world.settle("2026-10")

    assert (first.status, second.status) == ("settled", "already_settled")
    assert world.ledger() == ledger
    assert world.shares() == shares


def test_a_month_cannot_be_settled_before_it_ends(world):
    world.user("alice")
    clock.set(datetime(2026, 10, 31, 23, 59, tzinfo=UTC), frozen=True)

    with pytest.raises(SettlementError, match="has not ended yet"):
        world.settle("2026-10", force=True)


def test_the_grace_period_holds_the_month_unless_forced(world):
    world.user("alice")
    world.like("alice", "creator-1", OCT)
    clock.set(datetime(2026, 11, 1, 6, tzinfo=UTC), frozen=True)

    with pytest.raises(MonthNotClosed, match="grace period runs until 2026-11-02 00:00"):
        world.settle("2026-10", force=False, grace_hours=24)
    assert world.settle("2026-10", force=True).status == "settled"


def add_github_account(
    db, user_id: int, status: AccountStatus, last_success_at: datetime | None = None
) -> None:
    """Link a GitHub account for ``user_id`` directly in the database, linked in September."""
    with db.session() as session:
        session.add(
            LinkedAccount(
                user_id=user_id,
                platform="github",
                platform_user_id="42",
                handle="alice-gh",
                credentials=b"sealed",
                status=status.value,
                linked_at=datetime(2026, 9, 1, tzinfo=UTC),
                poll_state={},
                baseline_done=True,
                interval_seconds=300,
                last_success_at=last_success_at,
                failures=0,
            )
        )


def test_accounts_not_polled_since_the_month_ended_hold_it_back(world, db):
    alice = world.user("alice")
    add_github_account(
        db, alice, AccountStatus.ACTIVE, last_success_at=datetime(2026, 10, 31, 23, tzinfo=UTC)
    )

    with pytest.raises(MonthNotClosed, match="alice/github:alice-gh"):
        world.settle("2026-10", force=False)

    with db.session() as session:
        session.execute(
            update(LinkedAccount).values(last_success_at=datetime(2026, 11, 1, 1, tzinfo=UTC))
        )
    with db.reader() as session:
        assert closing_of(session, Period(2026, 10), 24).closed
    assert world.settle("2026-10", force=False).status == "settled"


def test_accounts_that_need_relinking_do_not_hold_the_month(world, db):
    alice = world.user("alice")
    add_github_account(db, alice, AccountStatus.AUTH_EXPIRED)
    assert world.settle("2026-10", force=False).status == "settled"


def test_a_late_like_counts_in_the_first_month_not_yet_settled(world):
    world.user("alice", budget="1.00")
    world.like("alice", "creator-1", OCT, item="early")
    world.settle("2026-10")
    world.like("alice", "creator-2", OCT, item="late")  # observed after October settled
    clock.set(datetime(2026, 12, 3, tzinfo=UTC), frozen=True)

    world.settle("2026-11")

    periods = {c: a for _, c, a, _ in world.shares()}
    assert periods == {"creator-1": 100, "creator-2": 100}


def test_months_settle_in_order(world):
    world.user("alice")
    world.like("alice", "creator-1", OCT)
    clock.set(datetime(2026, 12, 3, tzinfo=UTC), frozen=True)

    with pytest.raises(SettlementError, match="settle 2026-10 first"):
        world.settle("2026-11")
    world.settle("2026-10")
    assert world.settle("2026-11").status == "settled"


def test_first_open_period_follows_the_settled_months(world, db):
    with db.reader() as session:
        assert first_open_period(session) is None
    world.user("alice")
    world.like("alice", "creator-1", OCT)
    with db.reader() as session:
        assert first_open_period(session) == Period(2026, 10)
    world.settle("2026-10")
    with db.reader() as session:
        assert first_open_period(session) == Period(2026, 11)


class _CrashAfter(Settlement):
    """A settlement that dies after posting ``batches`` batches, like a killed process."""

    def __init__(self, *args, batches: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.left = batches

    def _post_batch(self, *args, **kwargs) -> None:
        if self.left == 0:
            raise RuntimeError("simulated crash")
        self.left -= 1
        super()._post_batch(*args, **kwargs)


def _populate(world) -> None:
    world.user("carol", budget="0", funds=None)
    world.claim("carol-gh", "carol")
    for n in range(12):
        name = f"user{n:02d}"
        world.user(name, budget=f"{n + 1}.{n:02d}", funds="7.00")
        for k in range(n % 4 + 1):
            world.like(name, "carol-gh" if k % 2 else f"creator-{k}", OCT)


@pytest.mark.parametrize("crash_after_batches", [0, 1, 3])
def test_a_crashed_run_resumes_to_the_same_ledger(db, second_db, world_on, crash_after_batches):
    options = SettleOptions(fee_bps=125)
    interrupted, uninterrupted = world_on(db), world_on(second_db)
    _populate(interrupted)
    _populate(uninterrupted)
    crashing = _CrashAfter(db, options, batches=crash_after_batches, batch_users=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.settle(Period(2026, 10), force=True)
    with db.reader() as session:
        posted = session.scalar(select(func.count()).where(SettlementUser.posted.is_(True)))
    assert posted == 2 * crash_after_batches

    outcome = Settlement(db, options, batch_users=2).settle(Period(2026, 10), force=True)
    Settlement(second_db, options, batch_users=5).settle(Period(2026, 10), force=True)

    assert outcome.resumed
    assert interrupted.violations() == []
    assert interrupted.ledger() == uninterrupted.ledger()
    assert interrupted.shares() == uninterrupted.shares()


def test_a_run_held_by_a_live_process_is_not_taken_over(world, db):
    world.user("alice")
    world.like("alice", "creator-1", OCT)
    live_owner = f"{socket.gethostname()}:{os.getppid()}:other"
    with db.session() as session:
        session.add(
            SettlementRun(
                period="2026-10",
                status="planning",
                fee_bps=0,
                unclaimed_policy="reserve",
                escrow_days=90,
                started_at=AFTER_OCT,
                locked_by=live_owner,
                locked_until=AFTER_OCT + timedelta(minutes=5),
            )
        )

    with pytest.raises(SettlementBusy, match="is being settled by"):
        world.settle("2026-10")


def test_a_run_held_by_a_dead_process_is_taken_over(world, db):
    world.user("alice", budget="1.00")
    world.like("alice", "creator-1", OCT)
    dead_owner = f"{socket.gethostname()}:{2**22 + 12345}:gone"
    with db.session() as session:
        session.add(
            SettlementRun(
                period="2026-10",
                status="planning",
                fee_bps=0,
                unclaimed_policy="reserve",
                escrow_days=90,
                started_at=AFTER_OCT,
                locked_by=dead_owner,
                locked_until=AFTER_OCT + timedelta(minutes=5),
            )
        )

    outcome = world.settle("2026-10")

    assert outcome.status == "settled"
    assert outcome.resumed
    assert [a for _, _, a, _ in world.shares()] == [100]


def test_a_resumed_run_keeps_the_rules_it_was_planned_with(world, db):
    _populate(world)
    crashing = _CrashAfter(db, SettleOptions(fee_bps=500), batches=1, batch_users=3)
    with pytest.raises(RuntimeError):
        crashing.settle(Period(2026, 10), force=True)

    Settlement(db, SettleOptions(fee_bps=0), batch_users=3).settle(Period(2026, 10), force=True)

    with db.reader() as session:
        fees = session.scalars(select(SettlementUser.fee_minor)).all()
        spend = session.scalars(select(SettlementUser.spend_minor)).all()
    assert fees == [s * 500 // 10_000 for s in spend]
    assert world.violations() == []


def test_users_are_named_in_the_plan(world, db):
    world.user("alice")
    world.like("alice", "creator-1", OCT)
    world.settle("2026-10")
    with db.reader() as session:
        names = session.scalars(
            select(User.name).join(SettlementUser, SettlementUser.user_id == User.id)
        ).all()
    assert names == ["alice"]
