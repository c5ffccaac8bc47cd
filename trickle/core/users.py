"""Users: who flattrs, their monthly budget, and the money they put in."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trickle.core.clock import clock
from trickle.core.db import rowcount
from trickle.core.errors import TrickleError
from trickle.core.ledger import (
    AccountKind,
    deposit,
    ensure_account,
    reserved_amounts,
    wallet_balances,
)
from trickle.core.models import AccountStatus, Budget, LinkAttempt, LinkedAccount, User
from trickle.core.money import (
    MAX_BUDGET_MINOR,
    MAX_DEPOSIT_MINOR,
    Money,
    MoneyError,
    check_at_most,
)

MAX_NAME_LENGTH = 100
MAX_REFERENCE_LENGTH = 100
_NAME_PUNCTUATION = frozenset("._@-")


class UserError(TrickleError):
    """A user that does not exist, already exists, or a budget that makes no sense."""


def normalize_name(name: str) -> str:
    """A user name in its one stored form (Unicode NFC: ``e`` + combining accent is ``é``)."""
    return unicodedata.normalize("NFC", name)


def check_name(name: str) -> str:
    """The normalized ``name`` if it may name a user, else :class:`UserError` saying why.

    A name is letters and digits of any script (``élodie``, ``李雷``), with the marks that
    letters carry, and ``.``, ``_``, ``@``, ``-`` after the first character; at most 100
    characters. No spaces, control or invisible characters and no other punctuation: a
    name is one word on a command line and in a statement, and cannot pass for another
    name by looking empty or by splitting in two.
    """
    normalized = normalize_name(name)
    if not normalized or len(normalized) > MAX_NAME_LENGTH or not _name_chars_ok(normalized):
        raise UserError(
            f"bad user name {_shown(name)}: use letters and digits (of any language), and "
            f"'.', '_', '@' or '-' after the first one; at most {MAX_NAME_LENGTH} characters"
        )
    return normalized


def _name_chars_ok(name: str) -> bool:
    first = unicodedata.category(name[0])
    if first[0] not in "LN":
        return False
    for char in name[1:]:
        kind = unicodedata.category(char)[0]
        if kind not in "LNM" and char not in _NAME_PUNCTUATION:
            return False
    return True


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:39] + "…")


def get_user(session: Session, name: str) -> User:
    """The user called ``name``, or a clear error."""
    user = session.scalars(select(User).where(User.name == normalize_name(name))).one_or_none()
    if user is None:
        raise UserError(f"no user called {_shown(name)} (see `trickle users list`)")
    return user


def check_budget(budget: Money) -> None:
    """Refuse a negative budget or one above :data:`~trickle.core.money.MAX_BUDGET_MINOR`."""
    if budget.minor < 0:
        raise MoneyError("a budget cannot be negative")
    check_at_most(budget.minor, MAX_BUDGET_MINOR, budget.currency, "monthly budget")


def add_user(session: Session, name: str, budget: Money) -> User:
    """Create a user with a monthly budget; the budget's currency is the user's."""
    name = check_name(name)
    check_budget(budget)
    now = clock.now()
    user = User(name=name, currency=budget.currency, created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise UserError(f"a user called {_shown(name)} already exists") from None
    session.add(Budget(user_id=user.id, amount_minor=budget.minor, effective_at=now))
    ensure_account(session, AccountKind.WALLET, user.currency, user.id)
    return user


def set_budget(session: Session, name: str, budget: Money) -> Money:
    """Change a user's budget from now on; returns the previous one.

    The budget in force at the end of a month is the one that month settles with.
    """
    user = get_user(session, name)
    if budget.currency != user.currency:
        raise MoneyError(f"{user.name}'s budget is in {user.currency}, not {budget.currency}")
    check_budget(budget)
    previous = current_budget(session, user.id)
    session.add(Budget(user_id=user.id, amount_minor=budget.minor, effective_at=clock.now()))
    return Money(previous, user.currency)


def set_active(session: Session, name: str, active: bool) -> int:
    """Deactivate a user (``active`` False) or activate them again; returns how many of their
    accounts stopped or resumed polling.

    A deactivated user's accounts are ``disabled``: not polled, so no flattr of theirs is
    recorded and no later month spends anything of theirs. Their wallet, shares and ledger
    stay; shares reserved for them as a creator are still paid to them. Activating puts
    the accounts back on the schedule, due now, from a new baseline: likes made while the
    user was deactivated are never paid.
    """
    user = get_user(session, name)
    if user.active == active:
        state = "active" if active else "deactivated"
        raise UserError(f"{user.name} is already {state}")
    user.active = active
    before, after = (
        (AccountStatus.ACTIVE, AccountStatus.DISABLED)
        if not active
        else (AccountStatus.DISABLED, AccountStatus.ACTIVE)
    )
    now = clock.now().replace(microsecond=0)
    values: dict[str, object] = {"status": after.value, "next_poll_at": None}
    if active:  # a new baseline: what they liked while deactivated is not paid
        values.update(next_poll_at=now, linked_at=now, baseline_done=False)
    changed = session.execute(
        update(LinkedAccount)
        .where(LinkedAccount.user_id == user.id, LinkedAccount.status == before.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not active:
        session.execute(delete(LinkAttempt).where(LinkAttempt.user_id == user.id))
    return rowcount(changed)


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


def check_reference(reference: str) -> str:
    """A payment reference as given, if usable: not empty, one line, at most 100 characters.

    An empty reference would be one every "no reference" deposit shares, so it is an
    error rather than quietly meaning "none".
    """
    text = reference.strip()
    if not text:
        raise UserError("a payment reference cannot be empty (leave --reference out for none)")
    if len(text) > MAX_REFERENCE_LENGTH or any(unicodedata.category(c)[0] == "C" for c in text):
        raise UserError(
            f"bad payment reference {_shown(reference)}: one line of at most "
            f"{MAX_REFERENCE_LENGTH} printable characters"
        )
    return text


def fund(session: Session, name: str, amount: Money, reference: str | None = None) -> bool:
    """Add money to a user's wallet. ``reference`` makes a repeated deposit a no-op."""
    user = get_user(session, name)
    if amount.currency != user.currency:
        raise MoneyError(f"{user.name}'s wallet is in {user.currency}, not {amount.currency}")
    if amount.minor <= 0:
        raise MoneyError("a deposit must be more than zero")
    check_at_most(amount.minor, MAX_DEPOSIT_MINOR, amount.currency, "deposit")
    return deposit(
        session,
        user_id=user.id,
        currency=user.currency,
        amount=amount.minor,
        reference=uuid.uuid4().hex if reference is None else check_reference(reference),
    )


@dataclass(frozen=True)
class UserSummary:
    """One line of ``users list``: the wallet's balance, what of it is held, what is free."""

    name: str
    currency: str
    budget_minor: int
    balance_minor: int
    reserved_minor: int
    active: bool = True

    @property
    def available_minor(self) -> int:
        """Balance minus open reservations: what the next month can spend."""
        return self.balance_minor - self.reserved_minor


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
            balance_minor=balances.get((u.id, u.currency), 0),
            reserved_minor=reserved.get((u.id, u.currency), 0),
            active=u.active,
        )
        for u in users
    ]


def set_public(session: Session, name: str, public: bool) -> User:
    """Whether ``name`` is named on the public pages of the creators they flattr (by default
    they are not: a creator's page counts their likers without naming them)."""
    user = get_user(session, name)
    user.public = public
    return user


def set_operator(session: Session, name: str, operator: bool) -> User:
    """Let ``name`` open the web side's admin page, or no longer."""
    user = get_user(session, name)
    user.operator = operator
    return user
