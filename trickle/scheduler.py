"""The background worker: APScheduler jobs that poll, settle and expire.

Each ``trickle run`` process runs its own APScheduler ``BackgroundScheduler``
with in-memory jobs (APScheduler 3 cannot share a job store between processes);
everything the processes must agree on goes through the database: leases
for polling, the settlement lock and run rows for settling.

Jobs:

- ``poll`` every ``worker.tick_seconds``: claim due accounts into the poll
  thread pool (per-platform caps, app-wide rate-limit pauses);
- ``settle`` every ``worker.settle_every_seconds``: settle, in order, every
  month that has closed;
- ``expire`` every ``worker.expire_every_seconds``: return reserved shares
  whose escrow ran out.

SIGTERM and SIGINT stop the scheduler, let running polls finish for
``worker.shutdown_grace_seconds`` and give back every lease. The signal
handler itself only writes a byte to a pipe the main thread waits on: a
handler runs in the middle of whatever the main thread was doing, possibly
holding a lock the scheduler needs, so stopping anything from inside it can
deadlock.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from trickle.app import App
from trickle.core.clock import clock
from trickle.core.escrow import expire_reserved
from trickle.core.schema import require_current
from trickle.core.settlement import (
    SettlementBusy,
    SettlementError,
    SettleOutcome,
    closing_of,
    first_open_period,
)
from trickle.polling import Worker

log = logging.getLogger(__name__)


def settle_closed_months(app: App) -> list[SettleOutcome]:
    """Settle every closed month not settled yet, oldest first; stop at the first open one."""
    outcomes: list[SettleOutcome] = []
    settlement = app.settlement()
    while True:
        with app.db.reader() as session:
            period = first_open_period(session)
            if period is None or clock.now() < period.end:
                return outcomes
            closing = closing_of(session, period, app.settle_options.grace_hours)
        if not closing.closed:
            log.info("not settling yet: %s", closing.explain())
            return outcomes
        try:
            outcome = settlement.settle(period)
        except SettlementBusy as exc:
            log.info("%s", exc)
            return outcomes
        except SettlementError as exc:
            log.warning("cannot settle %s: %s", period, exc)
            return outcomes
        outcomes.append(outcome)
        log.info("settled %s", period)


def expire_job(app: App) -> None:
    """Return reserved shares whose escrow ran out."""
    with app.db.session() as session:
        result = expire_reserved(session)
    if result.shares:
        log.info("returned %d expired reservation(s) to their likers", result.shares)


def _guarded(name: str, job: object) -> object:
    def run() -> None:
        try:
            job()  # type: ignore[operator]
        except Exception:
            log.exception("the %s job failed; it runs again at its next time", name)

    run.__name__ = name
    return run


def build_scheduler(app: App, worker: Worker) -> BackgroundScheduler:
    """The scheduler with trickle's three jobs, first runs due at once (not started)."""
    settings = app.settings.worker
    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={"default": JobExecutor(3)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    start = datetime.now(UTC)
    scheduler.add_job(
        _guarded("poll", worker.tick),
        IntervalTrigger(seconds=settings.tick_seconds),
        id="poll",
        next_run_time=start,
    )
    scheduler.add_job(
        _guarded("settle", lambda: settle_closed_months(app)),
        IntervalTrigger(seconds=settings.settle_every_seconds),
        id="settle",
        next_run_time=start,
    )
    scheduler.add_job(
        _guarded("expire", lambda: expire_job(app)),
        IntervalTrigger(seconds=settings.expire_every_seconds),
        id="expire",
        next_run_time=start,
    )
    return scheduler


def run_worker(app: App, *, threads: int | None = None) -> int:
    """Run one worker process until SIGTERM or SIGINT; returns the exit status."""
    require_current(app.db.engine)
    worker = Worker(app, threads=threads)
    reclaimed = worker.poller.reclaim_dead()
    if reclaimed:
        log.info("took back %d lease(s) of worker processes that died on this host", reclaimed)
    scheduler = build_scheduler(app, worker)
    wake_read, wake_write = os.pipe()
    received: list[int] = []
    done = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Nothing that takes a lock: the main thread may hold one right now.
        received.append(signum)
        if not done:
            os.write(wake_write, b"\0")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "worker %s started: %d poll thread(s), connectors: %s",
        worker.owner,
        worker.threads,
        ", ".join(app.registry.names()) or "none",
    )
    try:
        scheduler.start()
        while not received:
            os.read(wake_read, 1)
        log.info("received %s, stopping", signal.Signals(received[0]).name)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        worker.shutdown()
        app.close()
        # A late second signal (a terminal's Ctrl-C plus the supervisor's) is only noted.
        done = True
        os.close(wake_read)
        os.close(wake_write)
    return 0


def run_processes(argv: Sequence[str], processes: int) -> int:
    """Start ``processes`` single-process workers and supervise them: forward SIGTERM/SIGINT,
    return the worst exit status."""
    children = [
        subprocess.Popen([sys.executable, "-m", "trickle", *argv, "--processes", "1"])
        for _ in range(processes)
    ]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    log.info("started %d worker processes: %s", processes, ", ".join(str(c.pid) for c in children))
    statuses = [child.wait() for child in children]
    return max((abs(s) for s in statuses), default=0)
