"""`ledger check`: each invariant holds on a sound ledger and catches the rows that break it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text, update

from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.invariants import CHECKS, check_ledger
from trickle.core.ledger import AccountKind, ensure_account, post
from trickle.core.models import LedgerEntry, SettlementUser, Share
from trickle.core.schema import upgrade

OCT = datetime(2026, 10, 10, tzinfo=UTC)


def settle_a_small_month(world) -> None:
    """Alice likes a claimed creator and a stranger in October; October is settled."""
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    world.user("alice", budget="3.00", funds="10.00")
    world.user("carol", budget="0", funds=None)
    world.claim("carol-gh", "carol")
    world.like("alice", "carol-gh", OCT)
    world.like("alice", "stranger", OCT)
    clock.set(datetime(2026, 11, 3, tzinfo=UTC), frozen=True)
    world.settle("2026-10", fee_bps=100)


@pytest.fixture
def settled(world):
    settle_a_small_month(world)
    return world


def _rules(db) -> set[str]:
    with db.reader() as session:
        return {v.rule for v in check_ledger(session)}


def test_a_settled_ledger_passes_every_check(settled, db):
    assert _rules(db) == set()
    assert len(CHECKS) == 7


def test_on_postgresql_the_checks_are_planned_without_nested_loops(postgres_urls, world_on):
    # Whole-table checks with misjudged row counts: nested loops made one take hours.
    db = Database(postgres_urls())
    upgrade(db.engine)
    settle_a_small_month(world_on(db))
    with db.reader() as session:
        assert check_ledger(session) == []
        assert session.execute(text("SHOW enable_nestloop")).scalar() == "off"
    with db.reader() as session:  # only for the check's own transaction
        assert session.execute(text("SHOW enable_nestloop")).scalar() == "on"
    db.dispose()


def test_an_unbalanced_transaction_is_reported(settled, db):
    with db.session() as session:
        entry = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).first()
        entry.amount_minor += 1

    assert "every transaction sums to zero per currency" in _rules(db)
    assert "all accounts together sum to zero per currency" in _rules(db)


def test_a_negative_available_balance_is_reported(settled, db):
    with db.session() as session:
        session.execute(update(Share).where(Share.state == "reserved").values(amount_minor=10**6))

    assert "no available balance is below zero" in _rules(db)


def test_shares_that_do_not_add_up_to_the_spend_are_reported(settled, db):
    with db.session() as session:
        session.execute(update(SettlementUser).values(fee_minor=SettlementUser.fee_minor + 1))

    assert "per month and user, shares + fee = spend <= min(budget, funds)" in _rules(db)


def test_a_posted_user_whose_wallet_paid_a_different_amount_is_reported(settled, db):
    with db.session() as session:
        fees = ensure_account(session, AccountKind.FEES, "EUR")
        wallet = ensure_account(session, AccountKind.WALLET, "EUR", 1)
        post(
            session,
            key="tamper",
            kind="settle",
            currency="EUR",
            period="2026-10",
            user_id=1,
            entries=[(wallet, -5), (fees, 5)],
        )

    assert "a posted user's wallet paid exactly fee + paid shares" in _rules(db)


def test_a_returned_share_that_was_also_paid_out_is_reported(settled, db):
    with db.session() as session:
        share = session.scalars(select(Share).where(Share.state == "reserved")).one()
        share.state = "returned"
        alice = ensure_account(session, AccountKind.WALLET, "EUR", 1)
        carol = ensure_account(session, AccountKind.WALLET, "EUR", 2)
        post(
            session,
            key=f"claim:share:{share.id}",
            kind="claim",
            currency="EUR",
            entries=[(alice, -share.amount_minor), (carol, share.amount_minor)],
        )

    assert "each reserved share is open, posted or voided, once" in _rules(db)


def test_a_share_posted_without_its_claim_transaction_is_reported(settled, db):
    with db.session() as session:
        session.execute(update(Share).where(Share.state == "reserved").values(state="paid"))

    assert "each reserved share is open, posted or voided, once" in _rules(db)
