"""Monthly settlement: each user's budget split exactly over their flattrs, once.

A run is staged and resumable, like Liberapay's payday:

1. **lock** - one settlement at a time: a PostgreSQL advisory lock (a second
   ``settle`` waits for it), and on every database the run row's lease (a
   second ``settle`` that finds it held by a live process exits with a clear
   message; one held by a dead process is taken over).
2. **plan** - in one transaction: every not-yet-counted flattr up to the
   month's end is assigned to the month, each user's spend is fixed
   (``min(budget, available funds)``, fee, distributable), and one share row
   per counted flattr is written with its exact amount. Set-based SQL.
3. **post** - users in batches, each batch one transaction: a ledger
   transaction per user keyed ``settle:MONTH:user:ID``, paid shares moved to
   their creators' wallets, the fee to the operator; reserved shares stay in
   the liker's wallet as holds. The batch marks its users posted.
4. **done**.

A crash anywhere leaves a committed prefix of these steps; running ``settle``
again continues from there and ends with the ledger an uninterrupted run
would have written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from trickle.core.clock import clock
from trickle.core.db import Database, insert
from trickle.core.errors import TrickleError
from trickle.core.ledger import AccountKind, ensure_account
from trickle.core.models import (
    AccountStatus,
    Budget,
    Creator,
    Flattr,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    LinkedAccount,
    RunStatus,
    SettlementRun,
    SettlementUser,
    Share,
    ShareState,
    User,
)
from trickle.core.money import (
    SPLIT_MUL_FLATTR,
    SPLIT_MUL_PERIOD,
    SPLIT_MUL_USER,
    SPLIT_PRIME,
)
from trickle.core.owners import new_owner, owner_is_dead
from trickle.core.periods import Period

log = logging.getLogger(__name__)

UnclaimedPolicy = Literal["reserve", "skip"]
Progress = Callable[[str, int, int], None]
"""Told ``(stage, done, total)`` as a settlement runs: ``"plan"`` 0/1 then 1/1, then
``"post"`` counting users, for a progress display."""
POST_BATCH_USERS = 500
LOCK_LEASE = timedelta(minutes=5)


class SettlementError(TrickleError):
    """A settlement that cannot start: month open, earlier month pending, or already running."""


class MonthNotClosed(SettlementError):
    """The month's grace period has not passed or some accounts were not polled since it ended."""


class SettlementBusy(SettlementError):
    """Another process is settling right now."""


@dataclass(frozen=True)
class SettleOptions:
    """The operator's rules a run is planned with (recorded on the run, reused on resume)."""

    fee_bps: int = 0
    escrow_days: int = 90
    unclaimed: UnclaimedPolicy = "reserve"
    grace_hours: int = 24


@dataclass(frozen=True)
class LaggingAccount:
    """An active account not yet polled successfully since the month ended."""

    account_id: int
    user: str
    platform: str
    handle: str
    last_success_at: datetime | None


@dataclass(frozen=True)
class Closing:
    """Whether a month may be settled now, and what holds it back."""

    period: Period
    grace_until: datetime
    lagging: list[LaggingAccount] = field(default_factory=list)
    now: datetime = field(default_factory=clock.now)

    @property
    def ended(self) -> bool:
        """The month is over."""
        return self.now >= self.period.end

    @property
    def closed(self) -> bool:
        """Grace passed and every active account was polled since the month's end."""
        return self.now >= self.grace_until and not self.lagging

    def explain(self) -> str:
        """Why the month is not closed yet, for the operator."""
        reasons = []
        if self.now < self.grace_until:
            reasons.append(f"its grace period runs until {self.grace_until:%Y-%m-%d %H:%M} UTC")
        if self.lagging:
            names = ", ".join(
                f"{a.user}/{a.platform}:{a.handle} (last ok {a.last_success_at:%Y-%m-%d %H:%M})"
                if a.last_success_at
                else f"{a.user}/{a.platform}:{a.handle} (never polled)"
                for a in self.lagging[:10]
            )
            more = f" and {len(self.lagging) - 10} more" if len(self.lagging) > 10 else ""
            reasons.append(
                f"{len(self.lagging)} active account(s) not polled since it ended: {names}{more}"
            )
        return f"{self.period} is not closed: " + "; ".join(reasons)


@dataclass(frozen=True)
class SettleOutcome:
    """What ``settle`` did."""

    period: Period
    status: Literal["settled", "already_settled", "dry_run", "nothing_to_settle"]
    run_id: int | None
    resumed: bool = False


def closing_of(session: Session, period: Period, grace_hours: int) -> Closing:
    """Whether ``period`` may be settled now (see :class:`Closing`)."""
    end = period.end
    rows = session.execute(
        select(
            LinkedAccount.id,
            User.name,
            LinkedAccount.platform,
            LinkedAccount.handle,
            LinkedAccount.last_success_at,
        )
        .join(User, User.id == LinkedAccount.user_id)
        .where(
            LinkedAccount.status == AccountStatus.ACTIVE.value,
            LinkedAccount.linked_at < end,
            or_(LinkedAccount.last_success_at.is_(None), LinkedAccount.last_success_at < end),
        )
        .order_by(LinkedAccount.id)
    ).all()
    return Closing(
        period=period,
        grace_until=end + timedelta(hours=grace_hours),
        lagging=[LaggingAccount(*row) for row in rows],
        now=clock.now(),
    )


def first_open_period(session: Session) -> Period | None:
    """The month the next flattr would count in: the earliest not settled (None if no flattrs)."""
    last_done = session.scalar(
        select(func.max(SettlementRun.period)).where(SettlementRun.status == RunStatus.DONE.value)
    )
    earliest = session.scalar(select(func.min(Flattr.effective_at)).where(Flattr.period.is_(None)))
    candidates = []
    if last_done is not None:
        candidates.append(Period.parse(last_done).next())
    if earliest is not None:
        candidates.append(Period.of(earliest))
    if not candidates:
        return None
    if last_done is not None:
        return max(candidates)
    return min(candidates)


# ---------------------------------------------------------------------------
# The plan, as SQL shared by the real run and by projections of open months.


def rank_key_sql(period_index: int, user_id: Any, flattr_id: Any) -> ColumnElement[int]:
    """SQL twin of :func:`trickle.core.money.split_rank_key` (same integers on every database)."""
    p = literal(SPLIT_PRIME, BigInteger)
    mixed = (
        (flattr_id % p) * literal(SPLIT_MUL_FLATTR, BigInteger) % p
        + (user_id % p) * literal(SPLIT_MUL_USER, BigInteger) % p
        + literal(period_index % SPLIT_PRIME * SPLIT_MUL_PERIOD % SPLIT_PRIME, BigInteger)
    ) % p
    key: ColumnElement[int] = mixed * mixed % p
    return key


def counted_flattrs(
    where: ColumnElement[bool], period: Period, unclaimed: UnclaimedPolicy
) -> Select[int, int, int, int | None, int]:
    """Flattrs matching ``where`` that take a share: not the liker's own content
    (and, under the "skip" policy, only for creators who have joined)."""
    conditions = [
        where,
        or_(Creator.user_id.is_(None), Creator.user_id != Flattr.user_id),
    ]
    if unclaimed == "skip":
        conditions.append(Creator.user_id.is_not(None))
    return (
        select(
            Flattr.id.label("flattr_id"),
            Flattr.user_id.label("user_id"),
            Flattr.creator_id.label("creator_id"),
            Creator.user_id.label("recipient_user_id"),
            rank_key_sql(period.index, Flattr.user_id, Flattr.id).label("rank_key"),
        )
        .join(Creator, Creator.id == Flattr.creator_id)
        .where(*conditions)
    )


def _budget_at(user_id: Any, end: datetime) -> ColumnElement[int]:
    """The budget in force at ``end``: the latest set before it. A month that ended before
    any budget of the user was set costs them nothing."""
    in_force = (
        select(Budget.amount_minor)
        .where(Budget.user_id == user_id, Budget.effective_at < end)
        .order_by(Budget.effective_at.desc(), Budget.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(in_force, literal(0, BigInteger))


def _available_funds(user_id: Any, currency: Any) -> ColumnElement[int]:
    balance = (
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), literal(0, BigInteger)))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerAccount.kind == AccountKind.WALLET.value,
            LedgerAccount.user_id == user_id,
            LedgerAccount.currency == currency,
        )
        .scalar_subquery()
    )
    reserved = (
        select(func.coalesce(func.sum(Share.amount_minor), literal(0, BigInteger)))
        .where(
            Share.user_id == user_id,
            Share.currency == currency,
            Share.state == ShareState.RESERVED.value,
        )
        .scalar_subquery()
    )
    # sum() of BIGINT is NUMERIC on PostgreSQL: cast back, so that `//` stays integer division.
    return cast(balance - reserved, BigInteger)


def user_totals(counted: Any, period: Period, fee_bps: int) -> Select[Any]:
    """Per user with counted flattrs: n, budget in force at month end, available funds,
    spend = min(budget, funds), and the fee on it."""
    per_user = (
        select(counted.c.user_id, func.count().label("n"))
        .group_by(counted.c.user_id)
        .subquery("per_user")
    )
    base = (
        select(
            User.id.label("user_id"),
            User.currency.label("currency"),
            per_user.c.n.label("n"),
            _budget_at(User.id, period.end).label("budget"),
            _available_funds(User.id, User.currency).label("funds"),
        )
        .join(per_user, per_user.c.user_id == User.id)
        # OFFSET 0 keeps both planners from inlining this subquery into the expressions
        # below, which would run the budget and funds subqueries several times per user.
        .offset(0)
        .subquery("base")
    )
    spend = case(
        (base.c.funds <= 0, literal(0, BigInteger)),
        (base.c.budget < base.c.funds, base.c.budget),
        else_=base.c.funds,
    )
    with_spend = select(
        base.c.user_id, base.c.currency, base.c.n, base.c.budget, base.c.funds, spend.label("spend")
    ).subquery("with_spend")
    return select(
        with_spend.c.user_id,
        with_spend.c.currency,
        with_spend.c.n,
        with_spend.c.budget,
        with_spend.c.funds,
        with_spend.c.spend,
        (with_spend.c.spend * literal(fee_bps, BigInteger) // literal(10_000, BigInteger)).label(
            "fee"
        ),
    )


def share_amounts(counted: Any, totals: Any, expires_at: datetime | None) -> Select[Any]:
    """One row per counted flattr of users who spend something: its exact share and fate."""
    ranked = select(
        counted,
        func.row_number()
        .over(
            partition_by=counted.c.user_id,
            order_by=(counted.c.rank_key, counted.c.flattr_id),
        )
        .label("rn"),
    ).subquery("ranked")
    distributable = totals.c.spend - totals.c.fee
    amount = distributable // totals.c.n + case(
        (ranked.c.rn <= distributable % totals.c.n, literal(1, BigInteger)),
        else_=literal(0, BigInteger),
    )
    reserved = ranked.c.recipient_user_id.is_(None)
    return (
        select(
            ranked.c.flattr_id,
            ranked.c.user_id,
            ranked.c.creator_id,
            ranked.c.recipient_user_id,
            totals.c.currency,
            amount.label("amount_minor"),
            case(
                (reserved, literal(ShareState.RESERVED.value, String)),
                else_=literal(ShareState.PAID.value, String),
            ).label("state"),
            reserved.label("was_reserved"),
            case((reserved, literal(expires_at, Share.expires_at.type)), else_=None).label(
                "expires_at"
            ),
        )
        .join(totals, totals.c.user_id == ranked.c.user_id)
        .where(totals.c.spend > 0)
    )


# ---------------------------------------------------------------------------
# The run.


class Settlement:
    """Settles months on one database under one set of rules."""

    def __init__(
        self,
        db: Database,
        options: SettleOptions,
        *,
        owner: str | None = None,
        batch_users: int = POST_BATCH_USERS,
    ) -> None:
        self.db = db
        self.options = options
        self.owner = owner or new_owner()
        self.batch_users = batch_users

    # -- checks ------------------------------------------------------------

    def closing(self, period: Period) -> Closing:
        """Whether ``period`` is closed now."""
        with self.db.reader() as session:
            return closing_of(session, period, self.options.grace_hours)

    def _check_can_start(self, session: Session, period: Period, force: bool) -> None:
        now = clock.now()
        if now < period.end:
            raise SettlementError(
                f"{period} has not ended yet (it ends {period.end:%Y-%m-%d %H:%M} UTC); "
                "a month is settled after it ends"
            )
        closing = closing_of(session, period, self.options.grace_hours)
        if not closing.closed and not force:
            raise MonthNotClosed(closing.explain() + " (use --force to settle anyway)")
        # Months settle in order: a pending earlier month would otherwise lose its flattrs
        # to this one.
        earliest = session.scalar(
            select(func.min(Flattr.effective_at)).where(
                Flattr.period.is_(None), Flattr.effective_at < period.start
            )
        )
        if earliest is None:
            return
        pending_in = Period.of(earliest)
        last_done = session.scalar(
            select(func.max(SettlementRun.period)).where(
                SettlementRun.status == RunStatus.DONE.value
            )
        )
        if last_done is not None:
            pending_in = max(pending_in, Period.parse(last_done).next())
        if pending_in < period:
            raise SettlementError(
                f"{pending_in} has flattrs that are not settled yet: settle {pending_in} first "
                "(months settle in order)"
            )

    # -- locking -----------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One settlement at a time across processes (PostgreSQL: wait for the other)."""
        if not self.db.is_postgres:
            yield
            return
        with self.db.engine.connect() as connection:
            key = "hashtext(current_schema() || ':trickle:settlement')"
            connection.execute(text(f"SELECT pg_advisory_lock({key})"))
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text(f"SELECT pg_advisory_unlock({key})"))
                connection.commit()

    def _new_run(self, session: Session, period: Period, force: bool) -> SettlementRun:
        """The month's run row, recording the rules it is planned with, held by us."""
        now = clock.now()
        run = SettlementRun(
            period=str(period),
            status=RunStatus.PLANNING.value,
            fee_bps=self.options.fee_bps,
            unclaimed_policy=self.options.unclaimed,
            escrow_days=self.options.escrow_days,
            forced=force,
            started_at=now,
            locked_by=self.owner,
            locked_until=now + LOCK_LEASE,
        )
        session.add(run)
        session.flush()
        return run

    def _take_run(self, period: Period, force: bool) -> tuple[int, str, bool]:
        """Create or take over the month's run row; returns (id, status, resumed)."""
        now = clock.now()
        with self.db.session() as session:
            run = session.scalars(
                select(SettlementRun).where(SettlementRun.period == str(period))
            ).one_or_none()
            if run is not None and run.status == RunStatus.DONE.value:
                return run.id, run.status, False
            if run is None:
                self._check_can_start(session, period, force)
                run = self._new_run(session, period, force)
                return run.id, run.status, False
            holder = run.locked_by
            if (
                holder not in (None, self.owner)
                and run.locked_until is not None
                and run.locked_until > now
                and not owner_is_dead(holder)
            ):
                raise SettlementBusy(
                    f"{period} is being settled by {holder} (started "
                    f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC, stage {run.status}); "
                    "wait for it to finish, or run settle again once that process has stopped"
                )
            run.locked_by = self.owner
            run.locked_until = now + LOCK_LEASE
            return run.id, run.status, True

    def _heartbeat(self, session: Session, run_id: int) -> None:
        session.execute(
            update(SettlementRun)
            .where(SettlementRun.id == run_id)
            .values(locked_until=clock.now() + LOCK_LEASE)
        )

    # -- the stages ----------------------------------------------------------

    def settle(
        self, period: Period, *, force: bool = False, progress: Progress | None = None
    ) -> SettleOutcome:
        """Settle ``period`` (or finish a run that stopped half-way). Idempotent.

        ``progress(stage, done, total)`` is told how far the run is (``"plan"``, then
        ``"post"`` counting users), for a progress display.
        """
        with self._exclusive():
            run_id, status, resumed = self._take_run(period, force)
            if status == RunStatus.DONE.value:
                return SettleOutcome(period, "already_settled", run_id)
            if resumed:
                log.info("resuming the settlement of %s at stage %s", period, status)
            try:
                if status == RunStatus.PLANNING.value:
                    if progress:
                        progress("plan", 0, 1)
                    with self.db.session() as session:
                        self._plan(session, run_id, period)
                    if progress:
                        progress("plan", 1, 1)
                self._analyze("shares", "settlement_users")
                self._post(run_id, period, self.db.session, progress)
                with self.db.session() as session:
                    self._finish(session, run_id)
                self._analyze("flattrs", "ledger_transactions", "ledger_entries")
            except BaseException:
                # What is committed stays; free the run so that `settle` can resume it now.
                self._unlock(run_id)
                raise
        log.info("settled %s (run %s)", period, run_id)
        return SettleOutcome(period, "settled", run_id, resumed=resumed)

    def rehearse(
        self,
        session: Session,
        period: Period,
        *,
        check: bool = True,
        force: bool = False,
        user_id: int | None = None,
    ) -> int:
        """Settle ``period`` inside ``session``, which the caller rolls back; returns the run id.

        The same stages as :meth:`settle`, in one transaction: a dry run or a projection of
        an open month is the real plan, not an imitation of it. ``check`` applies the
        refusals of a real settle (month not over, not closed without ``force``, an earlier
        month pending); ``user_id`` plans that user's flattrs only (a user's month depends
        on nothing but their own flattrs, budget and funds). A run that already exists is
        carried on as a resumed settle would, with the rules it was planned with.
        """
        run = session.scalars(
            select(SettlementRun).where(SettlementRun.period == str(period))
        ).one_or_none()
        if run is not None and run.status == RunStatus.DONE.value:
            return run.id
        if run is None:
            if check:
                self._check_can_start(session, period, force)
            run = self._new_run(session, period, force)
        if run.status == RunStatus.PLANNING.value:
            self._plan(session, run.id, period, user_id=user_id)
        self._post(run.id, period, lambda: nullcontext(session), None)
        self._finish(session, run.id)
        return run.id

    def _plan(
        self, session: Session, run_id: int, period: Period, *, user_id: int | None = None
    ) -> None:
        """Stage 2, one transaction: assign flattrs to the month, fix spends, write the shares."""
        run = session.get_one(SettlementRun, run_id)
        now = clock.now()
        mine = [Flattr.user_id == user_id] if user_id is not None else []
        session.execute(
            update(Flattr)
            .where(Flattr.period.is_(None), Flattr.effective_at < period.end, *mine)
            .values(period=str(period))
            .execution_options(synchronize_session=False)
        )
        counted = counted_flattrs(
            and_(Flattr.period == str(period), *mine),
            period,
            run.unclaimed_policy,  # type: ignore[arg-type]
        ).subquery("counted")
        totals = user_totals(counted, period, run.fee_bps).subquery("totals")
        session.execute(
            SettlementUser.__table__.insert().from_select(
                [
                    "run_id",
                    "user_id",
                    "currency",
                    "flattrs",
                    "budget_minor",
                    "funds_minor",
                    "spend_minor",
                    "fee_minor",
                    "posted",
                ],
                select(
                    literal(run_id, BigInteger),
                    totals.c.user_id,
                    totals.c.currency,
                    totals.c.n,
                    totals.c.budget,
                    totals.c.funds,
                    totals.c.spend,
                    totals.c.fee,
                    literal(False),
                ),
            )
        )
        planned = select(SettlementUser).where(SettlementUser.run_id == run_id).subquery("planned")
        plan_totals = select(
            planned.c.user_id,
            planned.c.currency,
            planned.c.flattrs.label("n"),
            planned.c.spend_minor.label("spend"),
            planned.c.fee_minor.label("fee"),
        ).subquery("plan_totals")
        shares = share_amounts(
            counted, plan_totals, now + timedelta(days=run.escrow_days)
        ).subquery("shares_planned")
        session.execute(
            Share.__table__.insert().from_select(
                [
                    "run_id",
                    "period",
                    "flattr_id",
                    "user_id",
                    "creator_id",
                    "recipient_user_id",
                    "currency",
                    "amount_minor",
                    "state",
                    "was_reserved",
                    "expires_at",
                ],
                select(
                    literal(run_id, BigInteger),
                    literal(str(period), String),
                    shares.c.flattr_id,
                    shares.c.user_id,
                    shares.c.creator_id,
                    shares.c.recipient_user_id,
                    shares.c.currency,
                    shares.c.amount_minor,
                    shares.c.state,
                    shares.c.was_reserved,
                    shares.c.expires_at,
                ),
            )
        )
        run.status = RunStatus.POSTING.value
        run.planned_at = now
        self._heartbeat(session, run_id)

    def _post(
        self,
        run_id: int,
        period: Period,
        sessions: Callable[[], AbstractContextManager[Session]],
        progress: Progress | None,
    ) -> None:
        """Stage 3: post the plan to the ledger, a batch of users per ``sessions()`` unit
        (its own transaction in a real run, the one scratch transaction in a rehearsal)."""
        with sessions() as session:
            for currency in session.scalars(
                select(SettlementUser.currency).where(SettlementUser.run_id == run_id).distinct()
            ):
                ensure_account(session, AccountKind.FEES, currency)
            total = session.scalar(select(func.count()).where(SettlementUser.run_id == run_id)) or 0
            done = (
                session.scalar(
                    select(func.count()).where(
                        SettlementUser.run_id == run_id, SettlementUser.posted.is_(True)
                    )
                )
                or 0
            )
        # Batches go up in user order and each marks its users posted, so the posted users
        # are always a prefix: after a batch, the next one starts above its last user
        # (instead of skipping over all the posted ones again).
        after: int | None = None
        while True:
            if progress:
                progress("post", done, total)
            with sessions() as session:
                pending = [SettlementUser.run_id == run_id, SettlementUser.posted.is_(False)]
                if after is not None:
                    pending.append(SettlementUser.user_id > after)
                users = session.scalars(
                    select(SettlementUser.user_id)
                    .where(*pending)
                    .order_by(SettlementUser.user_id)
                    .limit(self.batch_users)
                ).all()
                if not users:
                    return
                self._post_batch(session, run_id, period, users[0], users[-1])
                self._heartbeat(session, run_id)
            after = users[-1]
            done += len(users)

    def _analyze(self, *tables: str) -> None:
        """PostgreSQL: refresh the statistics of tables a stage has just filled.

        Autovacuum would get to them a minute too late: until then the planner takes
        millions of fresh rows for a handful and nests loops over them (in the post
        stage's batches, and in ``ledger check`` or a report run right after settling).
        Statistics change no result, so a lock that does not come quickly is not waited for.
        """
        if not self.db.is_postgres:
            return
        try:
            with self.db.session() as session:
                session.execute(text("SET LOCAL lock_timeout = '10s'"))
                session.execute(text(f"ANALYZE {', '.join(tables)}"))
        except OperationalError:
            log.warning("could not analyze %s; going on without", ", ".join(tables), exc_info=True)

    def _post_batch(self, session: Session, run_id: int, period: Period, lo: int, hi: int) -> None:
        now = clock.now()
        in_batch = and_(
            SettlementUser.run_id == run_id,
            SettlementUser.user_id.between(lo, hi),
            SettlementUser.posted.is_(False),
        )
        batch_shares = and_(
            Share.run_id == run_id,
            Share.user_id.between(lo, hi),
            Share.recipient_user_id.is_not(None),
        )
        # Wallets for creators who have never held money yet.
        recipients = (
            select(Share.recipient_user_id.label("user_id"), Share.currency)
            .where(batch_shares)
            .distinct()
            .subquery("recipients")
        )
        session.execute(
            insert(session, LedgerAccount.__table__)
            .from_select(
                ["code", "kind", "user_id", "currency"],
                select(
                    literal("wallet:")
                    + cast(recipients.c.user_id, String)
                    + literal(":")
                    + recipients.c.currency,
                    literal(AccountKind.WALLET.value),
                    recipients.c.user_id,
                    recipients.c.currency,
                    # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT.
                ).where(text("1 = 1")),
            )
            .on_conflict_do_nothing(index_elements=["code"])
        )

        def settle_key(user_id: Any) -> ColumnElement[str]:
            return literal(f"settle:{period}:user:") + cast(user_id, String)

        # One transaction per user that spends something.
        session.execute(
            LedgerTransaction.__table__.insert().from_select(
                ["key", "kind", "period", "user_id", "created_at"],
                select(
                    settle_key(SettlementUser.user_id),
                    literal("settle"),
                    literal(str(period)),
                    SettlementUser.user_id,
                    literal(now, LedgerTransaction.created_at.type),
                ).where(in_batch, SettlementUser.spend_minor > 0),
            )
        )

        def txn(user_id: Any) -> ColumnElement[bool]:
            # The user's settle transaction. The key and the batch's range say nothing new,
            # but they let planners without fresh statistics find it by index instead of
            # scanning the month's transactions for every row of the batch.
            return and_(
                LedgerTransaction.kind == "settle",
                LedgerTransaction.period == str(period),
                LedgerTransaction.user_id == user_id,
                LedgerTransaction.user_id.between(lo, hi),
                LedgerTransaction.key == settle_key(user_id),
            )

        entry_columns = ["transaction_id", "account_id", "currency", "amount_minor"]
        # Paid shares: into each creator's wallet, one entry per (liker, creator).
        recipient_wallet = and_(
            LedgerAccount.kind == AccountKind.WALLET.value,
            LedgerAccount.user_id == Share.recipient_user_id,
            LedgerAccount.currency == Share.currency,
        )
        session.execute(
            LedgerEntry.__table__.insert().from_select(
                entry_columns,
                select(
                    LedgerTransaction.id,
                    LedgerAccount.id,
                    Share.currency,
                    func.sum(Share.amount_minor),
                )
                .join(SettlementUser, and_(SettlementUser.user_id == Share.user_id, in_batch))
                .join(LedgerTransaction, txn(Share.user_id))
                .join(LedgerAccount, recipient_wallet)
                .where(batch_shares, Share.amount_minor > 0)
                .group_by(LedgerTransaction.id, LedgerAccount.id, Share.currency),
            )
        )
        # The operator's fee.
        session.execute(
            LedgerEntry.__table__.insert().from_select(
                entry_columns,
                select(
                    LedgerTransaction.id,
                    LedgerAccount.id,
                    SettlementUser.currency,
                    SettlementUser.fee_minor,
                )
                .join(LedgerTransaction, txn(SettlementUser.user_id))
                .join(
                    LedgerAccount,
                    and_(
                        LedgerAccount.kind == AccountKind.FEES.value,
                        LedgerAccount.currency == SettlementUser.currency,
                    ),
                )
                .where(in_batch, SettlementUser.fee_minor > 0),
            )
        )
        # The liker's wallet pays the fee and the paid shares; reserved ones stay as holds.
        paid = (
            select(func.coalesce(func.sum(Share.amount_minor), literal(0, BigInteger)))
            .where(
                Share.run_id == run_id,
                Share.user_id == SettlementUser.user_id,
                Share.recipient_user_id.is_not(None),
            )
            .scalar_subquery()
        )
        debit = -(SettlementUser.fee_minor + paid)
        session.execute(
            LedgerEntry.__table__.insert().from_select(
                entry_columns,
                select(
                    LedgerTransaction.id,
                    LedgerAccount.id,
                    SettlementUser.currency,
                    debit,
                )
                .join(LedgerTransaction, txn(SettlementUser.user_id))
                .join(
                    LedgerAccount,
                    and_(
                        LedgerAccount.kind == AccountKind.WALLET.value,
                        LedgerAccount.user_id == SettlementUser.user_id,
                        LedgerAccount.currency == SettlementUser.currency,
                    ),
                )
                .where(in_batch, debit != 0),
            )
        )
        session.execute(
            update(SettlementUser)
            .where(in_batch)
            .values(posted=True)
            .execution_options(synchronize_session=False)
        )

    def _unlock(self, run_id: int) -> None:
        try:
            with self.db.session() as session:
                session.execute(
                    update(SettlementRun)
                    .where(SettlementRun.id == run_id, SettlementRun.locked_by == self.owner)
                    .values(locked_by=None, locked_until=None)
                )
        except Exception:  # the database may be what failed; the lease then just expires
            log.warning("could not release the lock of settlement run %s", run_id, exc_info=True)

    def _finish(self, session: Session, run_id: int) -> None:
        session.execute(
            update(SettlementRun)
            .where(SettlementRun.id == run_id)
            .values(
                status=RunStatus.DONE.value,
                finished_at=clock.now(),
                locked_by=None,
                locked_until=None,
            )
        )
