"""The background worker: its scheduler's jobs, settling closed months, and `trickle run`.

The `trickle run` tests start the real command in a subprocess, with a
config file pointing at a SQLite file and a fake GitHub served by this test
process, and stop it with SIGTERM or SIGINT while one of its polls waits at
the fake platform: it must finish that poll, give back every lease and exit 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.interval import IntervalTrigger
from cryptography.fernet import Fernet
from sqlalchemy import select

from trickle import scheduler as scheduler_module
from trickle.app import App
from trickle.config import load_settings
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent
from trickle.core.ingest import store_flattrs
from trickle.core.models import Flattr, LinkedAccount, SettlementRun, User
from trickle.core.money import Money
from trickle.core.schema import upgrade
from trickle.core.users import add_user, fund, get_user
from trickle.heartbeat import worker_beats
from trickle.linking import link_account
from trickle.polling import Worker
from trickle.scheduler import build_scheduler, run_worker, settle_closed_months
from trickle.testing.fakeplatform import FakeResponse, Request, route


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# The scheduler's jobs


def test_build_scheduler_has_its_jobs_due_at_once_and_the_summary_after_an_interval(
    app: App,
) -> None:
    worker = Worker(app, threads=1)
    try:
        before = datetime.now(UTC)
        scheduler = build_scheduler(app, worker)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        settings = app.settings.worker
        assert sorted(jobs) == ["expire", "heartbeat", "poll", "settle", "summary"]
        every = {
            "heartbeat": settings.heartbeat_seconds,
            "poll": settings.tick_seconds,
            "settle": settings.settle_every_seconds,
            "expire": settings.expire_every_seconds,
            "summary": settings.summary_seconds,
        }
        for job_id, job in jobs.items():
            assert isinstance(job.trigger, IntervalTrigger)
            assert job.trigger.interval == timedelta(seconds=every[job_id])
            if job_id == "summary":  # a summary at start would have nothing to say
                assert job.next_run_time >= before + timedelta(seconds=every[job_id])
            else:
                assert job.next_run_time <= datetime.now(UTC)
        assert scheduler.state == STATE_STOPPED
    finally:
        worker.shutdown(grace=0)


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(app, threads=1)

    def broken_tick() -> int:
        raise RuntimeError("the database went away")

    worker.tick = broken_tick  # type: ignore[method-assign]
    try:
        scheduler = build_scheduler(app, worker)
        with caplog.at_level(logging.ERROR, logger="trickle.scheduler"):
            scheduler.get_job("poll").func()  # does not raise
    finally:
        worker.shutdown(grace=0)
    assert "the poll job failed" in caplog.text
    assert "the database went away" in caplog.text


# ---------------------------------------------------------------------------
# Settling closed months


def like(app: App, user: str, item: str, at: datetime) -> None:
    """``user`` liked ``item`` (made by creator 77) at ``at``."""
    event = LikeEvent(
        platform="github",
        item_id=item,
        item_url=f"https://github.com/maker/{item}",
        creator_id="77",
        creator_handle="maker",
        liked_at=at,
        observed_at=at,
    )
    with app.db.session() as session:
        user_id = get_user(session, user).id
        store_flattrs(session, user_id=user_id, account_id=None, events=[event])


def runs(app: App) -> dict[str, str]:
    """Settlement runs: month -> status."""
    with app.db.reader() as session:
        rows = session.execute(select(SettlementRun.period, SettlementRun.status)).all()
        return {period: status for period, status in rows}


def flattr_periods(app: App) -> dict[str, str | None]:
    """Item -> the month its flattr counted in (None while unsettled)."""
    with app.db.reader() as session:
        rows = session.execute(select(Flattr.item_id, Flattr.period)).all()
        return {item: period for item, period in rows}


@pytest.fixture
def likes(app: App) -> App:
    """alice liked things in August, September and October 2026."""
    clock.set(datetime(2026, 7, 1, tzinfo=UTC), frozen=True)
    with app.db.session() as session:
        add_user(session, "alice", Money(300, "EUR"))
        fund(session, "alice", Money(2000, "EUR"), reference="initial")
    like(app, "alice", "sep-1", datetime(2026, 9, 5, tzinfo=UTC))
    like(app, "alice", "aug-1", datetime(2026, 8, 10, tzinfo=UTC))
    like(app, "alice", "aug-2", datetime(2026, 8, 20, tzinfo=UTC))
    like(app, "alice", "oct-1", datetime(2026, 10, 3, tzinfo=UTC))
    return app


def test_settle_closed_months_settles_them_in_order_and_stops_at_the_open_one(
    likes: App,
) -> None:
    clock.set(datetime(2026, 10, 15, 12, tzinfo=UTC), frozen=True)

    outcomes = settle_closed_months(likes)

    assert [(str(o.period), o.status) for o in outcomes] == [
        ("2026-08", "settled"),
        ("2026-09", "settled"),
    ]
    assert outcomes[0].run_id is not None
    assert outcomes[1].run_id is not None
    assert outcomes[0].run_id < outcomes[1].run_id
    assert runs(likes) == {"2026-08": "done", "2026-09": "done"}
    assert flattr_periods(likes) == {
        "aug-1": "2026-08",
        "aug-2": "2026-08",
        "sep-1": "2026-09",
        "oct-1": None,
    }
    assert settle_closed_months(likes) == []


def test_settle_closed_months_waits_for_the_grace_period(likes: App) -> None:
    clock.set(datetime(2026, 10, 1, 6, tzinfo=UTC), frozen=True)  # September's grace runs
    assert [str(o.period) for o in settle_closed_months(likes)] == ["2026-08"]
    assert runs(likes) == {"2026-08": "done"}

    clock.set(datetime(2026, 10, 2, 0, tzinfo=UTC), frozen=True)
    assert [str(o.period) for o in settle_closed_months(likes)] == ["2026-09"]


def test_settle_closed_months_waits_for_accounts_not_polled_since_the_month_ended(
    likes: App,
) -> None:
    with likes.db.session() as session:
        lagging = LinkedAccount(
            user_id=get_user(session, "alice").id,
            platform="github",
            platform_user_id="1001",
            handle="alice",
            credentials=b"sealed",
            status="active",
            linked_at=datetime(2026, 9, 1, tzinfo=UTC),
            poll_state={},
            baseline_done=True,
            next_poll_at=datetime(2026, 10, 16, tzinfo=UTC),
            interval_seconds=300,
            failures=0,
            last_success_at=datetime(2026, 9, 30, 23, tzinfo=UTC),
        )
        session.add(lagging)
        session.flush()
        account_id = lagging.id
    clock.set(datetime(2026, 10, 15, 12, tzinfo=UTC), frozen=True)

    assert [str(o.period) for o in settle_closed_months(likes)] == ["2026-08"]

    with likes.db.session() as session:
        session.get_one(LinkedAccount, account_id).last_success_at = datetime(
            2026, 10, 1, 0, 5, tzinfo=UTC
        )
    assert [str(o.period) for o in settle_closed_months(likes)] == ["2026-09"]


def test_a_signal_landing_inside_the_scheduler_does_not_deadlock(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal handler runs in the main thread wherever it was, possibly inside a lock the
    scheduler takes to stop (the SIGTERM handler used to stop the scheduler itself, and
    `trickle run` then hung for good when SIGTERM landed while APScheduler was handing a job
    to its thread pool). Here SIGTERM lands while the main thread holds such a lock."""
    lock = threading.Lock()
    real_build = scheduler_module.build_scheduler

    def build(app: App, worker: Worker) -> BackgroundScheduler:
        scheduler = real_build(app, worker)
        start, shutdown = scheduler.start, scheduler.shutdown

        def start_then_signal() -> None:
            with lock:
                start()
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):  # the handler runs now, while the lock is held
                    pass

        def shutdown_taking_the_lock(wait: bool = True) -> None:
            assert lock.acquire(timeout=10), "the signal handler tried to stop the scheduler"
            try:
                shutdown(wait=wait)
            finally:
                lock.release()

        scheduler.start = start_then_signal  # type: ignore[method-assign]
        scheduler.shutdown = shutdown_taking_the_lock  # type: ignore[method-assign]
        return scheduler

    monkeypatch.setattr(scheduler_module, "build_scheduler", build)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert run_worker(app) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


# ---------------------------------------------------------------------------
# `trickle run` in a subprocess


class GatedGitHub(FakeGitHub):
    """A fake GitHub whose star lists can be held at a gate; ``waiting`` counts held requests."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting: list[str] = []  # the tokens whose requests are held now

    @route("GET", "/user/starred")
    def get_starred(self, request: Request) -> FakeResponse:
        token = (request.header("Authorization") or "").removeprefix("Bearer ")
        with self.lock:
            self.waiting.append(token)
        try:
            self.gate.wait(timeout=120)
        finally:
            with self.lock:
                self.waiting.remove(token)
        return super().get_starred(request)

    def held_logins(self) -> set[str]:
        """Whose star lists are held at the gate right now."""
        with self.lock:
            return {u.login for u in self.users.values() if u.token in self.waiting}


@pytest.fixture(autouse=True)
def _settings_from_the_config_file_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRICKLE_* setting of the caller's environment changes what the tests configure."""
    for name in list(os.environ):
        if name.startswith("TRICKLE_") and name != "TRICKLE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


WORKER = {
    "threads": 2,
    "tick_seconds": 0.1,
    "lease_seconds": 600,
    "shutdown_grace_seconds": 60,
    "summary_seconds": 0.5,
    "heartbeat_seconds": 0.5,
}


def write_config(
    path: Path, database_url: str, secret_key: str, base_url: str, **worker: object
) -> None:
    """The config file the worker reads: the scene's database, key and fake GitHub, and a
    quick worker (``worker`` overrides keys of its ``[worker]`` table)."""
    path.write_text(
        f"database_url = {json.dumps(database_url)}\n"
        f"secret_key = {json.dumps(secret_key)}\n"
        'log_level = "INFO"\n'
        "[worker]\n"
        + "".join(f"{key} = {json.dumps(value)}\n" for key, value in {**WORKER, **worker}.items())
        + "[connectors.github]\n"
        f"base_url = {json.dumps(base_url)}\n"
        "min_interval_seconds = 1\n"
        "max_interval_seconds = 2\n"
    )


@dataclass
class Scene:
    """A linked database, its config file, and the fake GitHub the worker will poll."""

    config: Path
    app: App
    fake: GatedGitHub
    logins: tuple[str, ...]
    expected: set[tuple[str, str]]
    secret_key: str
    next_repo: int = 1

    def configure(self, **worker: object) -> None:
        """Rewrite the config file with these ``[worker]`` settings."""
        write_config(
            self.config,
            self.app.settings.database_url,
            self.secret_key,
            self.fake.base_url,
            **worker,
        )

    def star_everyone(self) -> dict[str, tuple[str, str]]:
        """Each linked user stars one new repository now; returns login -> that like."""
        made = {}
        for login in self.logins:
            n = self.next_repo
            self.next_repo += 1
            self.fake.star(login, FakeRepo(n, f"project-{n}", "maker", 9000))
            made[login] = (login, str(n))
        self.expected.update(made.values())
        return made

    def stored(self) -> set[tuple[str, str]]:
        with self.app.db.reader() as session:
            rows = session.execute(
                select(User.name, Flattr.item_id).join(User, User.id == Flattr.user_id)
            ).all()
            return {(name, item) for name, item in rows}

    def heartbeat_polls(self) -> int | None:
        """The polls the running worker's heartbeat counts (None: no worker beats)."""
        with self.app.db.reader() as session:
            beats = worker_beats(session)
        if not beats:
            return None
        return sum(sum(r.values()) for r in beats[0].stats.get("polls", {}).values())

    def held_leases(self) -> list[str]:
        with self.app.db.reader() as session:
            return list(
                session.scalars(
                    select(LinkedAccount.lease_owner).where(LinkedAccount.lease_owner.is_not(None))
                )
            )


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    with GatedGitHub() as fake:
        config = tmp_path / "trickle.toml"
        secret_key = Fernet.generate_key().decode()
        write_config(config, f"sqlite:///{tmp_path / 'trickle.db'}", secret_key, fake.base_url)
        app = App(load_settings(config))
        upgrade(app.db.engine)
        logins = ("alice", "bob", "carol")
        old = FakeRepo(999, "old-project", "maker", 9000)
        clock.set(clock.now() - timedelta(hours=1))  # linked an hour ago
        for login in logins:
            fake.add_user(login, token=f"ghp_{login}_secret")
            fake.star(login, old, clock.now() - timedelta(days=30))  # before linking: never paid
            with app.db.session() as session:
                add_user(session, login, Money(500, "EUR"))
            link_account(app, "github", login, Credentials(access_token=f"ghp_{login}_secret"))
        clock.reset()
        try:
            yield Scene(config, app, fake, logins, expected=set(), secret_key=secret_key)
        finally:
            fake.gate.set()
            app.close()


def start_run(scene: Scene, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m trickle --config CONFIG run ARGS`` with its output in ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRICKLE_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "trickle", "--config", str(scene.config), "run", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=scene.config.parent,
            env=env,
        )


SUMMARY = re.compile(r"worker \S+, last \d+ s: \d+ poll\(s\).*?, (\d+) new flattr\(s\)")


def summarised_flattrs(log: Path) -> int:
    """The new flattrs the worker's summary lines in ``log`` told of, all together."""
    return sum(int(n) for n in SUMMARY.findall(log.read_text()))


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a process a failed test left running."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=60)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_trickle_run_polls_and_stops_cleanly_on_a_signal(
    scene: Scene, tmp_path: Path, signum: signal.Signals
) -> None:
    scene.star_everyone()
    log = tmp_path / "run.log"
    process = start_run(scene, log)
    try:
        wait_for(lambda: scene.stored() == scene.expected, "the worker stored the new stars")
        wait_for(
            lambda: summarised_flattrs(log) == len(scene.expected),
            "a summary told of the new flattrs",
        )
        wait_for(
            lambda: (scene.heartbeat_polls() or 0) >= len(scene.logins), "a heartbeat with polls"
        )

        # Hold the next polls at the platform, with a new star for them to bring back.
        scene.fake.gate.clear()
        latest = scene.star_everyone()
        wait_for(scene.fake.held_logins, "a poll is waiting at the platform")
        process.send_signal(signum)
        in_flight = scene.fake.held_logins()
        assert len(scene.held_leases()) >= len(in_flight)
        wait_for(lambda: f"received {signum.name}" in log.read_text(), "the worker heard it")
        scene.fake.gate.set()
        assert process.wait(timeout=90) == 0, log.read_text()
    finally:
        stop(process)

    output = log.read_text()
    assert "Traceback" not in output, output
    assert scene.held_leases() == []
    assert "released" in output
    assert scene.heartbeat_polls() is None  # a worker that stopped cleanly is not missed
    # The polls in flight when the signal came were finished, not dropped half-way.
    assert {latest[login] for login in in_flight} <= scene.stored() <= scene.expected


def test_trickle_run_with_two_processes_stops_both_on_sigterm(scene: Scene, tmp_path: Path) -> None:
    scene.star_everyone()
    log = tmp_path / "run.log"
    parent = start_run(scene, log, "--processes", "2")
    started = re.compile(r"worker [^:\s]+:(\d+):\w+ started")
    workers: set[int] = set()
    try:
        wait_for(
            lambda: len(started.findall(log.read_text())) == 2, "both worker processes started"
        )
        workers = {int(pid) for pid in started.findall(log.read_text())}
        children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        assert workers == {int(pid) for pid in children}
        wait_for(lambda: scene.stored() == scene.expected, "the workers stored the new stars")

        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=90) == 0, log.read_text()
    finally:
        stop(parent)
        for pid in workers:  # a worker left behind by a failed test
            with contextlib.suppress(OSError):
                if "trickle" in Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(pid, signal.SIGKILL)

    output = log.read_text()
    assert output.count("received SIGTERM") == 2, output
    assert output.count("released") == 2, output
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert scene.held_leases() == []
    assert scene.fake.overlaps == []


def test_trickle_run_exits_within_its_grace_while_a_platform_never_answers(
    scene: Scene, tmp_path: Path
) -> None:
    """A poll waiting for a platform that accepted the connection and never answers sits in
    read timeouts with retries for over a minute; `trickle run` gives back its lease after the
    grace and exits, without waiting for it."""
    grace = 2.0
    scene.configure(shutdown_grace_seconds=grace)
    scene.fake.gate.clear()  # it accepts, and answers no list of stars
    scene.star_everyone()
    log = tmp_path / "run.log"
    process = start_run(scene, log)
    try:
        wait_for(lambda: len(scene.fake.held_logins()) == 2, "both poll threads wait")
        assert len(scene.held_leases()) == 2
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=grace + 60)
        took = time.monotonic() - signalled
    finally:
        stop(process)

    output = log.read_text()
    assert status == 0, output
    assert took < grace + 5, f"exited {took:.1f} s after SIGTERM\n{output}"
    assert "received SIGTERM, stopping" in output
    assert "stopped (2 poll(s) still running after 2 s abandoned); released 2 lease(s)" in output
    assert "Traceback" not in output, output
    assert scene.held_leases() == []  # another worker polls them now
    assert scene.stored() == set()  # nothing the abandoned polls had was committed


def gone(pid: int) -> bool:
    """True when process ``pid`` has exited (a zombie nobody reaped yet has, too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_the_workers_of_run_processes_stop_when_their_parent_is_killed(
    scene: Scene, tmp_path: Path
) -> None:
    scene.star_everyone()
    log = tmp_path / "run.log"
    parent = start_run(scene, log, "--processes", "2")
    started = re.compile(r"worker [^:\s]+:(\d+):\w+ started")
    workers: set[int] = set()
    try:
        wait_for(
            lambda: len(started.findall(log.read_text())) == 2, "both worker processes started"
        )
        workers = {int(pid) for pid in started.findall(log.read_text())}
        wait_for(lambda: scene.stored() == scene.expected, "the workers stored the new stars")

        parent.kill()  # SIGKILL: it cannot tell its children anything
        parent.wait(timeout=60)
        wait_for(lambda: all(gone(pid) for pid in workers), "both workers exited", timeout=15)
    finally:
        stop(parent)
        for pid in workers:  # a worker left behind by a failed test
            with contextlib.suppress(OSError):
                if not gone(pid) and "trickle" in Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(pid, signal.SIGKILL)

    output = log.read_text()
    assert output.count("the supervising process is gone, stopping") == 2, output
    assert output.count("stopped (all polls finished); released") == 2, output
    assert "Traceback" not in output, output
    assert scene.held_leases() == []


def test_a_worker_says_at_start_how_many_accounts_its_key_cannot_open(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    from trickle.core.credentials import CredentialBox
    from trickle.scheduler import warn_about_unreadable_accounts

    other = CredentialBox(Fernet.generate_key())
    with app.db.session() as session:
        user = add_user(session, "alice", Money(500, "EUR"))
        for n, box in enumerate((app.box, other, other)):
            session.add(
                LinkedAccount(
                    user_id=user.id,
                    platform="github",
                    platform_user_id=str(n),
                    handle=f"h{n}",
                    credentials=box.seal(Credentials(access_token=f"t{n}")),
                    key_id=box.key_id,
                    status="active",
                    linked_at=clock.now(),
                    poll_state={},
                    baseline_done=False,
                    next_poll_at=clock.now(),
                    interval_seconds=300,
                    failures=0,
                )
            )

    with caplog.at_level(logging.WARNING, logger="trickle"):
        assert warn_about_unreadable_accounts(app) == 2
    assert "2 linked account(s) hold credentials sealed with another key" in caplog.text
    assert other.key_id in caplog.text
