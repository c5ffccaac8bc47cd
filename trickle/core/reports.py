"""What a month looks like: settled (from the plan and the ledger) or open (projected).

``trickle report`` and ``trickle settle`` print these; ``--json`` prints
:meth:`MonthReport.to_json`, the shape operators script against (see
``docs/cli.md``). An open month is projected with the very SQL the
settlement plans with, so the projection is what settling now would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, func, null, select
from sqlalchemy.orm import Session, aliased

from trickle.core.clock import clock
from trickle.core.models import (
    Creator,
    Flattr,
    RunStatus,
    SettlementRun,
    SettlementUser,
    Share,
    User,
)
from trickle.core.periods import Period
from trickle.core.settlement import (
    SettleOptions,
    counted_flattrs,
    first_open_period,
    share_amounts,
    user_totals,
)
from trickle.core.users import get_user

MonthStatus = Literal["settled", "settling", "open"]


@dataclass(frozen=True)
class UserLine:
    """One user's month: how many flattrs counted and what they spent."""

    user: str
    currency: str
    flattrs: int
    spent_minor: int
    fee_minor: int
    budget_minor: int
    funds_minor: int

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form."""
        return {
            "user": self.user,
            "currency": self.currency,
            "spent_minor": self.spent_minor,
            "fee_minor": self.fee_minor,
            "flattrs": self.flattrs,
            "budget_minor": self.budget_minor,
            "funds_minor": self.funds_minor,
        }


@dataclass(frozen=True)
class ShareLine:
    """One flattr's share and what became of it."""

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
            "expires_at": _iso(self.expires_at),
            "resolved_at": _iso(self.resolved_at),
        }


@dataclass(frozen=True)
class MonthReport:
    """A month's users and shares, settled or projected."""

    period: Period
    currency: str
    status: MonthStatus
    users: list[UserLine] = field(default_factory=list)
    shares: list[ShareLine] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """One JSON object: ``period``, ``currency``, ``status``, ``users``, ``shares``."""
        return {
            "period": str(self.period),
            "currency": self.currency,
            "status": self.status,
            "users": [u.to_json() for u in self.users],
            "shares": [s.to_json() for s in self.shares],
        }

    def totals(self) -> dict[str, dict[str, int]]:
        """Per currency: spent, fees, and shares by state."""
        out: dict[str, dict[str, int]] = {}
        for line in self.users:
            t = out.setdefault(line.currency, {"spent": 0, "fees": 0})
            t["spent"] += line.spent_minor
            t["fees"] += line.fee_minor
        for share in self.shares:
            t = out.setdefault(share.currency, {"spent": 0, "fees": 0})
            t[share.state] = t.get(share.state, 0) + share.amount_minor
        return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def month_report(
    session: Session,
    period: Period,
    options: SettleOptions,
    *,
    currency: str,
    user: str | None = None,
) -> MonthReport:
    """The report of ``period``, for everyone or for ``user`` only."""
    run = session.scalars(
        select(SettlementRun).where(SettlementRun.period == str(period))
    ).one_or_none()
    user_id = None
    if user is not None:
        user_id = get_user(session, user).id
    if run is not None and run.status != RunStatus.PLANNING.value:
        status: MonthStatus = "settled" if run.status == RunStatus.DONE.value else "settling"
        return MonthReport(
            period,
            currency,
            status,
            _settled_users(session, run.id, user_id),
            _settled_shares(session, run.id, user_id),
        )
    return _projection(session, period, options, currency, user_id)


def _settled_users(session: Session, run_id: int, user_id: int | None) -> list[UserLine]:
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
    return [UserLine(*row) for row in session.execute(stmt)]


def _settled_shares(session: Session, run_id: int, user_id: int | None) -> list[ShareLine]:
    where = Share.run_id == run_id
    if user_id is not None:
        where = and_(where, Share.user_id == user_id)
    return _share_lines(session, Share.__table__, where)


def _share_lines(
    session: Session, shares: Any, where: Any = None, *, projected: bool = False
) -> list[ShareLine]:
    """ShareLines for rows of ``shares``: the shares table, or the plan's projection of them
    (same column names), with the liked item, its creator and the recipient's name."""
    liker = aliased(User)
    recipient = aliased(User)
    c = shares.c
    stmt = (
        select(
            liker.name,
            Flattr.platform,
            Flattr.item_id,
            Flattr.item_url,
            Creator.platform_id,
            Creator.handle,
            recipient.name,
            c.currency,
            c.amount_minor,
            c.state,
            c.expires_at,
            c.resolved_at if "resolved_at" in c else null(),
        )
        .join(Flattr, Flattr.id == c.flattr_id)
        .join(Creator, Creator.id == c.creator_id)
        .join(liker, liker.id == c.user_id)
        .outerjoin(recipient, recipient.id == c.recipient_user_id)
        .order_by(liker.name, Flattr.effective_at, Flattr.id)
    )
    if where is not None:
        stmt = stmt.where(where)
    lines = [ShareLine(*row) for row in session.execute(stmt)]
    if projected:
        return [replace(line, state="projected", expires_at=None) for line in lines]
    return lines


def projection_filter(session: Session, period: Period) -> Any:
    """The flattrs settling ``period`` now would count: unsettled ones up to its end
    (earlier months' late likes only if ``period`` is the first open month)."""
    first_open = first_open_period(session)
    in_month = and_(Flattr.period.is_(None), Flattr.effective_at < period.end)
    if first_open is not None and period <= first_open:
        return in_month
    return and_(in_month, Flattr.effective_at >= period.start)


def _projection(
    session: Session,
    period: Period,
    options: SettleOptions,
    currency: str,
    user_id: int | None,
) -> MonthReport:
    where = projection_filter(session, period)
    if user_id is not None:
        where = and_(where, Flattr.user_id == user_id)
    counted = counted_flattrs(where, period, options.unclaimed).cte("counted")
    totals = user_totals(counted, period, options.fee_bps).cte("totals")
    shares = share_amounts(counted, totals, None).cte("projected")
    users = [
        UserLine(name, cur, n, spend, fee, budget, max(funds, 0))
        for name, cur, n, spend, fee, budget, funds in session.execute(
            select(
                User.name,
                totals.c.currency,
                totals.c.n,
                totals.c.spend,
                totals.c.fee,
                totals.c.budget,
                totals.c.funds,
            )
            .join(User, User.id == totals.c.user_id)
            .order_by(User.name)
        )
    ]
    share_lines = _share_lines(session, shares, projected=True)
    return MonthReport(period, currency, "open", users, share_lines)


def uncounted_flattrs(session: Session, period: Period, user_id: int) -> int:
    """Flattrs of ``user_id`` in a settled ``period`` that took no share (own content, skipped)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Flattr)
            .outerjoin(Share, Share.flattr_id == Flattr.id)
            .where(Flattr.period == str(period), Flattr.user_id == user_id, Share.id.is_(None))
        )
        or 0
    )


def now_period() -> Period:
    """The month we are in."""
    return Period.of(clock.now())
