"""Both dialects against the contract suite, each on its own fake on 127.0.0.1."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.pnut import AppNetConnector, PnutConnector
from trickle.connectors.pnut.fake import FakeAdnServer, FakeAppNet, FakePnut
from trickle.core.credentials import Credentials
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request

CLIENT_ID = "contract-client-0c4e1d"

BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "data.id",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "data.username",
    (Malformed.MISSING_FIELD, Call.POLL): "data.0.id",
    (Malformed.WRONG_TYPE, Call.POLL): "data.0.user.id",
}


def _break(kind: Malformed, call: Call, body: Any) -> Any:
    """A real answer's body with the field of :data:`BROKEN_FIELDS` broken as ``kind`` says."""
    body = copy.deepcopy(body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del body["data"]["id"]
        else:
            body["data"]["username"] = 4815162342  # a number where a string is documented
    elif kind is Malformed.MISSING_FIELD:
        del body["data"][0]["id"]
    else:
        body["data"][0]["user"]["id"] = 1002  # the id as a number: documented as a string
    return body


class AdnContractPlatform(ContractPlatform):
    """Stages accounts, bookmarks (stars) and failures on a running fake of either dialect."""

    def __init__(self, fake: FakeAdnServer) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        return self.fake.base_url + (self.fake.api_root if isinstance(self.fake, FakePnut) else "")

    def add_account(self) -> ContractAccount:
        """A new user and a token trickle's client was issued for them."""
        username = f"c{uuid.uuid4().hex[:12]}"
        account = self.fake.add_account(username)
        token = self.fake.issue(username, CLIENT_ID).access_token
        return ContractAccount(
            Credentials(access_token=token), account.id, username, {"username": username}
        )

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The account saves post ``key`` (by one of a few makers)."""
        post = self.fake.posts.get(key) or self.fake.post(f"maker_{key % 3}", post_id=key)
        self.fake.save(account.extra["username"], post, liked_at)
        return str(key)

    def revoke(self, account: ContractAccount) -> None:
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        self.fake.rate_limit(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break the 200 answers of ``/users/me`` (identify) or the list (poll)."""

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            is_me = request.path.endswith("/users/me")
            if response.status != 200 or is_me != (call is Call.IDENTIFY):
                return response
            return FakeResponse(200, _break(kind, call, response.body), dict(response.headers))

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]


@pytest.fixture(scope="module")
def fake_pnut() -> Iterator[FakePnut]:
    with FakePnut() as fake:
        fake.register_client(CLIENT_ID, "contract-secret")
        yield fake


@pytest.fixture(scope="module")
def fake_appnet() -> Iterator[FakeAppNet]:
    with FakeAppNet() as fake:
        fake.register_client(CLIENT_ID, "contract-secret")
        yield fake


class TestPnutContract(ConnectorContract):
    """pnut.io passes the suite: no like times, rate-limit headers on every answer."""

    connector_class = PnutConnector

    @pytest.fixture
    def platform(self, fake_pnut: FakePnut) -> AdnContractPlatform:
        return AdnContractPlatform(fake_pnut)


class TestAppNetContract(ConnectorContract):
    """An App.net-compatible server passes the suite the same way."""

    connector_class = AppNetConnector

    @pytest.fixture
    def platform(self, fake_appnet: FakeAppNet) -> AdnContractPlatform:
        return AdnContractPlatform(fake_appnet)
