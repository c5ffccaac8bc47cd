"""A simulated week of one-hour tokens and single-use refresh tokens, with workers killed at random.

Five users link accounts on the made-up OAuth 2 platform (tokens live an hour,
each refresh token can be used once). Real ``trickle run`` processes poll
them while the test moves the simulated clock, shared with the workers, across
a week in steps of minutes; users like things as it goes, and now and then the
platform ends someone's access token early (the 401 path). The week is split
into trials, and every trial ends with its worker killed with SIGKILL; the
next one takes over. The kill moments come from a fixed seed and are of three
kinds:

- **random**: after the trial's last step, at a random moment while the worker
  claims, polls, refreshes and commits;
- **after the save**: the platform holds the first request made with an access
  token a refresh issued, and the worker is killed there: the renewed
  credentials must already be committed (the test checks, from its own
  connection) and must still work for the next worker;
- **in the window**: the platform holds its answer to a refresh it has carried
  out, and the worker is killed there.

The last kind is the one loss no client can prevent: a single-use refresh
token the platform has rotated, in an answer the worker never got to commit,
is gone (the platform holds the only other copy of the new one). After every
kill the test compares what trickle stored with what the platform holds; an
account whose stored refresh token is one rotation behind is a loss *in the
window*, reported as such: the test checks that the rotation came during the
killed worker's life and before the kill, counts it, and has the user link the
account again, as trickle would ask them to. No other loss is allowed: at the
end every refresh the platform issued was saved unless it was counted as lost
in the window, every account works and is active (no refresh was ever
refused), and every like made after linking is stored once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.context import BaseContext
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from trickle.app import App
from trickle.config import load_settings
from trickle.connectors.registry import Registry
from trickle.core.clock import clock, ensure_utc
from trickle.core.credentials import Credentials
from trickle.core.models import AccountStatus, Flattr, LinkedAccount, User
from trickle.core.money import Money
from trickle.core.schema import upgrade
from trickle.core.users import add_user
from trickle.linking import link_account
from trickle.polling import Poller
from trickle.testing.fake_oauth import TOKEN_PATH, FakeOAuth, Phase, Rotation
from trickle.testing.oauth_connector import FakeOAuthConnector
from trickle.testing.worker import SharedClock, run_trickle

SEED = 20261005
USERS = 5
START = datetime(2026, 10, 5, tzinfo=UTC)  # a week inside one month: no settlement runs
CLIENT_SECRET = "week-app-secret-2f9a41"
PLATFORM = FakeOAuthConnector.name
MODES = ("random", "after-save", "random", "in-window", "random", "random")
"""The kill kinds, in turn: a third of the trials hold the worker at a chosen point."""


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.005)


@dataclass
class Loss:
    """A refresh lost in the window: the platform rotated, the worker died before saving."""

    user: str
    trial: int
    mode: str
    rotation: Rotation
    before_kill: float
    """Seconds from the platform's rotation to the SIGKILL (negative: the worker was killed
    with its refresh request on the way, and the platform carried it out after)."""


class Hold:
    """Holds the first request that reaches a phase until the test has killed the worker."""

    def __init__(self, check: Callable[[str], object] | None = None) -> None:
        self.user: str | None = None
        self.checked: object = None
        self.reached = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._check = check

    def __call__(self, user: str) -> None:
        with self._lock:
            if self.user is not None:
                return  # only the first one waits
            self.user = user
        if self._check is not None:
            self.checked = self._check(user)
        self.reached.set()
        self.release.wait(timeout=120)


@dataclass
class Week:
    """The accounts on the fake platform, the workers' config, and what must hold at the end."""

    config: Path
    app: App
    fake: FakeOAuth
    shared: SharedClock
    context: BaseContext
    users: list[str]
    rng: random.Random
    expected: list[tuple[str, str]] = field(default_factory=list)
    relinks: Counter[str] = field(default_factory=Counter)
    losses: list[Loss] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    interrupted: int = 0
    ended_early: int = 0
    steps: int = 0
    checked_after_save: int = 0
    _items: int = 0

    # -- what the users and the platform do ----------------------------------

    def step(self, minutes: int) -> None:
        """Time moves on; a few users like something; rarely an access token ends early."""
        self.shared.advance(timedelta(minutes=minutes))
        self.steps += 1
        for user in self.rng.sample(self.users, self.rng.randint(0, 2)):
            self._items += 1
            item = f"item-{self._items}"
            self.fake.like(user, item, author=f"maker{self._items % 4}")
            self.expected.append((user, item))
        if self.rng.random() < 0.03:
            self.fake.expire_access_tokens(self.rng.choice(self.users))
            self.ended_early += 1

    # -- what trickle stored -------------------------------------------------

    def rows(self) -> list[LinkedAccount]:
        with self.app.db.reader() as session:
            return list(session.scalars(select(LinkedAccount).order_by(LinkedAccount.id)))

    def quiet(self) -> bool:
        """Nothing left to do at this instant: no lease held, no active account due."""
        now = clock.now()
        return all(
            row.lease_owner is None
            and (row.status != AccountStatus.ACTIVE.value or ensure_utc(row.next_poll_at) > now)
            for row in self.rows()
        )

    def stored_credentials(self, user: str) -> Credentials:
        with self.app.db.reader() as session:
            sealed = session.scalars(
                select(LinkedAccount.credentials).where(LinkedAccount.handle == user)
            ).one()
        return self.app.box.open(sealed)

    def stored_likes(self) -> list[tuple[str, str]]:
        with self.app.db.reader() as session:
            rows = session.execute(
                select(User.name, Flattr.item_id).join(User, User.id == Flattr.user_id)
            ).all()
        return sorted((name, item) for name, item in rows)

    def held_leases(self) -> int:
        return sum(row.lease_owner is not None for row in self.rows())

    # -- trials --------------------------------------------------------------

    def trial(self, number: int, mode: str, budget: timedelta) -> None:
        """Start a worker, play up to ``budget`` of simulated time, kill the worker as ``mode``
        says, and account for every refresh it may have lost."""
        hold: Hold | None = None
        if mode == "after-save":
            hold = Hold(check=self.saved_before_first_use)
            self.fake.hook(Phase.FIRST_USE, hold)
        elif mode == "in-window":
            hold = Hold()
            self.fake.hook(Phase.ROTATED, hold)
        argv = ["--config", str(self.config), "run"]
        worker = self.context.Process(
            target=run_trickle, args=(argv, self.shared, [FakeOAuthConnector]), name="trickle-run"
        )
        born = time.monotonic()
        worker.start()
        played = timedelta(0)
        try:
            while played < budget and (hold is None or not hold.reached.is_set()):
                minutes = min(
                    self.rng.choice((5, 10, 15, 20, 25)), -(-budget // timedelta(minutes=1))
                )
                self.step(minutes)
                played += timedelta(minutes=minutes)
                if played >= budget and hold is None:
                    time.sleep(self.rng.uniform(0.0, 0.05))  # the random moment of the kill
                    break
                wait_for(
                    lambda: (
                        (hold is not None and hold.reached.is_set())
                        or not worker.is_alive()
                        or self.quiet()
                    ),
                    f"the worker has polled every due account (trial {number})",
                )
                assert worker.is_alive(), f"the worker exited with {worker.exitcode}"
        finally:
            killed = time.monotonic()
            worker.kill()  # SIGKILL
            worker.join(timeout=60)
            if hold is not None:
                hold.release.set()
                self.fake.hook(Phase.FIRST_USE if mode == "after-save" else Phase.ROTATED, None)
        assert worker.exitcode == -signal.SIGKILL
        self.settle()
        held = hold is not None and hold.reached.is_set()
        self.kills[mode if held or hold is None else f"{mode} (not reached)"] += 1
        self.interrupted += self.held_leases() > 0
        if mode == "after-save" and held:
            assert hold is not None
            assert hold.checked is True, (
                f"trial {number}: the renewed credentials of {hold.user} were not committed "
                "before their first use"
            )
            self.checked_after_save += 1
        held_user = hold.user if hold is not None and mode == "in-window" else None
        self.account_for_losses(number, held_user, born, killed)
        if played < budget:  # the worker stayed down for the rest of the trial
            self.shared.advance(budget - played)

    def settle(self) -> None:
        """Wait until the platform has served all the dead worker sent before it died (a
        request still in a socket buffer is read and carried out after the kill): nothing
        being served, and nothing new arriving, for a tenth of a second."""
        while True:
            wait_for(lambda: self.fake.active == 0, "the platform has served the dead worker")
            seen = self.fake.total_requests
            time.sleep(0.1)
            if self.fake.active == 0 and self.fake.total_requests == seen:
                return

    def saved_before_first_use(self, user: str) -> bool:
        """Run while the platform holds the first request with a refreshed access token: the
        refresh token trickle has committed is the platform's current one."""
        return self.stored_credentials(user).refresh_token == self.fake.current_refresh_token(user)

    def account_for_losses(
        self, number: int, held_user: str | None, born: float, killed: float
    ) -> None:
        """After a kill: an account whose stored refresh token is not the platform's current one
        lost a rotation in the window. Check that it is exactly the last rotation, asked for by
        the worker just killed, count it (as "held" for the account the platform held in the
        window on purpose, else "random"), and relink the account."""
        for user in self.users:
            stored = self.stored_credentials(user)
            if stored.refresh_token == self.fake.current_refresh_token(user):
                continue
            last = [r for r in self.fake.rotations if r.account == user][-1]
            assert last.spent == stored.refresh_token, (
                f"{user}: trickle's stored refresh token is not one rotation behind the platform"
            )
            assert born <= last.received, (
                f"{user}: the lost refresh was not asked for by the worker just killed"
            )
            mode = "held" if user == held_user else "random"
            self.losses.append(Loss(user, number, mode, last, killed - last.monotonic))
            tokens = self.fake.issue(user, "trickle")
            link_account(self.app, PLATFORM, user, tokens.credentials())
            self.relinks[user] += 1

    # -- the end -------------------------------------------------------------

    def assert_nothing_lost(self) -> None:
        """One clean poll, then: every account works and is active, every refresh the platform
        issued was saved unless it was lost in the window, every like is stored once."""
        poller = Poller(self.app)
        poller.reclaim_dead()
        outcomes = poller.poll_now()
        assert len(outcomes) == USERS
        assert {o.status for o in outcomes} <= {"ok", "not_modified"}, outcomes
        lost = Counter(loss.user for loss in self.losses)
        for row in self.rows():
            user = row.handle
            assert row.status == AccountStatus.ACTIVE.value, f"{user} needs relinking"
            assert self.fake.accepts(self.app.box.open(row.credentials)), f"{user} lost"
            saved = row.credentials_version - self.relinks[user]
            issued = self.fake.refreshes[user]
            assert issued == saved + lost[user], (
                f"{user}: the platform issued {issued} refreshes, trickle saved {saved}, "
                f"{lost[user]} lost in the window"
            )
        assert sum(self.fake.refused.values()) == 0, "a refresh was refused: an account was lost"
        stored = self.stored_likes()
        assert [like for like, n in Counter(stored).items() if n > 1] == []
        assert stored == sorted(self.expected)
        assert self.held_leases() == 0


def workers() -> BaseContext:
    """A fork server that has imported trickle already (see tests/test_poll_crash.py)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        [
            "trickle.cli",
            "trickle.scheduler",
            "trickle.testing.worker",
            "trickle.testing.oauth_connector",
        ]
    )
    return context


@pytest.fixture(autouse=True)
def _settings_from_the_config_file_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRICKLE_* setting of the caller's environment reaches the workers."""
    for name in list(os.environ):
        if name.startswith("TRICKLE_") and name != "TRICKLE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth(latency=0.002) as platform:
        platform.register_client("trickle", CLIENT_SECRET)
        yield platform


def make_week(database_url: str, tmp_path: Path, fake: FakeOAuth) -> Week:
    """Five users linked at the start of the week, a worker config on the shared clock."""
    context = workers()
    shared = SharedClock(START, context)
    shared.install()
    config = tmp_path / "trickle.toml"
    config.write_text(
        f"database_url = {json.dumps(database_url)}\n"
        f"secret_key = {json.dumps(Fernet.generate_key().decode())}\n"
        'log_level = "WARNING"\n'
        "[worker]\n"
        "threads = 4\n"
        "tick_seconds = 0.03\n"
        "lease_seconds = 3600\n"  # simulated: longer than any step, so no poll outlives it
        "jitter = 0.2\n"
        f"[connectors.{PLATFORM}]\n"
        f"base_url = {json.dumps(fake.base_url)}\n"
        f"token_url = {json.dumps(fake.base_url + TOKEN_PATH)}\n"
        'client_id = "trickle"\n'
        f"client_secret = {json.dumps(CLIENT_SECRET)}\n"
        "min_interval_seconds = 300\n"
        "max_interval_seconds = 900\n"
    )
    app = App(load_settings(config), registry=Registry.of([FakeOAuthConnector]))
    upgrade(app.db.engine)
    rng = random.Random(SEED)
    users = [f"user{i}" for i in range(USERS)]
    for user in users:
        fake.add_account(user)
        for n in range(rng.randint(0, 3)):  # before linking: never paid
            fake.like(user, f"old-{user}-{n}", at=START - timedelta(days=n + 1))
        with app.db.session() as session:
            add_user(session, user, Money(500, "EUR"))
        link_account(app, PLATFORM, user, fake.issue(user, "trickle").credentials())
    return Week(config, app, fake, shared, context, users, rng)


def play(week: Week, days: int, trials: int) -> None:
    budget = timedelta(days=days) / trials
    for number in range(trials):
        week.trial(number, MODES[number % len(MODES)], budget)
    week.assert_nothing_lost()
    assert clock.now() >= START + timedelta(days=days) - timedelta(minutes=1)


def report(week: Week, what: str) -> str:
    gaps = sorted(loss.before_kill * 1000 for loss in week.losses)
    by_mode = Counter(loss.mode for loss in week.losses)
    return (
        f"{what}: {sum(week.kills.values())} kills {dict(week.kills)}, "
        f"{week.interrupted} with polls under way; {week.steps} steps; "
        f"{sum(week.fake.refreshes.values())} refreshes issued, "
        f"{len(week.losses)} lost in the window {dict(by_mode)} "
        f"(rotation to kill, ms: {', '.join(f'{g:.1f}' for g in gaps)}); "
        f"{week.checked_after_save} kills right after a save checked; "
        f"{week.ended_early} tokens ended early; {len(week.expected)} likes"
    )


def assert_refreshed_as_needed(week: Week, days: int) -> None:
    """A token is renewed when a poll finds it (about to be) expired: at least every two hours
    (an hour's lifetime, plus an interval, plus a step, plus a worker down), and never more
    than once an hour unless the platform ended it early or the account was linked again."""
    for user in week.users:
        refreshes = week.fake.refreshes[user]
        assert days * 24 / 2 <= refreshes <= days * 24 + week.ended_early + week.relinks[user]


def test_a_week_of_refreshes_with_workers_killed_at_random_loses_nothing_else(
    tmp_path: Path, fake: FakeOAuth, capsys: pytest.CaptureFixture[str]
) -> None:
    week = make_week(f"sqlite:///{tmp_path / 'trickle.db'}", tmp_path, fake)
    try:
        play(week, days=7, trials=36)
    finally:
        week.app.close()
    assert_refreshed_as_needed(week, days=7)
    assert week.kills["after-save"] >= 5
    assert week.kills["in-window"] >= 5
    assert len([loss for loss in week.losses if loss.mode == "held"]) == week.kills["in-window"]
    assert week.interrupted > 0
    with capsys.disabled():
        print("\n" + report(week, "SQLite week"))


def test_two_days_of_refreshes_with_workers_killed_on_postgresql(
    postgres_url: str, tmp_path: Path, fake: FakeOAuth, capsys: pytest.CaptureFixture[str]
) -> None:
    week = make_week(postgres_url, tmp_path, fake)
    try:
        play(week, days=2, trials=12)
    finally:
        week.app.close()
    assert_refreshed_as_needed(week, days=2)
    assert week.kills["after-save"] >= 2
    assert week.kills["in-window"] >= 2
    with capsys.disabled():
        print("\n" + report(week, "PostgreSQL two days"))
