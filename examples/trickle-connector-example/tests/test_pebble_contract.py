"""The Pebble connector against trickle's contract suite, with FakePebble on 127.0.0.1."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from trickle_connector_example import PebbleConnector
from trickle_connector_example.fake import FakePebble, PebblePost

from trickle.core.credentials import Credentials
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request

PATHS = {Call.IDENTIFY: "/v1/me", Call.POLL: "/v1/bookmarks"}
BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "uid",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "username",
    (Malformed.MISSING_FIELD, Call.POLL): "saved_at",
    (Malformed.WRONG_TYPE, Call.POLL): "author",
}


def break_answer(kind: Malformed, call: Call, response: FakeResponse) -> FakeResponse:
    """A real FakePebble answer with a field broken as ``kind`` says."""
    body = copy.deepcopy(response.body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del body["account"]["uid"]
        else:
            body["account"]["username"] = ["ada"]
    elif kind is Malformed.MISSING_FIELD:
        del body["bookmarks"][0]["saved_at"]
    else:
        body["bookmarks"][0]["pebble"]["author"] = "grace"
    return FakeResponse(200, body, dict(response.headers))


class PebbleContractPlatform(ContractPlatform):
    """Stages members, bookmarks and failures on a running FakePebble."""

    def __init__(self, fake: FakePebble) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        """FakePebble's API root."""
        return self.fake.api_url

    def add_account(self) -> ContractAccount:
        """A new member with a fresh API key."""
        key = f"pbk_{uuid.uuid4().hex}"
        username = f"member-{key[4:12]}"
        member = self.fake.add_member(username, key)
        return ContractAccount(
            Credentials(access_token=key), member.uid, username, {"username": username}
        )

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The member bookmarks pebble ``pb_<key>``, written by one of a few authors."""
        post = PebblePost(
            id=f"pb_{key}", author_uid=f"u_author{key % 3}", author_username=f"author{key % 3}"
        )
        self.fake.bookmark(account.extra["username"], post, at=liked_at)
        return post.id

    def revoke(self, account: ContractAccount) -> None:
        """The key is revoked: 401 invalid_key."""
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """Pebble rate-limits with 429 only."""
        assert status == 429, f"Pebble does not rate-limit with {status}"
        self.fake.slow_down(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break the 200 answers of ``/v1/me`` (identify) or ``/v1/bookmarks`` (poll)."""

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.path != PATHS[call] or response.status != 200:
                return response
            return break_answer(kind, call, response)

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]


@pytest.fixture(scope="module")
def fake_pebble() -> Iterator[FakePebble]:
    """One FakePebble for the module; every test stages members of its own."""
    with FakePebble() as fake:
        yield fake


class TestPebbleContract(ConnectorContract):
    """Pebble passes the contract suite."""

    connector_class = PebbleConnector

    @pytest.fixture
    def platform(self, fake_pebble: FakePebble) -> PebbleContractPlatform:
        """The adapter over the module's FakePebble."""
        return PebbleContractPlatform(fake_pebble)
