"""Month reports: an open month is projected by the very settlement that would pay it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trickle.core.clock import clock
from trickle.core.periods import Period
from trickle.core.reports import dry_run_report, month_report
from trickle.core.settlement import MonthNotClosed, Settlement, SettlementError, SettleOptions
from trickle.core.users import UserError

OCT = datetime(2026, 10, 10, tzinfo=UTC)
NOV = datetime(2026, 11, 10, tzinfo=UTC)
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


def _report(db, month: str = "2026-10", **kwargs):
    return month_report(db, Period.parse(month), OPTIONS, currency="EUR", **kwargs)


def _shape(report):
    return (
        [u.to_json() for u in report.users],
        [(s.user, s.item_id, s.amount_minor, s.state, s.recipient) for s in report.shares],
    )


def test_an_open_month_is_projected_exactly_as_settling_it_pays_and_reserves(october, db):
    projected = _report(db)
    assert projected.status == "open"
    assert projected.projected
    # A creator who has not joined is reserved in the projection too, never shown as paid.
    assert {(s.creator_id, s.state) for s in projected.shares} == {
        ("carol-gh", "paid"),
        ("x", "reserved"),
        ("y", "reserved"),
    }

    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    settled = _report(db)

    assert settled.status == "settled"
    assert _shape(projected) == _shape(settled)


def test_a_projection_writes_nothing(october, db):
    ledger, shares = october.ledger(), october.shares()
    _report(db)
    _report(db, user="alice")
    assert (october.ledger(), october.shares()) == (ledger, shares)
    assert october.settle("2026-10", fee_bps=OPTIONS.fee_bps).status == "settled"


def test_a_later_open_month_is_projected_after_the_earlier_one_settles(october, db):
    """November's projection spends what October would leave, not what alice has today."""
    october.like("alice", "x", NOV)
    clock.set(datetime(2026, 12, 3, tzinfo=UTC), frozen=True)

    november = _report(db, "2026-11")

    assert november.assumes_settled == (Period(2026, 10),)
    alice = next(u for u in november.users if u.user == "alice")
    assert alice.available_minor == 0  # October spends all of her 4.00
    assert alice.spent_minor == 0
    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    october.settle("2026-11", fee_bps=OPTIONS.fee_bps)
    assert _shape(november) == _shape(_report(db, "2026-11"))


def test_each_users_row_adds_up_to_what_they_spent(october, db):
    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    for report in (_report(db), _report(db, "2026-11")):
        for u in report.users:
            shares = u.minor_in("paid") + u.minor_in("reserved") + u.minor_in("returned")
            assert shares + u.fee_minor == u.spent_minor, u


def test_the_json_form_has_the_documented_fields(october, db):
    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    data = _report(db).to_json()

    assert data.keys() == {"period", "currency", "status", "assumes_settled", "users", "shares"}
    assert data["period"] == "2026-10"
    share = data["shares"][0]
    assert {"user", "platform", "item_id", "creator_id", "amount_minor", "state"} <= share.keys()
    assert {s["state"] for s in data["shares"]} == {"paid", "reserved"}
    alice = next(u for u in data["users"] if u["user"] == "alice")
    assert alice == {
        "user": "alice",
        "currency": "EUR",
        "flattrs": 3,
        "budget_minor": 500,
        "available_minor": 400,
        "spent_minor": 400,  # her funds, below the 5.00 budget
        "fee_minor": 8,
        "paid_minor": 131,
        "reserved_minor": 261,
        "returned_minor": 0,
    }
    paid_and_held = sum(s["amount_minor"] for s in data["shares"] if s["user"] == "alice")
    assert paid_and_held + alice["fee_minor"] == alice["spent_minor"]


def test_a_users_statement_has_only_their_flattrs(october, db):
    statement = _report(db, user="bob")
    assert [u.user for u in statement.users] == ["bob"]
    assert [s.creator_id for s in statement.shares] == ["x"]
    assert [s.state for s in statement.shares] == ["reserved"]


def test_a_statement_for_an_unknown_user_is_a_clear_error(october, db):
    with pytest.raises(UserError, match="no user called 'zed'"):
        _report(db, user="zed")


def test_totals_add_up_per_currency(october, db):
    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    totals = _report(db).totals()["EUR"]
    assert (
        totals["paid"] + totals["reserved"] + totals["returned"] + totals["fees"]
        == (totals["spent"])
    )


# ---------------------------------------------------------------------------
# settle --dry-run


def test_a_dry_run_is_the_real_settlement_rolled_back(october, db):
    settlement = Settlement(db, OPTIONS)
    dry = dry_run_report(settlement, Period(2026, 10), force=True, currency="EUR")
    assert october.shares() == []
    settlement.settle(Period(2026, 10), force=True)
    assert _shape(dry) == _shape(_report(db))


def test_a_dry_run_refuses_what_settling_refuses(october, db):
    settlement = Settlement(db, SettleOptions(grace_hours=24 * 40))
    with pytest.raises(MonthNotClosed, match="grace period"):
        dry_run_report(settlement, Period(2026, 10), force=False, currency="EUR")
    october.like("alice", "x", NOV)
    clock.set(datetime(2026, 12, 3, tzinfo=UTC), frozen=True)
    with pytest.raises(SettlementError, match="settle 2026-10 first"):
        dry_run_report(settlement, Period(2026, 11), force=True, currency="EUR")
    with pytest.raises(SettlementError, match="has not ended yet"):
        dry_run_report(settlement, Period(2026, 12), force=True, currency="EUR")


def test_a_dry_run_of_a_settled_month_shows_it_as_settled(october, db):
    october.settle("2026-10", fee_bps=OPTIONS.fee_bps)
    dry = dry_run_report(Settlement(db, OPTIONS), Period(2026, 10), force=False, currency="EUR")
    assert dry.status == "settled"
    assert _shape(dry) == _shape(_report(db))
