"""Users: who flattrs, their monthly budget, and the money they put in."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trickle.core.clock import clock
from trickle.core.errors import TrickleError
from trickle.core.ledger import (
    AccountKind,
    deposit,
    ensure_account,
    reserved_amounts,
    wallet_balances,
)
from trickle.core.models import Budget, User
from trickle.core.money import Money, MoneyError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class UserError(TrickleError):
    """A user that does not exist, already exists, or a budget that makes no sense."""


def get_user(session: Session, name: str) -> User:
    """The user called ``name``, or a clear error."""
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        raise UserError(f"no user called {name!r} (see `trickle users list`)")
    return user


def add_user(session: Session, name: str, budget: Money) -> User:
    """Create a user with a monthly budget; the budget's currency is the user's."""
    if not _NAME.fullmatch(name):
        raise UserError(
            f"bad user name {name!r}: use letters, digits, '.', '_', '@' or '-' (at most 100)"
        )
    if budget.minor < 0:
        raise MoneyError("a budget cannot be negative")
    now = clock.now()
    user = User(name=name, currency=budget.currency, created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise UserError(f"a user called {name!r} already exists") from None
    session.add(Budget(user_id=user.id, amount_minor=budget.minor, effective_at=now))
    ensure_account(session, AccountKind.WALLET, user.currency, user.id)
    return user


def set_budget(session: Session, name: str, budget: Money) -> Money:
    """Change a user's budget from now on; returns the previous one.

    The budget in force at the end of a month is the one that month settles with.
    """
    user = get_user(session, name)
    if budget.currency != user.currency:
        raise MoneyError(f"{name}'s budget is in {user.currency}, not {budget.currency}")
    if budget.minor < 0:
        raise MoneyError("a budget cannot be negative")
    previous = current_budget(session, user.id)
    session.add(Budget(user_id=user.id, amount_minor=budget.minor, effective_at=clock.now()))
    return Money(previous, user.currency)


def current_budget(session: Session, user_id: int, at: datetime | None = None) -> int:
    """The budget in force at ``at`` (default now)."""
    at = at or clock.now()
    amount = session.scalar(
        select(Budget.amount_minor)
        .where(Budget.user_id == user_id, Budget.effective_at <= at)
        .order_by(Budget.effective_at.desc(), Budget.id.desc())
        .limit(1)
    )
    return int(amount or 0)


def fund(session: Session, name: str, amount: Money, reference: str | None = None) -> bool:
    """Add money to a user's wallet. ``reference`` makes a repeated deposit a no-op."""
    user = get_user(session, name)
    if amount.currency != user.currency:
        raise MoneyError(f"{name}'s wallet is in {user.currency}, not {amount.currency}")
    if amount.minor <= 0:
        raise MoneyError("a deposit must be more than zero")
    return deposit(
        session,
        user_id=user.id,
        currency=user.currency,
        amount=amount.minor,
        reference=reference or uuid.uuid4().hex,
    )


@dataclass(frozen=True)
class UserSummary:
    """One line of ``users list``."""

    name: str
    currency: str
    budget_minor: int
    funds_minor: int
    reserved_minor: int

    @property
    def available_minor(self) -> int:
        """Funds minus open reservations: what the next month can spend."""
        return self.funds_minor - self.reserved_minor


def list_users(session: Session) -> list[UserSummary]:
    """Every user with budget, funds and available funds."""
    users = session.scalars(select(User).order_by(User.name)).all()
    balances = wallet_balances(session)
    reserved = reserved_amounts(session)
    return [
        UserSummary(
            name=u.name,
            currency=u.currency,
            budget_minor=current_budget(session, u.id),
            funds_minor=balances.get((u.id, u.currency), 0),
            reserved_minor=reserved.get((u.id, u.currency), 0),
        )
        for u in users
    ]
