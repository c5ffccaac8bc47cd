"""trickle.connectors.payloads: a malformed payload is a PlatformError that names the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, TypeAdapter

from trickle.connectors.base import PlatformError
from trickle.connectors.payloads import parse_payload


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
