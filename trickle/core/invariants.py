"""The ledger's invariants, checked by SQL that returns the rows breaking them.

``trickle ledger check`` runs these; tests run them after every operation.
Each check is one query, so they run over millions of rows without loading
them, and each names its rule and shows the offending rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, or_, select, text
from sqlalchemy.orm import Session, aliased

from trickle.core.ledger import AccountKind
from trickle.core.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    SettlementRun,
    SettlementUser,
    Share,
    ShareState,
)

SAMPLE = 20


@dataclass(frozen=True)
class Violation:
    """One broken rule and (up to a sample of) the rows that break it."""

    rule: str
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    columns: tuple[str, ...] = ()


def _balanced(session: Session) -> list[tuple[Any, ...]]:
    stmt = (
        select(LedgerTransaction.key, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .group_by(LedgerTransaction.key, LedgerEntry.currency)
        .having(func.sum(LedgerEntry.amount_minor) != 0)
    )
    return list(session.execute(stmt.limit(SAMPLE)))


def _entry_currency(session: Session) -> list[tuple[Any, ...]]:
    stmt = (
        select(LedgerEntry.id, LedgerAccount.code, LedgerEntry.currency)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.currency != LedgerAccount.currency)
    )
    return list(session.execute(stmt.limit(SAMPLE)))


def _zero_sum(session: Session) -> list[tuple[Any, ...]]:
    stmt = (
        select(LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .group_by(LedgerEntry.currency)
        .having(func.sum(LedgerEntry.amount_minor) != 0)
    )
    return list(session.execute(stmt))


def _available_not_negative(session: Session) -> list[tuple[Any, ...]]:
    balances = (
        select(
            LedgerAccount.user_id.label("user_id"),
            LedgerAccount.currency.label("currency"),
            func.coalesce(func.sum(LedgerEntry.amount_minor), 0).label("balance"),
        )
        .outerjoin(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == AccountKind.WALLET.value)
        .group_by(LedgerAccount.user_id, LedgerAccount.currency)
        .subquery()
    )
    reserved = (
        select(
            Share.user_id.label("user_id"),
            Share.currency.label("currency"),
            func.sum(Share.amount_minor).label("reserved"),
        )
        .where(Share.state == ShareState.RESERVED.value)
        .group_by(Share.user_id, Share.currency)
        .subquery()
    )
    available = balances.c.balance - func.coalesce(reserved.c.reserved, 0)
    stmt = (
        select(balances.c.user_id, balances.c.currency, balances.c.balance, available)
        .outerjoin(
            reserved,
            and_(
                reserved.c.user_id == balances.c.user_id,
                reserved.c.currency == balances.c.currency,
            ),
        )
        .where(available < 0)
    )
    # A liker's reservations without any wallet at all are also an overdraft.
    orphan = (
        select(reserved.c.user_id, reserved.c.currency, literal(0), -reserved.c.reserved)
        .outerjoin(
            balances,
            and_(
                reserved.c.user_id == balances.c.user_id,
                reserved.c.currency == balances.c.currency,
            ),
        )
        .where(balances.c.user_id.is_(None), reserved.c.reserved > 0)
    )
    rows = [*session.execute(stmt.limit(SAMPLE)), *session.execute(orphan.limit(SAMPLE))]
    return [tuple(row) for row in rows]


def _shares_plus_fee_is_spend(session: Session) -> list[tuple[Any, ...]]:
    shares = (
        select(
            Share.run_id.label("run_id"),
            Share.user_id.label("user_id"),
            func.sum(Share.amount_minor).label("total"),
            func.count().label("n"),
        )
        .group_by(Share.run_id, Share.user_id)
        .subquery()
    )
    total = func.coalesce(shares.c.total, 0)
    stmt = (
        select(
            SettlementRun.period,
            SettlementUser.user_id,
            SettlementUser.spend_minor,
            SettlementUser.fee_minor,
            total,
        )
        .join(SettlementRun, SettlementRun.id == SettlementUser.run_id)
        .outerjoin(
            shares,
            and_(
                shares.c.run_id == SettlementUser.run_id, shares.c.user_id == SettlementUser.user_id
            ),
        )
        .where(
            SettlementRun.status != "planning",
            or_(
                total + SettlementUser.fee_minor != SettlementUser.spend_minor,
                SettlementUser.spend_minor > SettlementUser.budget_minor,
                SettlementUser.spend_minor < 0,
                and_(
                    SettlementUser.spend_minor > 0,
                    SettlementUser.spend_minor > SettlementUser.funds_minor,
                ),
                SettlementUser.fee_minor
                != SettlementUser.spend_minor * SettlementRun.fee_bps // 10_000,
            ),
        )
    )
    return list(session.execute(stmt.limit(SAMPLE)))


def _posted_matches_plan(session: Session) -> list[tuple[Any, ...]]:
    """A posted user's settle transaction takes exactly fee + paid shares from their wallet."""
    paid = (
        select(
            Share.run_id.label("run_id"),
            Share.user_id.label("user_id"),
            func.sum(Share.amount_minor).label("paid"),
        )
        .where(Share.was_reserved.is_(False))
        .group_by(Share.run_id, Share.user_id)
        .subquery()
    )
    debits = (
        select(
            LedgerTransaction.period.label("period"),
            LedgerTransaction.user_id.label("user_id"),
            func.sum(LedgerEntry.amount_minor).label("debit"),
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.kind == "settle",
            LedgerAccount.kind == AccountKind.WALLET.value,
            LedgerAccount.user_id == LedgerTransaction.user_id,
        )
        .group_by(LedgerTransaction.period, LedgerTransaction.user_id)
        .subquery()
    )
    expected = -(SettlementUser.fee_minor + func.coalesce(paid.c.paid, 0))
    actual = func.coalesce(debits.c.debit, 0)
    stmt = (
        select(
            SettlementRun.period, SettlementUser.user_id, SettlementUser.posted, expected, actual
        )
        .join(SettlementRun, SettlementRun.id == SettlementUser.run_id)
        .outerjoin(
            paid,
            and_(paid.c.run_id == SettlementUser.run_id, paid.c.user_id == SettlementUser.user_id),
        )
        .outerjoin(
            debits,
            and_(
                debits.c.period == SettlementRun.period, debits.c.user_id == SettlementUser.user_id
            ),
        )
        .where(
            case(
                (SettlementUser.posted.is_(True), expected != actual),
                else_=actual != 0,
            )
        )
    )
    return list(session.execute(stmt.limit(SAMPLE)))


def _holds_resolved_once(session: Session) -> list[tuple[Any, ...]]:
    """A reserved share is open, posted (one claim transaction) or voided: never two of these."""
    claim = aliased(LedgerTransaction)
    has_claim = (
        select(func.count())
        .where(claim.key == literal("claim:share:") + cast(Share.id, String))
        .correlate(Share)
        .scalar_subquery()
    )
    bad = or_(
        and_(
            Share.was_reserved.is_(False), or_(Share.state != ShareState.PAID.value, has_claim != 0)
        ),
        and_(
            Share.state == ShareState.RESERVED.value,
            or_(has_claim != 0, Share.resolved_at.is_not(None)),
        ),
        and_(Share.state == ShareState.RETURNED.value, has_claim != 0),
        and_(Share.was_reserved.is_(True), Share.state == ShareState.PAID.value, has_claim != 1),
        Share.state.not_in([s.value for s in ShareState]),
    )
    stmt = select(
        Share.id, Share.period, Share.user_id, Share.state, Share.was_reserved, has_claim
    ).where(bad)
    return list(session.execute(stmt.limit(SAMPLE)))


CHECKS: dict[str, tuple[Callable[[Session], list[tuple[Any, ...]]], tuple[str, ...]]] = {
    "every transaction sums to zero per currency": (_balanced, ("key", "currency", "sum")),
    "every entry is in its account's currency": (_entry_currency, ("entry", "account", "currency")),
    "all accounts together sum to zero per currency": (_zero_sum, ("currency", "sum")),
    "no available balance is below zero": (
        _available_not_negative,
        ("user_id", "currency", "balance", "available"),
    ),
    "per month and user, shares + fee = spend <= min(budget, funds)": (
        _shares_plus_fee_is_spend,
        ("period", "user_id", "spend", "fee", "shares"),
    ),
    "a posted user's wallet paid exactly fee + paid shares": (
        _posted_matches_plan,
        ("period", "user_id", "posted", "expected", "actual"),
    ),
    "each reserved share is open, posted or voided, once": (
        _holds_resolved_once,
        ("share", "period", "user_id", "state", "was_reserved", "claim_txns"),
    ),
}


def check_ledger(session: Session) -> list[Violation]:
    """Run every invariant; an empty list means the ledger is sound."""
    if session.get_bind().dialect.name == "postgresql":
        # Every check reads whole tables, where nested loops are never the right plan, and
        # PostgreSQL misjudges these correlated joins by orders of magnitude (3 rows for
        # 100,000 after a large month): with nested loops a check then takes hours.
        session.execute(text("SET LOCAL enable_nestloop = off"))
    violations = []
    for rule, (query, columns) in CHECKS.items():
        rows = query(session)
        if rows:
            violations.append(Violation(rule, [tuple(r) for r in rows], columns))
    return violations
