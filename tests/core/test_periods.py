"""Period: the UTC calendar month trickle settles in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trickle.core.periods import Period, PeriodError

periods = st.builds(Period, st.integers(1970, 9998), st.integers(1, 12))


def test_a_period_is_written_year_dash_two_digit_month() -> None:
    assert str(Period(2026, 3)) == "2026-03"


@pytest.mark.parametrize("text", ["2026-10", " 2026-10 ", "2026-10\n"])
def test_parse_reads_yyyy_mm(text: str) -> None:
    assert Period.parse(text) == Period(2026, 10)


@pytest.mark.parametrize("text", ["2026-1", "2026/10", "26-10", "2026-10-01", "October", ""])
def test_parse_rejects_other_spellings_with_an_example(text: str) -> None:
    with pytest.raises(PeriodError, match=r"not a month: .*write it as YYYY-MM, e\.g\. 2026-10"):
        Period.parse(text)


@pytest.mark.parametrize("text", ["2026-00", "2026-13", "1969-12", "9999-01"])
def test_parse_rejects_months_that_do_not_exist(text: str) -> None:
    with pytest.raises(PeriodError, match=f"no such month: {text}"):
        Period.parse(text)


def test_period_error_is_a_value_error() -> None:
    assert issubclass(PeriodError, ValueError)


def test_of_is_the_utc_month_containing_the_instant() -> None:
    assert Period.of(datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)) == Period(2026, 10)
    assert Period.of(datetime(2026, 11, 1, tzinfo=UTC)) == Period(2026, 11)


def test_of_converts_other_time_zones_to_utc_first() -> None:
    # 1 November 00:30 in Berlin (UTC+1) is still 31 October in UTC.
    berlin = timezone(timedelta(hours=1))
    assert Period.of(datetime(2026, 11, 1, 0, 30, tzinfo=berlin)) == Period(2026, 10)


def test_of_takes_a_naive_time_as_utc() -> None:
    assert Period.of(datetime(2026, 12, 31, 23, 59)) == Period(2026, 12)


def test_start_and_end_bound_the_month_half_open_in_utc() -> None:
    october = Period(2026, 10)
    assert october.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert october.end == datetime(2026, 11, 1, tzinfo=UTC)


def test_december_ends_at_the_first_of_january() -> None:
    assert Period(2026, 12).end == datetime(2027, 1, 1, tzinfo=UTC)


def test_next_and_previous_cross_year_boundaries() -> None:
    assert Period(2026, 12).next() == Period(2027, 1)
    assert Period(2027, 1).previous() == Period(2026, 12)


def test_periods_order_chronologically() -> None:
    assert sorted([Period(2027, 1), Period(2026, 12), Period(2026, 2)]) == [
        Period(2026, 2),
        Period(2026, 12),
        Period(2027, 1),
    ]


def test_index_counts_months_from_year_zero() -> None:
    assert Period(2026, 10).index == 2026 * 12 + 9


@given(periods)
def test_consecutive_months_have_consecutive_indexes(period: Period) -> None:
    if period != Period(9998, 12):
        assert period.next().index == period.index + 1
    assert Period.from_index(period.index) == period


@given(periods)
def test_parse_reads_back_what_str_writes(period: Period) -> None:
    assert Period.parse(str(period)) == period


@given(periods)
def test_every_instant_of_a_month_belongs_to_it(period: Period) -> None:
    assert Period.of(period.start) == period
    if period != Period(9998, 12):
        assert Period.of(period.end - timedelta(microseconds=1)) == period
        assert Period.of(period.end) == period.next()
