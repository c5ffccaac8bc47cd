"""Month reports: an open month is projected exactly as settling it would pay."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trickle.core.clock import clock
from trickle.core.periods import Period
from trickle.core.reports import month_report
from trickle.core.settlement import SettleOptions
from trickle.core.users import UserError

OCT = datetime(2026, 10, 10, tzinfo=UTC)
OPTIONS = SettleOptions(fee_bps=200)


@pytest.fixture
def october(world):
    clock.set(datetime(2026, 10, 1, tzinfo=UTC), frozen=True)
    world.user("alice", budget="5.00", funds="4.00")
    world.user("bob", budget="1.00", funds="9.00")
    world.user("carol", budget="0", funds=None)
    world.claim("carol-gh", "carol")
    for creator in ("carol-gh", "x", "y"):
        world.like("alice", creator, OCT)
    world.like("bob", "x", OCT)
    clock.set(datetime(2026, 11, 3, tzinfo=UTC), frozen=True)
    return world


def _report(db, **kwargs):
    with db.reader() as session:
        return month_report(session, Period(2026, 10), OPTIONS, currency="EUR", **kwargs)


def test_an_open_month_is_projected_as_settling_would_pay(october, db):
    projected = _report(db)
    assert projected.status == "open"
    assert {s.state for s in projected.shares} == {"projected"}

    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    settled = _report(db)

    assert settled.status == "settled"
    assert [u.to_json() for u in projected.users] == [u.to_json() for u in settled.users]
    assert [(s.user, s.item_id, s.amount_minor) for s in projected.shares] == [
        (s.user, s.item_id, s.amount_minor) for s in settled.shares
    ]


def test_the_json_form_has_the_documented_fields(october, db):
    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    data = _report(db).to_json()

    assert {"period", "currency", "status", "users", "shares"} <= data.keys()
    assert data["period"] == "2026-10"
    assert {"user", "spent_minor", "fee_minor", "flattrs"} <= data["users"][0].keys()
    share = data["shares"][0]
    assert {"user", "platform", "item_id", "creator_id", "amount_minor", "state"} <= share.keys()
    assert {s["state"] for s in data["shares"]} == {"paid", "reserved"}
    alice = next(u for u in data["users"] if u["user"] == "alice")
    assert alice == {
        "user": "alice",
        "currency": "EUR",
        "spent_minor": 400,  # funds, below the 5.00 budget
        "fee_minor": 8,
        "flattrs": 3,
        "budget_minor": 500,
        "funds_minor": 400,
    }
    paid_and_held = sum(s["amount_minor"] for s in data["shares"] if s["user"] == "alice")
    assert paid_and_held + alice["fee_minor"] == alice["spent_minor"]


def test_a_users_statement_has_only_their_flattrs(october, db):
    statement = _report(db, user="bob")
    assert [u.user for u in statement.users] == ["bob"]
    assert [s.creator_id for s in statement.shares] == ["x"]


def test_a_statement_for_an_unknown_user_is_a_clear_error(october, db):
    with pytest.raises(UserError, match="no user called 'zed'"):
        _report(db, user="zed")


def test_totals_add_up_per_currency(october, db):
    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    totals = _report(db).totals()["EUR"]
    assert totals["paid"] + totals["reserved"] + totals["fees"] == totals["spent"]
