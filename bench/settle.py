"""Benchmark: settle one month of 100,000 users x 30 flattrs on SQLite and PostgreSQL.

    python bench/settle.py                          # 100,000 users, both databases
    python bench/settle.py --users 2000 --slice 500 --repeat 1   # a smoke test in seconds

For each database the bench builds the data once with set-based SQL through the
engine (users, budgets, a funded wallet per user, creators some of whom have
claimed their identity, FLATTRS flattrs per user in one month), then, REPEAT
times, on a fresh copy of it (a file copy on SQLite, ``CREATE DATABASE ...
TEMPLATE`` on PostgreSQL), runs in its own subprocess:

* the **floor**: a bare ``GROUP BY user_id`` scan of the month's flattrs plus a
  raw DBAPI ``executemany`` inserting one row per share into a scratch table
  (one transaction);
* the **settlement**: ``Settlement(db, SettleOptions(fee_bps=...)).settle(month,
  force=True)``, plan and post, end to end;

and prints wall time, the subprocess's peak RSS, the ratio settlement / floor
of that run, and the result of ``check_ledger``. Then, on a SLICE-user copy,
it compares a naive per-user ORM loop with the real settlement of the same
slice (and checks that both wrote the same shares and ledger entries).

PostgreSQL is reached through ``--pg-url`` (default ``$TRICKLE_BENCH_POSTGRES_URL``,
then ``$TRICKLE_TEST_POSTGRES_URL``); the bench creates its own databases
``trickle_bench_<pid>_*`` there and drops them at the end. Peak RSS is the
Python process's own (``ru_maxrss``); PostgreSQL's server memory is not in it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    bindparam,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url

from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.invariants import check_ledger
from trickle.core.ledger import AccountKind, ensure_account, funds_of
from trickle.core.models import (
    Budget,
    Creator,
    Flattr,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    RunStatus,
    SettlementRun,
    SettlementUser,
    Share,
    ShareState,
    User,
    UTCDateTime,
)
from trickle.core.money import fee_of, split_evenly, split_rank_key
from trickle.core.periods import Period
from trickle.core.schema import upgrade
from trickle.core.settlement import Settlement, SettleOptions

PERIOD = Period(2026, 10)
CURRENCY = "EUR"
FLOOR_TABLE = "bench_floor_shares"
FLOOR_CHUNK = 10_000


# ---------------------------------------------------------------------------
# Building the data (set-based SQL through the engine; no ORM).


def _budget_sql(n: str) -> str:
    return f"(300 + ({n} * 37) % 1200)"


def build(engine: Engine, users: int, flattrs: int) -> dict[str, int]:
    """Fill a migrated, empty database; returns row counts."""
    start, end = PERIOD.start, PERIOD.end
    t0 = start - timedelta(days=40)
    creators = max(users // 2, 1)
    month_seconds = int((end - start).total_seconds())
    helper = MetaData()
    seq = Table("bench_seq", helper, Column("n", BigInteger, primary_key=True))
    ks = Table(
        "bench_k",
        helper,
        Column("k", Integer, primary_key=True),
        Column("ts", UTCDateTime),
    )
    times = {
        "t0": t0,
        "tmid": start + timedelta(days=12),
        "tafter": end + timedelta(days=3),
    }

    def analyze(*tables: str) -> None:
        # Fresh tables have no statistics: without them PostgreSQL nests loops over the
        # joins below (what autovacuum would fix, a minute too late).
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"ANALYZE {', '.join(tables)}"))

    def run(sql: str, **params: Any) -> None:
        stmt = text(sql)
        binds = [bindparam(k, type_=UTCDateTime()) for k in params if k in times]
        if binds:
            stmt = stmt.bindparams(*binds)
        connection.execute(stmt, params)

    with engine.begin() as connection:
        helper.create_all(connection)
        top = max(users, creators)
        for lo in range(1, top + 1, 50_000):
            connection.execute(
                seq.insert(), [{"n": n} for n in range(lo, min(lo + 50_000, top + 1))]
            )
        connection.execute(
            ks.insert(),
            [
                {"k": k, "ts": start + timedelta(seconds=k * month_seconds // flattrs + 17)}
                for k in range(flattrs)
            ],
        )
        run(
            "INSERT INTO users (id, name, currency, created_at) "
            "SELECT n, 'user' || n, :cur, :t0 FROM bench_seq WHERE n <= :users",
            cur=CURRENCY,
            t0=t0,
            users=users,
        )
        # One budget each; every 10th user raised it during the month (that one counts),
        # every 25th lowered it after the month ended (that one does not).
        run(
            "INSERT INTO budgets (user_id, amount_minor, effective_at) "
            f"SELECT n, {_budget_sql('n')}, :t0 FROM bench_seq WHERE n <= :users",
            t0=t0,
            users=users,
        )
        run(
            "INSERT INTO budgets (user_id, amount_minor, effective_at) "
            f"SELECT n, {_budget_sql('n')} + 250, :tmid FROM bench_seq "
            "WHERE n <= :users AND n % 10 = 0",
            tmid=times["tmid"],
            users=users,
        )
        run(
            "INSERT INTO budgets (user_id, amount_minor, effective_at) "
            "SELECT n, 100, :tafter FROM bench_seq WHERE n <= :users AND n % 25 = 0",
            tafter=times["tafter"],
            users=users,
        )
        # Wallets, and a deposit per user (every 7th short of the budget, every 97th none).
        run(
            "INSERT INTO ledger_accounts (code, kind, user_id, currency) "
            "VALUES ('deposits:' || :cur, 'deposits', NULL, :cur)",
            cur=CURRENCY,
        )
        run(
            "INSERT INTO ledger_accounts (code, kind, user_id, currency) "
            "SELECT 'wallet:' || n || ':' || :cur, 'wallet', n, :cur "
            "FROM bench_seq WHERE n <= :users",
            cur=CURRENCY,
            users=users,
        )
        run(
            "INSERT INTO ledger_transactions (key, kind, period, user_id, created_at) "
            "SELECT 'deposit:bench-' || n, 'deposit', NULL, n, :t0 FROM bench_seq "
            "WHERE n <= :users AND n % 97 <> 0",
            t0=t0,
            users=users,
        )
        analyze("bench_seq", "bench_k", "users", "ledger_accounts", "ledger_transactions")
        amount = f"CASE WHEN t.user_id % 7 = 0 THEN {_budget_sql('t.user_id')} / 2 ELSE 5000 END"
        run(
            "INSERT INTO ledger_entries (transaction_id, account_id, currency, amount_minor) "
            f"SELECT t.id, a.id, :cur, {amount} FROM ledger_transactions t "
            "JOIN ledger_accounts a ON a.kind = 'wallet' AND a.user_id = t.user_id "
            "AND a.currency = :cur WHERE t.kind = 'deposit' ORDER BY t.id",
            cur=CURRENCY,
        )
        run(
            "INSERT INTO ledger_entries (transaction_id, account_id, currency, amount_minor) "
            f"SELECT t.id, a.id, :cur, -{amount} FROM ledger_transactions t "
            "JOIN ledger_accounts a ON a.kind = 'deposits' AND a.currency = :cur "
            "WHERE t.kind = 'deposit' ORDER BY t.id",
            cur=CURRENCY,
        )
        # Creators: every third one has claimed its identity (is some user's).
        run(
            "INSERT INTO creators (id, platform, platform_id, handle, user_id, claimed_at) "
            "SELECT n, 'github', CAST(n AS VARCHAR(20)), 'creator' || n, "
            "CASE WHEN n % 3 = 0 THEN (n * 7919) % :users + 1 END, "
            "CASE WHEN n % 3 = 0 THEN :t0 END "
            "FROM bench_seq WHERE n <= :creators",
            t0=t0,
            users=users,
            creators=creators,
        )
        analyze("creators")
        # The flattrs, in the order likes arrive: time first, users interleaved.
        run(
            "INSERT INTO flattrs (user_id, account_id, platform, item_id, item_url, creator_id, "
            "liked_at, observed_at, effective_at, period) "
            "SELECT s.n, NULL, 'github', 'item-' || k.k || '-' || s.n, "
            "'https://github.com/creator/' || s.n || '/' || k.k, "
            "(s.n * 31 + k.k * 7919) % :creators + 1, k.ts, k.ts, k.ts, NULL "
            "FROM bench_k k CROSS JOIN bench_seq s WHERE s.n <= :users ORDER BY k.k, s.n",
            users=users,
            creators=creators,
        )
        helper.drop_all(connection)
        if engine.dialect.name == "postgresql":
            # The sequences behind the ids we set explicitly.
            for table in ("users", "creators"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("users", "creators", "flattrs", "ledger_entries")
        }
    if engine.dialect.name == "postgresql":
        # What autovacuum does to a table that has just been loaded.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    # (SQLite: the last connection to close checkpoints the WAL into the file we copy.)
    return counts


# ---------------------------------------------------------------------------
# Databases: one built template per size, fresh copies per measurement.


class Backend(ABC):
    """Creates, copies and drops the bench's databases on one engine kind."""

    name: str

    @abstractmethod
    def new(self, label: str) -> str:
        """The URL of a new, empty database named after ``label``."""

    @abstractmethod
    def copy(self, source: str, label: str) -> str:
        """The URL of a fresh copy of the database at ``source``."""

    @abstractmethod
    def drop(self, url: str) -> None:
        """Remove the database at ``url``."""

    @abstractmethod
    def close(self) -> None:
        """Release what the backend holds."""


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def _path(self, url: str) -> Path:
        return Path(make_url(url).database or "")

    def new(self, label: str) -> str:
        path = self.workdir / f"{label}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"

    def copy(self, source: str, label: str) -> str:
        url = self.new(label)
        shutil.copyfile(self._path(source), self._path(url))
        return url

    def drop(self, url: str) -> None:
        path = self._path(url)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release: the databases are files in the work directory."""


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, server_url: str) -> None:
        self.base = make_url(server_url)
        if self.base.drivername == "postgresql":
            self.base = self.base.set(drivername="postgresql+psycopg")
        self.admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.prefix = f"trickle_bench_{os.getpid()}_"
        self.created: list[str] = []

    def _url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def _exec(self, sql: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(sql))

    def new(self, label: str) -> str:
        name = self.prefix + label
        self._exec(f'DROP DATABASE IF EXISTS "{name}"')
        self._exec(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self._url(name)

    def copy(self, source: str, label: str) -> str:
        name = self.prefix + label
        self._exec(f'DROP DATABASE IF EXISTS "{name}"')
        self._exec(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(source).database}"')
        self.created.append(name)
        return self._url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()

    def server_version(self) -> str:
        with self.admin.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one())


def build_template(backend: Backend, label: str, users: int, flattrs: int) -> tuple[str, float]:
    url = backend.new(label)
    database = Database(url)
    try:
        upgrade(database.engine)
        started = time.perf_counter()
        build(database.engine, users, flattrs)
        return url, time.perf_counter() - started
    finally:
        database.dispose()


# ---------------------------------------------------------------------------
# The measured phases, each run in a subprocess of its own (``--child``).


def _rss_kb() -> int:
    """Peak RSS of this process, KiB.

    Linux's ``ru_maxrss`` survives ``exec``: a child reports at least what the parent had
    when it forked. ``VmHWM`` belongs to the process's own memory map, so use it if there.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def phase_settle(database: Database, fee_bps: int, batch_users: int | None) -> None:
    kwargs = {} if batch_users is None else {"batch_users": batch_users}
    Settlement(database, SettleOptions(fee_bps=fee_bps), **kwargs).settle(PERIOD, force=True)


def _month_bounds(database: Database) -> tuple[Any, Any]:
    start, end = PERIOD.start.replace(tzinfo=None), PERIOD.end.replace(tzinfo=None)
    if database.is_postgres:
        return start, end
    # SQLAlchemy's SQLite storage format for DateTime.
    return (f"{start:%Y-%m-%d %H:%M:%S.%f}", f"{end:%Y-%m-%d %H:%M:%S.%f}")


def phase_floor(database: Database, fee_bps: int, batch_users: int | None) -> None:
    """GROUP BY user over the month's flattrs, then one raw row per share via executemany."""
    marker = "%s" if database.is_postgres else "?"
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cursor.execute(
            f"CREATE TABLE {FLOOR_TABLE} (flattr_id BIGINT, user_id BIGINT, amount_minor BIGINT)"
        )
        raw.commit()
        if not database.is_postgres:
            cursor.execute("BEGIN")  # trickle's SQLite connections autocommit otherwise
        cursor.execute(
            "SELECT user_id, count(*) FROM flattrs "
            f"WHERE effective_at >= {marker} AND effective_at < {marker} GROUP BY user_id",
            _month_bounds(database),
        )
        per_user = cursor.fetchall()

        def rows() -> Iterator[tuple[int, int, int]]:
            serial = 0
            for user_id, n in per_user:
                amount = 1000 // n
                for _ in range(n):
                    serial += 1
                    yield serial, user_id, amount

        sql = f"INSERT INTO {FLOOR_TABLE} VALUES ({marker}, {marker}, {marker})"
        source = rows()
        while chunk := list(islice(source, FLOOR_CHUNK)):
            cursor.executemany(sql, chunk)
        raw.commit()
        cursor.close()
    finally:
        raw.close()


def _budget_at_end(session: Any, user_id: int) -> int:
    """The budget in force at the month's end (none: nothing), as the settlement reads it."""
    budgets = session.scalars(
        select(Budget).where(Budget.user_id == user_id).order_by(Budget.effective_at, Budget.id)
    ).all()
    in_force = [b for b in budgets if b.effective_at < PERIOD.end]
    return in_force[-1].amount_minor if in_force else 0


def _funds_before(session: Any, user_id: int, currency: str) -> int:
    """Available funds as they were before this run paid anyone (what the plan fixes)."""
    funds = funds_of(session, user_id, currency)
    earned = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.kind == "settle",
            LedgerTransaction.period == str(PERIOD),
            LedgerAccount.kind == AccountKind.WALLET.value,
            LedgerAccount.user_id == user_id,
            LedgerAccount.currency == currency,
        )
    )
    return funds.available - int(earned)


def phase_naive(database: Database, fee_bps: int, batch_users: int | None) -> None:
    """What one would write first: the ORM, one user at a time, one commit per user."""
    options = SettleOptions(fee_bps=fee_bps)
    now = clock.now()
    period = str(PERIOD)
    with database.session() as session:
        run = SettlementRun(
            period=period,
            status=RunStatus.POSTING.value,
            fee_bps=options.fee_bps,
            unclaimed_policy=options.unclaimed,
            escrow_days=options.escrow_days,
            forced=True,
            started_at=now,
            planned_at=now,
        )
        session.add(run)
        session.flush()
        run_id = run.id
        ensure_account(session, AccountKind.FEES, CURRENCY)
    with database.reader() as session:
        user_ids = session.scalars(select(User.id).order_by(User.id)).all()
    for user_id in user_ids:
        with database.session() as session:
            user = session.get_one(User, user_id)
            flattrs = session.scalars(
                select(Flattr)
                .where(
                    Flattr.user_id == user_id,
                    Flattr.period.is_(None),
                    Flattr.effective_at < PERIOD.end,
                )
                .order_by(Flattr.id)
            ).all()
            counted = []
            for flattr in flattrs:
                flattr.period = period
                creator = session.get_one(Creator, flattr.creator_id)
                if creator.user_id != user_id:
                    counted.append((flattr, creator))
            if not counted:
                continue
            budget = _budget_at_end(session, user_id)
            funds = _funds_before(session, user_id, user.currency)
            spend = 0 if funds <= 0 else min(budget, funds)
            fee = fee_of(spend, options.fee_bps)
            session.add(
                SettlementUser(
                    run_id=run_id,
                    user_id=user_id,
                    currency=user.currency,
                    flattrs=len(counted),
                    budget_minor=budget,
                    funds_minor=funds,
                    spend_minor=spend,
                    fee_minor=fee,
                    posted=True,
                )
            )
            if spend <= 0:
                continue
            amounts = split_evenly(
                spend - fee, [split_rank_key(PERIOD.index, user_id, f.id) for f, _ in counted]
            )
            txn = LedgerTransaction(
                key=f"settle:{period}:user:{user_id}",
                kind="settle",
                period=period,
                user_id=user_id,
                created_at=now,
            )
            session.add(txn)
            session.flush()
            to_creators: dict[int, int] = {}
            for (flattr, creator), amount in zip(counted, amounts, strict=True):
                reserved = creator.user_id is None
                session.add(
                    Share(
                        run_id=run_id,
                        period=period,
                        flattr_id=flattr.id,
                        user_id=user_id,
                        creator_id=creator.id,
                        recipient_user_id=creator.user_id,
                        currency=user.currency,
                        amount_minor=amount,
                        state=(ShareState.RESERVED if reserved else ShareState.PAID).value,
                        was_reserved=reserved,
                        expires_at=now + timedelta(days=options.escrow_days) if reserved else None,
                    )
                )
                if not reserved and amount > 0:
                    wallet = ensure_account(
                        session, AccountKind.WALLET, user.currency, creator.user_id
                    )
                    to_creators[wallet] = to_creators.get(wallet, 0) + amount
            entries = list(to_creators.items())
            if fee > 0:
                entries.append((ensure_account(session, AccountKind.FEES, user.currency), fee))
            debit = fee + sum(to_creators.values())
            if debit:
                own = ensure_account(session, AccountKind.WALLET, user.currency, user_id)
                entries.append((own, -debit))
            for account_id, amount in entries:
                session.add(
                    LedgerEntry(
                        transaction_id=txn.id,
                        account_id=account_id,
                        currency=user.currency,
                        amount_minor=amount,
                    )
                )
    with database.session() as session:
        session.get_one(SettlementRun, run_id).status = RunStatus.DONE.value


PHASES: dict[str, Callable[[Database, int, int | None], None]] = {
    "settle": phase_settle,
    "floor": phase_floor,
    "naive": phase_naive,
}


def child_main(args: argparse.Namespace) -> int:
    database = Database(args.url)
    with database.reader() as session:
        session.scalar(select(func.count()).select_from(User))  # connect, warm the imports
    base = _rss_kb()
    started, cpu = time.perf_counter(), time.process_time()
    PHASES[args.child](database, args.fee_bps, args.batch_users)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    database.dispose()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_kb": _rss_kb(), "rss_base_kb": base}))
    return 0


@dataclass
class Measure:
    seconds: float
    cpu: float
    rss_kb: int
    rss_base_kb: int


def run_child(phase: str, url: str, args: argparse.Namespace) -> Measure:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        phase,
        "--url",
        url,
        "--fee-bps",
        str(args.fee_bps),
    ]
    if args.batch_users is not None:
        command += ["--batch-users", str(args.batch_users)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the {phase} phase failed on {url}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Measure(result["seconds"], result["cpu"], result["rss_kb"], result["rss_base_kb"])


# ---------------------------------------------------------------------------
# Checks and comparisons (in the parent, not timed).


def ledger_check(url: str) -> str:
    database = Database(url)
    try:
        with database.reader() as session:
            violations = check_ledger(session)
    finally:
        database.dispose()
    if not violations:
        return "sound"
    return "VIOLATED: " + "; ".join(f"{v.rule} ({len(v.rows)} rows)" for v in violations)


def settled_rows(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The month's shares and settle entries, in a form two databases can be compared by."""
    database = Database(url)
    try:
        with database.reader() as session:
            shares = session.execute(
                select(
                    Share.flattr_id,
                    Share.user_id,
                    Share.creator_id,
                    Share.recipient_user_id,
                    Share.amount_minor,
                    Share.state,
                    Share.was_reserved,
                ).order_by(Share.flattr_id)
            ).all()
            entries = session.execute(
                select(LedgerTransaction.key, LedgerAccount.code, LedgerEntry.amount_minor)
                .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
                .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                .where(LedgerTransaction.kind == "settle")
                .order_by(LedgerTransaction.key, LedgerAccount.code)
            ).all()
    finally:
        database.dispose()
    return [tuple(r) for r in shares], [tuple(r) for r in entries]


# ---------------------------------------------------------------------------
# The report.


@dataclass
class Results:
    backend: str
    users: int
    flattrs: int
    build_seconds: float = 0.0
    floors: list[Measure] = field(default_factory=list)
    settles: list[Measure] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    slice_users: int = 0
    slice_settles: list[Measure] = field(default_factory=list)
    naives: list[Measure] = field(default_factory=list)
    naive_ratios: list[float] = field(default_factory=list)
    naive_same: str = ""


def _row(label: str, values: list[float], fmt: str, note: str = "") -> str:
    """One line of the summary: the best (lowest) value, then the spread over the runs."""
    best = format(min(values), fmt)
    spread = f"{format(min(values), fmt)} - {format(max(values), fmt)}"
    return f"  {label:<26}{best:>10}   {spread:<19}{note}".rstrip()


def _mb(kb: int) -> float:
    return kb / 1024


def summary(results: Results) -> list[str]:
    lines = [
        f"== {results.backend}: {results.users:,} users x {results.flattrs} flattrs "
        f"({results.users * results.flattrs:,} events), built in {results.build_seconds:.0f} s",
        f"  {'':<26}{'best':>10}   spread over {len(results.settles)} run(s)",
    ]
    if results.settles:
        base = _mb(min(m.rss_base_kb for m in results.settles))
        lines += [
            _row("settle, wall s", [m.seconds for m in results.settles], ".2f"),
            _row("floor, wall s", [m.seconds for m in results.floors], ".2f"),
            _row("settle / floor", results.ratios, ".2f", "goal <= 3"),
            _row(
                "settle peak RSS, MiB",
                [_mb(m.rss_kb) for m in results.settles],
                ".0f",
                f"goal < 1024 (process before settling: {base:.0f})",
            ),
            _row("floor peak RSS, MiB", [_mb(m.rss_kb) for m in results.floors], ".0f"),
            f"  check_ledger after each run: {', '.join(results.checks)}",
        ]
    if results.naives:
        lines += [
            f"  naive per-user ORM loop on a {results.slice_users:,}-user slice "
            f"({len(results.naives)} run(s)):",
            _row("settle (slice), wall s", [m.seconds for m in results.slice_settles], ".2f"),
            _row("naive loop, wall s", [m.seconds for m in results.naives], ".1f"),
            _row("naive / settle", results.naive_ratios, ".1f"),
            _row("naive peak RSS, MiB", [_mb(m.rss_kb) for m in results.naives], ".0f"),
            "  naive loop wrote the same shares and ledger entries as the settlement: "
            + results.naive_same,
        ]
    return lines


def bench_backend(backend: Backend, args: argparse.Namespace) -> Results:
    results = Results(backend.name, args.users, args.flattrs)
    say = print
    if args.repeat > 0:
        say(f"[{backend.name}] building {args.users:,} users x {args.flattrs} flattrs ...")
        template, results.build_seconds = build_template(backend, "full", args.users, args.flattrs)
        say(f"[{backend.name}] built in {results.build_seconds:.1f} s")
        for i in range(args.repeat):
            url = backend.copy(template, "run")
            floor = run_child("floor", url, args)
            settle = run_child("settle", url, args)
            check = ledger_check(url)
            backend.drop(url)
            ratio = settle.seconds / floor.seconds
            results.floors.append(floor)
            results.settles.append(settle)
            results.ratios.append(ratio)
            results.checks.append(check)
            say(
                f"[{backend.name}] run {i + 1}/{args.repeat}: settle {settle.seconds:.2f} s, "
                f"floor {floor.seconds:.2f} s, ratio {ratio:.2f}, "
                f"settle peak RSS {_mb(settle.rss_kb):.0f} MiB "
                f"(floor {_mb(floor.rss_kb):.0f} MiB), ledger {check}"
            )
        backend.drop(template)
    if args.slice > 0 and args.naive_repeat > 0:
        results.slice_users = args.slice
        say(f"[{backend.name}] building the {args.slice:,}-user slice ...")
        template, _ = build_template(backend, "slice", args.slice, args.flattrs)
        for i in range(args.naive_repeat):
            url = backend.copy(template, "slice_settle")
            settle = run_child("settle", url, args)
            settle_check = ledger_check(url)
            expected = settled_rows(url)
            backend.drop(url)
            url = backend.copy(template, "slice_naive")
            naive = run_child("naive", url, args)
            naive_check = ledger_check(url)
            same = settled_rows(url) == expected
            backend.drop(url)
            ratio = naive.seconds / settle.seconds
            results.slice_settles.append(settle)
            results.naives.append(naive)
            results.naive_ratios.append(ratio)
            results.naive_same = "yes" if same and results.naive_same in ("", "yes") else "NO"
            say(
                f"[{backend.name}] slice {i + 1}/{args.naive_repeat}: settle {settle.seconds:.2f} s"
                f" (ledger {settle_check}), naive loop {naive.seconds:.2f} s "
                f"(ledger {naive_check}), ratio {ratio:.1f}, same result: {'yes' if same else 'NO'}"
            )
        backend.drop(template)
    return results


def machine(pg_version: str | None) -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            memory = f"{int(meminfo.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        memory = "?"
    parts = [
        f"{os.cpu_count()} CPUs",
        f"{memory} RAM",
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
    ]
    if pg_version:
        parts.append(f"PostgreSQL {pg_version}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--flattrs", type=int, default=30, help="flattrs per user in the month")
    parser.add_argument(
        "--slice", type=int, default=10_000, help="users in the naive-loop comparison (0: skip)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="full-size runs per database")
    parser.add_argument("--naive-repeat", type=int, default=2, help="naive-loop comparisons")
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TRICKLE_BENCH_POSTGRES_URL")
        or os.environ.get("TRICKLE_TEST_POSTGRES_URL"),
        help="a PostgreSQL server the bench may create databases on",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the SQLite files go (default: a temp dir)"
    )
    parser.add_argument("--fee-bps", type=int, default=250)
    parser.add_argument("--batch-users", type=int, help="Settlement(batch_users=...) override")
    parser.add_argument("--child", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args)
    # Stopped with a signal: still drop the databases and files made so far.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgresql" in kinds and not args.pg_url:
        parser.error("PostgreSQL needs --pg-url (or TRICKLE_TEST_POSTGRES_URL), or use --db sqlite")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="trickle-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pg_version = None
    all_results = []
    try:
        for kind in kinds:
            backend: Backend
            if kind == "sqlite":
                backend = SQLiteBackend(workdir)
            elif kind == "postgresql":
                backend = PostgresBackend(args.pg_url)
                pg_version = backend.server_version()
            else:
                parser.error(f"unknown database {kind!r}")
            try:
                all_results.append(bench_backend(backend, args))
            finally:
                backend.close()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"machine: {machine(pg_version)}; fee {args.fee_bps} bps; month {PERIOD}")
    for results in all_results:
        print("\n".join(summary(results)))
    print(
        "(floor: GROUP BY user over the month's flattrs + raw executemany of one row per share;"
        " settle / floor is per run, on the same fresh copy; best = lowest)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
