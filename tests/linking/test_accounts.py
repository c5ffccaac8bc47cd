"""Linking an account: the platform says whose token it is, the token is sealed, the
creator identity becomes the user's and what was held for it is paid."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from trickle.app import App
from trickle.connectors.errors import AuthExpired
from trickle.connectors.github.fake import FakeGitHub
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.escrow import ClaimError
from trickle.core.models import LinkedAccount
from trickle.core.users import UserError
from trickle.linking import LinkError, link_account

TOKEN = "ghp_linkingTestToken000000000000"


@pytest.fixture
def github():
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def linked_app(settings, github, world) -> App:
    settings.connectors["github"] = {"base_url": github.base_url}
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    world.user("alice", budget="3.00", funds="10.00")
    world.user("bob", budget="3.00", funds="10.00")
    application = App(settings)
    yield application
    application.close()


def _account(app: App) -> LinkedAccount:
    with app.db.reader() as session:
        return session.scalars(select(LinkedAccount)).one()


def test_linking_stores_who_the_token_belongs_to_and_schedules_a_baseline_poll(linked_app, github):
    github.add_user("alice-gh", TOKEN, user_id=777)

    result = link_account(linked_app, "github", "alice", Credentials(access_token=TOKEN))

    account = _account(linked_app)
    assert (result.platform_user_id, result.handle, result.relinked) == ("777", "alice-gh", False)
    assert account.status == "active"
    assert account.baseline_done is False
    assert account.next_poll_at == clock.now()
    assert TOKEN.encode() not in account.credentials
    assert linked_app.box.open(account.credentials) == Credentials(access_token=TOKEN)


def test_linking_claims_the_identity_and_pays_what_was_reserved_for_it(linked_app, github, world):
    world.like("bob", "777", datetime(2026, 10, 5, tzinfo=UTC))
    clock.set(datetime(2026, 11, 3, tzinfo=UTC), frozen=True)
    world.settle("2026-10")
    github.add_user("alice-gh", TOKEN, user_id=777)

    result = link_account(linked_app, "github", "alice", Credentials(access_token=TOKEN))

    assert result.claim.posted_shares == 1
    assert world.funds("alice") == (1000 + 300, 0)
    assert world.violations() == []


def test_linking_again_refreshes_the_token_and_reactivates_the_account(linked_app, github):
    github.add_user("alice-gh", TOKEN, user_id=777)
    link_account(linked_app, "github", "alice", Credentials(access_token=TOKEN))
    with linked_app.db.session() as session:
        account = session.scalars(select(LinkedAccount)).one()
        account.status = "auth_expired"
        account.next_poll_at = None
        account.failures = 3
    github.add_user("alice-gh", "ghp_newToken", user_id=777)

    result = link_account(linked_app, "github", "alice", Credentials(access_token="ghp_newToken"))

    account = _account(linked_app)
    assert result.relinked
    assert (account.status, account.failures) == ("active", 0)
    assert account.next_poll_at is not None
    assert linked_app.box.open(account.credentials) == Credentials(access_token="ghp_newToken")


def test_an_account_linked_to_one_user_cannot_be_linked_to_another(linked_app, github):
    github.add_user("alice-gh", TOKEN, user_id=777)
    link_account(linked_app, "github", "alice", Credentials(access_token=TOKEN))
    with pytest.raises(LinkError, match="already linked to another trickle user"):
        link_account(linked_app, "github", "bob", Credentials(access_token=TOKEN))


def test_an_identity_claimed_by_someone_else_cannot_be_linked(linked_app, github, world):
    world.claim("777", "bob")
    github.add_user("alice-gh", TOKEN, user_id=777)
    with pytest.raises(ClaimError, match="already claimed by bob"):
        link_account(linked_app, "github", "alice", Credentials(access_token=TOKEN))
    with linked_app.db.reader() as session:
        assert session.scalars(select(LinkedAccount)).all() == []


def test_a_refused_token_links_nothing(linked_app, github):
    with pytest.raises(AuthExpired):
        link_account(linked_app, "github", "alice", Credentials(access_token="nope"))
    with linked_app.db.reader() as session:
        assert session.scalars(select(LinkedAccount)).all() == []


def test_an_unknown_user_fails_before_the_platform_is_asked(linked_app, github):
    with pytest.raises(UserError, match="no user called 'zed'"):
        link_account(linked_app, "github", "zed", Credentials(access_token=TOKEN))
    assert github.total_requests == 0


def test_the_link_time_is_whole_seconds_like_the_platforms_like_times(linked_app, github):
    clock.set(datetime(2026, 10, 1, 12, 0, 0, 700_000, tzinfo=UTC), frozen=True)
    github.add_user("alice-gh", TOKEN, user_id=777)

    link_account(linked_app, "github", "alice", Credentials(access_token=TOKEN))

    # A star GitHub dates 12:00:00, made in the same second, counts as after the link.
    assert _account(linked_app).linked_at == datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)
