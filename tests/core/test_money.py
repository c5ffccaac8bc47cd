"""Money: exact parsing and formatting, fees, and the exact, unbiased equal split."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import BigInteger, literal, select

from trickle.core.db import Database
from trickle.core.money import (
    CURRENCY_EXPONENTS,
    MAX_BALANCE_MINOR,
    MAX_BUDGET_MINOR,
    MAX_DEPOSIT_MINOR,
    SPLIT_PRIME,
    Money,
    MoneyError,
    exponent,
    fee_of,
    format_money,
    normalize_currency,
    parse_money,
    split_evenly,
    split_rank_key,
)
from trickle.core.settlement import rank_key_sql

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
amounts = st.integers(min_value=-(10**15), max_value=10**15)


# ---------------------------------------------------------------------------
# parse_money


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", Money(500, "EUR")),
        ("5.00", Money(500, "EUR")),
        ("5.5", Money(550, "EUR")),
        ("5.", Money(500, "EUR")),
        ("0.01", Money(1, "EUR")),
        ("4.99 EUR", Money(499, "EUR")),
        ("EUR 4.99", Money(499, "EUR")),
        ("4.99EUR", Money(499, "EUR")),
        ("4.99 usd", Money(499, "USD")),
        ("  12.30  ", Money(1230, "EUR")),
        ("+3", Money(300, "EUR")),
        ("4.990", Money(499, "EUR")),
        ("500 JPY", Money(500, "JPY")),
        ("500.000 JPY", Money(500, "JPY")),
        ("1.234 KWD", Money(1234, "KWD")),
        ("KWD 0.5", Money(500, "KWD")),
        ("0", Money(0, "EUR")),
    ],
)
def test_parse_money_reads_the_amount_exactly(text: str, expected: Money) -> None:
    assert parse_money(text, "EUR") == expected


def test_parse_money_uses_the_default_currency_only_when_the_text_names_none() -> None:
    assert parse_money("7", "usd") == Money(700, "USD")
    assert parse_money("7 GBP", "USD") == Money(700, "GBP")


def test_parse_money_keeps_amounts_larger_than_a_float_can_hold_exactly() -> None:
    assert parse_money("90071992547409.93", "EUR").minor == 9_007_199_254_740_993


@pytest.mark.parametrize(
    ("text", "currency", "places"),
    [("4.999", "EUR", 2), ("4.5 JPY", "JPY", 0), ("1.2345 KWD", "KWD", 3), ("0.001", "USD", 2)],
)
def test_parse_money_rejects_more_decimals_than_the_currency_allows(
    text: str, currency: str, places: int
) -> None:
    with pytest.raises(MoneyError, match=rf"more decimals than {currency} allows \({places}\)"):
        parse_money(text, "EUR" if currency == "EUR" else currency)


def test_parse_money_rejects_a_negative_amount_unless_allowed() -> None:
    with pytest.raises(MoneyError, match="must not be negative"):
        parse_money("-5", "EUR")
    assert parse_money("-0.05", "EUR", allow_negative=True) == Money(-5, "EUR")


def test_parse_money_names_an_unknown_currency_and_lists_the_known_ones() -> None:
    with pytest.raises(MoneyError, match=r"unknown currency 'XYZ' \(known: AUD, .*EUR"):
        parse_money("5 XYZ", "EUR")
    with pytest.raises(MoneyError, match="unknown currency 'ABC'"):
        parse_money("5", "ABC")


@pytest.mark.parametrize(
    "text", ["", "   ", "five", "5,00", "5.00.00", ".50", "1e3", "€5", "5 EURO", "--5", "5 5"]
)
def test_parse_money_rejects_garbage_with_an_example_of_what_it_accepts(text: str) -> None:
    with pytest.raises(
        MoneyError, match=r"not an amount: .*\(write it like 5, 5\.00 or 4\.99 EUR\)"
    ):
        parse_money(text, "EUR")


def test_parse_money_refuses_more_than_the_maximum_naming_it() -> None:
    assert parse_money("10000000", "EUR", maximum=MAX_BUDGET_MINOR).minor == MAX_BUDGET_MINOR
    with pytest.raises(MoneyError, match=r"more than a budget may be \(at most 10000000.00 EUR"):
        parse_money("10000000.01", "EUR", maximum=MAX_BUDGET_MINOR, what="budget")


@pytest.mark.parametrize("digits", [31, 5000, 100_000])
def test_parse_money_refuses_absurdly_long_numbers_without_echoing_them(digits: int) -> None:
    """Python refuses to turn 5,000 digits into an int (a ValueError, not ours), and an error
    message should not repeat 100,000 of them."""
    with pytest.raises(MoneyError) as caught:
        parse_money("9" * digits, "EUR", maximum=MAX_BUDGET_MINOR, what="budget")
    assert len(str(caught.value)) < 200


@given(st.integers(min_value=0, max_value=10**20))
def test_parse_money_accepts_exactly_the_amounts_up_to_the_maximum(minor: int) -> None:
    text = format_money(minor, "EUR")
    if minor <= MAX_DEPOSIT_MINOR:
        assert parse_money(text, "EUR", maximum=MAX_DEPOSIT_MINOR).minor == minor
    else:
        with pytest.raises(MoneyError, match="at most"):
            parse_money(text, "EUR", maximum=MAX_DEPOSIT_MINOR)


def test_the_limits_keep_every_sum_far_inside_64_bits() -> None:
    assert MAX_BUDGET_MINOR <= MAX_DEPOSIT_MINOR <= MAX_BALANCE_MINOR
    assert MAX_BALANCE_MINOR * 10_000 < 2**63  # fee arithmetic multiplies by basis points


def test_parse_money_rejects_a_currency_given_twice() -> None:
    with pytest.raises(MoneyError, match="give the currency once"):
        parse_money("EUR 5 EUR", "EUR")


def test_money_error_is_a_value_error_and_a_trickle_error() -> None:
    from trickle.core.errors import TrickleError

    with pytest.raises(MoneyError) as caught:
        parse_money("x", "EUR")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, TrickleError)


# ---------------------------------------------------------------------------
# currencies and format_money


def test_exponent_knows_zero_two_and_three_decimal_currencies() -> None:
    assert (exponent("JPY"), exponent("EUR"), exponent("KWD")) == (0, 2, 3)


def test_normalize_currency_upper_cases_and_validates() -> None:
    assert normalize_currency(" eur ") == "EUR"
    with pytest.raises(MoneyError, match="unknown currency 'EURO'"):
        normalize_currency("euro")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (499, "EUR", "4.99 EUR"),
        (5, "EUR", "0.05 EUR"),
        (-5, "EUR", "-0.05 EUR"),
        (-123456, "USD", "-1234.56 USD"),
        (0, "EUR", "0.00 EUR"),
        (500, "JPY", "500 JPY"),
        (-7, "JPY", "-7 JPY"),
        (1, "KWD", "0.001 KWD"),
        (12345, "KWD", "12.345 KWD"),
    ],
)
def test_format_money_writes_every_minor_digit_and_the_code(
    minor: int, currency: str, text: str
) -> None:
    assert format_money(minor, currency) == text


def test_str_of_money_is_its_formatted_amount() -> None:
    assert str(Money(1999, "EUR")) == "19.99 EUR"


@given(minor=amounts, currency=currencies)
def test_parsing_a_formatted_amount_gives_the_same_money(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    assert parse_money(format_money(minor, currency), "EUR", allow_negative=True) == money


# ---------------------------------------------------------------------------
# Money


def test_money_adds_and_subtracts_in_one_currency() -> None:
    assert Money(150, "EUR") + Money(75, "EUR") == Money(225, "EUR")
    assert Money(150, "EUR") - Money(175, "EUR") == Money(-25, "EUR")


@pytest.mark.parametrize("op", ["add", "sub"])
def test_money_refuses_to_mix_currencies(op: str) -> None:
    euros, dollars = Money(100, "EUR"), Money(100, "USD")
    with pytest.raises(MoneyError, match="cannot mix EUR and USD"):
        _ = euros + dollars if op == "add" else euros - dollars


@pytest.mark.parametrize("minor", [1.5, 1.0, "100", True, None])
def test_money_refuses_anything_but_an_integer_amount(minor: object) -> None:
    with pytest.raises(MoneyError, match="integer count of minor units"):
        Money(minor, "EUR")  # type: ignore[arg-type]


def test_money_refuses_an_unknown_currency() -> None:
    with pytest.raises(MoneyError, match="unknown currency 'XXX'"):
        Money(1, "XXX")


def test_money_is_immutable_and_hashable() -> None:
    money = Money(1, "EUR")
    with pytest.raises(AttributeError):
        money.minor = 2  # type: ignore[misc]
    assert {money, Money(1, "EUR")} == {Money(1, "EUR")}


# ---------------------------------------------------------------------------
# fee_of


@pytest.mark.parametrize(
    ("spend", "bps", "fee"),
    [
        (1000, 0, 0),
        (1000, 250, 25),
        (999, 250, 24),
        (39, 250, 0),
        (1000, 10_000, 1000),
        (0, 500, 0),
    ],
)
def test_fee_of_is_the_floor_of_spend_times_basis_points(spend: int, bps: int, fee: int) -> None:
    assert fee_of(spend, bps) == fee


@pytest.mark.parametrize("bps", [-1, 10_001])
def test_fee_of_rejects_basis_points_outside_zero_to_ten_thousand(bps: int) -> None:
    with pytest.raises(MoneyError, match="fee_bps must be between 0 and 10000"):
        fee_of(100, bps)


@given(spend=st.integers(0, 10**12), bps=st.integers(0, 10_000))
def test_fee_never_exceeds_spend_and_misses_the_exact_fee_by_less_than_a_unit(
    spend: int, bps: int
) -> None:
    fee = fee_of(spend, bps)
    assert 0 <= fee <= spend
    assert 0 <= spend * bps - fee * 10_000 < 10_000


# ---------------------------------------------------------------------------
# split_evenly


def test_split_evenly_gives_the_leftover_to_the_smallest_rank_keys() -> None:
    assert split_evenly(10, [30, 10, 20]) == [3, 4, 3]
    assert split_evenly(11, [30, 10, 20]) == [3, 4, 4]


def test_split_evenly_breaks_rank_key_ties_by_position() -> None:
    assert split_evenly(2, [5, 5, 5]) == [1, 1, 0]


def test_split_evenly_of_zero_gives_zero_shares() -> None:
    assert split_evenly(0, [3, 1, 2]) == [0, 0, 0]


def test_split_evenly_of_less_than_one_unit_each_gives_single_units() -> None:
    assert split_evenly(2, [4, 3, 2, 1]) == [0, 0, 1, 1]


def test_split_evenly_refuses_zero_shares() -> None:
    with pytest.raises(MoneyError, match="zero shares"):
        split_evenly(100, [])


def test_split_evenly_refuses_a_negative_total() -> None:
    with pytest.raises(MoneyError, match="negative"):
        split_evenly(-1, [1])


rank_key_lists = st.lists(st.integers(0, SPLIT_PRIME - 1), min_size=1, max_size=60)


@given(total=st.integers(0, 10**9), keys=rank_key_lists)
def test_split_evenly_always_sums_to_the_total(total: int, keys: list[int]) -> None:
    assert sum(split_evenly(total, keys)) == total


@given(total=st.integers(0, 10**9), keys=rank_key_lists)
def test_every_share_is_the_floor_or_one_more(total: int, keys: list[int]) -> None:
    floor = total // len(keys)
    assert set(split_evenly(total, keys)) <= {floor, floor + 1}


@given(total=st.integers(0, 10**9), keys=rank_key_lists)
def test_exactly_total_mod_n_shares_get_the_extra_unit(total: int, keys: list[int]) -> None:
    shares = split_evenly(total, keys)
    assert sum(1 for s in shares if s == total // len(keys) + 1) == total % len(keys)


@given(total=st.integers(0, 10**9), keys=rank_key_lists)
def test_split_evenly_is_deterministic(total: int, keys: list[int]) -> None:
    assert split_evenly(total, keys) == split_evenly(total, list(keys))


@given(
    total=st.integers(0, 10**6),
    keys=st.lists(st.integers(0, SPLIT_PRIME - 1), min_size=1, max_size=60, unique=True),
    data=st.data(),
)
def test_the_same_rank_key_gets_the_same_share_whatever_the_order(
    total: int, keys: list[int], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(keys))
    by_key = dict(zip(keys, split_evenly(total, keys), strict=True))
    by_key_shuffled = dict(zip(shuffled, split_evenly(total, shuffled), strict=True))
    assert by_key == by_key_shuffled


def test_the_leftover_unit_falls_on_every_position_about_equally_often() -> None:
    # Flattrs as a database hands them out: consecutive ids in list order.
    # Over many (month, user) pairs, each position must get the extra unit
    # about 1/n of the time, not always the first (or last) flattr.
    rng = random.Random(20261015)
    trials = 3000
    for n in (2, 3, 5, 7):
        extra_at: Counter[int] = Counter()
        for _ in range(trials):
            period_index = rng.randrange(1970 * 12, 2100 * 12)
            user_id = rng.randrange(1, 10**6)
            first_id = rng.randrange(1, 10**9)
            keys = [split_rank_key(period_index, user_id, first_id + i) for i in range(n)]
            shares = split_evenly(n * 10 + 1, keys)  # exactly one leftover unit
            extra_at[shares.index(11)] += 1
        expected = trials / n
        for position in range(n):
            assert abs(extra_at[position] - expected) < 0.2 * expected, (n, extra_at)


def test_split_rank_key_differs_between_months_users_and_flattrs() -> None:
    base = split_rank_key(24_321, 42, 1000)
    assert split_rank_key(24_322, 42, 1000) != base
    assert split_rank_key(24_321, 43, 1000) != base
    assert split_rank_key(24_321, 42, 1001) != base


@given(
    period_index=st.integers(0, 12 * 9999),
    user_id=st.integers(1, 2**63 - 1),
    flattr_id=st.integers(1, 2**63 - 1),
)
def test_split_rank_key_stays_below_the_prime(
    period_index: int, user_id: int, flattr_id: int
) -> None:
    assert 0 <= split_rank_key(period_index, user_id, flattr_id) < SPLIT_PRIME


# ---------------------------------------------------------------------------
# The SQL twin of split_rank_key


def _rank_key_cases() -> list[tuple[int, int, int]]:
    edges = [
        1,
        2,
        SPLIT_PRIME - 1,
        SPLIT_PRIME,
        SPLIT_PRIME + 1,
        2**31,
        2**32 + 3,
        2**53 + 1,
        2**62,
        2**63 - 2,
        2**63 - 1,
    ]
    periods = [0, 1, 2026 * 12 + 9, 9998 * 12 + 11, SPLIT_PRIME + 5]
    cases = [(p, u, f) for p in periods[:3] for u in edges for f in edges]
    rng = random.Random(7)
    for _ in range(300):
        cases.append(
            (
                rng.choice([*periods, rng.randrange(0, 12 * 9999)]),
                rng.choice([rng.randrange(1, 10**6), rng.randrange(1, 2**63)]),
                rng.choice([rng.randrange(1, 10**9), rng.randrange(1, 2**63)]),
            )
        )
    return cases


def test_rank_key_sql_computes_exactly_split_rank_key_on_the_database(db: Database) -> None:
    cases = _rank_key_cases()
    got: list[int] = []
    with db.reader() as session:
        for start in range(0, len(cases), 50):
            chunk = cases[start : start + 50]
            columns = [
                rank_key_sql(p, literal(u, BigInteger), literal(f, BigInteger)).label(f"k{i}")
                for i, (p, u, f) in enumerate(chunk)
            ]
            got.extend(int(v) for v in session.execute(select(*columns)).one())
    assert got == [split_rank_key(p, u, f) for p, u, f in cases]


def test_amounts_in_different_currencies_are_not_ordered() -> None:
    with pytest.raises(TypeError):
        _ = Money(1, "USD") < Money(2, "EUR")


@pytest.mark.parametrize("text", ["\u0665", "\uff15.00", "1\u0661.00 EUR"])
def test_only_ascii_digits_are_amounts(text: str) -> None:
    with pytest.raises(MoneyError, match="not an amount"):
        parse_money(text, "EUR")
