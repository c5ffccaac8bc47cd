"""A worker killed with SIGKILL at random points while it polls loses no like and stores none twice.

Each trial starts a `trickle run` process, waits until it is polling
the fake GitHub, lets it run for a random moment (claiming, waiting at the
platform, committing) and kills it with SIGKILL; between trials users star
more repositories. The next worker takes back the dead worker's leases (same
host, dead pid) or waits for them to expire. At the end one clean poll of
every account must leave exactly the stars made after linking in the
database, each once. The random moments come from a fixed seed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.context import BaseContext
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from trickle import cli
from trickle.app import App
from trickle.config import load_settings
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.models import Flattr, LinkedAccount, User
from trickle.core.money import Money
from trickle.core.schema import upgrade
from trickle.core.users import add_user
from trickle.linking import link_account
from trickle.polling import Poller

SEED = 20261015
ACCOUNTS = 24
SQLITE_TRIALS = 60
POSTGRES_TRIALS = 12


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.01)


@dataclass
class CrashScene:
    """Linked accounts on a fake GitHub, the worker's config, and the stars that must be paid."""

    config: Path
    app: App
    fake: FakeGitHub
    logins: list[str]
    rng: random.Random
    expected: list[tuple[str, str]] = field(default_factory=list)
    next_repo: int = 1000

    def star_some(self) -> None:
        """A few users star a new repository each, now."""
        for login in self.rng.sample(self.logins, self.rng.randint(0, 4)):
            n = self.next_repo
            self.next_repo += 1
            self.fake.star(login, FakeRepo(n, f"project-{n}", f"maker{n % 5}", 7000 + n % 5))
            self.expected.append((login, str(n)))

    def stored(self) -> list[tuple[str, str]]:
        with self.app.db.reader() as session:
            rows = session.execute(
                select(User.name, Flattr.item_id).join(User, User.id == Flattr.user_id)
            ).all()
        return sorted((name, item) for name, item in rows)

    def held_leases(self) -> int:
        with self.app.db.reader() as session:
            owners = session.scalars(
                select(LinkedAccount.lease_owner).where(LinkedAccount.lease_owner.is_not(None))
            )
            return len(list(owners))


@pytest.fixture(autouse=True)
def _settings_from_the_config_file_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRICKLE_* setting of the caller's environment reaches the workers."""
    for name in list(os.environ):
        if name.startswith("TRICKLE_") and name != "TRICKLE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(latency=0.005) as platform:
        yield platform


def make_scene(database_url: str, tmp_path: Path, fake: FakeGitHub) -> CrashScene:
    config = tmp_path / "trickle.toml"
    config.write_text(
        f"database_url = {json.dumps(database_url)}\n"
        f"secret_key = {json.dumps(Fernet.generate_key().decode())}\n"
        'log_level = "WARNING"\n'
        "[worker]\n"
        "threads = 4\n"
        "tick_seconds = 0.05\n"
        "lease_seconds = 3\n"  # short: a dead worker's leases also run out quickly
        "jitter = 0.2\n"
        "[connectors.github]\n"
        f"base_url = {json.dumps(fake.base_url)}\n"
        "min_interval_seconds = 1\n"
        "max_interval_seconds = 2\n"
    )
    app = App(load_settings(config))
    upgrade(app.db.engine)
    rng = random.Random(SEED)
    logins = [f"user{i:02d}" for i in range(ACCOUNTS)]
    clock.set(clock.now() - timedelta(hours=1))  # linked an hour ago
    for login in logins:
        fake.add_user(login, token=f"ghp_{login}_secret")
        for n in rng.sample(range(1, 100), rng.randint(0, 3)):  # before linking: never paid
            fake.star(
                login, FakeRepo(n, f"old-{n}", "maker0", 7000), clock.now() - timedelta(days=n)
            )
        with app.db.session() as session:
            add_user(session, login, Money(500, "EUR"))
        link_account(app, "github", login, Credentials(access_token=f"ghp_{login}_secret"))
    clock.reset()
    return CrashScene(config, app, fake, logins, rng)


def worker_processes() -> BaseContext:
    """Where the workers come from: a fork server that has imported trickle already, so a
    worker starts in milliseconds instead of a second (the trials stay quick on a small
    machine). Each worker is its own process running ``trickle --config ... run``."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["trickle.cli", "trickle.scheduler", "trickle.connectors.github"]
    )
    return context


def kill_at_random_points(scene: CrashScene, trials: int) -> int:
    """Run ``trickle run`` ``trials`` times, each SIGKILLed at a random moment of its polling;
    returns how many were killed holding leases (with polls under way)."""
    context = worker_processes()
    argv = ["--config", str(scene.config), "run"]
    interrupted = 0
    for _ in range(trials):
        scene.star_some()
        requests = scene.fake.total_requests
        worker = context.Process(target=cli.main, args=(argv,), name="trickle-run")
        worker.start()
        try:
            wait_for(
                lambda: scene.fake.total_requests > requests or not worker.is_alive(),  # noqa: B023
                "the worker polls",
            )
            assert worker.is_alive(), f"the worker exited with {worker.exitcode}"
            time.sleep(scene.rng.uniform(0.0, 0.6))  # the random moment of the crash
        finally:
            worker.kill()  # SIGKILL
            worker.join(timeout=60)
        assert worker.exitcode == -signal.SIGKILL
        interrupted += scene.held_leases() > 0
    return interrupted


def assert_every_like_stored_once(scene: CrashScene) -> None:
    poller = Poller(scene.app)
    poller.reclaim_dead()
    outcomes = poller.poll_now()
    assert len(outcomes) == ACCOUNTS
    assert {o.status for o in outcomes} <= {"ok", "not_modified", "baseline"}, outcomes
    stored = scene.stored()
    assert [like for like, n in Counter(stored).items() if n > 1] == []
    assert stored == sorted(scene.expected)
    assert scene.held_leases() == 0


def test_a_worker_killed_at_random_points_loses_and_duplicates_nothing(
    tmp_path: Path, fake: FakeGitHub
) -> None:
    scene = make_scene(f"sqlite:///{tmp_path / 'trickle.db'}", tmp_path, fake)
    try:
        interrupted = kill_at_random_points(scene, SQLITE_TRIALS)
        scene.star_some()
        assert_every_like_stored_once(scene)
        with scene.app.db.reader() as session:
            assert session.scalar(text("PRAGMA integrity_check")) == "ok"
    finally:
        scene.app.close()
    assert interrupted > 0  # some kills did land in the middle of polls


def test_a_worker_killed_at_random_points_on_postgresql(
    postgres_url: str, tmp_path: Path, fake: FakeGitHub
) -> None:
    scene = make_scene(postgres_url, tmp_path, fake)
    try:
        kill_at_random_points(scene, POSTGRES_TRIALS)
        assert_every_like_stored_once(scene)
    finally:
        scene.app.close()
