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
  whose escrow ran out;
- ``summary`` every ``worker.summary_seconds``: one INFO line on what the
  poll pool did in that time;
- ``heartbeat`` every ``worker.heartbeat_seconds``: the worker's row in
  ``worker_heartbeats`` (:mod:`trickle.heartbeat`), with its counters.

SIGTERM and SIGINT stop the scheduler, let running polls and jobs finish for
``worker.shutdown_grace_seconds``, give back every lease (those of polls
still running too) and end the process at once, without waiting for threads
that outlast the grace. The signal handler itself only writes a byte to a
pipe the main thread waits on: a handler runs in the middle of whatever the
main thread was doing, possibly holding a lock the scheduler needs, so
stopping anything from inside it can deadlock. A worker started by ``run
--processes N`` also waits on a pipe only its parent holds open, and stops
the same way when the parent is gone, however it died.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import NoReturn

from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from trickle import heartbeat
from trickle.app import App
from trickle.core.clock import clock
from trickle.core.errors import TrickleError
from trickle.core.escrow import expire_reserved
from trickle.core.schema import require_current
from trickle.core.sealed import key_census
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


def heartbeat_job(app: App, worker: Worker, started_at: datetime) -> None:
    """Record that this worker is alive, with its counters."""
    heartbeat.beat(
        app.db, worker.owner, started_at, app.settings.worker.heartbeat_seconds, worker.counters()
    )


def build_scheduler(app: App, worker: Worker) -> BackgroundScheduler:
    """The scheduler with trickle's jobs (not started): poll, settle, expire and the
    heartbeat first run at once, the summary after its first interval."""
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
    scheduler.add_job(
        _guarded("summary", worker.log_summary),
        IntervalTrigger(seconds=settings.summary_seconds),
        id="summary",
        next_run_time=start + timedelta(seconds=settings.summary_seconds),
    )
    started_at = clock.now()
    scheduler.add_job(
        _guarded("heartbeat", lambda: heartbeat_job(app, worker, started_at)),
        IntervalTrigger(seconds=settings.heartbeat_seconds),
        id="heartbeat",
        next_run_time=start,
    )
    return scheduler


def warn_about_unreadable_accounts(app: App) -> int:
    """Say at start-up how many linked accounts this worker's key cannot open (a worker given
    another key than the others, a lost key file); returns that number."""
    with app.db.reader() as session:
        census = key_census(session)
    key_id = app.box.key_id
    unreadable = census.sealed_with_other_keys(key_id)
    if unreadable:
        log.warning(
            "%d linked account(s) hold credentials sealed with another key than this worker's "
            "(%s; this worker's is %s): their polls fail until every worker has the key they "
            "were sealed with, or they are linked again",
            unreadable,
            census.describe_other_keys(key_id),
            key_id,
        )
    return unreadable


def run_worker(
    app: App, *, threads: int | None = None, parent_fd: int | None = None, web: bool = False
) -> int:
    """Run one worker process until SIGTERM or SIGINT, or until ``parent_fd`` (the read end
    of a pipe only the supervising process holds open) reaches its end; returns the exit
    status. Threads still running past the shutdown grace are left running: ``trickle run``
    then ends the process with :func:`end_process`. With ``web``, the web side is served
    in the same process (``[web]``) until the worker stops."""
    require_current(app.db.engine)
    server = None
    if web:
        from trickle.web.serve import web_server

        server = web_server(app).start()
    if parent_fd is not None:
        try:
            os.fstat(parent_fd)
        except OSError:
            raise TrickleError(f"--parent-fd {parent_fd} is not an open file descriptor") from None
    warn_about_unreadable_accounts(app)
    worker = Worker(app, threads=threads)
    reclaimed = worker.poller.reclaim_dead()
    if reclaimed:
        log.info("took back %d lease(s) of worker processes that died on this host", reclaimed)
    scheduler = build_scheduler(app, worker)
    wake_read, wake_write = os.pipe()
    watched = [wake_read] if parent_fd is None else [wake_read, parent_fd]
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
        reason = None
        while reason is None:
            ready, _, _ = select.select(watched, [], [])
            if wake_read in ready:
                os.read(wake_read, 1)
            if received:
                reason = f"received {signal.Signals(received[0]).name}"
            elif parent_fd in ready:  # its end of file: the parent closed it, or died
                reason = "the supervising process is gone"
        log.info("%s, stopping", reason)
    finally:
        if server is not None:
            server.stop()
        _stop(app, scheduler, worker)
        # A late second signal (a terminal's Ctrl-C plus the supervisor's) is only noted.
        done = True
        os.close(wake_read)
        os.close(wake_write)
    return 0


def _stop(app: App, scheduler: BackgroundScheduler, worker: Worker) -> None:
    """Stop scheduling, give running polls and jobs the shutdown grace, give back every
    lease, and return at the end of the grace at the latest."""
    grace = app.settings.worker.shutdown_grace_seconds
    deadline = time.monotonic() + grace
    jobs = None
    if scheduler.running:  # stops scheduling at once, then waits for the jobs running
        jobs = threading.Thread(target=scheduler.shutdown, name="trickle-stop-jobs", daemon=True)
        jobs.start()
    worker.shutdown(grace, abandon_running=True)
    try:
        heartbeat.stopped(app.db, worker.owner)
    except Exception:
        log.warning("could not remove this worker's heartbeat; it is forgotten in a day")
    if jobs is not None:
        jobs.join(max(0.0, deadline - time.monotonic()))
        if jobs.is_alive():
            log.warning(
                "a scheduled job is still running after the %g s grace: not waiting for it "
                "(a settlement resumes where it stopped on the next run)",
                grace,
            )
    app.close()


def end_process(status: int) -> NoReturn:
    """End ``trickle run``'s process with ``status`` now. :func:`run_worker` has given back
    every lease and waited the grace; what may still run is a poll abandoned at a platform
    that does not answer (read timeouts with retries can take minutes) or a job past the
    grace, and Python would wait for those threads before exiting. Whatever they would
    still write is refused (their leases are gone) or resumed by the next run."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def run_processes(argv: Sequence[str], processes: int) -> int:
    """Start ``processes`` single-process workers and supervise them: forward SIGTERM/SIGINT,
    return the worst exit status. Each child watches the read end of a pipe whose write end
    only this process holds: when this process is gone, even killed, the kernel closes it and
    every child sees the end of the pipe and stops."""
    lifeline, held = os.pipe()  # neither end is inherited, except as pass_fds says
    try:
        command = [sys.executable, "-m", "trickle", *argv, "--processes", "1"]
        children = [
            subprocess.Popen([*command, "--parent-fd", str(lifeline)], pass_fds=(lifeline,))
            for _ in range(processes)
        ]
        os.close(lifeline)

        def forward(signum: int, _frame: FrameType | None) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        log.info(
            "started %d worker processes: %s", processes, ", ".join(str(c.pid) for c in children)
        )
        statuses = [child.wait() for child in children]
    finally:
        os.close(held)
    return max((abs(s) for s in statuses), default=0)
