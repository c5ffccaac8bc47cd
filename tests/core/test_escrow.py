"""Reserved shares: paid when their creator claims them, returned when escrow runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trickle.core.clock import clock
from trickle.core.escrow import ClaimError, expire_reserved

OCT = datetime(2026, 10, 10, tzinfo=UTC)
SETTLED_AT = datetime(2026, 11, 3, tzinfo=UTC)


@pytest.fixture
def reserved(world):
    """alice flattred two items of an unclaimed creator in October; settled on Nov 3."""
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    world.user("alice", budget="3.00", funds="10.00")
    world.user("erin", budget="0", funds=None)
    world.like("alice", "erin-gh", OCT)
    world.like("alice", "erin-gh", OCT)
    world.like("alice", "someone-else", OCT)
    clock.set(SETTLED_AT, frozen=True)
    world.settle("2026-10", escrow_days=90)
    return world


def test_reserved_shares_stay_with_the_liker_but_are_not_available(reserved):
    assert reserved.funds("alice") == (1000, 300)


def test_claiming_pays_every_reserved_share_to_the_claimant(reserved):
    result = reserved.claim("erin-gh", "erin")

    assert result.posted_shares == 2
    assert result.posted_minor == {"EUR": 200}
    assert reserved.funds("erin") == (200, 0)
    assert reserved.funds("alice") == (800, 100)
    assert sorted(s for _, c, _, s in reserved.shares() if c == "erin-gh") == ["paid", "paid"]
    assert reserved.violations() == []


def test_claiming_again_pays_nothing_twice(reserved):
    reserved.claim("erin-gh", "erin")
    ledger = reserved.ledger()

    again = reserved.claim("erin-gh", "erin")

    assert again.posted_shares == 0
    assert not again.newly_claimed
    assert reserved.ledger() == ledger


def test_an_identity_claimed_by_someone_is_not_given_to_another(reserved):
    reserved.claim("erin-gh", "erin")
    with pytest.raises(ClaimError, match="already claimed by erin"):
        reserved.claim("erin-gh", "alice")


def test_claiming_ones_own_liked_identity_returns_the_holds(reserved):
    result = reserved.claim("someone-else", "alice")

    assert (result.posted_shares, result.returned_shares) == (0, 1)
    assert reserved.funds("alice") == (1000, 200)
    assert reserved.violations() == []


def test_shares_expire_after_escrow_days_and_return_to_the_liker(reserved, db):
    clock.set(SETTLED_AT + timedelta(days=90) - timedelta(seconds=1), frozen=True)
    with db.session() as session:
        assert expire_reserved(session).shares == 0

    clock.set(SETTLED_AT + timedelta(days=90), frozen=True)
    with db.session() as session:
        result = expire_reserved(session)

    assert result.shares == 3
    assert result.returned_minor == {"EUR": 300}
    assert reserved.funds("alice") == (1000, 0)
    assert {s for *_, s in reserved.shares()} == {"returned"}
    assert reserved.violations() == []


def test_an_expired_share_is_not_paid_by_a_later_claim(reserved, db):
    clock.set(SETTLED_AT + timedelta(days=91), frozen=True)
    with db.session() as session:
        expire_reserved(session)

    result = reserved.claim("erin-gh", "erin")

    assert result.posted_shares == 0
    assert reserved.funds("erin") == (0, 0)


def test_a_claim_before_any_like_creates_the_identity(world):
    world.user("erin", budget="0", funds=None)
    result = world.claim("brand-new", "erin")
    assert result.newly_claimed
    assert result.posted_shares == 0
