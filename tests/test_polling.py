"""The poller and the worker against a fake GitHub on 127.0.0.1, on SQLite and PostgreSQL.

Each test plays one situation of the worker's life through the real
connector and the real HTTP layer: the baseline, incremental polls, an
unchanged account (304), a revoked token (401), a spent rate limit (403 with
``x-ratelimit-remaining: 0``), a malformed payload, a connector with a bug,
leases taken, lost, released and reclaimed, the adaptive schedule, a
platform-wide rate budget, results the database refuses to store, `trickle
poll`'s pool, the worker's logs and summaries, and shutting the worker down.
Trickle's clock is frozen (the ``now`` fixture) and moved by hand, so every
schedule is exact.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DataError

from trickle import cli, polling
from trickle.app import App
from trickle.config import Settings, WorkerSettings
from trickle.connectors.base import AccountRef, Connector, Identity, PollResult, PollState
from trickle.connectors.errors import PlatformError
from trickle.connectors.github import GitHubConnector
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.connectors.registry import Registry
from trickle.connectors.session import AccountSession
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.models import AccountStatus, Flattr, LinkedAccount, User
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking import link_account
from trickle.polling import (
    Poller,
    PollOutcome,
    RateBudget,
    Worker,
    failure_backoff,
    next_interval,
    with_jitter,
)
from trickle.testing.fakeplatform import FakeResponse, Request, route

MIN_INTERVAL = 300
MAX_INTERVAL = 3600
BACKOFF = 60  # WorkerSettings.failure_backoff_seconds
THIEF = "elsewhere.example:4242:thief000"


# ---------------------------------------------------------------------------
# The scene


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """A fake GitHub on 127.0.0.1."""
    with FakeGitHub() as platform:
        yield platform


AppFactory = Callable[..., App]


@pytest.fixture
def make_app(settings: Settings, fake: FakeGitHub, now: datetime) -> Iterator[AppFactory]:
    """Build Apps on the test database whose connectors all talk to a fake GitHub.

    ``make_app(*connector_classes, platform=fake, worker=WorkerSettings(...), **github)``:
    the connectors default to the GitHub one; ``github`` overrides ConnectorSettings.
    """
    built: list[App] = []

    def build(
        *connectors: type[Connector],
        platform: FakeGitHub | None = None,
        worker: WorkerSettings | None = None,
        **overrides: Any,
    ) -> App:
        classes = connectors or (GitHubConnector,)
        values: dict[str, Any] = {
            "base_url": (platform or fake).base_url,
            "min_interval_seconds": MIN_INTERVAL,
            "max_interval_seconds": MAX_INTERVAL,
            **overrides,
        }
        update_: dict[str, Any] = {
            "connectors": {c.name: ConnectorSettings(**values) for c in classes}
        }
        if worker is not None:
            update_["worker"] = worker
        app = App(settings.model_copy(update=update_), registry=Registry.of(classes))
        built.append(app)
        return app

    yield build
    for app in built:
        app.close()


@pytest.fixture
def gh(make_app: AppFactory) -> App:
    """An App whose only connector is GitHub, pointed at the fake."""
    return make_app()


def repo(n: int) -> FakeRepo:
    """Repository number ``n`` (three makers share them)."""
    return FakeRepo(n, f"project-{n}", f"maker{n % 3}", 9000 + n % 3)


def star(fake: FakeGitHub, login: str, *numbers: int) -> None:
    """``login`` stars these repositories now."""
    for n in numbers:
        fake.star(login, repo(n))


def link(app: App, fake: FakeGitHub, login: str, platform: str = "github") -> int:
    """Create the trickle user ``login`` (if new) and link the GitHub account of that name."""
    with app.db.session() as session:
        if session.scalars(select(User.id).where(User.name == login)).first() is None:
            add_user(session, login, Money(500, "EUR"))
    if login not in fake.users:
        fake.add_user(login, token=f"ghp_{login}_secret")
    token = fake.users[login].token
    return link_account(app, platform, login, Credentials(access_token=token)).account_id


def key(fake: FakeGitHub, login: str) -> str:
    """The fake platform's request-log key of ``login``'s account."""
    return f"Bearer {fake.users[login].token}"


def stored(app: App) -> list[tuple[str, str]]:
    """Every flattr as (user, item id), sorted."""
    with app.db.reader() as session:
        rows = session.execute(
            select(User.name, Flattr.item_id).join(User, User.id == Flattr.user_id)
        ).all()
    return sorted((name, item) for name, item in rows)


def account(app: App, account_id: int) -> LinkedAccount:
    """The account's row as stored now."""
    with app.db.reader() as session:
        return session.get_one(LinkedAccount, account_id)


def set_account(app: App, account_id: int, **values: Any) -> None:
    """Change the account's row behind the worker's back."""
    with app.db.session() as session:
        session.execute(
            update(LinkedAccount).where(LinkedAccount.id == account_id).values(**values)
        )


def held_leases(app: App) -> list[tuple[int, str]]:
    """(account id, owner) of every lease held now."""
    with app.db.reader() as session:
        rows = session.execute(
            select(LinkedAccount.id, LinkedAccount.lease_owner).where(
                LinkedAccount.lease_owner.is_not(None)
            )
        ).all()
    return sorted((account_id, owner) for account_id, owner in rows)


def poll(poller: Poller, account_id: int) -> PollOutcome:
    """Lease the account to ``poller`` and poll it (the lease is released by the poll)."""
    assert poller.claim_accounts([account_id]) == [account_id]
    return poller.poll(account_id)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


# ---------------------------------------------------------------------------
# Polls that work


def test_the_first_poll_stores_only_likes_made_after_linking(gh: App, fake: FakeGitHub) -> None:
    fake.add_user("alice", token="ghp_alice_secret")
    for n in (1, 2, 3):
        fake.star("alice", repo(n), clock.now() - timedelta(days=n))
    alice = link(gh, fake, "alice")
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 4, 5)

    outcome = poll(Poller(gh), alice)

    assert (outcome.status, outcome.stored, outcome.baseline, outcome.requests) == (
        "baseline",
        2,
        3,
        1,
    )
    assert stored(gh) == [("alice", "4"), ("alice", "5")]
    row = account(gh, alice)
    assert row.baseline_done
    assert set(row.poll_state["known"]) == {"1", "2", "3", "4", "5"}
    assert (row.lease_owner, row.lease_until) == (None, None)
    assert row.last_success_at == clock.now()


def test_incremental_polls_store_each_new_star_once(make_app: AppFactory, fake: FakeGitHub) -> None:
    app = make_app(page_size=3)
    alice = link(app, fake, "alice")
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 1)
    poller = Poller(app)
    assert poll(poller, alice).stored == 1

    # 7 new stars on pages of 3: pages 1 and 2 hold only new ones, page 3 the first known one.
    rounds = [([2], 1), ([3, 4, 5, 6, 7, 8, 9], 3), ([], 1), ([10, 11], 1)]
    for new, requests in rounds:
        clock.advance(timedelta(minutes=10))
        star(fake, "alice", *new)
        outcome = poll(poller, alice)
        assert (outcome.stored, outcome.duplicates, outcome.requests) == (len(new), 0, requests)
        assert outcome.status == ("ok" if new else "not_modified")

    assert stored(app) == sorted(("alice", str(n)) for n in range(1, 12))


def test_polling_again_from_an_old_cursor_stores_nothing_twice(gh: App, fake: FakeGitHub) -> None:
    alice = link(gh, fake, "alice")
    poller = Poller(gh)
    poll(poller, alice)
    old_state = account(gh, alice).poll_state
    clock.advance(timedelta(minutes=10))
    star(fake, "alice", 1, 2)
    assert poll(poller, alice).stored == 2

    set_account(gh, alice, poll_state=old_state)
    outcome = poll(poller, alice)

    assert (outcome.status, outcome.stored, outcome.duplicates) == ("ok", 0, 2)
    assert stored(gh) == [("alice", "1"), ("alice", "2")]


def test_an_unchanged_account_costs_one_request_and_stores_nothing(
    gh: App, fake: FakeGitHub
) -> None:
    alice = link(gh, fake, "alice")
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 1)
    poller = Poller(gh)
    poll(poller, alice)
    before = account(gh, alice)
    requests = fake.requests[key(fake, "alice")]
    clock.advance(seconds(MIN_INTERVAL))

    outcome = poll(poller, alice)

    assert (outcome.status, outcome.requests, outcome.stored) == ("not_modified", 1, 0)
    assert fake.requests[key(fake, "alice")] == requests + 1
    assert stored(gh) == [("alice", "1")]
    row = account(gh, alice)
    assert row.poll_state == before.poll_state
    assert row.interval_seconds == MIN_INTERVAL * 3 // 2  # idle: polled later
    assert row.next_poll_at == outcome.next_poll_at == clock.now() + seconds(450)
    assert (row.last_success_at, row.failures, row.lease_owner) == (clock.now(), 0, None)


# ---------------------------------------------------------------------------
# Polls that fail


@pytest.mark.usefixtures("restore_logging")
def test_a_revoked_token_stops_polling_that_account_until_relinked(
    gh: App, fake: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = link(gh, fake, "alice"), link(gh, fake, "bob")
    poller = Poller(gh)
    poll(poller, alice)
    poll(poller, bob)
    fake.revoke("alice")
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 1)
    star(fake, "bob", 2)
    clock.advance(seconds(MAX_INTERVAL))

    worker = Worker(gh, threads=2)
    try:
        assert worker.tick() == 2
        assert worker.drain(timeout=60)
    finally:
        worker.shutdown(grace=10)

    assert (worker.stats["auth_expired"], worker.stats["ok"]) == (1, 1)
    assert stored(gh) == [("bob", "2")]
    row = account(gh, alice)
    assert (row.status, row.next_poll_at, row.lease_owner) == ("auth_expired", None, None)
    assert "401" in (row.last_error or "")
    assert fake.users["alice"].token not in (row.last_error or "")

    # Not claimed again, however long it waits; the others still are.
    clock.advance(timedelta(days=2))
    assert poller.claim_due("github", 10) == [bob]
    poller.release()
    assert [o.account_id for o in poller.poll_now()] == [bob]

    # `trickle accounts list` shows it needs relinking.
    config = tmp_path / "accounts.toml"
    config.write_text(f"database_url = {json.dumps(gh.settings.database_url)}\n")
    capsys.readouterr()
    assert cli.main(["--config", str(config), "accounts", "list", "--json"]) == 0
    listed = {a["user"]: a for a in json.loads(capsys.readouterr().out)["accounts"]}
    assert (listed["alice"]["status"], listed["alice"]["next_poll_at"]) == ("auth_expired", None)
    assert listed["bob"]["status"] == "active"

    # The user authorizes trickle again and relinks: polling resumes from the old cursor.
    with fake.lock:
        fake.users["alice"].revoked = False
    result = link_account(
        gh, "github", "alice", Credentials(access_token=fake.users["alice"].token)
    )
    assert (result.account_id, result.relinked) == (alice, True)
    row = account(gh, alice)
    assert (row.status, row.next_poll_at, row.last_error) == ("active", clock.now(), None)
    assert poller.claim_due("github", 10) == [alice]
    outcome = poller.poll(alice)
    assert (outcome.status, outcome.stored) == ("ok", 1)
    assert stored(gh) == [("alice", "1"), ("bob", "2")]


def test_a_spent_rate_limit_waits_for_its_reset_without_counting_a_failure(
    gh: App, fake: FakeGitHub
) -> None:
    alice, bob = link(gh, fake, "alice"), link(gh, fake, "bob")
    poller = Poller(gh)
    poll(poller, alice)
    poll(poller, bob)
    baseline_state = account(gh, alice).poll_state
    set_account(gh, alice, failures=2)  # it failed twice before
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 1)
    star(fake, "bob", 2)
    clock.advance(seconds(MAX_INTERVAL))
    reset = clock.now() + timedelta(minutes=20)
    fake.rate_limit("alice", reset)  # 403, x-ratelimit-remaining: 0, x-ratelimit-reset

    outcome = poll(poller, alice)

    assert (outcome.status, outcome.stored) == ("rate_limited", 0)
    row = account(gh, alice)
    assert row.next_poll_at == outcome.next_poll_at == reset + seconds(1)
    assert (row.failures, row.status, row.lease_owner) == (2, "active", None)
    assert row.poll_state == baseline_state
    assert stored(gh) == []
    # One account's limit does not pause the platform: bob is polled meanwhile.
    assert poller.budget.paused_until("github", clock.now()) is None
    assert poll(poller, bob).stored == 1

    clock.set(reset, frozen=True)
    assert alice not in poller.claim_due("github", 10)
    poller.release()
    clock.set(reset + seconds(1), frozen=True)
    assert alice in poller.claim_due("github", 10)
    outcome = poller.poll(alice)
    poller.release()
    assert (outcome.status, outcome.stored) == ("ok", 1)
    assert account(gh, alice).failures == 0
    assert stored(gh) == [("alice", "1"), ("bob", "2")]


def _missing_starred_at(body: Any) -> Any:
    del body[0]["starred_at"]
    return body


def _owner_id_not_a_number(body: Any) -> Any:
    body[0]["repo"]["owner"]["id"] = "not-a-number"
    return body


MALFORMED: dict[str, tuple[Callable[[Any], Any], str]] = {
    "missing starred_at": (_missing_starred_at, "starred_at"),
    "owner id not a number": (_owner_id_not_a_number, "repo.owner.id"),
    "an object, not a list": (lambda body: {"message": "surprise"}, "valid list"),
    "HTML, not JSON": (lambda body: "<html><body>Unicorn!</body></html>", "expected JSON"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_a_malformed_payload_fails_the_poll_and_backs_off(
    gh: App, fake: FakeGitHub, kind: str
) -> None:
    mangle, named = MALFORMED[kind]

    def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
        if request.path != "/user/starred" or response.status != 200:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
        body = mangle(json.loads(json.dumps(response.body)))
        if isinstance(body, str):
            headers["Content-Type"] = "text/html; charset=utf-8"
        return FakeResponse(200, body, headers)

    alice = link(gh, fake, "alice")
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 1)
    poller = Poller(gh)
    poll(poller, alice)
    good_state = account(gh, alice).poll_state
    star(fake, "alice", 2, 3)
    fake.tamper("alice", rewrite)

    for failures in (1, 2, 3, 4):
        due = account(gh, alice).next_poll_at
        assert due is not None
        clock.set(due - seconds(1), frozen=True)
        assert poller.claim_due("github", 10) == []
        clock.set(due, frozen=True)
        assert poller.claim_due("github", 10) == [alice]
        outcome = poller.poll(alice)  # never raises
        assert (outcome.status, outcome.stored) == ("failed", 0)
        row = account(gh, alice)
        assert row.failures == failures
        assert row.next_poll_at == clock.now() + seconds(BACKOFF * 2 ** (failures - 1))
        assert row.poll_state == good_state
        assert (row.status, row.lease_owner, row.baseline_done) == ("active", None, True)
        assert named in (row.last_error or "")
        assert stored(gh) == [("alice", "1")]

    fake.tamper("alice", None)
    clock.set(account(gh, alice).next_poll_at or clock.now(), frozen=True)
    outcome = poll(poller, alice)
    assert (outcome.status, outcome.stored) == ("ok", 2)
    row = account(gh, alice)
    assert (row.failures, row.last_error) == (0, None)
    assert stored(gh) == [("alice", "1"), ("alice", "2"), ("alice", "3")]


class ExplodingConnector(Connector):
    """A plugin with a bug: every poll raises something no connector may raise."""

    name = "exploding"
    display_name = "Exploding"
    default_base_url = "http://127.0.0.1:9"

    def identify(self, session: AccountSession) -> Identity:
        token = session.credentials.access_token or ""
        return Identity(platform_user_id=token[-6:], handle="boom")

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        return {}[f"no such key {account.credentials.access_token}"]  # type: ignore[no-any-return]


class WrongResultConnector(ExplodingConnector):
    """A plugin with another bug: its poll returns something that is not a PollResult."""

    name = "wrong-result"

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        return [state]  # type: ignore[return-value]


def test_a_connector_bug_is_contained_to_its_own_accounts(
    make_app: AppFactory, fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trickle")
    app = make_app(GitHubConnector, ExplodingConnector, WrongResultConnector)
    bob = link(app, fake, "bob")
    with app.db.session() as session:
        add_user(session, "carol", Money(500, "EUR"))
    secret = "xyzzy-carols-secret-token"
    carol = link_account(app, "exploding", "carol", Credentials(access_token=secret)).account_id
    dave = link_account(
        app, "wrong-result", "carol", Credentials(access_token="other-token")
    ).account_id
    clock.advance(timedelta(minutes=1))
    star(fake, "bob", 1)

    worker = Worker(app, threads=4)
    try:
        assert worker.tick() == 3
        assert worker.drain(timeout=60)
    finally:
        worker.shutdown(grace=10)

    assert (worker.stats["failed"], worker.stats["baseline"], worker.stats["errors"]) == (2, 1, 0)
    assert stored(app) == [("bob", "1")]
    exploded, wrong = account(app, carol), account(app, dave)
    assert "KeyError" in (exploded.last_error or "")
    assert "PollResult" in (wrong.last_error or "")
    for row in (exploded, wrong):
        assert (row.status, row.failures, row.lease_owner) == ("active", 1, None)
        assert row.next_poll_at == clock.now() + seconds(BACKOFF)
    assert secret not in (exploded.last_error or "")
    assert secret not in caplog.text
    assert account(app, bob).baseline_done


# ---------------------------------------------------------------------------
# Results the database cannot store


POISON = "mallory"


def poisoned(kind: str, armed: threading.Event) -> type[Connector]:
    """The GitHub connector, except that while ``armed`` its polls of mallory's account bring
    back something the database cannot store, of the given kind."""

    class PoisonedGitHub(GitHubConnector):
        def poll(self, account: AccountRef, state: PollState) -> PollResult:
            result = super().poll(account, state)
            if not armed.is_set() or account.handle != POISON:
                return result
            if kind == "absurd next poll":  # OverflowError computing next_poll_at
                return dataclasses.replace(result, next_poll_hint=timedelta.max)
            if kind == "item id too long":  # PostgreSQL refuses it: VARCHAR(200)
                too_long = dataclasses.replace(result.events[0])
                # Past LikeEvent's own bound, as a column narrowed by a later schema would be.
                object.__setattr__(too_long, "item_id", "9" * 300)
                return dataclasses.replace(result, events=[*result.events, too_long])
            return result

    return PoisonedGitHub


RECORDING_FAILURES = ["absurd next poll", "item id too long", "database refuses"]


@pytest.mark.parametrize("via", ["poll_now", "worker"])
@pytest.mark.parametrize("kind", RECORDING_FAILURES)
def test_a_result_the_database_cannot_store_fails_that_account_alone(
    make_app: AppFactory,
    fake: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    via: str,
) -> None:
    armed = threading.Event()
    app = make_app(poisoned(kind, armed))
    if kind == "item id too long" and not app.db.is_postgres:
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    ids = {name: link(app, fake, name) for name in ("alice", POISON, "bob")}
    Poller(app).poll_now()  # baselines
    baseline_state = account(app, ids[POISON]).poll_state
    clock.advance(seconds(MAX_INTERVAL))
    for n, name in enumerate(ids):
        star(fake, name, n, 10 + n)
    if kind == "database refuses":
        real_ingest = polling.ingest_poll

        def refusing_ingest(session: Any, **values: Any) -> Any:
            if values["account_id"] == ids[POISON]:
                real_ingest(session, **values)  # stored, then refused: rolled back
                raise DataError("INSERT INTO flattrs ...", {}, ValueError("value refused"))
            return real_ingest(session, **values)

        monkeypatch.setattr(polling, "ingest_poll", refusing_ingest)
    armed.set()
    caplog.set_level(logging.INFO, logger="trickle")

    if via == "poll_now":
        outcomes = {o.handle: o for o in Poller(app).poll_now()}
        assert [o.account_id for o in outcomes.values()] == sorted(ids.values())
        assert (outcomes["alice"].status, outcomes["bob"].status) == ("ok", "ok")
        failed = outcomes[POISON]
        assert failed.status == "failed"
        assert "storing the poll's results failed" in (failed.error or "")
    else:
        worker = Worker(app, threads=3)
        try:
            assert worker.tick() == 3
            assert worker.drain(timeout=60)
        finally:
            worker.shutdown(grace=10)
        assert (worker.stats["ok"], worker.stats["failed"], worker.stats["errors"]) == (2, 1, 0)

    # The others' likes are stored, none of mallory's, and mallory backs off like any failure.
    assert stored(app) == [("alice", "0"), ("alice", "10"), ("bob", "12"), ("bob", "2")]
    row = account(app, ids[POISON])
    assert (row.failures, row.lease_owner, row.status) == (1, None, "active")
    assert row.next_poll_at == clock.now() + seconds(BACKOFF)
    assert row.poll_state == baseline_state  # the cursor did not move past the lost likes
    assert "storing the poll's results failed" in (row.last_error or "")
    assert held_leases(app) == []
    logged = [r for r in caplog.records if POISON in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].levelno == logging.ERROR
    assert "\n" not in logged[0].getMessage()  # the driver's one line, not the whole statement

    # Once the platform serves what the database can store, mallory is polled from where it
    # was and gets every like it missed.
    armed.clear()
    monkeypatch.undo()
    clock.set(row.next_poll_at, frozen=True)
    outcome = poll(Poller(app), ids[POISON])
    assert (outcome.status, outcome.stored) == ("ok", 2)
    assert (POISON, "1") in stored(app)
    assert (POISON, "11") in stored(app)


# ---------------------------------------------------------------------------
# Leases


def test_claim_due_leases_only_due_unleased_active_accounts(gh: App, fake: FakeGitHub) -> None:
    names = ("overdue", "due", "later", "leased", "expired", "relink")
    ids = {name: link(gh, fake, name) for name in names}
    now = clock.now()
    set_account(gh, ids["overdue"], next_poll_at=now - timedelta(minutes=10))
    set_account(gh, ids["later"], next_poll_at=now + seconds(1))
    set_account(gh, ids["leased"], lease_owner=THIEF, lease_until=now + seconds(1))
    set_account(gh, ids["expired"], lease_owner=THIEF, lease_until=now - seconds(1))
    set_account(gh, ids["relink"], status=AccountStatus.AUTH_EXPIRED.value, next_poll_at=None)
    poller, other = Poller(gh), Poller(gh)

    assert poller.claim_due("github", 0) == []
    assert poller.claim_due("github", 1) == [ids["overdue"]]  # the most overdue first
    assert poller.claim_due("github", 10) == sorted([ids["due"], ids["expired"]])
    assert other.claim_due("github", 10) == []
    assert poller.claim_due("mastodon", 10) == []

    lease_until = now + seconds(gh.settings.worker.lease_seconds)
    for name in ("overdue", "due", "expired"):
        row = account(gh, ids[name])
        assert (row.lease_owner, row.lease_until) == (poller.owner, lease_until)
    assert account(gh, ids["leased"]).lease_owner == THIEF
    assert account(gh, ids["later"]).lease_owner is None


def test_an_expired_lease_is_taken_over_and_its_late_holder_stores_nothing(
    gh: App, fake: FakeGitHub
) -> None:
    alice = link(gh, fake, "alice")
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 1)
    slow, fast = Poller(gh), Poller(gh)
    assert slow.claim_due("github", 10) == [alice]
    assert fast.claim_due("github", 10) == []

    clock.advance(seconds(gh.settings.worker.lease_seconds + 1))
    assert fast.claim_due("github", 10) == [alice]
    requests = fake.requests[key(fake, "alice")]
    late = slow.poll(alice)

    assert late.status == "lease_lost"
    assert fake.requests[key(fake, "alice")] == requests  # it did not even ask the platform
    outcome = fast.poll(alice)
    assert (outcome.status, outcome.stored) == ("baseline", 1)
    assert stored(gh) == [("alice", "1")]


def lease_stealing(steal: Callable[[int], None], *, fail: bool) -> type[Connector]:
    """The GitHub connector, except that another worker takes the lease while it polls."""

    class LeaseStealingGitHub(GitHubConnector):
        def poll(self, account: AccountRef, state: PollState) -> PollResult:
            result = super().poll(account, state)
            steal(account.id)
            if fail:
                raise PlatformError("the platform answered nonsense")
            return result

    return LeaseStealingGitHub


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_a_poll_whose_lease_was_lost_meanwhile_records_nothing(
    make_app: AppFactory, fake: FakeGitHub, fail: bool
) -> None:
    def steal(account_id: int) -> None:
        set_account(app, account_id, lease_owner=THIEF, lease_until=clock.now() + seconds(600))

    app = make_app(lease_stealing(steal, fail=fail))
    alice = link(app, fake, "alice")
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 1, 2)
    before = account(app, alice)

    outcome = poll(Poller(app), alice)

    assert outcome.status == "lease_lost"
    assert stored(app) == []
    row = account(app, alice)
    assert row.lease_owner == THIEF
    for column in ("poll_state", "baseline_done", "next_poll_at", "failures", "last_poll_at"):
        assert getattr(row, column) == getattr(before, column), column


def test_release_gives_back_only_our_own_leases(gh: App, fake: FakeGitHub) -> None:
    a, b, c = (link(gh, fake, name) for name in ("alice", "bob", "carol"))
    ours, theirs = Poller(gh), Poller(gh)
    assert ours.claim_accounts([a, b]) == [a, b]
    assert theirs.claim_accounts([a, b, c]) == [c]

    assert ours.release([a]) == 1
    assert held_leases(gh) == [(b, ours.owner), (c, theirs.owner)]
    assert ours.release() == 1
    assert held_leases(gh) == [(c, theirs.owner)]
    assert theirs.claim_accounts([c]) == [c]  # a worker may renew its own lease


def test_reclaim_dead_frees_the_leases_of_processes_gone_from_this_host(
    gh: App, fake: FakeGitHub
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    poller = Poller(gh)
    owners = {
        "dead": f"{host}:{gone.pid}:dead0000",
        "alive": f"{host}:{os.getppid()}:alive000",
        "remote": f"elsewhere.example:{gone.pid}:remote00",
        "mine": poller.owner,
    }
    ids = {}
    for name, owner in owners.items():
        ids[name] = link(gh, fake, name)
        set_account(gh, ids[name], lease_owner=owner, lease_until=clock.now() + timedelta(hours=1))

    assert poller.reclaim_dead() == 1
    assert account(gh, ids["dead"]).lease_until is None
    assert held_leases(gh) == sorted((ids[n], owners[n]) for n in ("alive", "remote", "mine"))
    assert poller.claim_due("github", 10) == [ids["dead"]]


# ---------------------------------------------------------------------------
# The schedule


BOUNDS = ConnectorSettings(min_interval_seconds=300, max_interval_seconds=3600)


@pytest.mark.parametrize(
    ("current", "new_likes", "expected"),
    [
        (1200, 3, 600),  # active: sooner
        (1200, 0, 1800),  # idle: later
        (400, 1, 300),  # never below the minimum
        (300, 0, 450),
        (3000, 0, 3600),  # never above the maximum
        (3600, 0, 3600),
        (50, 0, 300),  # an interval stored under older, tighter bounds comes back in
        (10_000, 5, 3600),
    ],
)
def test_next_interval_halves_when_active_and_stretches_when_idle(
    current: int, new_likes: int, expected: int
) -> None:
    assert next_interval(current, new_likes, BOUNDS) == expected


def test_next_interval_with_inverted_bounds_keeps_the_minimum() -> None:
    inverted = ConnectorSettings(min_interval_seconds=600, max_interval_seconds=60)
    assert next_interval(600, 0, inverted) == next_interval(600, 9, inverted) == 600


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 60), (1, 60), (2, 120), (3, 240), (8, 7680), (9, 10_000), (10**6, 10_000)],
)
def test_failure_backoff_doubles_up_to_its_cap(failures: int, expected: int) -> None:
    assert failure_backoff(failures, 60, 10_000) == expected


def test_jitter_spreads_intervals_within_their_bounds() -> None:
    rng = random.Random(20261015)
    samples = [with_jitter(600, 0.1, rng).total_seconds() for _ in range(2000)]
    assert all(540 <= s <= 660 for s in samples)
    assert min(samples) < 550
    assert max(samples) > 650
    assert with_jitter(600, 0.0, rng) == seconds(600)
    assert with_jitter(0.2, 0.5, rng) >= seconds(1)


def test_active_accounts_are_polled_sooner_and_idle_ones_later(gh: App, fake: FakeGitHub) -> None:
    alice = link(gh, fake, "alice")
    poller = Poller(gh)
    poll(poller, alice)
    set_account(gh, alice, interval_seconds=1200)
    clock.advance(timedelta(hours=1))
    star(fake, "alice", 1)

    outcome = poll(poller, alice)
    assert outcome.stored == 1
    assert account(gh, alice).next_poll_at == clock.now() + seconds(600)

    expected = [900, 1350, 2025, 3037, 3600, 3600]
    for interval in expected:
        clock.set(account(gh, alice).next_poll_at or clock.now(), frozen=True)
        assert poller.claim_due("github", 10) == [alice]
        assert poller.poll(alice).status == "not_modified"
        row = account(gh, alice)
        assert (row.interval_seconds, row.next_poll_at) == (
            interval,
            clock.now() + seconds(interval),
        )


def test_jitter_keeps_each_next_poll_within_its_bounds(
    make_app: AppFactory, fake: FakeGitHub
) -> None:
    app = make_app(worker=WorkerSettings(threads=4, jitter=0.2))
    alice = link(app, fake, "alice")
    poller = Poller(app, seed=7)
    waits = set()
    for _ in range(20):
        clock.advance(timedelta(hours=2))
        outcome = poll(poller, alice)
        row = account(app, alice)
        wait = (row.next_poll_at or clock.now()) - clock.now()
        assert outcome.next_poll_at == row.next_poll_at
        assert row.interval_seconds * 0.8 <= wait.total_seconds() <= row.interval_seconds * 1.2
        waits.add(wait.total_seconds() / row.interval_seconds)
    assert len(waits) > 10  # spread, not one fixed factor


def test_rate_budget_pauses_one_platform_until_its_reset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trickle.polling")
    t0 = datetime(2026, 10, 15, 12, tzinfo=UTC)
    budget = RateBudget()
    budget.pause("github", t0 + timedelta(minutes=10))
    budget.pause("github", t0 + timedelta(minutes=5))  # an earlier reset does not shorten it
    budget.pause("github", t0 + timedelta(minutes=10))

    assert budget.paused_until("github", t0) == t0 + timedelta(minutes=10)
    assert budget.paused_until("mastodon", t0) is None
    assert budget.paused_until("github", t0 + timedelta(minutes=10)) is None
    assert budget.paused_until("github", t0) is None  # over once passed
    assert budget.pauses == 1
    # Said once when the pause starts and once when it ends.
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "github paused until 2026-10-15T12:10:00Z: its app-wide rate limit is spent"),
        ("INFO", "github resumes: its app-wide rate limit reset at 2026-10-15T12:10:00Z"),
    ]


class AppWideGitHub(GitHubConnector):
    """GitHub as an app with one budget shared by all its users (scope "app")."""

    name = "github-app"
    rate_limit_scope = "app"


def test_a_spent_app_wide_budget_pauses_its_platform_while_the_others_go_on(
    make_app: AppFactory, fake: FakeGitHub
) -> None:
    app = make_app(GitHubConnector, AppWideGitHub)
    alice = link(app, fake, "alice", platform="github-app")
    carol = link(app, fake, "carol", platform="github-app")
    bob = link(app, fake, "bob")
    Poller(app).poll_now()  # baselines
    clock.advance(timedelta(hours=1))
    set_account(app, carol, next_poll_at=clock.now() + timedelta(minutes=10))
    reset = clock.now() + timedelta(minutes=30)
    fake.rate_limit("alice", reset)
    star(fake, "alice", 1)
    star(fake, "carol", 2)
    star(fake, "bob", 3)
    carol_requests = fake.requests[key(fake, "carol")]

    worker = Worker(app, threads=4)
    try:
        assert worker.tick() == 2  # alice (rate limited) and bob
        assert worker.drain(timeout=60)
        assert worker.poller.budget.paused_until("github-app", clock.now()) == reset
        assert account(app, alice).next_poll_at == reset + seconds(1)
        assert stored(app) == [("bob", "3")]

        clock.advance(timedelta(minutes=15))  # carol and bob are due; github-app is paused
        assert worker.tick() == 1
        assert worker.drain(timeout=60)
        assert fake.requests[key(fake, "carol")] == carol_requests
        assert account(app, carol).lease_owner is None
        assert account(app, bob).last_success_at == clock.now()

        clock.set(reset + seconds(1), frozen=True)
        assert worker.tick() == 3
        assert worker.drain(timeout=60)
    finally:
        worker.shutdown(grace=10)

    assert stored(app) == [("alice", "1"), ("bob", "3"), ("carol", "2")]
    assert held_leases(app) == []


def test_a_platform_whose_budget_is_nearly_spent_is_slowed_before_it_refuses(
    make_app: AppFactory, fake: FakeGitHub
) -> None:
    """The rate limit is read on every answer, not only on a 429: when a successful poll
    leaves 2 % of the window or less, the platform (an app-wide budget) is not asked again
    until the window resets, and no request is spent on a refusal."""
    app = make_app(AppWideGitHub)
    alice = link(app, fake, "alice", platform="github-app")
    carol = link(app, fake, "carol", platform="github-app")
    Poller(app).poll_now()  # baselines
    clock.advance(timedelta(hours=1))
    set_account(app, carol, next_poll_at=clock.now() + timedelta(minutes=10))
    fake.users["alice"].used = 4_950  # of 5,000: 50 left after this answer, 1 %
    star(fake, "alice", 1)
    star(fake, "carol", 2)
    reset = datetime.fromtimestamp(int(clock.now().timestamp()) // 3600 * 3600 + 3600, UTC)

    worker = Worker(app, threads=4)
    try:
        assert worker.tick() == 1
        assert worker.drain(timeout=60)
        assert stored(app) == [("alice", "1")]  # the poll itself succeeded
        assert worker.poller.budget.paused_until("github-app", clock.now()) == reset
        assert account(app, alice).next_poll_at >= reset
        carol_requests = fake.requests[key(fake, "carol")]

        clock.advance(timedelta(minutes=15))  # carol is due, and the platform was not refused
        assert worker.tick() == 0
        assert fake.requests[key(fake, "carol")] == carol_requests

        clock.set(reset + seconds(1), frozen=True)
        fake.users["alice"].used = 0  # GitHub's new window (the fake does not count windows)
        assert worker.tick() == 2
        assert worker.drain(timeout=60)
    finally:
        worker.shutdown(grace=10)
    assert stored(app) == [("alice", "1"), ("carol", "2")]


def test_an_account_whose_own_budget_is_nearly_spent_waits_for_its_reset(
    make_app: AppFactory, fake: FakeGitHub
) -> None:
    app = make_app()
    alice = link(app, fake, "alice")
    Poller(app).poll_now()
    clock.advance(timedelta(hours=1))
    fake.users["alice"].used = 4_990
    star(fake, "alice", 1)
    reset = datetime.fromtimestamp(int(clock.now().timestamp()) // 3600 * 3600 + 3600, UTC)

    (outcome,) = Poller(app).poll_now()

    assert outcome.status == "ok"
    assert account(app, alice).next_poll_at >= reset
    assert Worker(app).poller.budget.paused_until("github", clock.now()) is None


# ---------------------------------------------------------------------------
# `trickle poll`: every account now, in the worker's pool


def test_poll_now_polls_accounts_side_by_side_within_the_platforms_cap(
    make_app: AppFactory, fake: FakeGitHub
) -> None:
    accounts, latency, cap = 100, 0.05, 8
    app = make_app(max_concurrency=cap, worker=WorkerSettings(threads=16, jitter=0.0))
    ids = [link(app, fake, f"user{n:03d}") for n in range(accounts)]
    clock.advance(timedelta(minutes=1))
    for n in range(accounts):
        star(fake, f"user{n:03d}", n)
    fake.latency = latency  # every answer waits, as a real platform's round trip
    seen: list[tuple[int, int]] = []

    started = time.perf_counter()
    outcomes = Poller(app).poll_now(progress=lambda done, total: seen.append((done, total)))
    elapsed = time.perf_counter() - started

    # One after another this takes accounts x latency (5 s) and more; in the pool, an eighth
    # of that (cap 8) plus the polls' CPU. The bound is generous for a shared machine.
    assert elapsed < 0.5 * accounts * latency, f"{elapsed:.2f} s"
    assert 2 <= fake.max_active <= cap
    assert fake.overlaps == []
    assert [o.account_id for o in outcomes] == ids
    assert {(o.status, o.stored) for o in outcomes} == {("baseline", 1)}
    assert len(stored(app)) == accounts
    assert held_leases(app) == []
    assert seen == [(done, accounts) for done in range(accounts + 1)]


def test_poll_now_stops_asking_a_platform_whose_app_wide_budget_is_spent(
    make_app: AppFactory, fake: FakeGitHub
) -> None:
    app = make_app(GitHubConnector, AppWideGitHub, max_concurrency=1)
    alice = link(app, fake, "alice", platform="github-app")
    bob = link(app, fake, "bob")
    carol = link(app, fake, "carol", platform="github-app")
    dave = link(app, fake, "dave", platform="github-app")
    poller = Poller(app)
    poller.poll_now()  # baselines
    clock.advance(timedelta(hours=1))
    for n, name in enumerate(("alice", "bob", "carol", "dave")):
        star(fake, name, n)
    reset = clock.now() + timedelta(minutes=30)
    fake.rate_limit("alice", reset)  # the first github-app account polled spends the budget
    before = {name: fake.requests[key(fake, name)] for name in ("carol", "dave")}

    outcomes = poller.poll_now()

    assert [(o.account_id, o.status) for o in outcomes] == [
        (alice, "rate_limited"),
        (bob, "ok"),
        (carol, "rate_limited"),
        (dave, "rate_limited"),
    ]
    for skipped in outcomes[2:]:
        assert skipped.next_poll_at == reset
        assert skipped.requests == 0
        assert "app-wide rate limit" in (skipped.error or "")
    assert {name: fake.requests[key(fake, name)] for name in ("carol", "dave")} == before
    assert account(app, carol).next_poll_at == account(app, dave).next_poll_at  # untouched
    assert stored(app) == [("bob", "1")]
    assert held_leases(app) == []

    clock.set(reset + seconds(1), frozen=True)  # the budget is back: the next run polls them
    assert [o.status for o in poller.poll_now()] == ["ok", "not_modified", "ok", "ok"]


def test_poll_now_reports_an_account_a_worker_holds_as_lease_lost(
    gh: App, fake: FakeGitHub
) -> None:
    alice, bob = link(gh, fake, "alice"), link(gh, fake, "bob")
    set_account(gh, alice, lease_owner=THIEF, lease_until=clock.now() + seconds(600))

    outcomes = Poller(gh).poll_now()

    assert [(o.account_id, o.status) for o in outcomes] == [
        (alice, "lease_lost"),
        (bob, "baseline"),
    ]
    assert held_leases(gh) == [(alice, THIEF)]
    assert fake.requests[key(fake, "alice")] == 1  # linking's GET /user only


def test_poll_outcomes_in_json_write_times_in_utc_with_a_z() -> None:
    outcome = PollOutcome(
        7,
        "alice",
        "github",
        "alice-gh",
        "ok",
        next_poll_at=datetime(2026, 10, 15, 14, 5, tzinfo=timezone(timedelta(hours=2))),
    )
    assert outcome.to_json()["next_poll_at"] == "2026-10-15T12:05:00Z"
    assert dataclasses.replace(outcome, next_poll_at=None).to_json()["next_poll_at"] is None


# ---------------------------------------------------------------------------
# What the worker says at the default log level


def test_an_account_is_logged_once_when_it_goes_down_and_once_when_it_comes_back(
    gh: App, fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    alice = link(gh, fake, "alice")
    poller = Poller(gh)
    poll(poller, alice)
    fake.tamper("alice", lambda request, response: FakeResponse(200, "<html>down</html>"))
    caplog.set_level(logging.INFO, logger="trickle")

    for _ in range(3):
        clock.set(account(gh, alice).next_poll_at or clock.now(), frozen=True)
        assert poll(poller, alice).status == "failed"
    fake.tamper("alice", None)
    for _ in range(2):
        clock.set(account(gh, alice).next_poll_at or clock.now(), frozen=True)
        assert poll(poller, alice).status == "not_modified"

    said = [(r.levelname, r.getMessage()) for r in caplog.records if "alice" in r.getMessage()]
    assert len(said) == 2, said
    assert said[0][0] == "WARNING"
    assert said[0][1].startswith("github account alice of alice failing: ")
    assert said[1] == ("INFO", "github account alice of alice is back after 3 failed poll(s)")


def test_the_worker_summarises_what_it_did_in_one_line_per_interval(
    gh: App, fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("alice", "bob", "carol"):
        link(gh, fake, name)
    clock.advance(timedelta(minutes=1))
    star(fake, "alice", 1, 2)
    star(fake, "bob", 3)
    fake.revoke("carol")
    caplog.set_level(logging.INFO, logger="trickle.polling")
    worker = Worker(gh, threads=3)
    try:
        assert worker.tick() == 3
        assert worker.drain(timeout=60)
        worker.log_summary()
        worker.log_summary()  # nothing happened since
    finally:
        worker.shutdown(grace=10)

    summaries = [r.getMessage() for r in caplog.records if "poll(s) running" in r.getMessage()]
    assert len(summaries) == 2, summaries
    prefix = f"worker {worker.owner}, last "
    assert all(line.startswith(prefix) for line in summaries)
    first, second = (line.split(" s: ", 1)[1] for line in summaries)
    assert first == (
        "3 poll(s) (2 baseline, 1 auth_expired), 3 new flattr(s), 1 failure(s), "
        "0 rate-limit pause(s); 0 poll(s) running"
    )
    assert second == (
        "0 poll(s), 0 new flattr(s), 0 failure(s), 0 rate-limit pause(s); 0 poll(s) running"
    )


def test_the_summary_counts_the_rate_limit_pauses_of_its_interval(
    make_app: AppFactory, fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(AppWideGitHub)
    link(app, fake, "alice", platform="github-app")
    fake.rate_limit("alice", clock.now() + timedelta(minutes=5))
    caplog.set_level(logging.INFO, logger="trickle.polling")
    worker = Worker(app, threads=1)
    try:
        worker.log_summary()
        assert worker.tick() == 1
        assert worker.drain(timeout=60)
        worker.log_summary()
    finally:
        worker.shutdown(grace=10)

    summaries = [r.getMessage() for r in caplog.records if "poll(s) running" in r.getMessage()]
    assert ["1 rate-limit pause(s)" in line for line in summaries] == [False, True]
    assert "1 poll(s) (1 rate_limited)" in summaries[1]


def test_polls_waiting_for_a_thread_when_their_platform_is_paused_are_given_back_unpolled(
    make_app: AppFactory, fake: FakeGitHub
) -> None:
    app = make_app(AppWideGitHub)
    ids = [link(app, fake, name, platform="github-app") for name in ("alice", "bob")]
    requests = fake.total_requests
    worker = Worker(app, threads=1)
    busy, release_thread = threading.Event(), threading.Event()
    worker._executor.submit(lambda: busy.set() or release_thread.wait(120))
    assert busy.wait(60)
    try:
        assert worker.tick() == 1  # claimed, waiting for the only thread
        worker.poller.budget.pause("github-app", clock.now() + timedelta(minutes=5))
        release_thread.set()
        assert worker.drain(timeout=60)
    finally:
        worker.shutdown(grace=10)

    assert worker.stats["deferred"] == 1
    assert fake.total_requests == requests
    assert held_leases(app) == []
    assert all(not account(app, i).baseline_done for i in ids)


# ---------------------------------------------------------------------------
# Shutting down


class GatedGitHub(FakeGitHub):
    """A fake GitHub whose star lists wait at a gate; ``arrived`` counts who is waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Semaphore(0)

    @route("GET", "/user/starred")
    def get_starred(self, request: Request) -> FakeResponse:
        self.arrived.release()
        self.gate.wait(timeout=120)
        return super().get_starred(request)


@pytest.fixture
def gated() -> Iterator[GatedGitHub]:
    with GatedGitHub() as platform:
        yield platform


def test_shutdown_lets_running_polls_finish_and_gives_back_every_lease(
    make_app: AppFactory, gated: GatedGitHub
) -> None:
    app = make_app(platform=gated)
    ids = [link(app, gated, name) for name in ("alice", "bob", "carol")]
    clock.advance(timedelta(minutes=1))
    for n, name in enumerate(("alice", "bob", "carol")):
        star(gated, name, n)
    gated.gate.clear()
    worker = Worker(app, threads=3)
    assert worker.tick() == 3
    for _ in ids:
        assert gated.arrived.acquire(timeout=60)  # all three are at the platform

    stopper = threading.Thread(target=worker.shutdown, kwargs={"grace": 120})
    stopper.start()
    gated.gate.set()
    stopper.join(timeout=120)

    assert not stopper.is_alive()
    assert worker.in_flight() == 0
    assert worker.stats["baseline"] == 3
    assert stored(app) == [("alice", "0"), ("bob", "1"), ("carol", "2")]
    assert held_leases(app) == []
    assert worker.tick() == 0  # a stopped worker claims nothing


def test_polls_that_outlast_the_grace_keep_their_lease_and_record_when_they_end(
    make_app: AppFactory, gated: GatedGitHub
) -> None:
    app = make_app(platform=gated)
    ids = [link(app, gated, name) for name in ("alice", "bob")]
    clock.advance(timedelta(minutes=1))
    star(gated, "alice", 1)
    star(gated, "bob", 2)
    gated.gate.clear()
    worker = Worker(app, threads=2)
    assert worker.tick() == 2
    for _ in ids:
        assert gated.arrived.acquire(timeout=60)

    worker.shutdown(grace=0.2)

    # The requests still hang: their accounts stay leased, so no other worker polls them.
    assert sorted(held_leases(app)) == [(i, worker.owner) for i in sorted(ids)]
    gated.gate.set()
    assert worker.drain(timeout=120)
    assert worker.stats["baseline"] == 2
    assert stored(app) == [("alice", "1"), ("bob", "2")]
    assert held_leases(app) == []


def test_polls_abandoned_after_the_grace_give_back_their_lease_and_store_nothing(
    make_app: AppFactory, gated: GatedGitHub
) -> None:
    """What `trickle run` does on its way out: it will not wait for these threads."""
    app = make_app(platform=gated)
    ids = [link(app, gated, name) for name in ("alice", "bob")]
    clock.advance(timedelta(minutes=1))
    star(gated, "alice", 1)
    star(gated, "bob", 2)
    before = {i: account(app, i) for i in ids}
    gated.gate.clear()
    worker = Worker(app, threads=2)
    assert worker.tick() == 2
    for _ in ids:
        assert gated.arrived.acquire(timeout=60)

    assert worker.shutdown(grace=0.2, abandon_running=True) is False

    assert held_leases(app) == []  # another worker may poll them right away
    gated.gate.set()  # should the polls still end, they find their lease gone
    assert worker.drain(timeout=120)
    assert worker.stats["lease_lost"] == 2
    assert stored(app) == []
    for i in ids:
        row = account(app, i)
        assert (row.poll_state, row.baseline_done, row.next_poll_at) == (
            before[i].poll_state,
            False,
            before[i].next_poll_at,
        )


def test_a_backlog_drains_without_waiting_for_the_next_tick(gh: App, fake: FakeGitHub) -> None:
    names = [f"user{n:02d}" for n in range(12)]
    for name in names:
        link(gh, fake, name)
    worker = Worker(gh, threads=2)

    assert worker.tick() == 2  # one tick, and never another

    deadline = time.monotonic() + 60
    while worker.stats["baseline"] < len(names) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stats["baseline"] == len(names)
    assert worker.drain(timeout=60)
    assert held_leases(gh) == []


def test_polling_until_idle_polls_what_a_tick_left_for_busy_threads(
    gh: App, fake: FakeGitHub
) -> None:
    names = [f"user{n:02d}" for n in range(6)]
    for name in names:
        link(gh, fake, name)
    fake.latency = 0.1  # the first polls are still running when the next tick comes
    worker = Worker(gh, threads=2)
    try:
        assert worker.tick() == 2
        assert worker.tick() == 0  # both threads busy: nothing started, though four are due

        assert worker.poll_until_idle(timeout=60)

        assert worker.stats["baseline"] == len(names)
        assert worker.in_flight() == 0
        assert held_leases(gh) == []
    finally:
        worker.shutdown(grace=5)


def test_polling_until_idle_gives_up_at_its_timeout(gh: App, fake: FakeGitHub) -> None:
    link(gh, fake, "alice")
    fake.latency = 1.0
    worker = Worker(gh, threads=1)
    try:
        assert worker.tick() == 1

        assert worker.poll_until_idle(timeout=0.1) is False
    finally:
        worker.shutdown(grace=5)


def test_shutdown_abandons_queued_polls(gh: App, fake: FakeGitHub) -> None:
    alice = link(gh, fake, "alice")
    requests = fake.requests[key(fake, "alice")]
    worker = Worker(gh, threads=1)
    # Occupy the only poll thread so that the next poll waits in the queue.
    busy, release_thread = threading.Event(), threading.Event()
    worker._executor.submit(lambda: busy.set() or release_thread.wait(120))
    assert busy.wait(60)
    assert worker.tick() == 1
    assert held_leases(gh) == [(alice, worker.owner)]

    worker.shutdown(grace=0.2)
    release_thread.set()
    worker._executor.shutdown(wait=True)

    assert held_leases(gh) == []
    assert worker.in_flight() == 0
    assert fake.requests[key(fake, "alice")] == requests  # never polled
    assert account(gh, alice).baseline_done is False


def test_shutdown_waits_for_a_tick_that_is_claiming(gh: App, fake: FakeGitHub) -> None:
    alice = link(gh, fake, "alice")
    worker = Worker(gh, threads=2)
    claiming, proceed = threading.Event(), threading.Event()
    claim_due = worker.poller.claim_due

    def slow_claim(platform: str, limit: int) -> list[int]:
        claiming.set()
        proceed.wait(60)
        return claim_due(platform, limit)

    worker.poller.claim_due = slow_claim  # type: ignore[method-assign]
    ticker = threading.Thread(target=worker.tick)
    ticker.start()
    assert claiming.wait(60)  # the tick decided to claim; SIGTERM arrives now
    stopper = threading.Thread(target=worker.shutdown, kwargs={"grace": 60})
    stopper.start()
    stopper.join(timeout=1)  # (without waiting for the tick, shutdown would be done by now)
    proceed.set()
    ticker.join(timeout=60)
    stopper.join(timeout=60)

    assert not ticker.is_alive()
    assert not stopper.is_alive()
    assert held_leases(gh) == []
    assert worker.in_flight() == 0
    assert account(gh, alice).baseline_done is False  # abandoned, polled by the next worker
