"""trickle.connectors.payloads: a malformed payload is a PlatformError that names the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, TypeAdapter

from trickle.connectors.errors import PlatformError
from trickle.connectors.payloads import PlatformTime, parse_payload
from trickle.core.events import EARLIEST_LIKE_TIME, PLATFORM_CLOCK_SKEW


class Owner(BaseModel):
    id: int
    login: str


class Item(BaseModel):
    created_at: datetime
    owner: Owner


ITEMS = TypeAdapter(list[Item])
WHERE = "GET /things"


def good_item(login: str = "octocat") -> dict[str, object]:
    return {"created_at": "2026-10-15T09:12:44Z", "owner": {"id": 583231, "login": login}}


def test_valid_data_comes_back_as_models() -> None:
    items = parse_payload(ITEMS, [good_item()], where=WHERE)
    assert items == [
        Item(
            created_at=datetime(2026, 10, 15, 9, 12, 44, tzinfo=UTC),
            owner=Owner(id=583231, login="octocat"),
        )
    ]


def test_a_missing_field_is_named_by_its_path() -> None:
    data = [good_item(), {"created_at": "2026-10-15T09:12:44Z", "owner": {"login": "x"}}]
    with pytest.raises(PlatformError) as caught:
        parse_payload(ITEMS, data, where=WHERE)
    message = str(caught.value)
    assert message.startswith("GET /things: malformed payload: ")
    assert "1.owner.id: Field required" in message


def test_a_wrong_type_is_named_by_its_path() -> None:
    data = [{"created_at": "yesterday", "owner": {"id": 1, "login": "x"}}]
    with pytest.raises(PlatformError, match=r"0\.created_at: "):
        parse_payload(ITEMS, data, where=WHERE)


def test_a_body_of_the_wrong_shape_is_named_as_the_body() -> None:
    with pytest.raises(PlatformError, match=r"\(body\): Input should be a valid list"):
        parse_payload(ITEMS, {"items": [good_item()]}, where=WHERE)


def test_only_the_first_three_problems_are_listed_and_the_rest_counted() -> None:
    data = [{"owner": {}} for _ in range(3)]  # 3 items x 3 missing fields = 9 problems
    with pytest.raises(PlatformError) as caught:
        parse_payload(ITEMS, data, where=WHERE)
    message = str(caught.value)
    assert message.count("Field required") == 3
    assert message.endswith("(+6 more)")


def test_the_offending_values_are_not_echoed() -> None:
    # payloads can carry personal data and tokens; the message names fields, not values
    secret = "ghp_s3cr3tValueThatMustNotBeLogged0000000"
    data = [{"created_at": secret, "owner": {"id": secret, "login": "x"}}]
    with pytest.raises(PlatformError) as caught:
        parse_payload(ITEMS, data, where=WHERE)
    assert "0.created_at" in str(caught.value)
    assert "0.owner.id" in str(caught.value)
    assert secret not in str(caught.value)


def test_the_validation_error_is_not_chained() -> None:
    with pytest.raises(PlatformError) as caught:
        parse_payload(ITEMS, None, where=WHERE)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_a_body_nested_too_deeply_is_a_platform_error() -> None:
    class Node(BaseModel):
        children: list[Node]

    nodes = TypeAdapter(Node)
    deep: dict[str, object] = {"children": []}
    for _ in range(5_000):
        deep = {"children": [deep]}
    with pytest.raises(PlatformError, match=r"^GET /things: malformed payload: "):
        parse_payload(nodes, deep, where=WHERE)


def test_an_overflow_in_a_validator_is_a_platform_error() -> None:
    scaled = TypeAdapter(Annotated[int, AfterValidator(lambda n: int(float(n) * 1e308))])
    with pytest.raises(PlatformError, match="a value is out of range"):
        parse_payload(scaled, 10**400, where=WHERE)


def test_field_names_from_the_payload_are_shown_escaped_and_bounded() -> None:
    counts = TypeAdapter(dict[str, int])
    key = "evil\nINFO forged\x1b[31m" + "k" * 200
    with pytest.raises(PlatformError) as caught:
        parse_payload(counts, {key: "many"}, where=WHERE)
    message = str(caught.value)
    assert "\n" not in message
    assert "\x1b" not in message
    assert "evil\\nINFO forged\\x1b[31m" in message
    assert "k" * 50 not in message


# ---------------------------------------------------------------------------
# PlatformTime


class Like(BaseModel):
    liked_at: PlatformTime


LIKES = TypeAdapter(list[Like])


def like_at(value: object) -> list[dict[str, object]]:
    return [{"liked_at": "2026-10-15T09:12:44Z"}, {"liked_at": value}]


def test_a_platform_time_is_read_in_utc(now: datetime) -> None:
    [_, like] = parse_payload(LIKES, like_at("2026-10-15T11:12:44+02:00"), where=WHERE)
    assert like.liked_at == datetime(2026, 10, 15, 9, 12, 44, tzinfo=UTC)
    assert like.liked_at.utcoffset() == timedelta(0)


def test_a_platform_time_may_run_ahead_of_the_clock_by_the_skew_and_no_more(
    now: datetime,
) -> None:
    ahead = now + PLATFORM_CLOCK_SKEW
    [_, like] = parse_payload(LIKES, like_at(ahead.isoformat()), where=WHERE)
    assert like.liked_at == ahead
    too_far = (ahead + timedelta(seconds=1)).isoformat()
    with pytest.raises(PlatformError, match=r"1\.liked_at: Value error, .* in the future"):
        parse_payload(LIKES, like_at(too_far), where=WHERE)


def test_the_earliest_like_time_is_accepted(now: datetime) -> None:
    [_, like] = parse_payload(LIKES, like_at(EARLIEST_LIKE_TIME.isoformat()), where=WHERE)
    assert like.liked_at == EARLIEST_LIKE_TIME


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("9999-12-31T23:59:59-01:00", "is outside the calendar in UTC"),
        ("0001-01-01T00:00:00+01:00", "is outside the calendar in UTC"),
        ("0001-01-01T00:00:00Z", "is before 2000-01-01"),
        ("1969-12-31T23:59:59Z", "is before 2000-01-01"),
        ("1999-12-31T23:59:59Z", "is before 2000-01-01"),
        (-1, "is before 2000-01-01"),  # a Unix time
        (10**20, "dates after 9999 are not supported"),
        ("2026-10-15T09:12:44", "Input should have timezone info"),
        ("yesterday", "Input should be a valid datetime"),
    ],
)
def test_a_platform_time_no_month_can_hold_is_an_error_naming_its_field(
    now: datetime, value: object, why: str
) -> None:
    with pytest.raises(PlatformError) as caught:
        parse_payload(LIKES, like_at(value), where=WHERE)
    message = str(caught.value)
    assert message.startswith("GET /things: malformed payload: 1.liked_at: ")
    assert why in message
    assert caught.value.__cause__ is None
