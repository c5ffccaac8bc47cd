"""What a month looks like: settled (from the plan and the ledger) or open (projected).

``trickle report`` and ``trickle settle`` print these; ``--json`` prints
:meth:`MonthReport.to_json`, the shape operators script against (see
``docs/cli.md``). An open month is not imitated: it is settled for real, by
:meth:`~trickle.core.settlement.Settlement.rehearse`, inside a transaction
that is rolled back, after every earlier open month (whose spending decides
what is left for it). So a projection shows exactly what settling would
write: each share paid or reserved as it would be, each user's spend from
the funds that month would really have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from trickle.core.clock import iso_utc
from trickle.core.db import Database
from trickle.core.models import (
    Creator,
    Flattr,
    RunStatus,
    SettlementRun,
    SettlementUser,
    Share,
    ShareState,
    User,
)
from trickle.core.periods import Period
from trickle.core.settlement import Settlement, SettleOptions, first_open_period
from trickle.core.users import get_user

MonthStatus = Literal["settled", "settling", "open"]
SHARE_STATES = tuple(s.value for s in ShareState)
"""Every state a share can be in, in the order reports show them: paid, reserved, returned."""


@dataclass(frozen=True)
class UserLine:
    """One user's month: flattrs counted, what they spent, and where it went by state."""

    user: str
    currency: str
    flattrs: int
    spent_minor: int
    fee_minor: int
    budget_minor: int
    available_minor: int
    by_state: dict[str, int] = field(default_factory=dict)

    def minor_in(self, state: str) -> int:
        """The user's shares in ``state`` (``paid``, ``reserved``, ``returned``), summed."""
        return self.by_state.get(state, 0)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form."""
        return {
            "user": self.user,
            "currency": self.currency,
            "flattrs": self.flattrs,
            "budget_minor": self.budget_minor,
            "available_minor": self.available_minor,
            "spent_minor": self.spent_minor,
            "fee_minor": self.fee_minor,
            **{f"{state}_minor": self.minor_in(state) for state in SHARE_STATES},
        }


@dataclass(frozen=True)
class ShareLine:
    """One flattr's share and what became of it (or would, in an open month)."""

    user: str
    platform: str
    item_id: str
    item_url: str
    creator_id: str
    creator_handle: str
    recipient: str | None
    currency: str
    amount_minor: int
    state: str
    expires_at: datetime | None = None
    resolved_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form."""
        return {
            "user": self.user,
            "platform": self.platform,
            "item_id": self.item_id,
            "item_url": self.item_url,
            "creator_id": self.creator_id,
            "creator_handle": self.creator_handle,
            "recipient": self.recipient,
            "currency": self.currency,
            "amount_minor": self.amount_minor,
            "state": self.state,
            "expires_at": iso_utc(self.expires_at),
            "resolved_at": iso_utc(self.resolved_at),
        }


@dataclass(frozen=True)
class MonthReport:
    """A month's users and shares, settled or projected.

    ``assumes_settled`` lists the earlier open months a projection settled first.
    """

    period: Period
    currency: str
    status: MonthStatus
    users: list[UserLine] = field(default_factory=list)
    shares: list[ShareLine] = field(default_factory=list)
    assumes_settled: tuple[Period, ...] = ()

    @property
    def projected(self) -> bool:
        """True for an open month: the figures are what settling now would do."""
        return self.status == "open"

    def to_json(self) -> dict[str, Any]:
        """One JSON object: ``period``, ``currency``, ``status``, ``users``, ``shares``..."""
        return {
            "period": str(self.period),
            "currency": self.currency,
            "status": self.status,
            "assumes_settled": [str(p) for p in self.assumes_settled],
            "users": [u.to_json() for u in self.users],
            "shares": [s.to_json() for s in self.shares],
        }

    def totals(self) -> dict[str, dict[str, int]]:
        """Per currency: ``spent``, ``fees``, and the shares by state (every state present)."""
        out: dict[str, dict[str, int]] = {}
        for line in self.users:
            t = out.setdefault(
                line.currency, {"spent": 0, "fees": 0, **dict.fromkeys(SHARE_STATES, 0)}
            )
            t["spent"] += line.spent_minor
            t["fees"] += line.fee_minor
            for state in SHARE_STATES:
                t[state] += line.minor_in(state)
        return out


def month_report(
    db: Database,
    period: Period,
    options: SettleOptions,
    *,
    currency: str,
    user: str | None = None,
) -> MonthReport:
    """The report of ``period``, for everyone or for ``user`` only: as settled, as far as an
    interrupted settlement got (``settling``), or projected (``open``)."""
    with db.reader() as session:
        user_id = get_user(session, user).id if user is not None else None
        run = session.scalars(
            select(SettlementRun).where(SettlementRun.period == str(period))
        ).one_or_none()
        if run is not None and run.status != RunStatus.PLANNING.value:
            status: MonthStatus = "settled" if run.status == RunStatus.DONE.value else "settling"
            return report_of_run(session, run.id, period, currency, status, user_id=user_id)
    return projected_report(db, period, options, currency=currency, user_id=user_id)


def projected_report(
    db: Database,
    period: Period,
    options: SettleOptions,
    *,
    currency: str,
    user_id: int | None = None,
) -> MonthReport:
    """What settling ``period`` now would do, every earlier open month settled first: the
    real settlement, rehearsed in a transaction that is rolled back."""
    settlement = Settlement(db, options)
    with db.scratch() as session:
        ahead = _open_months_before(session, period)
        for month in ahead:
            settlement.rehearse(session, month, check=False)
        run_id = settlement.rehearse(session, period, check=False, user_id=user_id)
        return report_of_run(
            session, run_id, period, currency, "open", user_id=user_id, assumes_settled=ahead
        )


def dry_run_report(
    settlement: Settlement, period: Period, *, force: bool, currency: str
) -> MonthReport:
    """``settle --dry-run``: the real settle of ``period``, with its refusals (month not over,
    not closed unless ``force``, an earlier month pending), rolled back. A month already
    settled is reported as it was settled."""
    with settlement.db.scratch() as session:
        done = session.scalar(
            select(SettlementRun.id).where(
                SettlementRun.period == str(period), SettlementRun.status == RunStatus.DONE.value
            )
        )
        if done is not None:
            return report_of_run(session, done, period, currency, "settled")
        run_id = settlement.rehearse(session, period, check=True, force=force)
        return report_of_run(session, run_id, period, currency, "open")


def _open_months_before(session: Session, period: Period) -> tuple[Period, ...]:
    first = first_open_period(session)
    if first is None or first >= period:
        return ()
    months = []
    month = first
    while month < period:
        months.append(month)
        month = month.next()
    return tuple(months)


def report_of_run(
    session: Session,
    run_id: int,
    period: Period,
    currency: str,
    status: MonthStatus,
    *,
    user_id: int | None = None,
    assumes_settled: Sequence[Period] = (),
) -> MonthReport:
    """The report of one settlement run's plan (and of what happened to its shares since)."""
    shares = _share_lines(session, run_id, user_id)
    by_user: dict[str, dict[str, int]] = {}
    for share in shares:
        states = by_user.setdefault(share.user, {})
        states[share.state] = states.get(share.state, 0) + share.amount_minor
    stmt = (
        select(
            User.name,
            SettlementUser.currency,
            SettlementUser.flattrs,
            SettlementUser.spend_minor,
            SettlementUser.fee_minor,
            SettlementUser.budget_minor,
            SettlementUser.funds_minor,
        )
        .join(User, User.id == SettlementUser.user_id)
        .where(SettlementUser.run_id == run_id)
        .order_by(User.name)
    )
    if user_id is not None:
        stmt = stmt.where(SettlementUser.user_id == user_id)
    users = [
        UserLine(name, cur, n, spend, fee, budget, max(funds, 0), by_user.get(name, {}))
        for name, cur, n, spend, fee, budget, funds in session.execute(stmt)
    ]
    return MonthReport(period, currency, status, users, shares, tuple(assumes_settled))


def _share_lines(session: Session, run_id: int, user_id: int | None) -> list[ShareLine]:
    """ShareLines of a run, with the liked item, its creator and the recipient's name."""
    liker = aliased(User)
    recipient = aliased(User)
    where = Share.run_id == run_id
    if user_id is not None:
        where = and_(where, Share.user_id == user_id)
    stmt = (
        select(
            liker.name,
            Flattr.platform,
            Flattr.item_id,
            Flattr.item_url,
            Creator.platform_id,
            Creator.handle,
            recipient.name,
            Share.currency,
            Share.amount_minor,
            Share.state,
            Share.expires_at,
            Share.resolved_at,
        )
        .join(Flattr, Flattr.id == Share.flattr_id)
        .join(Creator, Creator.id == Share.creator_id)
        .join(liker, liker.id == Share.user_id)
        .outerjoin(recipient, recipient.id == Share.recipient_user_id)
        .where(where)
        .order_by(liker.name, Flattr.effective_at, Flattr.id)
    )
    return [ShareLine(*row) for row in session.execute(stmt)]
