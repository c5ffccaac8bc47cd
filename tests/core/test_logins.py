"""One-time login links: good once, for a while, for an active user; only a hash is stored."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.logins import LoginLinkError, create_login_link, redeem_login_link
from trickle.core.models import LoginLink
from trickle.core.money import Money
from trickle.core.users import add_user, set_active, set_operator, set_public


@pytest.fixture
def alice(db: Database, now: datetime) -> str:
    with db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
    return "alice"


def test_a_link_signs_its_user_in_once(db: Database, alice: str) -> None:
    with db.session() as session:
        token = create_login_link(session, alice, timedelta(hours=1))
    with db.session() as session:
        user = redeem_login_link(session, token)
        assert user is not None
        assert user.name == alice
    with db.session() as session:
        assert redeem_login_link(session, token) is None


def test_only_a_hash_of_the_token_is_stored(db: Database, alice: str) -> None:
    with db.session() as session:
        token = create_login_link(session, alice, timedelta(hours=1))
    with db.reader() as session:
        stored = session.scalars(select(LoginLink.token_hash)).one()
    assert token not in stored
    assert len(stored) == 64


def test_an_expired_link_signs_nobody_in(db: Database, alice: str) -> None:
    with db.session() as session:
        token = create_login_link(session, alice, timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    with db.session() as session:
        assert redeem_login_link(session, token) is None


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 500])
def test_an_unknown_token_signs_nobody_in(db: Database, alice: str, token: str) -> None:
    with db.session() as session:
        create_login_link(session, alice, timedelta(hours=1))
        assert redeem_login_link(session, token) is None


def test_a_deactivated_user_gets_no_link_and_cannot_use_one(db: Database, alice: str) -> None:
    with db.session() as session:
        token = create_login_link(session, alice, timedelta(hours=1))
        set_active(session, alice, False)
    with db.session() as session:
        assert redeem_login_link(session, token) is None
        with pytest.raises(LoginLinkError, match="deactivated"):
            create_login_link(session, alice, timedelta(hours=1))


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(days=31)])
def test_a_link_lasts_a_sensible_time(db: Database, alice: str, lifetime: timedelta) -> None:
    with db.session() as session, pytest.raises(LoginLinkError, match="at most 30 days"):
        create_login_link(session, alice, lifetime)


def test_users_are_private_and_not_operators_until_they_choose(db: Database, alice: str) -> None:
    with db.session() as session:
        assert not set_public(session, alice, False).public
        assert set_public(session, alice, True).public
        assert set_operator(session, alice, True).operator
