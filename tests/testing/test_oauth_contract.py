"""The test-only OAuth 2 connector passes the contract suite against FakeOAuth on 127.0.0.1."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fake_oauth import LIKES_PATH, ME_PATH, TOKEN_PATH, FakeOAuth
from trickle.testing.fakeplatform import FakeResponse, Request
from trickle.testing.oauth_connector import FakeOAuthConnector

CLIENT_ID = "contract-app"
CLIENT_SECRET = f"cs-{uuid.uuid4().hex}"

BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "id",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "username",
    (Malformed.MISSING_FIELD, Call.POLL): "liked_at",
    (Malformed.WRONG_TYPE, Call.POLL): "author.id",
}


def _break(kind: Malformed, call: Call, response: FakeResponse) -> FakeResponse:
    """A real answer of FakeOAuth broken as ``kind`` says."""
    body: Any = copy.deepcopy(response.body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del body["id"]
        else:
            body["username"] = 12345
    elif kind is Malformed.MISSING_FIELD:
        del body["likes"][0]["liked_at"]
    else:
        body["likes"][0]["author"]["id"] = ["not", "an", "id"]
    return FakeResponse(response.status, body, dict(response.headers))


class OAuthContractPlatform(ContractPlatform):
    """Stages accounts (each with a grant of its own), likes and failures on FakeOAuth."""

    def __init__(self, fake: FakeOAuth) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        """FakeOAuth's API root."""
        return self.fake.base_url

    def settings_extra(self) -> dict[str, Any]:
        """The app's credentials and the fake's token endpoint."""
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_url": self.fake.base_url + TOKEN_PATH,
        }

    def add_account(self) -> ContractAccount:
        """A new user with a fresh grant: an access token and a refresh token."""
        username = f"contract-{uuid.uuid4().hex[:10]}"
        account = self.fake.add_account(username)
        tokens = self.fake.issue(username, CLIENT_ID)
        return ContractAccount(tokens.credentials(), account.id, username, {"username": username})

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The account likes item ``key`` of one of a few authors."""
        item = f"item-{key}"
        self.fake.like(account.extra["username"], item, at=liked_at, author=f"maker{key % 5}")
        return item

    def revoke(self, account: ContractAccount) -> None:
        """The user revokes the grant: the access token is 401 and the refresh is refused."""
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """429 with Retry-After (the only way this platform rate limits)."""
        assert status == 429
        self.fake.rate_limit(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break the 200 answers of ``GET /api/me`` (identify) or ``GET /api/likes`` (poll)."""
        path = ME_PATH if call is Call.IDENTIFY else LIKES_PATH

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.path != path or response.status != 200:
                return response
            return _break(kind, call, response)

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]

    def expire_access_token(self, account: ContractAccount) -> None:
        """End the account's access tokens now; its refresh token still renews them."""
        self.fake.expire_access_tokens(account.extra["username"])


@pytest.fixture(scope="module")
def fake_oauth() -> Iterator[FakeOAuth]:
    """One FakeOAuth for the module, with the suite's app registered."""
    with FakeOAuth() as fake:
        fake.register_client(CLIENT_ID, CLIENT_SECRET)
        yield fake


class TestFakeOAuthContract(ConnectorContract):
    """The OAuth 2 test connector meets the contract every connector must."""

    connector_class = FakeOAuthConnector

    @pytest.fixture
    def platform(self, fake_oauth: FakeOAuth) -> OAuthContractPlatform:
        """The module's FakeOAuth: every test stages accounts of its own on it."""
        return OAuthContractPlatform(fake_oauth)
