"""Benchmark: one polling worker against a fake GitHub with 50 ms latency and 5,000 accounts.

    python bench/poll.py                                  # 5,000 accounts, 32 and 64 threads
    python bench/poll.py --accounts 500 --changed 50 --repeat 1 --ingest-events 2000  # smoke

The fake GitHub (``trickle.connectors.github.fake``) runs in a process of its
own, so its CPU does not compete with the worker's GIL; every answer waits
LATENCY seconds before it is sent, like a platform's round trip. The worker
is the real ``trickle.polling.Worker`` with THREADS poll threads, on a SQLite
file (or ``--db postgresql``), driven by ``tick()`` calls as the scheduler
drives it, only every TICK_MS milliseconds instead of every
``worker.tick_seconds`` (a worker starts at most THREADS polls per tick, so
at the default 2 s a tick it could not get anywhere near the bound; see
bench/README.md). ACCOUNTS users each link one GitHub account (bulk-inserted
rows, credentials sealed with ``app.box.seal``), and a first round of polls
records every account's baseline, so everything measured after it is an
incremental poll. Then, REPEAT times for each thread count:

* **unchanged**: every account falls due and nothing changed on the platform.
  Prints polls per second against the bound THREADS / LATENCY and their ratio
  (goal >= 0.7), the worker process's CPU time per poll
  (``time.process_time()``: all threads, the tick loop included) and the share
  of a core it used, and the requests the fake saw per account (goal: exactly
  1, a ``304``);
* **changed**: for each K in ``--k``, CHANGED accounts get K new stars and
  fall due; prints the requests per account against ``ceil((K + 1) / page
  size)`` (the pages up to and including the first one that holds a known
  star) and the flattrs stored per account (goal K a run).

Last, on SQLite, REPEAT times, **ingest**: INGEST_EVENTS likes in polls of
``--ingest-batch`` (one transaction per poll, as the worker stores them)
through ``trickle.core.ingest.ingest_poll`` into an empty database, against a
raw ``sqlite3`` ``executemany`` of the same flattr rows (built before the clock
starts) into a scratch copy of the ``flattrs`` table made from its own DDL in
the same file (same columns, constraints and indexes, ``ON CONFLICT DO
NOTHING``, same pragmas, one transaction per poll too). Prints both rates,
their ratio (goal >= 0.5), and how long the column types alone take to bind
the same rows (work the raw floor does not do).

Best first, then the spread over the runs.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url

from trickle.app import App
from trickle.config import Settings, WorkerSettings
from trickle.connectors.github import GitHubConnector
from trickle.connectors.registry import Registry
from trickle.connectors.settings import ConnectorSettings
from trickle.core.credentials import Credentials
from trickle.core.db import Database
from trickle.core.events import LikeEvent
from trickle.core.ingest import ingest_poll
from trickle.core.models import AccountStatus, Creator, Flattr, LinkedAccount, User
from trickle.core.schema import upgrade
from trickle.polling import Worker

PLATFORM = "github"
STATUSES = (
    "ok",
    "not_modified",
    "baseline",
    "auth_expired",
    "rate_limited",
    "failed",
    "lease_lost",
    "errors",
    "abandoned",
)
OWNERS = 500  # distinct creators the fake's repositories belong to
OLD_STARS = 3  # stars each account made before it was linked (its baseline)


# ---------------------------------------------------------------------------
# The fake GitHub, in a process of its own, steered through a pipe.


def _repo(index: int) -> Any:
    from trickle.connectors.github.fake import FakeRepo

    owner = index % OWNERS
    return FakeRepo(
        id=1_000_000 + index,
        name=f"project-{index}",
        owner_login=f"maker{owner}",
        owner_id=9_000_000 + owner,
    )


def serve_fake(conn: Connection, latency: float) -> None:
    """The fake platform process: HTTP on 127.0.0.1, and the bench's commands on ``conn``."""
    from trickle.connectors.github.fake import FakeGitHub

    fake = FakeGitHub(latency=latency).start()
    next_repo: dict[str, int] = {}  # per login: the next repository it has not starred
    conn.send(fake.base_url)
    while True:
        command, argument = conn.recv()
        if command == "users":
            linked_at: datetime = argument["linked_at"]
            for login, token, user_id in argument["users"]:
                fake.add_user(login, token, user_id)
                old = [
                    (_repo(i), linked_at - timedelta(days=1, minutes=i)) for i in range(OLD_STARS)
                ]
                fake.star_many(login, old)
                next_repo[login] = OLD_STARS
            conn.send(len(fake.users))
        elif command == "star":  # {login: k}: k new stars each, made now
            now = datetime.now(UTC)
            for login, k in argument.items():
                first = next_repo[login]
                fake.star_many(
                    login,
                    ((_repo(first + j), now + timedelta(milliseconds=j)) for j in range(k)),
                )
                next_repo[login] = first + k
            conn.send(sum(argument.values()))
        elif command == "reset":
            with fake.lock:
                fake.requests.clear()
                fake.total_requests = 0
                fake.overlaps.clear()
            conn.send(time.process_time())
        elif command == "counts":
            with fake.lock:
                conn.send(
                    {
                        "requests": dict(fake.requests),
                        "total": fake.total_requests,
                        "overlaps": len(fake.overlaps),
                        "cpu": time.process_time(),
                    }
                )
        elif command == "stop":
            fake.stop()
            conn.send(None)
            return


class FakeProcess:
    """The parent's handle on the fake platform process."""

    def __init__(self, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=serve_fake, args=(child, latency), name="fake-github", daemon=True
        )
        self._process.start()
        self.base_url: str = self._conn.recv()

    def call(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def close(self) -> None:
        try:
            self.call("stop")
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()


# ---------------------------------------------------------------------------
# The trickle side: database, accounts, worker.


def login_of(i: int) -> str:
    return f"user{i:06d}"


def token_of(i: int) -> str:
    return f"ghp_bench{i:06d}"


def build_app(url: str, base_url: str, threads: int, args: argparse.Namespace) -> App:
    settings = Settings(
        database_url=url,
        secret_key=SecretStr(Fernet.generate_key().decode()),
        worker=WorkerSettings(threads=threads, claim_batch=args.claim_batch),
        connectors={
            PLATFORM: ConnectorSettings(
                base_url=base_url,
                min_interval_seconds=300,
                max_interval_seconds=3600,
                max_concurrency=threads,
                page_size=args.page_size,
                timeout_seconds=30,
            )
        },
    )
    return App(settings, registry=Registry.of([GitHubConnector]))


def add_users(database: Database, accounts: int, linked_at: datetime, sealed: Any) -> None:
    """Users and their linked GitHub accounts, bulk-inserted; ``sealed(i)`` is the credential."""
    with database.session() as session:
        session.execute(
            insert(User),
            [
                {"id": i, "name": login_of(i), "currency": "EUR", "created_at": linked_at}
                for i in range(1, accounts + 1)
            ],
        )
        session.execute(
            insert(LinkedAccount),
            [
                {
                    "id": i,
                    "user_id": i,
                    "platform": PLATFORM,
                    "platform_user_id": str(100_000 + i),
                    "handle": login_of(i),
                    "credentials": sealed(i),
                    "status": AccountStatus.ACTIVE.value,
                    "linked_at": linked_at,
                    "poll_state": {},
                    "baseline_done": False,
                    "next_poll_at": linked_at,
                    "interval_seconds": 300,
                    "failures": 0,
                }
                for i in range(1, accounts + 1)
            ],
        )


def make_due(app: App, account_ids: Sequence[int] | None = None) -> int:
    """These accounts (default: all) fall due now; returns how many accounts are due."""
    now = datetime.now(UTC)
    stmt = update(LinkedAccount).values(next_poll_at=now - timedelta(seconds=1))
    if account_ids is not None:
        stmt = stmt.where(LinkedAccount.id.in_(account_ids))
    with app.db.session() as session:
        session.execute(stmt.execution_options(synchronize_session=False))
        return session.scalar(
            select(func.count()).select_from(LinkedAccount).where(LinkedAccount.next_poll_at <= now)
        )


@dataclass
class Round:
    """One round of polls: every due account polled once."""

    polls: int
    seconds: float
    cpu: float
    fake_cpu: float
    statuses: Counter[str]
    stored: int
    requests: dict[str, int]
    overlaps: int
    ticks: int
    tick_cpu: float  # the tick loop's own thread (claims included)

    @property
    def rate(self) -> float:
        return self.polls / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.polls * 1000

    @property
    def fake_ms(self) -> float:
        return self.fake_cpu / max(1, sum(self.requests.values())) * 1000

    @property
    def tick_ms(self) -> float:
        return self.tick_cpu / self.polls * 1000

    @property
    def busy(self) -> float:
        """Share of one core the worker process used."""
        return self.cpu / self.seconds


def run_round(
    worker: Worker, fake: FakeProcess, expected: int, tick_seconds: float, timeout: float
) -> Round:
    """Tick until ``expected`` polls have finished; measure wall time and this process's CPU."""
    fake_cpu0 = fake.call("reset")
    before = Counter(dict(worker.stats))
    done_before = sum(before[s] for s in STATUSES)
    ticks = 0
    tick_cpu = 0.0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    deadline = wall0 + timeout
    while True:
        thread0 = time.thread_time()
        worker.tick()
        tick_cpu += time.thread_time() - thread0
        ticks += 1
        stats = dict(worker.stats)  # a C-level copy: safe while poll threads update it
        if sum(stats.get(s, 0) for s in STATUSES) - done_before >= expected:
            break
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out: {expected} polls expected, stats {stats}")
        time.sleep(tick_seconds)
    worker.drain(timeout)
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    counts = fake.call("counts")
    diff = Counter(dict(worker.stats)) - before
    return Round(
        polls=sum(diff[s] for s in STATUSES),
        seconds=seconds,
        cpu=cpu,
        fake_cpu=counts["cpu"] - fake_cpu0,
        statuses=Counter({s: diff[s] for s in STATUSES if diff[s]}),
        stored=diff["stored"],
        requests=counts["requests"],
        overlaps=counts["overlaps"],
        ticks=ticks,
        tick_cpu=tick_cpu,
    )


def per_account(round_: Round, ids: Iterable[int]) -> list[int]:
    """Requests the fake saw for each of these accounts (0 when none)."""
    return [round_.requests.get(f"Bearer {token_of(i)}", 0) for i in ids]


def stored_per_account(app: App, ids: Sequence[int]) -> list[int]:
    """Flattrs stored so far for each of these accounts."""
    with app.db.reader() as session:
        found = Counter(
            session.scalars(select(Flattr.account_id).where(Flattr.account_id.in_(ids)))
        )
    return [found[i] for i in ids]


# ---------------------------------------------------------------------------
# The polling measurements


@dataclass
class Changed:
    k: int
    round: Round
    requests: list[int]
    stored: list[int]


@dataclass
class PollResults:
    kind: str
    threads: int
    baseline: Round | None = None
    unchanged: list[Round] = field(default_factory=list)
    unchanged_requests: list[list[int]] = field(default_factory=list)
    changed: list[Changed] = field(default_factory=list)


def describe(counts: Sequence[int]) -> str:
    histogram = Counter(counts)
    return ", ".join(f"{histogram[n]} x {n}" for n in sorted(histogram))


def bench_polls(kind: str, threads: int, workdir: Path, args: argparse.Namespace) -> PollResults:
    results = PollResults(kind, threads)
    label = f"[{kind}, {threads} threads]"
    fake = FakeProcess(args.latency)
    target = new_database(kind, workdir, args)
    app = build_app(target.url, fake.base_url, threads, args)
    worker = None
    try:
        upgrade(app.db.engine)
        linked_at = datetime.now(UTC) - timedelta(days=1)
        box = app.box
        add_users(
            app.db,
            args.accounts,
            linked_at,
            lambda i: box.seal(Credentials(access_token=token_of(i))),
        )
        users = [(login_of(i), token_of(i), 100_000 + i) for i in range(1, args.accounts + 1)]
        fake.call("users", {"linked_at": linked_at, "users": users})
        worker = Worker(app, threads=threads)
        tick = args.tick_ms / 1000
        timeout = max(120.0, args.accounts * args.latency)

        due = make_due(app)
        results.baseline = baseline = run_round(worker, fake, due, tick, timeout)
        print(
            f"{label} baseline: {baseline.polls:,} polls, {baseline.rate:.0f} polls/s, "
            f"{baseline.stored:,} flattrs stored (goal 0), {dict(baseline.statuses)}"
        )
        bound = threads / args.latency
        everyone = range(1, args.accounts + 1)
        for run in range(1, args.repeat + 1):
            due = make_due(app)
            unchanged = run_round(worker, fake, due, tick, timeout)
            requests = per_account(unchanged, everyone)
            results.unchanged.append(unchanged)
            results.unchanged_requests.append(requests)
            print(
                f"{label} run {run}/{args.repeat} unchanged: {unchanged.rate:.0f} polls/s "
                f"(ratio {unchanged.rate / bound:.2f}), {unchanged.cpu_ms:.2f} ms CPU/poll "
                f"({unchanged.tick_ms:.2f} in {unchanged.ticks} ticks), "
                f"{unchanged.busy:.2f} of a core; fake {unchanged.fake_ms:.2f} ms CPU/request; "
                f"requests/account {describe(requests)}; {dict(unchanged.statuses)}"
            )
            for index, k in enumerate(args.k):
                first = index * args.changed
                ids = [(first + j) % args.accounts + 1 for j in range(args.changed)]
                fake.call("star", {login_of(i): k for i in ids})
                due = make_due(app, ids)
                round_ = run_round(worker, fake, due, tick, timeout)
                changed = Changed(k, round_, per_account(round_, ids), stored_per_account(app, ids))
                results.changed.append(changed)
                print(
                    f"{label} run {run}/{args.repeat} k={k}: requests/account "
                    f"{describe(changed.requests)} (goal {math.ceil((k + 1) / args.page_size)}), "
                    f"{round_.stored:,} flattrs stored (goal {k * len(ids):,}), "
                    f"{round_.rate:.0f} polls/s, {round_.cpu_ms:.2f} ms CPU/poll"
                )
    finally:
        if worker is not None:
            worker.shutdown(grace=10)
        app.close()
        fake.close()
        target.cleanup()
    return results


def poll_summary(results: PollResults, args: argparse.Namespace) -> list[str]:
    bound = results.threads / args.latency
    rounds = results.unchanged
    lines = [
        f"== {results.kind}, {results.threads} threads: {args.accounts:,} accounts, "
        f"{args.latency * 1000:g} ms latency, a tick every {args.tick_ms:g} ms, "
        f"page size {args.page_size}"
    ]
    if not rounds:
        return lines
    rates = [r.rate for r in rounds]
    ratios = [r / bound for r in rates]
    everything = [n for requests in results.unchanged_requests for n in requests]
    statuses = sum((r.statuses for r in rounds), Counter[str]())
    lines += [
        "  unchanged accounts",
        "    polls/s           " + spread(rates, ".0f"),
        f"    bound             {bound:.0f}  (threads / latency)",
        "    ratio             " + spread(ratios, ".2f") + "  (goal >= 0.7)",
        "    CPU ms/poll       "
        + spread([r.cpu_ms for r in rounds], ".2f", best=min)
        + "  (worker process: poll threads and tick loop)",
        "    of which ticks    "
        + spread([r.tick_ms for r in rounds], ".2f", best=min)
        + "  (the tick loop's thread: claiming and handing out)",
        "    worker CPU        " + spread([r.busy for r in rounds], ".2f") + " of a core",
        "    fake CPU ms/req   "
        + spread([r.fake_ms for r in rounds], ".2f", best=min)
        + "  (the fake platform's process)",
        f"    requests/account  {describe(everything)}  (goal 1 each; "
        f"mean {statistics.fmean(everything):.3f})",
        "    statuses          "
        + ", ".join(f"{k} {v:,}" for k, v in statuses.items())
        + f"; overlapping requests {sum(r.overlaps for r in rounds)}",
    ]
    best = max(rounds, key=lambda r: r.rate)
    slot_ms = results.threads / best.rate * 1000  # how long a poll held its thread
    lines.append(
        f"    a poll's thread   {slot_ms:.0f} ms busy per poll against {args.latency * 1000:g} ms "
        f"of latency (best run); one core at {best.cpu_ms:.2f} ms CPU/poll would allow "
        f"{1000 / best.cpu_ms:.0f} polls/s"
    )
    if best.rate / bound < 0.7:
        database_wait = (
            "SQLite's write lock"
            if results.kind == "sqlite"
            else "PostgreSQL (its server shares this machine's cores)"
        )
        lines.append(
            f"    limit: {bound:.0f} polls/s would need {bound * best.cpu_ms / 1000:.2f} cores "
            f"of CPU in one process; it used {best.busy:.2f} of one (one GIL); of the "
            f"{slot_ms - args.latency * 1000:.0f} ms a poll took beyond the latency, "
            f"{best.cpu_ms:.1f} were its own CPU and the rest waiting: for the GIL, for "
            f"{database_wait}, for the next tick"
        )
    for k in args.k:
        runs = [c for c in results.changed if c.k == k]
        if not runs:
            continue
        goal = math.ceil((k + 1) / args.page_size)
        requests = [n for c in runs for n in c.requests]
        stored = runs[-1].stored
        lines.append(
            f"  k={k:<4} requests/account {describe(requests)} (goal {goal}); "
            f"flattrs/account min {min(stored)}, max {max(stored)} "
            f"(goal {k * len(runs)} after {len(runs)} run(s)); "
            f"{spread([c.round.rate for c in runs], '.0f')} polls/s, "
            f"{spread([c.round.cpu_ms for c in runs], '.2f', best=min)} ms CPU/poll"
        )
    return lines


# ---------------------------------------------------------------------------
# Ingest: trickle's ingest_poll against a raw executemany of the same rows.


def _ts(value: datetime | None) -> str | None:
    """SQLAlchemy's storage format of a naive UTC DateTime on SQLite."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def ingest_events(total: int, batch: int, accounts: int) -> list[tuple[int, list[LikeEvent]]]:
    """``total`` likes as polls of ``batch`` likes, round robin over ``accounts``, as the GitHub
    connector makes them (creators shared among OWNERS owners)."""
    observed = datetime.now(UTC)
    polls: list[tuple[int, list[LikeEvent]]] = []
    made = 0
    while made < total:
        account = len(polls) % accounts + 1
        events = []
        for index in range(made, min(made + batch, total)):
            owner = index % OWNERS
            events.append(
                LikeEvent(
                    platform=PLATFORM,
                    item_id=str(1_000_000 + index),
                    item_url=f"https://github.com/maker{owner}/project-{index}",
                    creator_id=str(9_000_000 + owner),
                    creator_handle=f"maker{owner}",
                    liked_at=observed - timedelta(seconds=index),
                    observed_at=observed,
                )
            )
        polls.append((account, events))
        made += len(events)
    return polls


def scratch_ddl(path: Path, source: str, target: str) -> list[str]:
    """CREATE statements of table ``source`` and its indexes, renamed to ``target``."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
            "ORDER BY type DESC",  # the table before its indexes
            (source,),
        ).fetchall()
    finally:
        connection.close()
    renamed = []
    for (sql,) in rows:
        sql = re.sub(rf"\b{source}\b", target, sql)
        renamed.append(re.sub(r"\b(ix|uq|pk|fk)_", rf"\1_{target}_", sql))  # constraint names
    return renamed


@dataclass
class Ingest:
    events: int
    polls: int
    trickle_seconds: float
    raw_seconds: float
    bind_seconds: float
    stored: int
    raw_stored: int

    @property
    def trickle_rate(self) -> float:
        return self.events / self.trickle_seconds

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds

    @property
    def ratio(self) -> float:
        return self.trickle_rate / self.raw_rate

    def per_poll_ms(self, seconds: float) -> float:
        return seconds / self.polls * 1000


def bind_seconds(polls: list[tuple[int, list[LikeEvent]]]) -> float:
    """How long the flattrs columns' own types take to bind the rows' timestamps on SQLite
    (UTCDateTime, then SQLite's DATETIME formatting), which the raw floor gets ready-made."""
    dialect = sqlite_dialect.dialect()
    bind = Flattr.__table__.c.liked_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None
    started = time.perf_counter()
    for _, events in polls:
        for e in events:
            bind(e.liked_at)
            bind(e.observed_at)
            bind(e.effective_at)
    return time.perf_counter() - started


def bench_ingest(workdir: Path, args: argparse.Namespace, run: int) -> Ingest:
    path = workdir / f"ingest-{run}.db"
    database = Database(f"sqlite:///{path}")
    linked_at = datetime.now(UTC) - timedelta(days=1)
    polls = ingest_events(args.ingest_events, args.ingest_batch, args.ingest_accounts)
    total = sum(len(events) for _, events in polls)
    try:
        upgrade(database.engine)
        add_users(database, args.ingest_accounts, linked_at, lambda i: b"-")
        # trickle: one transaction per poll, as Poller._record_success stores a poll.
        stored = 0
        started = time.perf_counter()
        for account, events in polls:
            with database.session() as session:
                stored += ingest_poll(
                    session,
                    user_id=account,
                    account_id=account,
                    events=events,
                    linked_at=linked_at,
                    first_poll=False,
                ).stored
        trickle_seconds = time.perf_counter() - started
        with database.engine.connect() as connection:  # trickle's own connection settings
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("synchronous", "cache_size", "foreign_keys", "busy_timeout")
            }
        with database.reader() as session:
            creator_ids = {
                platform_id: creator_id
                for platform_id, creator_id in session.execute(
                    select(Creator.platform_id, Creator.id)
                )
            }
    finally:
        database.dispose()

    # The floor: the same rows, ready before the clock starts, into a scratch copy.
    batches = [
        [
            (
                account,
                account,
                e.platform,
                e.item_id,
                e.item_url,
                creator_ids[e.creator_id],
                _ts(e.liked_at),
                _ts(e.observed_at),
                _ts(e.effective_at),
            )
            for e in events
        ]
        for account, events in polls
    ]
    sql = (
        "INSERT INTO flattrs_raw (user_id, account_id, platform, item_id, item_url, creator_id, "
        "liked_at, observed_at, effective_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (user_id, platform, item_id) DO NOTHING"
    )
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("PRAGMA journal_mode = WAL")  # (kept in the file: trickle set it too)
        for name, value in pragmas.items():
            raw.execute(f"PRAGMA {name} = {int(value)}")
        for ddl in scratch_ddl(path, "flattrs", "flattrs_raw"):
            raw.execute(ddl)
        started = time.perf_counter()
        for rows in batches:
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany(sql, rows)
            raw.execute("COMMIT")
        raw_seconds = time.perf_counter() - started
        raw_stored = raw.execute("SELECT count(*) FROM flattrs_raw").fetchone()[0]
    finally:
        raw.close()
    return Ingest(
        total, len(polls), trickle_seconds, raw_seconds, bind_seconds(polls), stored, raw_stored
    )


def ingest_summary(ingests: list[Ingest], args: argparse.Namespace) -> list[str]:
    first = ingests[0]
    best = max(ingests, key=lambda i: i.ratio)
    lines = [
        f"== ingest (sqlite): {first.events:,} likes in {first.polls:,} polls of "
        f"{args.ingest_batch}, one transaction per poll",
        "    ingest_poll       "
        + spread([i.trickle_rate for i in ingests], ",.0f")
        + f" likes/s  (stored {first.stored:,})",
        "    raw executemany   "
        + spread([i.raw_rate for i in ingests], ",.0f")
        + f" likes/s  (stored {first.raw_stored:,})",
        "    ratio             " + spread([i.ratio for i in ingests], ".2f") + "  (goal >= 0.5)",
        f"    per poll          ingest_poll {best.per_poll_ms(best.trickle_seconds):.2f} ms, "
        f"raw {best.per_poll_ms(best.raw_seconds):.2f} ms; binding the rows' timestamps "
        f"through their column types alone {best.per_poll_ms(best.bind_seconds):.2f} ms",
    ]
    if best.ratio < 0.5:
        lines.append(
            "    limit: per poll, ingest_poll also looks up the likes' creators (and inserts "
            "the new ones: statements the floor does not run) and binds every value through "
            "SQLAlchemy's types; the floor hands sqlite3 finished tuples"
        )
    return lines


# ---------------------------------------------------------------------------
# Databases and the report


@dataclass
class Target:
    url: str
    cleanup: Callable[[], None]


def new_database(kind: str, workdir: Path, args: argparse.Namespace) -> Target:
    if kind == "sqlite":
        path = workdir / "poll.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return Target(f"sqlite:///{path}", lambda: None)
    base = make_url(args.pg_url)
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"trickle_bench_poll_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return Target(base.set(database=name).render_as_string(hide_password=False), drop)


def spread(values: Sequence[float], fmt: str, *, best: Callable[..., float] = max) -> str:
    top = best(values)
    if len(values) == 1:
        return format(top, fmt)
    return f"{format(top, fmt)} (spread {format(min(values), fmt)}-{format(max(values), fmt)})"


def machine() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            memory = f"{int(meminfo.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        memory = "?"
    return (
        f"{os.cpu_count()} CPUs, {memory} RAM, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--threads", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--tick-ms", type=float, default=10.0, help="milliseconds between ticks")
    parser.add_argument("--claim-batch", type=int, default=100, help="worker.claim_batch")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 99, 100, 250])
    parser.add_argument("--changed", type=int, default=200, help="accounts per k")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ingest-events", type=int, default=50_000, help="0: skip")
    parser.add_argument("--ingest-batch", type=int, default=100, help="likes per poll")
    parser.add_argument("--ingest-accounts", type=int, default=500)
    parser.add_argument("--db", default="sqlite", help="sqlite, postgresql or both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TRICKLE_BENCH_POSTGRES_URL")
        or os.environ.get("TRICKLE_TEST_POSTGRES_URL"),
        help="a PostgreSQL server the bench may create a database on",
    )
    parser.add_argument("--workdir", type=Path, help="where SQLite files go (default: temp)")
    args = parser.parse_args(argv)
    args.k = [k for k in args.k if k > 0]
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    for kind in kinds:
        if kind not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {kind!r}")
    if "postgresql" in kinds and not args.pg_url:
        parser.error("PostgreSQL needs --pg-url (or TRICKLE_TEST_POSTGRES_URL)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="trickle-bench-poll-"))
    workdir.mkdir(parents=True, exist_ok=True)
    polled: list[PollResults] = []
    ingests: list[Ingest] = []
    try:
        for kind in kinds:
            for threads in args.threads:
                polled.append(bench_polls(kind, threads, workdir, args))
        if "sqlite" in kinds and args.ingest_events > 0:
            for run in range(1, args.repeat + 1):
                ingest = bench_ingest(workdir, args, run)
                ingests.append(ingest)
                print(
                    f"[ingest] run {run}/{args.repeat}: ingest_poll {ingest.trickle_rate:,.0f} "
                    f"likes/s, raw executemany {ingest.raw_rate:,.0f} likes/s, "
                    f"ratio {ingest.ratio:.2f}"
                )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"machine: {machine()}")
    for results in polled:
        print("\n".join(poll_summary(results, args)))
    if ingests:
        print("\n".join(ingest_summary(ingests, args)))
    print(f"(best first, then the spread over {args.repeat} run(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
