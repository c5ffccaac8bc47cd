"""Polling: claim due accounts, poll them with their connector, store what they found.

The unit of work is one account: it is *leased* to one worker
(``lease_owner``, ``lease_until``; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so any number of workers on any number of machines never poll an account at
the same time), polled without holding a database transaction, and then its
likes, its new cursor, its next poll time and the lease's release are
committed in ONE transaction, which first checks the lease is still ours. A
crash before that commit loses nothing and duplicates nothing: the lease
expires and the next poll starts from the old cursor.

Every failure is contained to its account: typed connector errors set the
account's back-off (or mark it for relinking), anything else is logged as a
connector bug, a result the database refuses to store is rolled back and
fails the account the same way, and the worker goes on with the others.
``trickle poll`` runs its accounts through the same pool (:meth:`Poller.poll_now`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, get_args

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from trickle.app import App
from trickle.connectors.base import AccountRef, PollResult, PollState
from trickle.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PlatformError,
    RateLimited,
    clamp_retry_at,
)
from trickle.connectors.registry import ConnectorUnavailable, UnknownPlatform
from trickle.connectors.session import AccountSession, SaveCredentials
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock, iso_utc
from trickle.core.credentials import Credentials, SecretKeyError, redact
from trickle.core.db import rowcount
from trickle.core.ingest import ingest_poll
from trickle.core.models import AccountStatus, LinkedAccount, User
from trickle.core.owners import new_owner, owner_is_dead

log = logging.getLogger(__name__)

Status = Literal[
    "ok", "not_modified", "baseline", "auth_expired", "rate_limited", "failed", "lease_lost"
]
RESULTS: tuple[Status, ...] = get_args(Status)


@dataclass(frozen=True)
class PollOutcome:
    """What polling one account did."""

    account_id: int
    user: str
    platform: str
    handle: str
    status: Status
    stored: int = 0
    duplicates: int = 0
    baseline: int = 0
    requests: int = 0
    error: str | None = None
    next_poll_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``trickle poll --json`` form."""
        return {
            "account_id": self.account_id,
            "user": self.user,
            "platform": self.platform,
            "handle": self.handle,
            "status": self.status,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "baseline": self.baseline,
            "requests": self.requests,
            "error": self.error,
            "next_poll_at": iso_utc(self.next_poll_at),
        }


Progress = Callable[[int, int], None]
"""``progress(done, total)``: how far a :meth:`Poller.poll_now` run is."""


@dataclass(frozen=True, slots=True)
class Target:
    """An account ``trickle poll`` is asked to poll, as it is listed before the poll."""

    account_id: int
    platform: str
    handle: str
    user: str

    def outcome(self, status: Status, **fields: Any) -> PollOutcome:
        """An outcome for this account that no poll of it produced."""
        return PollOutcome(self.account_id, self.user, self.platform, self.handle, status, **fields)


class LeaseLost(Exception):
    """Our lease on an account ran out and another worker may have it: store nothing."""


class CredentialsNotSaved(ConnectorError):
    """Renewed credentials could not be stored (the lease or the credentials changed
    meanwhile): the poll stops, and the renewed credentials are never used."""


POLL_BUDGET_OF_LEASE = 0.8
"""The share of ``worker.lease_seconds`` one poll may take, every request included."""
RATE_LIMIT_RESERVE = 0.02
"""A platform whose answers say no more than this share of the window's requests is left (one
at least) is not asked again until the window resets."""


# The two statements every poll runs, built once: building and hashing them on each poll
# cost more CPU than executing them (bench/poll.py).
_ACCOUNT = (
    select(LinkedAccount, User.name)
    .join(User, User.id == LinkedAccount.user_id)
    .where(LinkedAccount.id == bindparam("account_id"))
)
_accounts = LinkedAccount.__table__
_FINISH = update(_accounts).where(  # SET is every other key of the parameters
    _accounts.c.id == bindparam("finish_account_id"),
    _accounts.c.lease_owner == bindparam("finish_owner"),
)


# ---------------------------------------------------------------------------
# Scheduling rules


def next_interval(current: int, new_likes: int, settings: ConnectorSettings) -> int:
    """Adaptive interval: halve it when the account had new likes, stretch it by half when idle,
    always within the platform's bounds."""
    low, high = (
        settings.min_interval_seconds,
        max(settings.min_interval_seconds, settings.max_interval_seconds),
    )
    proposed = current // 2 if new_likes else current + current // 2
    return min(high, max(low, proposed))


def with_jitter(seconds: float, jitter: float, rng: random.Random) -> timedelta:
    """``seconds`` spread by up to +/- ``jitter`` so accounts do not all fall due together."""
    factor = 1.0 + rng.uniform(-jitter, jitter) if jitter else 1.0
    return timedelta(seconds=max(1.0, seconds * factor))


def failure_backoff(failures: int, base: int, cap: int) -> int:
    """Seconds to wait after the ``failures``-th failure in a row: base, 2 base, 4 base... cap."""
    return min(cap, base * (1 << max(0, min(failures - 1, 30))))


class RateBudget:
    """Per-platform pauses shared by a worker's threads: when an app-wide budget is spent,
    that platform waits until its reset and the others go on. A pause is logged when it
    starts and when it is over."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self.pauses = 0  # pauses started so far (the worker's summary reports them)
        self.pauses_by_platform: Counter[str] = Counter()

    def pause(self, platform: str, until: datetime) -> None:
        """Stop claiming ``platform`` accounts until ``until`` (a later reset extends a pause,
        an earlier one does not shorten it)."""
        with self._lock:
            current = self._until.get(platform)
            if current is not None and until <= current:
                return
            self._until[platform] = until
            if current is None:
                self.pauses += 1
                self.pauses_by_platform[platform] += 1
        if current is None:
            log.warning(
                "%s paused until %s: its app-wide rate limit is spent", platform, iso_utc(until)
            )

    def paused_until(self, platform: str, now: datetime) -> datetime | None:
        """When ``platform`` may be polled again, or None if it may now."""
        with self._lock:
            until = self._until.get(platform)
            if until is None:
                return None
            if until > now:
                return until
            del self._until[platform]
        log.info("%s resumes: its app-wide rate limit reset at %s", platform, iso_utc(until))
        return None


# ---------------------------------------------------------------------------
# Polling accounts


class Poller:
    """Claims, polls and records accounts on behalf of one worker process (``owner``)."""

    def __init__(self, app: App, *, owner: str | None = None, seed: int | None = None) -> None:
        self.app = app
        self.owner = owner or new_owner()
        self.budget = RateBudget()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.app.settings.worker.lease_seconds)

    def _jitter(self, seconds: float) -> timedelta:
        with self._rng_lock:
            return with_jitter(seconds, self.app.settings.worker.jitter, self._rng)

    # -- leases ----------------------------------------------------------

    def claim_due(self, platform: str, limit: int) -> list[int]:
        """Lease up to ``limit`` due, active, unleased accounts of ``platform``."""
        if limit <= 0:
            return []
        now = clock.now()
        due = and_(
            LinkedAccount.platform == platform,
            LinkedAccount.status == AccountStatus.ACTIVE.value,
            LinkedAccount.next_poll_at <= now,
            or_(LinkedAccount.lease_until.is_(None), LinkedAccount.lease_until < now),
        )
        return self._lease_where(due, limit, now)

    def claim_accounts(self, account_ids: Sequence[int]) -> list[int]:
        """Lease these accounts now, whatever their schedule, unless another worker holds one."""
        if not account_ids:
            return []
        now = clock.now()
        free = and_(
            LinkedAccount.id.in_(account_ids),
            or_(
                LinkedAccount.lease_until.is_(None),
                LinkedAccount.lease_until < now,
                LinkedAccount.lease_owner == self.owner,
            ),
        )
        return self._lease_where(free, len(account_ids), now)

    def _lease_where(self, where: Any, limit: int, now: datetime) -> list[int]:
        with self.app.db.session() as session:
            candidates = (
                select(LinkedAccount.id)
                .where(where)
                .order_by(LinkedAccount.next_poll_at, LinkedAccount.id)
                .limit(limit)
            )
            if self.app.db.is_postgres:
                candidates = candidates.with_for_update(skip_locked=True)
            ids = list(session.scalars(candidates))
            if not ids:
                return []
            leased = session.scalars(  # Core, not ORM-enabled: cheaper on every tick
                update(_accounts)
                .where(_accounts.c.id.in_(ids))
                .values(lease_owner=self.owner, lease_until=now + self._lease)
                .returning(_accounts.c.id)
            )
            return sorted(leased)

    def release(self, account_ids: Sequence[int] | None = None, *, keep: Sequence[int] = ()) -> int:
        """Give back our leases (all of them, or those listed, except ``keep``) unpolled."""
        with self.app.db.session() as session:
            stmt = update(LinkedAccount).where(LinkedAccount.lease_owner == self.owner)
            if account_ids is not None:
                stmt = stmt.where(LinkedAccount.id.in_(account_ids))
            if keep:
                stmt = stmt.where(LinkedAccount.id.not_in(keep))
            result = session.execute(
                stmt.values(lease_owner=None, lease_until=None).execution_options(
                    synchronize_session=False
                )
            )
            return rowcount(result)

    def reclaim_dead(self) -> int:
        """Free leases held by worker processes on this host that no longer exist."""
        with self.app.db.session() as session:
            holders = session.scalars(
                select(LinkedAccount.lease_owner)
                .where(LinkedAccount.lease_owner.is_not(None))
                .distinct()
            ).all()
            dead = [h for h in holders if h != self.owner and owner_is_dead(h)]
            if not dead:
                return 0
            result = session.execute(
                update(LinkedAccount)
                .where(LinkedAccount.lease_owner.in_(dead))
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
            return rowcount(result)

    # -- one poll ----------------------------------------------------------

    def poll(self, account_id: int) -> PollOutcome:
        """Poll one account we hold the lease of, and record the result. Never raises for
        anything the account or its platform did."""
        started = clock.now()
        with self.app.db.reader() as session:
            row = session.execute(_ACCOUNT, {"account_id": account_id}).one_or_none()
        if row is None:
            return PollOutcome(account_id, "?", "?", "?", "failed", error="no such account")
        account, user_name = row
        base = PollOutcome(account.id, user_name, account.platform, account.handle, "failed")
        if account.lease_owner != self.owner:
            return _replace(
                base, status="lease_lost", error="the account is leased to another worker"
            )
        if account.credentials is None:  # unlinked after it was claimed
            return _replace(base, status="lease_lost", error="the account was unlinked")
        reach: AccountSession | None = None

        def secrets() -> list[str]:
            return reach.secrets if reach is not None else []

        try:
            connector = self.app.connector(account.platform)
            credentials = self.app.box.open(account.credentials)
            reach = connector.session(
                credentials,
                host=account.host,
                save=self._saver(account),
                until=time.monotonic() + self._poll_budget,
            )
            state = PollState.from_json(
                account.poll_state,
                linked_at=account.linked_at,
                baseline_done=account.baseline_done,
            )
            ref = AccountRef(
                id=account.id,
                platform_user_id=account.platform_user_id,
                handle=account.handle,
                linked_at=account.linked_at,
                session=reach,
                host=account.host,
            )
            result = connector.poll(ref, state)
            if not isinstance(result, PollResult):
                raise PlatformError(f"connector returned {type(result).__name__}, not PollResult")
            # What was sent and read is the session's to say, not the connector's.
            result = replace(result, requests=reach.requests, rate_limit=reach.rate_limit)
        except AuthExpired as exc:
            return self._record_failure(account, base, "auth_expired", redact(str(exc), secrets()))
        except RateLimited as exc:
            if exc.scope == "app":
                self.budget.pause(account.platform, exc.retry_at)
            return self._record_failure(
                account, base, "rate_limited", redact(str(exc), secrets()), retry_at=exc.retry_at
            )
        except (ConnectorError, ConnectorUnavailable, UnknownPlatform) as exc:
            return self._record_failure(account, base, "failed", redact(str(exc), secrets()))
        except SecretKeyError as exc:
            return self._record_failure(account, base, "failed", str(exc))
        except Exception as exc:  # a connector bug must not stop the worker
            message = redact(f"connector error: {type(exc).__name__}: {exc}", secrets())
            log.error("polling account %s (%s) failed: %s", account.id, account.platform, message)
            if log.isEnabledFor(logging.DEBUG):  # the traceback may quote the token too
                trace = "".join(traceback.format_exception(exc))
                log.debug("traceback:\n%s", redact(trace, secrets()))
            return self._record_failure(account, base, "failed", message)
        try:
            return self._record_success(account, base, result, started)
        except LeaseLost:
            return _replace(
                base, status="lease_lost", error="lease expired before the results were stored"
            )
        except Exception as exc:  # the database refused what the poll found: none of it stays
            message = redact(f"storing the poll's results failed: {describe_error(exc)}", secrets())
            log.error(
                "%s account %s of %s: %s", account.platform, account.handle, base.user, message
            )
            return self._record_failure(account, base, "failed", message, logged=True)

    def _respect_budget(
        self, account: LinkedAccount, result: PollResult, next_at: datetime
    ) -> datetime:
        """Slow a platform before it refuses: when the answers of a successful poll say its
        rate-limit window is all but spent, nothing more is asked until the window resets
        (the platform pauses, for an app-wide budget; the account waits, for its own)."""
        limits = result.rate_limit
        if limits is None or not limits.nearly_spent(RATE_LIMIT_RESERVE):
            return next_at
        now = clock.now()
        reset = clamp_retry_at(limits.wait_until(now), now)
        scope = self.app.connector(account.platform).rate_limit_scope
        if scope == "app":
            self.budget.pause(account.platform, reset)
        return max(next_at, reset)

    @property
    def _poll_budget(self) -> float:
        """Seconds one poll may take in all: well inside the lease, so that nobody else can
        take the account over (and poll it, or renew its credentials) while it runs."""
        return self.app.settings.worker.lease_seconds * POLL_BUDGET_OF_LEASE

    def _saver(self, account: LinkedAccount) -> SaveCredentials:
        """How a poll's session stores renewed credentials: sealed, in a transaction of their
        own committed before the session uses them, only while this worker holds the lease
        and nobody else changed the credentials since they were read (their version)."""
        version = [account.credentials_version]

        def save(old: Credentials, new: Credentials) -> None:
            box = self.app.box
            with self.app.db.session() as session:
                written = rowcount(
                    session.execute(
                        update(_accounts)
                        .where(
                            _accounts.c.id == account.id,
                            _accounts.c.lease_owner == self.owner,
                            _accounts.c.credentials_version == version[0],
                        )
                        .values(
                            credentials=box.seal(new),
                            key_id=box.key_id,
                            credentials_version=version[0] + 1,
                        )
                    )
                )
            if written != 1:
                log.error(
                    "%s account %s: renewed credentials could not be stored (its lease or its "
                    "credentials changed meanwhile); if the platform's refresh tokens are single "
                    "use, the account must be linked again",
                    account.platform,
                    account.handle,
                )
                raise CredentialsNotSaved(
                    "the renewed credentials could not be stored: the account was taken over "
                    "or linked again meanwhile"
                )
            version[0] += 1

        return save

    def _record_success(
        self, account: LinkedAccount, base: PollOutcome, result: PollResult, started: datetime
    ) -> PollOutcome:
        settings = self.app.connector_settings(account.platform)
        first_poll = not account.baseline_done
        with self.app.db.session() as session:
            ingested = None
            if result.events:
                ingested = ingest_poll(
                    session,
                    user_id=account.user_id,
                    account_id=account.id,
                    events=result.events,
                    linked_at=account.linked_at,
                    first_poll=first_poll,
                )
            new_likes = ingested.stored if ingested else 0
            interval = next_interval(account.interval_seconds, new_likes, settings)
            wait = (
                result.next_poll_hint.total_seconds()
                if result.next_poll_hint is not None
                else interval
            )
            next_at = clock.now() + self._jitter(wait)
            next_at = self._respect_budget(account, result, next_at)
            self._finish(
                session,
                account.id,
                poll_state=result.state.to_json(),
                baseline_done=True,
                last_poll_at=started,
                last_success_at=started,
                failures=0,
                last_error=None,
                interval_seconds=interval,
                next_poll_at=next_at,
            )
        if account.failures:  # it went down (logged then): say once that it is back
            log.info(
                "%s account %s of %s is back after %d failed poll(s)",
                account.platform,
                account.handle,
                base.user,
                account.failures,
            )
        if first_poll:
            status: Status = "baseline"
        elif result.not_modified:
            status = "not_modified"
        else:
            status = "ok"
        return _replace(
            base,
            status=status,
            stored=ingested.stored if ingested else 0,
            duplicates=ingested.duplicates if ingested else 0,
            baseline=ingested.baseline if ingested else 0,
            requests=result.requests,
            error=None,
            next_poll_at=next_at,
        )

    def _record_failure(
        self,
        account: LinkedAccount,
        base: PollOutcome,
        status: Status,
        message: str,
        *,
        retry_at: datetime | None = None,
        logged: bool = False,
    ) -> PollOutcome:
        """Record a poll that found nothing to store: relink, wait for a rate limit, or back
        off; ``logged`` when the caller has logged the failure already."""
        worker = self.app.settings.worker
        now = clock.now()
        values: dict[str, Any] = {"last_poll_at": now, "last_error": message[:2000]}
        if status == "auth_expired":
            values.update(status=AccountStatus.AUTH_EXPIRED.value, next_poll_at=None)
            if account.status == AccountStatus.ACTIVE.value:
                log.warning(
                    "%s account %s of %s needs relinking: %s",
                    account.platform,
                    account.handle,
                    base.user,
                    message,
                )
        elif status == "rate_limited":
            values["next_poll_at"] = max(retry_at or now, now) + self._jitter(1)
        else:
            failures = account.failures + 1
            wait = failure_backoff(
                failures, worker.failure_backoff_seconds, worker.max_backoff_seconds
            )
            values.update(failures=failures, next_poll_at=now + self._jitter(wait))
            if account.failures == 0 and not logged:  # log once when it goes down
                log.warning(
                    "%s account %s of %s failing: %s",
                    account.platform,
                    account.handle,
                    base.user,
                    message,
                )
        try:
            with self.app.db.session() as session:
                self._finish(session, account.id, **values)
        except LeaseLost:
            return _replace(base, status="lease_lost", error=message)
        return _replace(base, status=status, error=message, next_poll_at=values.get("next_poll_at"))

    def _finish(self, session: Session, account_id: int, **values: Any) -> None:
        """Write the account's new state and release our lease, if it is still ours."""
        result = session.execute(
            _FINISH,
            {
                "finish_account_id": account_id,
                "finish_owner": self.owner,
                "lease_owner": None,
                "lease_until": None,
                **values,
            },
        )
        if rowcount(result) != 1:
            raise LeaseLost(account_id)

    # -- `trickle poll` ----------------------------------------------------

    def poll_now(
        self,
        *,
        user: str | None = None,
        platform: str | None = None,
        progress: Progress | None = None,
    ) -> list[PollOutcome]:
        """Poll the matching active accounts now, whatever their schedule, as the worker
        polls: in a pool of ``[worker] threads``, at most ``max_concurrency`` per platform at
        once, and a platform paused by an app-wide rate limit is not asked again in this run
        (its remaining accounts are ``rate_limited``, without a request). One account's
        failure never stops the others. Outcomes come in account id order; ``progress(done,
        total)`` is called from this thread before the first poll and after each one."""
        with self.app.db.reader() as session:
            stmt = (
                select(LinkedAccount.id, LinkedAccount.platform, LinkedAccount.handle, User.name)
                .join(User, User.id == LinkedAccount.user_id)
                .where(LinkedAccount.status == AccountStatus.ACTIVE.value)
                .order_by(LinkedAccount.id)
            )
            if user is not None:
                stmt = stmt.where(User.name == user)
            if platform is not None:
                stmt = stmt.where(LinkedAccount.platform == platform)
            targets = [Target(*row) for row in session.execute(stmt)]
        worker = Worker(self.app, poller=self)
        try:
            return worker.poll_accounts(targets, progress=progress)
        finally:
            worker.close()


def _replace(outcome: PollOutcome, **changes: Any) -> PollOutcome:
    return replace(outcome, **changes)


def describe_error(exc: BaseException) -> str:
    """``Type: message``, one line and short, for an error of the database or of trickle's own
    code: the driver's error rather than SQLAlchemy's wrapper, which quotes the statement and
    every parameter."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"[:500]


# ---------------------------------------------------------------------------
# The worker loop


class Worker:
    """A pool of poll threads fed by :meth:`tick`, which the scheduler calls every few seconds,
    and, while accounts are waiting, by the polls themselves as they finish; or, for
    ``trickle poll``, by :meth:`poll_accounts` with a list of accounts."""

    def __init__(
        self,
        app: App,
        *,
        threads: int | None = None,
        owner: str | None = None,
        poller: Poller | None = None,
    ) -> None:
        self.app = app
        self.poller = poller or Poller(app, owner=owner)
        self.threads = threads or app.settings.worker.threads
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="trickle-poll")
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._claiming = threading.Lock()  # held by a tick while it claims and hands out
        self._idle = threading.Condition(self._lock)
        self._running: set[int] = set()  # accounts whose poll has started and not ended
        self._backlog: set[str] = set()  # platforms whose last claim filled every free slot
        # A finished poll refills the pool itself (no waiting for the next tick) once this
        # many slots are free, so a backlog drains at the pool's pace, in few claims.
        self._refill_at = max(1, self.threads // 8)
        self.stats: Counter[str] = Counter()
        self.polls: Counter[tuple[str, str]] = Counter()
        """Polls finished, by (platform, result)."""
        self.poll_seconds: dict[str, list[float]] = {}
        """Per platform: [seconds spent polling, polls timed]."""
        # What the last summary had reported, so the next one tells only what came after.
        self._summarized: Counter[str] = Counter()
        self._summary_at = time.monotonic()
        self._pauses_summarized = self.poller.budget.pauses

    @property
    def owner(self) -> str:
        """This worker's lease owner name."""
        return self.poller.owner

    def in_flight(self) -> int:
        """Polls running or queued right now."""
        with self._lock:
            return sum(self._in_flight.values())

    def tick(self) -> int:
        """Claim as many due accounts as there are free slots, per platform, and start them."""
        with self._claiming:
            if self._stopping.is_set():
                return 0
            return self._claim_and_start()

    def poll_until_idle(self, timeout: float = 60.0) -> bool:
        """Poll every account that is due, and those that fall due meanwhile, until none is
        left to claim and none is running; False if ``timeout`` seconds passed first.

        ``tick()`` starting nothing does not mean nothing is due: it starts nothing when the
        pool's threads are busy, and a poll that ends claims more itself (the refill) just
        after the pool looked idle. So this waits for the pool to drain and then, holding the
        claim lock so that no refill slips in, claims again with every thread free: only
        when that starts nothing is the work done. Accounts of a paused platform wait for
        its reset, as they do in a running worker."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.drain(max(0.0, deadline - time.monotonic())):
                return False
            with self._claiming:
                if self._stopping.is_set():
                    return True
                if self.in_flight():
                    continue  # a refill started polls after the drain: wait for them too
                if not self._claim_and_start():
                    return True

    def _refill(self) -> None:
        """After a poll: if there is a backlog and enough free slots, claim more right away
        (unless a tick is claiming already)."""
        with self._lock:
            free = self.threads - sum(self._in_flight.values())
            if not self._backlog or free < self._refill_at or self._stopping.is_set():
                return
        if self._claiming.acquire(blocking=False):
            try:
                if not self._stopping.is_set():
                    self._claim_and_start()
            except Exception:
                log.exception("claiming more accounts failed; the next tick tries again")
            finally:
                self._claiming.release()

    def _free_slots(self, platform: str) -> int:
        """Polls of ``platform`` that may start now: the pool's free threads, within the
        platform's ``max_concurrency``."""
        cap = self.app.connector_settings(platform).max_concurrency
        with self._lock:
            return min(
                self.threads - sum(self._in_flight.values()), cap - self._in_flight[platform]
            )

    def _claim_and_start(self) -> int:
        now = clock.now()
        started = 0
        for platform in self.app.registry.names():
            if self.poller.budget.paused_until(platform, now) is not None:
                continue
            free = min(self._free_slots(platform), self.app.settings.worker.claim_batch)
            if free <= 0:
                continue
            try:
                ids = self.poller.claim_due(platform, free)
            except Exception:
                log.exception("claiming %s accounts failed; trying again next tick", platform)
                continue
            with self._lock:
                if len(ids) == free:
                    self._backlog.add(platform)  # maybe more are due
                else:
                    self._backlog.discard(platform)
            for account_id in ids:
                self._start(platform, account_id, self._poll_claimed)
                started += 1
        return started

    def _start(
        self, platform: str, account_id: int, poll: Callable[[int, str], PollOutcome | None]
    ) -> Future[PollOutcome | None]:
        """Hand one poll to the pool; it counts as in flight for its platform until it ends."""
        with self._lock:
            self._in_flight[platform] += 1
        future = self._executor.submit(self._run, account_id, platform, poll)
        future.add_done_callback(partial(self._forget_if_cancelled, platform))
        return future

    def _forget_if_cancelled(self, platform: str, future: Future[PollOutcome | None]) -> None:
        """A queued poll cancelled by :meth:`shutdown` never runs: it is no longer in flight
        (its lease is given back with the others)."""
        if future.cancelled():
            with self._lock:
                self.stats["abandoned"] += 1
                self._in_flight[platform] -= 1
                self._idle.notify_all()

    def _poll_claimed(self, account_id: int, platform: str) -> PollOutcome | None:
        """Poll an account a tick claimed, unless its platform was paused by an app-wide rate
        limit while the poll waited for a thread: then give it back unpolled (None)."""
        if self.poller.budget.paused_until(platform, clock.now()) is not None:
            self.poller.release([account_id])
            return None
        return self.poller.poll(account_id)

    def _run(
        self, account_id: int, platform: str, poll: Callable[[int, str], PollOutcome | None]
    ) -> PollOutcome | None:
        """A poll thread's task: run ``poll``, count its outcome, keep any error to itself."""
        counts: Counter[str] = Counter()
        outcome = None
        try:
            with self._lock:
                if self._stopping.is_set():
                    abandon = True
                else:
                    abandon = False
                    self._running.add(account_id)
            if abandon:
                self.poller.release([account_id])
                counts["abandoned"] += 1
                return None
            began = time.monotonic()
            outcome = poll(account_id, platform)
            took = time.monotonic() - began
            if outcome is None:
                counts["deferred"] += 1
            else:
                with self._lock:
                    self.polls[(platform, outcome.status)] += 1
                    timed = self.poll_seconds.setdefault(platform, [0.0, 0])
                    timed[0] += took
                    timed[1] += 1
                counts[outcome.status] += 1
                counts["stored"] += outcome.stored
                counts["requests"] += outcome.requests
                log.debug(
                    "polled %s/%s: %s, %d new",
                    outcome.platform,
                    outcome.handle,
                    outcome.status,
                    outcome.stored,
                )
        except Exception:
            # A poll records its own failures; only the database failing even at that (or
            # before the poll could read the account) ends here. The lease expires and the
            # account is polled again, from its old cursor.
            log.exception("polling account %s failed and could not be recorded", account_id)
            counts["errors"] += 1
        finally:
            with self._lock:  # threads finish together: no lost counts
                self.stats.update(counts)
                self._in_flight[platform] -= 1
                self._running.discard(account_id)
                self._idle.notify_all()
        self._refill()
        return outcome

    def counters(self) -> dict[str, Any]:
        """What this worker has done since it started, as plain JSON (its heartbeat carries
        it to ``/metrics``): polls by platform and result, seconds spent polling and polls
        timed per platform, flattrs stored, app-wide rate-limit pauses per platform."""
        with self._lock:
            polls: dict[str, dict[str, int]] = {}
            for (platform, result), count in sorted(self.polls.items()):
                polls.setdefault(platform, {})[result] = count
            return {
                "polls": polls,
                "poll_seconds": {
                    platform: {"sum": round(timed[0], 6), "count": int(timed[1])}
                    for platform, timed in sorted(self.poll_seconds.items())
                },
                "stored": self.stats["stored"],
                "rate_limit_pauses": dict(sorted(self.poller.budget.pauses_by_platform.items())),
            }

    # -- `trickle poll` ----------------------------------------------------

    def poll_accounts(
        self, targets: Sequence[Target], *, progress: Progress | None = None
    ) -> list[PollOutcome]:
        """Poll each of ``targets`` once, whatever its schedule, as many at once as the pool
        and each platform's ``max_concurrency`` allow; outcomes in the order of ``targets``.
        See :meth:`Poller.poll_now`."""
        queues: dict[str, deque[Target]] = {}
        for target in targets:
            queues.setdefault(target.platform, deque()).append(target)
        outcomes: dict[int, PollOutcome] = {}
        running: dict[Future[PollOutcome | None], Target] = {}
        if progress is not None:
            progress(0, len(targets))
        while queues or running:
            for platform, queue in list(queues.items()):
                for _ in range(self._free_slots(platform)):
                    if not queue:
                        break
                    target = queue.popleft()
                    poll = partial(self._poll_target, target)
                    running[self._start(platform, target.account_id, poll)] = target
                if not queue:
                    del queues[platform]
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                target = running.pop(future)
                outcome = future.result()
                outcomes[target.account_id] = outcome or target.outcome(
                    "failed", error="not polled: the poll was cancelled"
                )
                if progress is not None:
                    progress(len(outcomes), len(targets))
        return [outcomes[target.account_id] for target in targets]

    def _poll_target(self, target: Target, account_id: int, platform: str) -> PollOutcome:
        """One account of :meth:`poll_accounts`: reported ``rate_limited`` without a request
        while its platform is paused, ``lease_lost`` if a worker holds it, else leased and
        polled; any error stays with this account."""
        until = self.poller.budget.paused_until(platform, clock.now())
        if until is not None:
            return target.outcome(
                "rate_limited",
                error=f"{platform} is paused by an app-wide rate limit until {iso_utc(until)}",
                next_poll_at=until,
            )
        try:
            if not self.poller.claim_accounts([account_id]):
                return target.outcome(
                    "lease_lost", error="a worker is polling this account right now"
                )
            return self.poller.poll(account_id)
        except Exception as exc:  # the database, even recording the failure: report, go on
            message = f"polling failed: {describe_error(exc)}"
            log.error("%s account %s of %s: %s", platform, target.handle, target.user, message)
            try:
                self.poller.release([account_id])
            except Exception:  # the database is gone: the lease expires on its own
                log.debug("giving back the lease of account %s failed too", account_id)
            return target.outcome("failed", error=message)

    def close(self) -> None:
        """Stop the pool once its polls have ended (the end of a :meth:`poll_accounts` run,
        which holds no lease afterwards; a worker fed by ticks stops with :meth:`shutdown`)."""
        self._stopping.set()
        self._executor.shutdown(wait=True)

    # -- the worker's life ---------------------------------------------------

    def log_summary(self) -> None:
        """Log one INFO line on what the pool did since the last summary: polls by result,
        new flattrs, failures, rate-limit pauses. The scheduler's ``summary`` job calls it
        every ``[worker] summary_seconds``, so a busy worker is seen at work at the default
        log level, and an idle one is seen alive."""
        now = time.monotonic()
        with self._lock:
            counts = self.stats - self._summarized
            self._summarized = Counter(self.stats)
            running = sum(self._in_flight.values())
        seconds, self._summary_at = now - self._summary_at, now
        pauses = self.poller.budget.pauses - self._pauses_summarized
        self._pauses_summarized += pauses
        results = sorted(((counts[s], s) for s in RESULTS if counts[s]), key=lambda r: -r[0])
        by_result = ", ".join(f"{n} {status}" for n, status in results)
        log.info(
            "worker %s, last %.0f s: %d poll(s)%s, %d new flattr(s), %d failure(s), "
            "%d rate-limit pause(s); %d poll(s) running",
            self.owner,
            seconds,
            sum(n for n, _ in results),
            f" ({by_result})" if by_result else "",
            counts["stored"],
            counts["failed"] + counts["auth_expired"] + counts["errors"],
            pauses,
            running,
        )

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until no poll is running; False if ``timeout`` passed first."""
        with self._lock:
            return self._idle.wait_for(lambda: sum(self._in_flight.values()) == 0, timeout)

    def shutdown(self, grace: float | None = None, *, abandon_running: bool = False) -> bool:
        """Stop claiming, let running polls finish for up to ``grace`` seconds, and give back
        the leases of polls that never started (nothing is lost). Returns whether every poll
        finished within the grace.

        A poll still running after the grace keeps its lease: it records its result (and
        frees the lease) when it ends, and no other worker polls that account meanwhile.
        With ``abandon_running`` (``trickle run``, which then exits without waiting for
        them) its lease is given back too: should it still end before the process does, it
        finds the lease gone and stores nothing, and what it fetched was never committed, so
        the next poll of the account fetches it again."""
        self._stopping.set()
        with self._claiming:  # a tick claiming right now hands its accounts over first
            pass
        grace = self.app.settings.worker.shutdown_grace_seconds if grace is None else grace
        finished = self.drain(grace)
        self._executor.shutdown(wait=finished, cancel_futures=True)
        with self._lock:
            running = sorted(self._running)
        released = self.poller.release(keep=() if abandon_running else running)
        if finished:
            how = "all polls finished"
        elif abandon_running:
            how = f"{len(running)} poll(s) still running after {grace:g} s abandoned"
        else:
            how = f"{len(running)} poll(s) still running after {grace:g} s keep their lease"
        log.info("worker %s stopped (%s); released %d lease(s)", self.owner, how, released)
        return finished
