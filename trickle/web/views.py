"""What the pages show, read through the core: a user's month, a creator's waiting money,
the operator's overview. No money rule lives here: shares come from the core's reports
(a projection of an open month is the real settlement, rolled back), funds from the
ledger."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from trickle.app import App
from trickle.core.clock import clock
from trickle.core.ledger import Funds, funds_of
from trickle.core.models import (
    AccountStatus,
    Creator,
    Flattr,
    LinkedAccount,
    RunStatus,
    SettlementRun,
    SettlementUser,
    Share,
    ShareState,
    User,
)
from trickle.core.periods import Period
from trickle.core.reports import MonthReport, ShareLine, month_report
from trickle.core.settlement import first_open_period
from trickle.core.users import current_budget

CHART_BARS = 8
MAX_ROWS = 500


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: a label, an amount, and its width in percent of the largest."""

    label: str
    minor: int
    percent: int


def bars(amounts: dict[str, int], top: int = CHART_BARS) -> list[Bar]:
    """The ``top`` largest amounts as bars, the rest summed as one "others" bar."""
    ranked = sorted(((v, k) for k, v in amounts.items() if v > 0), key=lambda p: (-p[0], p[1]))
    shown = [(k, v) for v, k in ranked[:top]]
    rest = sum(v for v, _ in ranked[top:])
    if rest:
        shown.append((f"{len(ranked) - top} others", rest))
    largest = max((v for _, v in shown), default=0)
    return [Bar(k, v, max(1, v * 100 // largest)) for k, v in shown] if largest else []


@dataclass(frozen=True)
class FlattrRow:
    """A flattr of the month and its share (None when the month spends nothing on it)."""

    platform: str
    item_url: str
    creator_platform_id: str
    creator_handle: str
    at: datetime
    amount_minor: int | None
    state: str | None
    recipient: str | None


@dataclass(frozen=True)
class AccountRow:
    """A linked account as its owner sees it."""

    id: int
    platform: str
    handle: str
    status: str
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None

    @property
    def relink_needed(self) -> bool:
        return self.status == AccountStatus.AUTH_EXPIRED.value


@dataclass(frozen=True)
class MonthView:
    """A user's month: the report's figures and the flattrs with their shares."""

    period: Period
    status: str
    currency: str
    flattrs: list[FlattrRow]
    spent_minor: int
    fee_minor: int
    by_state: dict[str, int]
    by_creator: list[Bar]
    by_platform: list[Bar]

    @property
    def total_minor(self) -> int:
        return sum(self.by_state.values())


@dataclass(frozen=True)
class Home:
    """The signed-in user's page."""

    user: User
    budget_minor: int
    funds: Funds
    month: MonthView
    accounts: list[AccountRow]
    past: list[tuple[Period, str]]
    received_minor: int


def account_rows(session: Session, user_id: int) -> list[AccountRow]:
    rows = session.scalars(
        select(LinkedAccount)
        .where(LinkedAccount.user_id == user_id)
        .order_by(LinkedAccount.platform, LinkedAccount.handle)
    )
    return [
        AccountRow(
            a.id, a.platform, a.handle, a.status, a.last_poll_at, a.last_success_at, a.last_error
        )
        for a in rows
    ]


def month_view(app: App, user: User, period: Period) -> MonthView:
    """``user``'s ``period`` as settled, or as settling it now would make it."""
    report = month_report(
        app.db, period, app.settle_options, currency=user.currency, user=user.name
    )
    shares: dict[tuple[str, str], ShareLine] = {(s.platform, s.item_id): s for s in report.shares}
    with app.db.reader() as session:
        month = or_(
            Flattr.period == str(period),
            and_(
                Flattr.period.is_(None),
                Flattr.effective_at >= period.start,
                Flattr.effective_at < period.end,
            ),
        )
        rows = session.execute(
            select(Flattr.platform, Flattr.item_id, Flattr.item_url, Creator.platform_id,
                   Creator.handle, Flattr.effective_at)
            .join(Creator, Creator.id == Flattr.creator_id)
            .where(Flattr.user_id == user.id, month)
            .order_by(Flattr.effective_at.desc(), Flattr.id.desc())
            .limit(MAX_ROWS)
        ).all()  # fmt: skip
    flattrs = []
    for platform, item_id, url, creator_id, handle, at in rows:
        share = shares.get((platform, item_id))
        flattrs.append(
            FlattrRow(
                platform, url, creator_id, handle, at,
                share.amount_minor if share else None,
                share.state if share else None,
                share.recipient if share else None,
            )
        )  # fmt: skip
    return _month(report, user, flattrs)


def _month(report: MonthReport, user: User, flattrs: list[FlattrRow]) -> MonthView:
    line = next((u for u in report.users if u.user == user.name), None)
    creators: dict[str, int] = defaultdict(int)
    platforms: dict[str, int] = defaultdict(int)
    for share in report.shares:
        creators[f"{share.creator_handle} ({share.platform})"] += share.amount_minor
        platforms[share.platform] += share.amount_minor
    return MonthView(
        period=report.period,
        status=report.status,
        currency=user.currency,
        flattrs=flattrs,
        spent_minor=line.spent_minor if line else 0,
        fee_minor=line.fee_minor if line else 0,
        by_state=dict(line.by_state) if line else {},
        by_creator=bars(creators),
        by_platform=bars(platforms),
    )


def home(app: App, user: User) -> Home:
    """Everything on the signed-in user's page."""
    period = Period.of(clock.now())
    month = month_view(app, user, period)
    with app.db.reader() as session:
        budget = current_budget(session, user.id)
        funds = funds_of(session, user.id, user.currency)
        accounts = account_rows(session, user.id)
        past = past_months(session, user.id)
        received = session.scalar(
            select(func.coalesce(func.sum(Share.amount_minor), 0)).where(
                Share.recipient_user_id == user.id, Share.state == ShareState.PAID.value
            )
        )
    return Home(user, budget, funds, month, accounts, past, int(received or 0))


def past_months(session: Session, user_id: int) -> list[tuple[Period, str]]:
    """The months before this one the user took part in, newest first, with their state
    (``settled``, ``settling``, or ``open``: closed but not settled yet)."""
    now_period = Period.of(clock.now())
    runs = {
        period: status
        for period, status in session.execute(
            select(SettlementRun.period, SettlementRun.status)
            .join(SettlementUser, SettlementUser.run_id == SettlementRun.id)
            .where(SettlementUser.user_id == user_id)
        )
    }
    months = {
        Period.parse(p): ("settled" if s == RunStatus.DONE.value else "settling")
        for p, s in runs.items()
    }
    first_open = first_open_period(session)
    if first_open is not None:
        month = first_open
        while month < now_period:
            months.setdefault(month, "open")
            month = month.next()
    return sorted(months.items(), key=lambda item: item[0], reverse=True)


@dataclass(frozen=True)
class CreatorView:
    """A creator identity's public page: likers counted, money waiting, public likers."""

    creator: Creator
    likers: int
    flattrs: int
    waiting: dict[str, int]
    waiting_shares: int
    first_expiry: datetime | None
    last_expiry: datetime | None
    public_likers: list[str] = field(default_factory=list)
    claimed: bool = False


def creator_view(session: Session, platform: str, platform_id: str) -> CreatorView | None:
    """What trickle holds for the creator (platform, permanent id); None if never seen."""
    creator = session.scalars(
        select(Creator).where(Creator.platform == platform, Creator.platform_id == platform_id)
    ).one_or_none()
    if creator is None:
        return None
    likers, flattrs = session.execute(
        select(func.count(func.distinct(Flattr.user_id)), func.count(Flattr.id)).where(
            Flattr.creator_id == creator.id
        )
    ).one()
    waiting: dict[str, int] = {}
    shares = 0
    first = last = None
    for currency, total, count, soonest, latest in session.execute(
        select(
            Share.currency,
            func.sum(Share.amount_minor),
            func.count(),
            func.min(Share.expires_at),
            func.max(Share.expires_at),
        )
        .where(Share.creator_id == creator.id, Share.state == ShareState.RESERVED.value)
        .group_by(Share.currency)
    ):
        waiting[currency] = int(total)
        shares += int(count)
        first = soonest if first is None or (soonest and soonest < first) else first
        last = latest if last is None or (latest and latest > last) else last
    public = list(
        session.scalars(
            select(User.name)
            .where(
                User.public.is_(True),
                User.active.is_(True),
                User.id.in_(select(Flattr.user_id).where(Flattr.creator_id == creator.id)),
            )
            .order_by(User.name)
            .limit(100)
        )
    )
    return CreatorView(
        creator, int(likers), int(flattrs), waiting, shares,
        _aware(first), _aware(last), public, creator.user_id is not None,
    )  # fmt: skip


def _aware(value: datetime | None) -> datetime | None:
    from trickle.core.clock import ensure_utc

    return ensure_utc(value) if value is not None else None


@dataclass(frozen=True)
class FailingAccount:
    id: int
    user: str
    platform: str
    handle: str
    status: str
    failures: int
    last_error: str | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class MonthState:
    period: str
    status: str
    forced: bool
    started_at: datetime | None
    finished_at: datetime | None


def failing_accounts(session: Session) -> list[FailingAccount]:
    """Accounts that need someone: failing polls, or waiting for their user to relink."""
    rows = session.execute(
        select(LinkedAccount, User.name)
        .join(User, User.id == LinkedAccount.user_id)
        .where(
            or_(
                LinkedAccount.failures > 0,
                LinkedAccount.status == AccountStatus.AUTH_EXPIRED.value,
            )
        )
        .order_by(LinkedAccount.failures.desc(), LinkedAccount.id)
        .limit(MAX_ROWS)
    )
    return [
        FailingAccount(
            a.id, name, a.platform, a.handle, a.status, a.failures, a.last_error, a.last_success_at
        )
        for a, name in rows
    ]


def month_states(session: Session) -> list[MonthState]:
    """Every month with a settlement run, newest first, and the open months before now."""
    states = [
        MonthState(r.period, r.status, r.forced, r.started_at, r.finished_at)
        for r in session.scalars(select(SettlementRun).order_by(SettlementRun.period.desc()))
    ]
    known = {s.period for s in states}
    first_open = first_open_period(session)
    now_period = Period.of(clock.now())
    if first_open is not None:
        month = first_open
        while month <= now_period:
            if str(month) not in known:
                states.append(MonthState(str(month), "open", False, None, None))
            month = month.next()
    return sorted(states, key=lambda s: s.period, reverse=True)
