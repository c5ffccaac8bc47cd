"""The worker renews an account's expiring credentials safely, on SQLite and PostgreSQL.

Against the made-up OAuth 2 platform (one-hour tokens, single-use refresh tokens) on
127.0.0.1, through the real poller, connector, session and HTTP layer: the renewed
credentials are committed, in their own transaction and visible to any other connection,
before the request that uses them is sent; a save refused because the lease or the
credentials changed meanwhile means they are never used and the poll stores nothing; a
process that dies right after the save leaves the account with working credentials; a
refused refresh marks the account for relinking; two refreshes of one account cannot both
be saved.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from trickle.app import App
from trickle.config import Settings
from trickle.connectors.registry import Registry
from trickle.connectors.session import SaveCredentials
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.db import Database
from trickle.core.models import AccountStatus, Flattr, LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user
from trickle.linking import link_account
from trickle.polling import CredentialsNotSaved, Poller, PollOutcome
from trickle.testing.fake_oauth import TOKEN_PATH, FakeOAuth, Phase
from trickle.testing.oauth_connector import FakeOAuthConnector, FakeOAuthSettings

SECRET = "worker-app-secret-5b7e"
THIEF = "elsewhere.example:4242:thief000"
PLATFORM = FakeOAuthConnector.name


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeOAuth]:
    with FakeOAuth() as platform:
        platform.register_client("trickle", SECRET)
        yield platform


@pytest.fixture
def app(settings: Settings, fake: FakeOAuth) -> Iterator[App]:
    """An App whose only connector is the OAuth 2 test connector, pointed at the fake."""
    table = FakeOAuthSettings(
        base_url=fake.base_url,
        token_url=fake.base_url + TOKEN_PATH,
        client_id="trickle",
        client_secret=SECRET,
        min_interval_seconds=300,
        max_interval_seconds=3600,
    )
    application = App(
        settings.model_copy(update={"connectors": {PLATFORM: table}}),
        registry=Registry.of([FakeOAuthConnector]),
    )
    yield application
    application.close()


def link(app: App, fake: FakeOAuth, name: str) -> int:
    """The trickle user ``name`` links their account on the fake, freshly authorized."""
    with app.db.session() as session:
        add_user(session, name, Money(500, "EUR"))
    fake.add_account(name)
    tokens = fake.issue(name, "trickle")
    return link_account(app, PLATFORM, name, tokens.credentials()).account_id


def stored_credentials(db: Database, app: App, account_id: int) -> tuple[Credentials, int]:
    """The account's credentials and their version, as ``db`` (any connection) reads them."""
    with db.reader() as session:
        sealed, version = session.execute(
            select(LinkedAccount.credentials, LinkedAccount.credentials_version).where(
                LinkedAccount.id == account_id
            )
        ).one()
    return app.box.open(sealed), version


def items(app: App) -> list[str]:
    with app.db.reader() as session:
        return sorted(session.scalars(select(Flattr.item_id)))


def poll(poller: Poller, account_id: int) -> PollOutcome:
    assert poller.claim_accounts([account_id]) == [account_id]
    return poller.poll(account_id)


def baseline_then_like(app: App, fake: FakeOAuth, name: str) -> tuple[int, Poller]:
    """Link ``name``, poll the baseline, then like one item an hour later, when the token has
    expired: the next poll has to refresh."""
    account_id = link(app, fake, name)
    poller = Poller(app)
    assert poll(poller, account_id).status == "baseline"
    clock.advance(timedelta(hours=1))
    fake.like(name, "liked-after-linking")
    return account_id, poller


@pytest.mark.parametrize("how", ["expired", "ended-early"])
def test_renewed_credentials_are_committed_before_the_request_that_uses_them(
    app: App, fake: FakeOAuth, how: str
) -> None:
    account_id = link(app, fake, "alice")
    poller = Poller(app)
    assert poll(poller, account_id).status == "baseline"
    if how == "expired":  # renewed before the request
        clock.advance(timedelta(hours=1))
    else:  # a 401, renewed and retried
        clock.advance(timedelta(minutes=10))
        fake.expire_access_tokens("alice")
    fake.like("alice", "liked-after-linking")
    other = Database(app.db.url)  # another connection pool: sees only what was committed
    seen_at_first_use: list[tuple[Credentials, int]] = []
    fake.hook(
        Phase.FIRST_USE,
        lambda user: seen_at_first_use.append(stored_credentials(other, app, account_id)),
    )
    try:
        outcome = poll(poller, account_id)
    finally:
        other.dispose()
    assert (outcome.status, outcome.stored) == ("ok", 1)
    [(committed, version)] = seen_at_first_use
    assert committed.refresh_token == fake.current_refresh_token("alice")
    assert version == 1
    assert fake.accepts(committed)
    assert fake.refreshes["alice"] == 1
    assert stored_credentials(app.db, app, account_id) == (committed, 1)


def test_a_save_refused_because_the_lease_was_lost_means_nothing_is_used_or_stored(
    app: App, fake: FakeOAuth, caplog: pytest.LogCaptureFixture
) -> None:
    account_id, poller = baseline_then_like(app, fake, "alice")
    before = stored_credentials(app.db, app, account_id)
    used: list[str] = []
    fake.hook(Phase.FIRST_USE, used.append)

    def taken_over(user: str) -> None:  # another worker takes the lease during the refresh
        with app.db.session() as session:
            session.execute(
                update(LinkedAccount)
                .where(LinkedAccount.id == account_id)
                .values(lease_owner=THIEF, lease_until=clock.now() + timedelta(minutes=5))
            )

    fake.hook(Phase.ROTATED, taken_over)
    outcome = poll(poller, account_id)
    assert outcome.status == "lease_lost"
    assert used == []
    assert items(app) == []
    assert stored_credentials(app.db, app, account_id) == before
    assert "renewed credentials could not be stored" in caplog.text


def test_a_save_refused_because_the_credentials_changed_means_nothing_is_used_or_stored(
    app: App, fake: FakeOAuth
) -> None:
    account_id, poller = baseline_then_like(app, fake, "alice")
    used: list[str] = []
    fake.hook(Phase.FIRST_USE, used.append)

    def relinked(user: str) -> None:  # the user linked the account again meanwhile
        with app.db.session() as session:
            session.execute(
                update(LinkedAccount)
                .where(LinkedAccount.id == account_id)
                .values(credentials_version=LinkedAccount.credentials_version + 1)
            )

    fake.hook(Phase.ROTATED, relinked)
    outcome = poll(poller, account_id)
    assert outcome.status == "failed"
    assert "could not be stored" in (outcome.error or "")
    assert used == []
    assert items(app) == []
    assert stored_credentials(app.db, app, account_id)[1] == 1  # the relink's, not the poll's


class Died(BaseException):
    """The process ends here: nothing after this point runs, no failure is recorded."""


def test_a_worker_that_dies_right_after_the_save_leaves_working_credentials(
    app: App, fake: FakeOAuth
) -> None:
    account_id, poller = baseline_then_like(app, fake, "alice")
    real_saver = poller._saver
    used: list[str] = []
    fake.hook(Phase.FIRST_USE, used.append)

    def saver_then_death(row: LinkedAccount) -> SaveCredentials:
        save = real_saver(row)

        def save_and_die(old: Credentials, new: Credentials) -> None:
            save(old, new)
            raise Died

        return save_and_die

    poller._saver = saver_then_death  # type: ignore[method-assign]
    with pytest.raises(Died):
        poll(poller, account_id)
    assert used == []  # died before the retry went out
    saved, version = stored_credentials(app.db, app, account_id)
    assert version == 1
    assert saved.refresh_token == fake.current_refresh_token("alice")
    assert fake.accepts(saved)

    clock.advance(timedelta(seconds=app.settings.worker.lease_seconds + 1))  # its lease ends
    successor = Poller(app)
    outcome = poll(successor, account_id)
    assert (outcome.status, outcome.stored) == ("ok", 1)
    assert items(app) == ["liked-after-linking"]
    assert fake.refreshes["alice"] == 1  # the saved access token was still good
    assert fake.refused["alice"] == 0


def test_a_refused_refresh_marks_the_account_for_relinking(app: App, fake: FakeOAuth) -> None:
    account_id, poller = baseline_then_like(app, fake, "alice")
    fake.revoke("alice")
    outcome = poll(poller, account_id)
    assert outcome.status == "auth_expired"
    row = stored_row(app, account_id)
    assert (row.status, row.next_poll_at) == (AccountStatus.AUTH_EXPIRED.value, None)
    assert "invalid_grant" in (row.last_error or "")
    assert fake.refused["alice"] == 1
    credentials, version = stored_credentials(app.db, app, account_id)
    assert version == 0
    for secret in (*credentials.secret_values(), SECRET):
        assert secret not in (row.last_error or "")


def stored_row(app: App, account_id: int) -> LinkedAccount:
    with app.db.reader() as session:
        return session.get_one(LinkedAccount, account_id)


def test_two_refreshes_of_one_account_cannot_both_be_saved(app: App, fake: FakeOAuth) -> None:
    account_id = link(app, fake, "alice")
    poller = Poller(app)
    assert poller.claim_accounts([account_id]) == [account_id]
    row = stored_row(app, account_id)
    old = app.box.open(row.credentials)
    renewed = [
        Credentials(access_token=f"fo-at-renewed-{n}", refresh_token=f"fo-rt-renewed-{n}")
        for n in range(2)
    ]
    savers = [poller._saver(row), poller._saver(row)]  # two polls that read the same row
    start = threading.Barrier(2)
    results: list[str | None] = [None, None]

    def save(n: int) -> Callable[[], None]:
        def run() -> None:
            start.wait()
            try:
                savers[n](old, renewed[n])
                results[n] = "saved"
            except CredentialsNotSaved:
                results[n] = "refused"

        return run

    threads = [threading.Thread(target=save(n)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results, key=str) == ["refused", "saved"]
    winner = results.index("saved")
    assert stored_credentials(app.db, app, account_id) == (renewed[winner], 1)
