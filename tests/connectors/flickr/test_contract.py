"""The Flickr connector against the contract suite, with FakeFlickr on 127.0.0.1 as Flickr."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.errors import ConnectorError, TransientError
from trickle.connectors.flickr import FlickrConnector
from trickle.connectors.flickr.fake import FakeFlickr, FakePhoto
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request

CONSUMER_KEY = "f1ckr-c0nsum3r-k3y-" + "7" * 13
CONSUMER_SECRET = "f1ckr-s3cr3t-" + "5" * 16
METHODS = {Call.IDENTIFY: "flickr.test.login", Call.POLL: "flickr.favorites.getList"}


BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "id",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "_content",
    (Malformed.MISSING_FIELD, Call.POLL): "date_faved",
    (Malformed.WRONG_TYPE, Call.POLL): "owner",
}


def _break(kind: Malformed, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (a real answer of FakeFlickr) with a field broken as ``kind`` says."""
    broken = copy.deepcopy(body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del broken["user"]["id"]
        else:
            broken["user"]["username"]["_content"] = 583231  # a number where Flickr sends text
        return broken
    photo = broken["photos"]["photo"][0]
    if kind is Malformed.MISSING_FIELD:
        del photo["date_faved"]
    else:
        photo["owner"] = 47058503995  # a number where Flickr sends the NSID string
    return broken


@pytest.fixture(scope="module")
def fake_flickr() -> Iterator[FakeFlickr]:
    """One FakeFlickr for the module, with trickle's app registered on it."""
    with FakeFlickr() as fake:
        fake.register_consumer(CONSUMER_KEY, CONSUMER_SECRET)
        yield fake


class FlickrContractPlatform(ContractPlatform):
    """Stages members, faves and failures on a running :class:`FakeFlickr`."""

    def __init__(self, fake: FakeFlickr) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        """FakeFlickr's address (the REST endpoint is under it, as under api.flickr.com)."""
        return self.fake.base_url

    def settings_extra(self) -> dict[str, Any]:
        """trickle's app on the fake."""
        return {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET}

    def add_account(self) -> ContractAccount:
        """A new member whose token credentials trickle's app holds."""
        username = f"contract-{uuid.uuid4().hex[:10]}"
        member = self.fake.add_member(username)
        issued = self.fake.issue(username, CONSUMER_KEY)
        return ContractAccount(issued.credentials(), member.id, username, {"username": username})

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The member faves photo number ``key`` (by one of a few makers)."""
        maker = f"maker-{key % 5}"
        if maker not in self.fake.accounts:
            self.fake.add_member(maker, nsid=f"{7000 + key % 5}@N01")
        owner = self.fake.accounts[maker]
        photo = FakePhoto(str(key), owner.id, maker, f"photo {key}")
        self.fake.fave(account.extra["username"], photo, liked_at)
        return str(key)

    def revoke(self, account: ContractAccount) -> None:
        """The member revoked trickle's access: code 98, Invalid auth token."""
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """429 with Flickr's HTML page (and no Retry-After)."""
        self.fake.rate_limit(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break the answers to ``flickr.test.login`` or ``flickr.favorites.getList``."""
        method = METHODS[call]

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.query.get("method") != method or response.status != 200:
                return response
            body = _break(kind, call, json.loads(str(response.body)))
            return FakeResponse(200, json.dumps(body), dict(response.headers))

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]

    def error_in_body(self, account: ContractAccount, call: Call) -> type[ConnectorError]:
        """Code 105, Service currently unavailable: try again later."""
        self.fake.fail(account.extra["username"], 105, "Service currently unavailable")
        return TransientError


class TestFlickrContract(ConnectorContract):
    """Flickr passes the contract suite; errors come inside 200s, rate limits as 429."""

    connector_class = FlickrConnector

    @pytest.fixture
    def platform(self, fake_flickr: FakeFlickr) -> FlickrContractPlatform:
        """The module's FakeFlickr: every test stages members of its own on it."""
        return FlickrContractPlatform(fake_flickr)
