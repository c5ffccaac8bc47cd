"""The 500px connector against the contract suite, with Fake500px on 127.0.0.1 as a server
that still speaks the closed v1 API."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.fivehundredpx import FiveHundredPxConnector
from trickle.connectors.fivehundredpx.fake import Fake500px, FakePhoto
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request

CONSUMER_KEY = "f1v3hundr3dpx-k3y-" + "3" * 14
CONSUMER_SECRET = "f1v3hundr3dpx-s3cr3t-" + "8" * 12
PATHS = {Call.IDENTIFY: "/v1/users", Call.POLL: "/v1/photos"}
BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "username",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "user.id",
    (Malformed.MISSING_FIELD, Call.POLL): "user",
    (Malformed.WRONG_TYPE, Call.POLL): "photos.0.id",
}


def _break(kind: Malformed, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (a real answer of Fake500px) with a field broken as ``kind`` says."""
    broken = copy.deepcopy(body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del broken["user"]["username"]
        else:
            broken["user"]["id"] = "386047"  # a string where 500px sends the integer
    elif kind is Malformed.MISSING_FIELD:
        del broken["photos"][0]["user"]
    else:
        broken["photos"][0]["id"] = "4910421"
    return broken


@pytest.fixture(scope="module")
def fake_500px() -> Iterator[Fake500px]:
    with Fake500px() as fake:
        fake.register_consumer(CONSUMER_KEY, CONSUMER_SECRET)
        yield fake


class FiveHundredPxContractPlatform(ContractPlatform):
    """Stages users, favorites and failures on a running :class:`Fake500px`."""

    def __init__(self, fake: Fake500px) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        """Fake500px's address: the server the operator names."""
        return self.fake.base_url

    def settings_extra(self) -> dict[str, Any]:
        """trickle's app on the server."""
        return {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}

    def add_account(self) -> ContractAccount:
        username = f"contract-{uuid.uuid4().hex[:10]}"
        user = self.fake.add_user(username)
        issued = self.fake.issue(username, CONSUMER_KEY)
        return ContractAccount(issued.credentials(), user.id, username, {"username": username})

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        maker = f"maker-{key % 5}"
        if maker not in self.fake.accounts:
            self.fake.add_user(maker, user_id=9000 + key % 5)
        photo = FakePhoto(key, f"photo {key}", 9000 + key % 5, maker)
        self.fake.favorite(account.extra["username"], photo, liked_at)
        return str(key)

    def revoke(self, account: ContractAccount) -> None:
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        self.fake.rate_limit(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        path = PATHS[call]

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.path != path or response.status != 200:
                return response
            return FakeResponse(200, _break(kind, call, response.body), dict(response.headers))

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]


class TestFiveHundredPxContract(ConnectorContract):
    """500px's v1 API passes the contract suite, on the server the operator names."""

    connector_class = FiveHundredPxConnector

    @pytest.fixture
    def platform(self, fake_500px: Fake500px) -> FiveHundredPxContractPlatform:
        return FiveHundredPxContractPlatform(fake_500px)
