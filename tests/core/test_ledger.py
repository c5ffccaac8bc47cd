"""The double-entry ledger: balanced, idempotent by key, append-only."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from trickle.core.db import Database
from trickle.core.ledger import (
    AccountKind,
    Funds,
    LedgerError,
    account_code,
    balance_of_kind,
    deposit,
    ensure_account,
    funds_of,
    post,
    reserved_amounts,
    wallet_balances,
)
from trickle.core.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Share,
    ShareState,
)
from trickle.core.money import Money
from trickle.core.users import add_user

pytestmark = pytest.mark.usefixtures("now")


def make_user(db: Database, name: str, currency: str = "EUR") -> int:
    with db.session() as session:
        return add_user(session, name, Money(500, currency)).id


def counts(db: Database) -> tuple[int, int]:
    """(transactions, entries) in the ledger."""
    with db.reader() as session:
        return (
            session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
            session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        )


# ---------------------------------------------------------------------------
# accounts


def test_account_codes_are_readable_and_unique_per_kind_user_and_currency() -> None:
    assert account_code(AccountKind.WALLET, "EUR", 42) == "wallet:42:EUR"
    assert account_code(AccountKind.FEES, "EUR") == "fees:EUR"
    assert account_code(AccountKind.DEPOSITS, "USD") == "deposits:USD"


def test_ensure_account_creates_an_account_once(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        first = ensure_account(session, AccountKind.FEES, "EUR")
        assert ensure_account(session, AccountKind.FEES, "EUR") == first
        wallet = ensure_account(session, AccountKind.WALLET, "USD", alice)
    with db.session() as session:
        assert ensure_account(session, AccountKind.FEES, "EUR") == first
        assert ensure_account(session, AccountKind.WALLET, "USD", alice) == wallet
        assert ensure_account(session, AccountKind.FEES, "USD") not in (first, wallet)
    with db.reader() as session:
        codes = session.scalars(select(LedgerAccount.code).order_by(LedgerAccount.code)).all()
    assert codes == ["fees:EUR", "fees:USD", f"wallet:{alice}:EUR", f"wallet:{alice}:USD"]


def test_a_new_user_has_a_wallet_in_their_currency(db: Database) -> None:
    alice = make_user(db, "alice", "JPY")
    with db.reader() as session:
        account = session.scalars(select(LedgerAccount)).one()
    assert (account.kind, account.user_id, account.currency) == ("wallet", alice, "JPY")


# ---------------------------------------------------------------------------
# post


def test_post_writes_a_balanced_transaction(db: Database, now: datetime) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        wallet = ensure_account(session, AccountKind.WALLET, "EUR", alice)
        fees = ensure_account(session, AccountKind.FEES, "EUR")
        assert post(
            session,
            key="fee:test:1",
            kind="fee",
            currency="EUR",
            entries=[(wallet, -25), (fees, 25)],
            period="2026-10",
            user_id=alice,
            memo="a test fee",
        )
    with db.reader() as session:
        txn = session.scalars(select(LedgerTransaction)).one()
        entries = session.execute(
            select(LedgerEntry.account_id, LedgerEntry.currency, LedgerEntry.amount_minor)
            .where(LedgerEntry.transaction_id == txn.id)
            .order_by(LedgerEntry.amount_minor)
        ).all()
    assert (txn.key, txn.kind, txn.period, txn.user_id, txn.memo) == (
        "fee:test:1",
        "fee",
        "2026-10",
        alice,
        "a test fee",
    )
    assert txn.created_at == now
    assert [tuple(e) for e in entries] == [(wallet, "EUR", -25), (fees, "EUR", 25)]


@pytest.mark.parametrize("entries", [[(1, -25), (2, 24)], [(1, 10)], [(1, 5), (2, 5), (3, -9)]])
def test_post_refuses_an_unbalanced_transaction_and_writes_nothing(
    db: Database, entries: list[tuple[int, int]]
) -> None:
    with pytest.raises(LedgerError, match="transaction bad:1 does not balance"), db.session() as s:
        post(s, key="bad:1", kind="fee", currency="EUR", entries=entries)
    assert counts(db) == (0, 0)


def test_posting_the_same_key_twice_is_a_no_op(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        wallet = ensure_account(session, AccountKind.WALLET, "EUR", alice)
        fees = ensure_account(session, AccountKind.FEES, "EUR")
        entries = [(wallet, -25), (fees, 25)]
        assert post(session, key="fee:1", kind="fee", currency="EUR", entries=entries) is True
    with db.session() as session:
        again = post(
            session, key="fee:1", kind="fee", currency="EUR", entries=[(wallet, -99), (fees, 99)]
        )
    assert again is False
    assert counts(db) == (1, 2)
    with db.reader() as session:
        assert balance_of_kind(session, AccountKind.FEES, "EUR") == 25


def test_zero_entries_are_not_written(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        wallet = ensure_account(session, AccountKind.WALLET, "EUR", alice)
        fees = ensure_account(session, AccountKind.FEES, "EUR")
        post(session, key="k", kind="fee", currency="EUR", entries=[(wallet, 0), (fees, 0)])
    assert counts(db) == (1, 0)


# ---------------------------------------------------------------------------
# deposits and balances


def test_a_deposit_moves_money_from_the_outside_world_to_the_wallet(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        assert deposit(session, user_id=alice, currency="EUR", amount=1000, reference="r1")
    with db.reader() as session:
        assert wallet_balances(session) == {(alice, "EUR"): 1000}
        assert balance_of_kind(session, AccountKind.DEPOSITS, "EUR") == -1000
        assert session.scalar(select(LedgerTransaction.key)) == "deposit:r1"


def test_a_deposit_with_a_known_reference_changes_nothing(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        deposit(session, user_id=alice, currency="EUR", amount=1000, reference="r1")
    with db.session() as session:
        assert not deposit(session, user_id=alice, currency="EUR", amount=1000, reference="r1")
    assert counts(db) == (1, 2)
    with db.reader() as session:
        assert funds_of(session, alice, "EUR").balance == 1000


@pytest.mark.parametrize(("who", "amount"), [("bob", 1000), ("alice", 999)])
def test_a_reference_already_used_for_another_deposit_is_refused(
    db: Database, who: str, amount: int
) -> None:
    users = {"alice": make_user(db, "alice"), "bob": make_user(db, "bob")}
    with db.session() as session:
        deposit(session, user_id=users["alice"], currency="EUR", amount=1000, reference="r1")
    with pytest.raises(LedgerError, match="'r1' was already used"), db.session() as session:
        deposit(session, user_id=users[who], currency="EUR", amount=amount, reference="r1")
    assert counts(db) == (1, 2)


@pytest.mark.parametrize("amount", [0, -5])
def test_a_deposit_must_be_positive(db: Database, amount: int) -> None:
    alice = make_user(db, "alice")
    with pytest.raises(LedgerError, match="must be positive"), db.session() as session:
        deposit(session, user_id=alice, currency="EUR", amount=amount, reference="r")
    assert counts(db) == (0, 0)


def test_wallet_balances_sum_per_user_and_currency(db: Database) -> None:
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    with db.session() as session:
        deposit(session, user_id=alice, currency="EUR", amount=1000, reference="a1")
        deposit(session, user_id=alice, currency="EUR", amount=250, reference="a2")
        deposit(session, user_id=alice, currency="USD", amount=700, reference="a3")
        deposit(session, user_id=bob, currency="EUR", amount=1, reference="b1")
        wallet = ensure_account(session, AccountKind.WALLET, "EUR", alice)
        fees = ensure_account(session, AccountKind.FEES, "EUR")
        post(session, key="fee", kind="fee", currency="EUR", entries=[(wallet, -50), (fees, 50)])
    with db.reader() as session:
        assert wallet_balances(session) == {
            (alice, "EUR"): 1200,
            (alice, "USD"): 700,
            (bob, "EUR"): 1,
        }
        assert wallet_balances(session, [bob]) == {(bob, "EUR"): 1}
        assert wallet_balances(session, []) == {}
        balances = wallet_balances(session)
        assert all(type(v) is int for v in balances.values())
        assert balance_of_kind(session, AccountKind.FEES, "EUR") == 50
        assert balance_of_kind(session, AccountKind.FEES, "USD") == 0


def test_a_user_without_entries_has_no_money(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.reader() as session:
        assert wallet_balances(session) == {}
        assert funds_of(session, alice, "EUR") == Funds(balance=0, reserved=0)


def test_funds_of_subtracts_open_reservations_only(db: Database, now: datetime) -> None:
    from trickle.core.events import LikeEvent
    from trickle.core.ingest import store_flattrs
    from trickle.core.models import Flattr, SettlementRun

    alice = make_user(db, "alice")
    with db.session() as session:
        deposit(session, user_id=alice, currency="EUR", amount=1000, reference="a1")
        events = [
            LikeEvent("github", f"i{i}", f"https://x/{i}", "7", "carol", observed_at=now)
            for i in range(3)
        ]
        store_flattrs(session, user_id=alice, account_id=None, events=events)
        run = SettlementRun(
            period="2026-09",
            status="done",
            fee_bps=0,
            unclaimed_policy="reserve",
            escrow_days=90,
            started_at=now,
        )
        session.add(run)
        session.flush()
        flattr_rows = session.execute(select(Flattr.id, Flattr.creator_id)).all()
        for (flattr_id, creator_id), (amount, state) in zip(
            flattr_rows,
            [(100, ShareState.RESERVED), (30, ShareState.RESERVED), (500, ShareState.RETURNED)],
            strict=True,
        ):
            session.add(
                Share(
                    run_id=run.id,
                    period="2026-09",
                    flattr_id=flattr_id,
                    user_id=alice,
                    creator_id=creator_id,
                    currency="EUR",
                    amount_minor=amount,
                    state=state.value,
                    was_reserved=True,
                )
            )
    with db.reader() as session:
        funds = funds_of(session, alice, "EUR")
        assert funds == Funds(balance=1000, reserved=130)
        assert funds.available == 870
        assert reserved_amounts(session) == {(alice, "EUR"): 130}
        assert funds_of(session, alice, "USD") == Funds(balance=0, reserved=0)
