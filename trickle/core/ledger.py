"""The double-entry journal: accounts, balanced transactions, balances and invariant checks.

Append-only. Every transaction carries a unique idempotency key
(``settle:2026-10:user:42``, ``deposit:<ref>``, ``claim:share:7``), so posting
it twice is a no-op rather than a second payment, and its entries sum to zero
per currency. A user's *available* funds are their wallet balance minus the
shares reserved for creators who have not claimed them yet (pending
transfers, in TigerBeetle's terms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import and_, func, literal, select
from sqlalchemy.orm import Session

from trickle.core.clock import clock
from trickle.core.db import insert
from trickle.core.errors import TrickleError
from trickle.core.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Share,
    ShareState,
)
from trickle.core.money import MAX_BALANCE_MINOR, MAX_DEPOSIT_MINOR, format_money


class AccountKind(StrEnum):
    """What a ledger account stands for."""

    WALLET = "wallet"  # a user's money: deposits in, shares out, earnings in
    FEES = "fees"  # the operator's fees
    DEPOSITS = "deposits"  # the outside world money comes from (goes negative)


class LedgerError(TrickleError):
    """A transaction that would break the ledger's rules."""


def account_code(kind: AccountKind, currency: str, user_id: int | None = None) -> str:
    """Human-readable unique code: ``wallet:42:EUR``, ``fees:EUR``, ``deposits:EUR``."""
    if kind is AccountKind.WALLET:
        return f"wallet:{user_id}:{currency}"
    return f"{kind.value}:{currency}"


def ensure_account(
    session: Session, kind: AccountKind, currency: str, user_id: int | None = None
) -> int:
    """The id of the (kind, user, currency) account, created on first use."""
    where = and_(
        LedgerAccount.kind == kind.value,
        LedgerAccount.currency == currency,
        LedgerAccount.user_id.is_(None) if user_id is None else LedgerAccount.user_id == user_id,
    )
    found = session.scalar(select(LedgerAccount.id).where(where))
    if found is not None:
        return found
    session.execute(
        insert(session, LedgerAccount.__table__)
        .values(
            code=account_code(kind, currency, user_id),
            kind=kind.value,
            user_id=user_id,
            currency=currency,
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    return session.scalars(select(LedgerAccount.id).where(where)).one()


def post(
    session: Session,
    *,
    key: str,
    kind: str,
    currency: str,
    entries: Sequence[tuple[int, int]],
    period: str | None = None,
    user_id: int | None = None,
    memo: str | None = None,
) -> bool:
    """Post a balanced transaction of ``(account id, signed amount)`` entries under ``key``.

    Returns False, changing nothing, when a transaction with ``key`` exists:
    that is what makes retries safe.
    """
    if sum(amount for _, amount in entries) != 0:
        raise LedgerError(f"transaction {key} does not balance: {list(entries)}")
    txn_id = session.scalar(
        insert(session, LedgerTransaction.__table__)
        .values(
            key=key,
            kind=kind,
            period=period,
            user_id=user_id,
            created_at=clock.now(),
            memo=memo,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(LedgerTransaction.__table__.c.id)
    )
    if txn_id is None:
        return False
    rows = [
        {"transaction_id": txn_id, "account_id": a, "currency": currency, "amount_minor": amt}
        for a, amt in entries
        if amt != 0
    ]
    if rows:
        session.execute(LedgerEntry.__table__.insert(), rows)
    return True


def deposit(session: Session, *, user_id: int, currency: str, amount: int, reference: str) -> bool:
    """Credit a user's wallet from outside.

    Returns False when this very deposit (same user, same amount) was recorded
    under ``reference`` before; a reference already used for another user or
    amount is an error, never a silent no-op.
    """
    if not 0 < amount <= MAX_DEPOSIT_MINOR:
        raise LedgerError(
            f"a deposit must be positive and at most {format_money(MAX_DEPOSIT_MINOR, currency)},"
            f" got {format_money(amount, currency)}"
        )
    wallet = ensure_account(session, AccountKind.WALLET, currency, user_id)
    source = ensure_account(session, AccountKind.DEPOSITS, currency)
    key = f"deposit:{reference}"
    # Deposits in one currency take turns on its deposits account, so two of them cannot
    # both pass the check below (SQLite's write lock already serializes them).
    session.execute(select(LedgerAccount.id).where(LedgerAccount.id == source).with_for_update())
    if session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.key == key)) is None:
        held = -balance_of_kind(session, AccountKind.DEPOSITS, currency)
        if held + amount > MAX_BALANCE_MINOR:
            raise LedgerError(
                f"trickle holds at most {format_money(MAX_BALANCE_MINOR, currency)} in all; "
                f"this deposit would make it {format_money(held + amount, currency)}"
            )
    if post(
        session,
        key=key,
        kind="deposit",
        currency=currency,
        entries=[(source, -amount), (wallet, amount)],
        user_id=user_id,
    ):
        return True
    earlier = session.scalars(select(LedgerTransaction).where(LedgerTransaction.key == key)).one()
    credited = session.scalar(
        select(func.sum(LedgerEntry.amount_minor)).where(
            LedgerEntry.transaction_id == earlier.id, LedgerEntry.account_id == wallet
        )
    )
    if earlier.user_id != user_id or credited != amount:
        raise LedgerError(
            f"payment reference {reference!r} was already used for a different deposit; "
            "each payment needs its own reference"
        )
    return False


def wallet_balances(
    session: Session, user_ids: Sequence[int] | None = None
) -> dict[tuple[int, str], int]:
    """Posted wallet balance per (user, currency)."""
    stmt = (
        select(LedgerAccount.user_id, LedgerAccount.currency, func.sum(LedgerEntry.amount_minor))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == AccountKind.WALLET.value)
        .group_by(LedgerAccount.user_id, LedgerAccount.currency)
    )
    if user_ids is not None:
        stmt = stmt.where(LedgerAccount.user_id.in_(user_ids))
    return {(u, c): int(total) for u, c, total in session.execute(stmt) if u is not None}


def reserved_amounts(
    session: Session, user_ids: Sequence[int] | None = None
) -> dict[tuple[int, str], int]:
    """Open reservations (shares held for unclaimed creators) per (liker, currency)."""
    stmt = (
        select(Share.user_id, Share.currency, func.sum(Share.amount_minor))
        .where(Share.state == ShareState.RESERVED.value)
        .group_by(Share.user_id, Share.currency)
    )
    if user_ids is not None:
        stmt = stmt.where(Share.user_id.in_(user_ids))
    return {(u, c): int(total) for u, c, total in session.execute(stmt)}


@dataclass(frozen=True, slots=True)
class Funds:
    """A user's money in one currency: posted balance, reserved, and what is left to spend."""

    balance: int
    reserved: int

    @property
    def available(self) -> int:
        """Balance minus open reservations."""
        return self.balance - self.reserved


def funds_of(session: Session, user_id: int, currency: str) -> Funds:
    """Balance and reservations of one user's wallet."""
    balance = wallet_balances(session, [user_id]).get((user_id, currency), 0)
    reserved = reserved_amounts(session, [user_id]).get((user_id, currency), 0)
    return Funds(balance=balance, reserved=reserved)


def balance_of_kind(session: Session, kind: AccountKind, currency: str) -> int:
    """Total balance of the fees or deposits account in ``currency``."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), literal(0)))
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == kind.value, LedgerAccount.currency == currency)
    )
    return int(total or 0)
