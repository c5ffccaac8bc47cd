"""The X connector against the contract suite, with FakeX on 127.0.0.1 as X."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.errors import AuthExpired, ConnectorError
from trickle.connectors.twitter import TwitterConnector
from trickle.connectors.twitter.fake import FakeX
from trickle.core.credentials import Credentials
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request

CLIENT_ID = "Y29udHJhY3QtYXBwOjE6Y2k"
CLIENT_SECRET = "contract-x-secret-" + "7" * 32


def _break(kind: Malformed, call: Call, response: FakeResponse) -> FakeResponse:
    """``response`` (a real answer of FakeX) with a field the connector reads broken."""
    body: dict[str, Any] = copy.deepcopy(response.body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del body["data"]["username"]
        else:
            body["data"]["id"] = int(body["data"]["id"])  # a number where X sends a string
    elif kind is Malformed.MISSING_FIELD:
        del body["data"][0]["author_id"]
    else:
        body["data"][0]["id"] = int(body["data"][0]["id"])
    return FakeResponse(response.status, body, dict(response.headers))


BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "username",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "data.id",
    (Malformed.MISSING_FIELD, Call.POLL): "author_id",
    (Malformed.WRONG_TYPE, Call.POLL): "data.0.id",
}


@pytest.fixture(scope="module")
def fake_x() -> Iterator[FakeX]:
    """One FakeX for the module, with trickle's app registered on it."""
    with FakeX() as fake:
        fake.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=("http://127.0.0.1/callback",))
        yield fake


class XContractPlatform(ContractPlatform):
    """Stages users, likes and failures on a running :class:`FakeX`."""

    def __init__(self, fake: FakeX) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    def settings_extra(self) -> dict[str, Any]:
        """trickle's app, and the fake as X's token endpoint too (for refreshes)."""
        return {
            "oauth_base_url": self.fake.base_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }

    def add_account(self) -> ContractAccount:
        """A new X user who authorized trickle's app: a two-hour token and a refresh token."""
        username = f"c_{uuid.uuid4().hex[:13]}"
        user = self.fake.add_user(username)
        tokens = self.fake.issue(username, CLIENT_ID)
        credentials = Credentials(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token
        )
        return ContractAccount(credentials, user.id, username, {"username": username})

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The account likes a post of one of a few makers."""
        maker = f"maker_{key % 3}"
        if maker not in self.fake.users:
            self.fake.add_user(maker)
        post = self.fake.post(maker, f"post number {key}")
        self.fake.like(account.extra["username"], post, at=liked_at)
        return post.id

    def revoke(self, account: ContractAccount) -> None:
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        self.fake.rate_limit(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        wanted = "/2/users/me" if call is Call.IDENTIFY else "/liked_tweets"

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if not request.path.endswith(wanted) or response.status != 200:
                return response
            return _break(kind, call, response)

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]

    def expire_access_token(self, account: ContractAccount) -> None:
        self.fake.expire_access_tokens(account.extra["username"])

    def error_in_body(self, account: ContractAccount, call: Call) -> type[ConnectorError]:
        """The account is suspended: 200 with a ``resource-unavailable`` problem, no data."""
        self.fake.make_unreadable(account.extra["username"])
        return AuthExpired


class TestXContract(ConnectorContract):
    """X passes the contract suite (pages of at least 10: the suite's 2 is raised to X's
    smallest ``max_results``)."""

    connector_class = TwitterConnector

    @pytest.fixture
    def platform(self, fake_x: FakeX) -> XContractPlatform:
        return XContractPlatform(fake_x)
