"""Users: names, monthly budgets with their history, and the money they put in."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from trickle.core.clock import clock
from trickle.core.db import Database
from trickle.core.ledger import LedgerError, funds_of
from trickle.core.models import AccountStatus, Budget, LedgerTransaction, LinkedAccount, User
from trickle.core.money import (
    MAX_BALANCE_MINOR,
    MAX_BUDGET_MINOR,
    MAX_DEPOSIT_MINOR,
    Money,
    MoneyError,
)
from trickle.core.users import (
    UserError,
    UserSummary,
    add_user,
    current_budget,
    fund,
    get_user,
    list_users,
    set_active,
    set_budget,
)

pytestmark = pytest.mark.usefixtures("now")


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


def user_count(db: Database) -> int:
    with db.reader() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


# ---------------------------------------------------------------------------
# add_user and get_user


def test_a_new_user_has_a_currency_a_budget_and_a_creation_time(
    db: Database, now: datetime
) -> None:
    with db.session() as session:
        user = add_user(session, "alice", Money(1000, "USD"))
    with db.reader() as session:
        found = get_user(session, "alice")
        assert (found.id, found.name, found.currency, found.created_at) == (
            user.id,
            "alice",
            "USD",
            now,
        )
        assert current_budget(session, user.id) == 1000


@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "a",
        "Bob.Smith",
        "carol_99",
        "dave@example.org",
        "e-f",
        "x" * 100,
        "élodie",
        "ålice",
        "Zoë",
        "李雷",
        "Дмитрий",
        "हिन्दी",  # letters with combining vowel signs
        "7up",
    ],
)
def test_user_names_are_letters_and_digits_of_any_language_and_a_few_marks(
    sqlite_db: Database, name: str
) -> None:
    with sqlite_db.session() as session:
        add_user(session, name, eur(500))
    assert user_count(sqlite_db) == 1


@pytest.mark.parametrize(
    "name",
    [
        "",
        " alice",
        "alice ",
        "al ice",
        "-alice",
        ".alice",
        "alice\n",
        "al/ice",
        "x" * 101,
        "[bold]x[/bold]",
        "al\u200bice",  # a zero-width space: looks like "alice"
        "\u0301e",  # starts with a combining mark
        "ali\x1bce",
    ],
)
def test_a_bad_user_name_is_refused_with_the_rules(sqlite_db: Database, name: str) -> None:
    with (
        pytest.raises(UserError, match=r"bad user name .*use letters and digits"),
        sqlite_db.session() as s,
    ):
        add_user(s, name, eur(500))
    assert user_count(sqlite_db) == 0


def test_a_name_is_one_user_however_its_accents_are_encoded(sqlite_db: Database) -> None:
    composed, decomposed = "\u00e9lodie", "e\u0301lodie"
    with sqlite_db.session() as session:
        add_user(session, decomposed, eur(500))
    with sqlite_db.session() as session:
        assert get_user(session, composed).name == composed
        with pytest.raises(UserError, match="already exists"):
            add_user(session, composed, eur(500))


def test_a_second_user_with_the_same_name_is_refused(db: Database) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
    with pytest.raises(UserError, match="a user called 'alice' already exists"), db.session() as s:
        add_user(s, "alice", Money(100, "USD"))
    assert user_count(db) == 1
    with db.reader() as session:
        assert get_user(session, "alice").currency == "EUR"


def test_a_negative_budget_is_refused(db: Database) -> None:
    with pytest.raises(MoneyError, match="cannot be negative"), db.session() as session:
        add_user(session, "alice", eur(-1))
    assert user_count(db) == 0


def test_a_zero_budget_is_allowed(db: Database) -> None:
    with db.session() as session:
        user = add_user(session, "alice", eur(0))
        assert current_budget(session, user.id) == 0


def test_an_unknown_user_is_a_clear_error(db: Database) -> None:
    with (
        pytest.raises(UserError, match=r"no user called 'nobody' \(see `trickle users list`\)"),
        db.reader() as session,
    ):
        get_user(session, "nobody")


# ---------------------------------------------------------------------------
# budgets


def test_set_budget_returns_the_previous_budget(db: Database) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
    clock.advance(timedelta(days=1))
    with db.session() as session:
        assert set_budget(session, "alice", eur(800)) == eur(500)
    clock.advance(timedelta(days=1))
    with db.session() as session:
        assert set_budget(session, "alice", eur(300)) == eur(800)


def test_changing_a_budget_twice_at_the_same_instant_keeps_the_last(db: Database) -> None:
    with db.session() as session:
        user = add_user(session, "alice", eur(500))
        assert set_budget(session, "alice", eur(800)) == eur(500)
        assert set_budget(session, "alice", eur(300)) == eur(800)
        assert current_budget(session, user.id) == 300


def test_the_budget_in_force_at_a_time_is_the_latest_set_before_it(
    db: Database, now: datetime
) -> None:
    with db.session() as session:
        alice = add_user(session, "alice", eur(500)).id
    clock.advance(timedelta(days=10))
    with db.session() as session:
        set_budget(session, "alice", eur(800))
    clock.advance(timedelta(days=10))
    with db.session() as session:
        set_budget(session, "alice", eur(0))
    with db.reader() as session:
        assert current_budget(session, alice, now - timedelta(seconds=1)) == 0
        assert current_budget(session, alice, now) == 500
        assert current_budget(session, alice, now + timedelta(days=9)) == 500
        assert current_budget(session, alice, now + timedelta(days=10)) == 800
        assert current_budget(session, alice, now + timedelta(days=19)) == 800
        assert current_budget(session, alice, now + timedelta(days=20)) == 0
        assert current_budget(session, alice) == 0
        assert session.scalar(select(func.count()).select_from(Budget)) == 3


def test_a_budget_in_another_currency_is_refused(db: Database) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
    with pytest.raises(MoneyError, match="alice's budget is in EUR, not USD"), db.session() as s:
        set_budget(s, "alice", Money(500, "USD"))


def test_a_negative_budget_change_is_refused_and_the_old_one_stays(db: Database) -> None:
    with db.session() as session:
        alice = add_user(session, "alice", eur(500)).id
    with pytest.raises(MoneyError, match="cannot be negative"), db.session() as session:
        set_budget(session, "alice", eur(-100))
    with db.reader() as session:
        assert current_budget(session, alice) == 500


def test_setting_the_budget_of_an_unknown_user_is_a_user_error(db: Database) -> None:
    with pytest.raises(UserError, match="no user called 'bob'"), db.session() as session:
        set_budget(session, "bob", eur(500))


# ---------------------------------------------------------------------------
# funding


def test_funding_adds_to_the_wallet(db: Database) -> None:
    with db.session() as session:
        alice = add_user(session, "alice", eur(500)).id
        assert fund(session, "alice", eur(2000)) is True
        assert fund(session, "alice", eur(150)) is True
    with db.reader() as session:
        assert funds_of(session, alice, "EUR").balance == 2150


def test_funding_twice_with_one_reference_adds_the_money_once(db: Database) -> None:
    with db.session() as session:
        alice = add_user(session, "alice", eur(500)).id
        assert fund(session, "alice", eur(2000), reference="stripe:ch_1") is True
    with db.session() as session:
        assert fund(session, "alice", eur(2000), reference="stripe:ch_1") is False
    with db.reader() as session:
        assert funds_of(session, alice, "EUR").balance == 2000
        assert session.scalars(select(LedgerTransaction.key)).all() == ["deposit:stripe:ch_1"]


def test_funding_without_a_reference_is_never_taken_for_a_repeat(db: Database) -> None:
    with db.session() as session:
        alice = add_user(session, "alice", eur(500)).id
        fund(session, "alice", eur(100))
        fund(session, "alice", eur(100))
    with db.reader() as session:
        assert funds_of(session, alice, "EUR").balance == 200


def test_funding_in_another_currency_is_refused(db: Database) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
    with pytest.raises(MoneyError, match="alice's wallet is in EUR, not GBP"), db.session() as s:
        fund(s, "alice", Money(100, "GBP"))


@pytest.mark.parametrize("minor", [0, -100])
def test_funding_must_be_more_than_zero(db: Database, minor: int) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
    with pytest.raises(MoneyError, match="more than zero"), db.session() as session:
        fund(session, "alice", eur(minor))


def test_a_budget_above_the_maximum_is_refused_when_added_or_changed(db: Database) -> None:
    with pytest.raises(MoneyError, match=r"at most 10000000.00 EUR"), db.session() as session:
        add_user(session, "alice", eur(MAX_BUDGET_MINOR + 1))
    with db.session() as session:
        add_user(session, "alice", eur(MAX_BUDGET_MINOR))
    with pytest.raises(MoneyError, match=r"at most"), db.session() as session:
        set_budget(session, "alice", eur(2**62))
    with db.reader() as session:
        assert current_budget(session, get_user(session, "alice").id) == MAX_BUDGET_MINOR


def test_a_deposit_above_the_maximum_is_refused(db: Database) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
    with pytest.raises(MoneyError, match=r"at most 1000000000.00 EUR"), db.session() as session:
        fund(session, "alice", eur(MAX_DEPOSIT_MINOR + 1))
    with db.session() as session:
        assert fund(session, "alice", eur(MAX_DEPOSIT_MINOR))


def test_deposits_stop_where_trickle_holds_the_most_it_may(db: Database) -> None:
    """Two deposits near 2**63 are not both credited (they were, and then every sum
    overflowed): the total held in a currency stops at MAX_BALANCE_MINOR."""
    with db.session() as session:
        add_user(session, "alice", eur(500))
        add_user(session, "bob", eur(500))
    deposits = MAX_BALANCE_MINOR // MAX_DEPOSIT_MINOR
    with db.session() as session:
        for n in range(deposits):
            fund(session, "alice" if n % 2 else "bob", eur(MAX_DEPOSIT_MINOR), reference=f"r{n}")
    with pytest.raises(LedgerError, match=r"holds at most"), db.session() as session:
        fund(session, "alice", eur(1), reference="one-too-many")
    with db.session() as session:  # a repeated reference is still a no-op, not an error
        assert not fund(session, "bob", eur(MAX_DEPOSIT_MINOR), reference="r0")
    with db.reader() as session:
        assert sum(u.balance_minor for u in list_users(session)) == MAX_BALANCE_MINOR


@pytest.mark.parametrize("reference", ["", "   ", "a\nb", "x" * 101])
def test_a_payment_reference_is_one_line_and_never_empty(db: Database, reference: str) -> None:
    """An empty reference was a reference like any other: ``--reference ""`` credited twice."""
    with db.session() as session:
        add_user(session, "alice", eur(500))
    with pytest.raises(UserError, match="payment reference"), db.session() as session:
        fund(session, "alice", eur(100), reference=reference)
    with db.reader() as session:
        assert funds_of(session, get_user(session, "alice").id, "EUR").balance == 0


def test_funding_an_unknown_user_is_a_user_error(db: Database) -> None:
    with pytest.raises(UserError, match="no user called 'bob'"), db.session() as session:
        fund(session, "bob", eur(100))


# ---------------------------------------------------------------------------
# list_users


def test_list_users_shows_every_user_by_name_with_budget_and_funds(db: Database) -> None:
    with db.session() as session:
        add_user(session, "carol", Money(300, "USD"))
        add_user(session, "alice", eur(500))
        add_user(session, "bob", eur(0))
        fund(session, "alice", eur(2000))
        fund(session, "carol", Money(50, "USD"))
        set_budget(session, "alice", eur(750))
    with db.reader() as session:
        summaries = list_users(session)
    assert summaries == [
        UserSummary("alice", "EUR", budget_minor=750, balance_minor=2000, reserved_minor=0),
        UserSummary("bob", "EUR", budget_minor=0, balance_minor=0, reserved_minor=0),
        UserSummary("carol", "USD", budget_minor=300, balance_minor=50, reserved_minor=0),
    ]
    assert summaries[0].available_minor == 2000


def test_available_funds_are_the_balance_minus_reserved() -> None:
    assert UserSummary("a", "EUR", 500, 1000, 130).available_minor == 870


def test_list_users_of_an_empty_database_is_empty(db: Database) -> None:
    with db.reader() as session:
        assert list_users(session) == []


# ---------------------------------------------------------------------------
# deactivating and activating


def linked_account(db: Database, user: str, status: AccountStatus) -> int:
    with db.session() as session:
        account = LinkedAccount(
            user_id=get_user(session, user).id,
            platform="github",
            platform_user_id=f"{user}-{status.value}",
            handle=user,
            credentials=b"sealed",
            status=status.value,
            linked_at=clock.now() - timedelta(days=30),
            poll_state={"known": ["seen-1"]},
            baseline_done=True,
            next_poll_at=clock.now(),
            interval_seconds=300,
        )
        session.add(account)
        session.flush()
        return account.id


def account_row(db: Database, account_id: int) -> LinkedAccount:
    with db.reader() as session:
        return session.get_one(LinkedAccount, account_id)


def test_a_deactivated_users_accounts_stop_and_their_money_stays(db: Database) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
        fund(session, "alice", eur(2000))
    active = linked_account(db, "alice", AccountStatus.ACTIVE)
    expired = linked_account(db, "alice", AccountStatus.AUTH_EXPIRED)

    with db.session() as session:
        assert set_active(session, "alice", False) == 1

    assert (account_row(db, active).status, account_row(db, active).next_poll_at) == (
        "disabled",
        None,
    )
    assert account_row(db, expired).status == "auth_expired"  # still needs its relink
    with db.reader() as session:
        assert not get_user(session, "alice").active
        assert funds_of(session, get_user(session, "alice").id, "EUR").balance == 2000


def test_an_activated_user_resumes_from_a_new_baseline(db: Database) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
    account = linked_account(db, "alice", AccountStatus.ACTIVE)
    with db.session() as session:
        set_active(session, "alice", False)
    clock.advance(timedelta(days=10))

    with db.session() as session:
        assert set_active(session, "alice", True) == 1

    row = account_row(db, account)
    assert row.status == "active"
    assert row.next_poll_at == clock.now().replace(microsecond=0)
    assert row.linked_at == clock.now().replace(microsecond=0)  # liked meanwhile: not paid
    assert not row.baseline_done
    assert row.poll_state == {"known": ["seen-1"]}  # known items stay known


def test_deactivating_twice_says_so(db: Database) -> None:
    with db.session() as session:
        add_user(session, "alice", eur(500))
    with db.session() as session:
        set_active(session, "alice", False)
    with db.session() as session, pytest.raises(UserError, match="alice is already deactivated"):
        set_active(session, "alice", False)
    with db.session() as session:
        set_active(session, "alice", True)
    with db.session() as session, pytest.raises(UserError, match="alice is already active"):
        set_active(session, "alice", True)
