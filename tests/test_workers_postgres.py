"""Four `trickle run` processes polling 2,000 accounts on one PostgreSQL.

The workers share nothing but the database: each claims due accounts with
``SELECT ... FOR UPDATE SKIP LOCKED`` into its own lease. The fake GitHub
logs every moment two requests for one account are open at once; the test
asserts it never happened, and that every star made after linking, including
the ones made while the workers run, is stored exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, insert, select

from trickle.app import App
from trickle.config import Settings, WorkerSettings
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.models import Flattr, LinkedAccount, User
from trickle.core.schema import upgrade
from trickle.polling import Poller
from trickle.testing.fakeplatform import FakeResponse, Request, route

ACCOUNTS = 2000
WORKERS = 4
SEED = 20261015


def wait_for(condition: Callable[[], object], what: str, timeout: float) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.2)


def repo(n: int) -> FakeRepo:
    return FakeRepo(n, f"project-{n}", f"maker{n % 50}", 50_000 + n % 50)


def make_settings(database_url: str, base_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SecretStr(Fernet.generate_key().decode()),
        secret_key_file=tmp_path / "unused.key",
        worker=WorkerSettings(
            threads=8,
            tick_seconds=0.1,
            claim_batch=50,
            lease_seconds=900,  # far longer than any poll: legitimate polls never overlap
            shutdown_grace_seconds=60,
            jitter=0.1,
        ),
        connectors={
            "github": ConnectorSettings(
                base_url=base_url, min_interval_seconds=1, max_interval_seconds=4
            )
        },
    )


def write_config(settings: Settings, path: Path) -> Path:
    assert settings.secret_key is not None
    worker = settings.worker
    github = settings.connectors["github"]
    lines = [
        f"database_url = {json.dumps(settings.database_url)}",
        f"secret_key = {json.dumps(settings.secret_key.get_secret_value())}",
        "[worker]",
        *(f"{k} = {v}" for k, v in worker.model_dump().items()),
        "[connectors.github]",
        f"base_url = {json.dumps(github.base_url)}",
        f"min_interval_seconds = {github.min_interval_seconds}",
        f"max_interval_seconds = {github.max_interval_seconds}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def link_many(app: App, fake: FakeGitHub, count: int, rng: random.Random) -> list[str]:
    """``count`` users, each with one linked GitHub account (linked an hour ago, due now),
    some of them with stars from before the link."""
    linked_at = clock.now() - timedelta(hours=1)
    logins = [f"user{i:04d}" for i in range(count)]
    for i, login in enumerate(logins):
        fake.add_user(login, token=f"ghp_{login}_secret", user_id=100_000 + i)
        if rng.random() < 0.25:
            for n in rng.sample(range(1, 500), 2):
                fake.star(login, repo(n), linked_at - timedelta(days=rng.randint(1, 300)))
    with app.db.session() as session:
        session.execute(
            insert(User),
            [{"name": login, "currency": "EUR", "created_at": linked_at} for login in logins],
        )
        user_ids = dict(session.execute(select(User.name, User.id)).all())
        session.execute(
            insert(LinkedAccount),
            [
                {
                    "user_id": user_ids[login],
                    "platform": "github",
                    "platform_user_id": str(fake.users[login].id),
                    "handle": login,
                    "credentials": app.box.seal(Credentials(access_token=fake.users[login].token)),
                    "status": "active",
                    "linked_at": linked_at,
                    "poll_state": {},
                    "baseline_done": False,
                    "next_poll_at": linked_at,
                    "interval_seconds": 1,
                    "failures": 0,
                }
                for login in logins
            ],
        )
    return logins


def stored_count(app: App) -> int:
    with app.db.reader() as session:
        return session.scalar(select(func.count()).select_from(Flattr)) or 0


def stored_likes(app: App) -> list[tuple[str, str]]:
    with app.db.reader() as session:
        rows = session.execute(
            select(User.name, Flattr.item_id).join(User, User.id == Flattr.user_id)
        ).all()
    return sorted((name, item) for name, item in rows)


def lease_owners(app: App) -> set[str]:
    with app.db.reader() as session:
        owners = session.scalars(
            select(LinkedAccount.lease_owner)
            .where(LinkedAccount.lease_owner.is_not(None))
            .distinct()
        )
        return set(owners)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(latency=0.01) as platform:
        yield platform


def test_four_workers_never_poll_an_account_twice_at_once_and_store_each_like_once(
    postgres_url: str, tmp_path: Path, fake: FakeGitHub
) -> None:
    rng = random.Random(SEED)
    settings = make_settings(postgres_url, fake.base_url, tmp_path)
    app = App(settings)
    workers: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"worker-{i}.log" for i in range(WORKERS)]
    try:
        upgrade(app.db.engine)
        logins = link_many(app, fake, ACCOUNTS, rng)
        config = write_config(settings, tmp_path / "trickle.toml")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRICKLE_")}
        for log in logs:
            with log.open("wb") as out:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "trickle", "--config", str(config), "run"],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        cwd=tmp_path,
                        env=env,
                    )
                )

        owners_seen: set[str] = set()

        def running() -> bool:
            owners_seen.update(lease_owners(app))
            assert all(w.poll() is None for w in workers), "a worker died"
            return True

        wait_for(
            lambda: running() and all("started" in log.read_text() for log in logs),
            "the workers started",
            timeout=300,
        )
        # While the workers poll, users keep starring: a few hundred stars at a time.
        expected: set[tuple[str, str]] = set()
        next_repo = 1000
        for _ in range(12):
            for login in rng.sample(logins, 250):
                fake.star(login, repo(next_repo))
                expected.add((login, str(next_repo)))
                next_repo += 1
            running()
            time.sleep(0.5)  # users star in bursts; the workers poll in between

        wait_for(
            lambda: running() and stored_count(app) >= len(expected),
            f"the workers stored all {len(expected)} stars",
            timeout=900,
        )
        assert all(w.poll() is None for w in workers), "a worker died"
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        statuses = [worker.wait(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=60)
        app_state = (stored_likes(app), lease_owners(app))
        app.close()

    outputs = [log.read_text() for log in logs]
    print(
        f"{ACCOUNTS} accounts, {WORKERS} workers: {len(expected)} stars stored, "
        f"{fake.total_requests} requests, {len(owners_seen)} lease owners seen"
    )
    assert statuses == [0] * WORKERS, outputs
    assert not any("Traceback" in output for output in outputs), outputs
    likes, held = app_state
    assert fake.overlaps == []
    assert len(likes) == len(set(likes))
    assert set(likes) == expected
    assert held == set()
    # Every worker took part: four different lease owners were seen while they ran.
    assert len({owner.split(":")[1] for owner in owners_seen}) == WORKERS


class GatedGitHub(FakeGitHub):
    """A fake GitHub whose star lists wait at a gate; ``arrived`` counts who is waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.arrived = threading.Semaphore(0)

    @route("GET", "/user/starred")
    def get_starred(self, request: Request) -> FakeResponse:
        self.arrived.release()
        self.gate.wait(timeout=120)
        return super().get_starred(request)


def test_the_overlap_log_catches_two_workers_polling_one_account(
    postgres_url: str, tmp_path: Path
) -> None:
    """The check above can fail: a lease that runs out mid-poll lets a second worker in."""
    with GatedGitHub() as gated:
        app = App(make_settings(postgres_url, gated.base_url, tmp_path))
        try:
            upgrade(app.db.engine)
            (login,) = link_many(app, gated, 1, random.Random(SEED))
            with app.db.reader() as session:
                account_id = session.scalars(select(LinkedAccount.id)).one()
            first, second = Poller(app), Poller(app)
            assert first.claim_due("github", 10) == [account_id]
            slow = threading.Thread(target=first.poll, args=(account_id,))
            slow.start()
            assert gated.arrived.acquire(timeout=60)

            clock.advance(timedelta(seconds=app.settings.worker.lease_seconds + 1))
            assert second.claim_due("github", 10) == [account_id]
            fast = threading.Thread(target=second.poll, args=(account_id,))
            fast.start()
            assert gated.arrived.acquire(timeout=60)
            gated.gate.set()
            slow.join(timeout=60)
            fast.join(timeout=60)
        finally:
            gated.gate.set()
            app.close()
    assert gated.overlaps == [(f"Bearer {gated.users[login].token}", "/user/starred")]
