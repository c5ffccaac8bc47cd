"""The Mastodon connector against the contract suite, with a FakeMastodonServer on 127.0.0.1."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.mastodon import MastodonConnector
from trickle.connectors.mastodon.connector import SCOPES
from trickle.connectors.mastodon.fake import FakeMastodonServer
from trickle.core.credentials import Credentials
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fake_mastodon import FAVOURITES_PATH, VERIFY_CREDENTIALS_PATH
from trickle.testing.fakeplatform import FakeResponse, Request

CLIENT_ID = "contract-app-" + "c" * 20
CLIENT_SECRET = "contract-app-secret-" + "s" * 24


def _break(kind: Malformed, call: Call, response: FakeResponse) -> FakeResponse:
    """``response`` (a real answer of the fake) with a field broken as ``kind`` says."""
    body: Any = copy.deepcopy(response.body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del body["uri"]
        else:
            body["username"] = 14715  # a number where Mastodon sends a string
    elif kind is Malformed.MISSING_FIELD:
        del body[0]["account"]["uri"]  # what a server before 4.2 sends
    else:
        body[0]["uri"] = ["https://example.social/users/x/statuses/1"]
    return FakeResponse(response.status, body, dict(response.headers))


BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "uri",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "username",
    (Malformed.MISSING_FIELD, Call.POLL): "account.uri",
    (Malformed.WRONG_TYPE, Call.POLL): "0.uri",
}


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeMastodonServer]:
    """One fake server for the module, with an app to issue the accounts' tokens to."""
    with FakeMastodonServer() as fake:
        fake.register_client(CLIENT_ID, CLIENT_SECRET, scopes=SCOPES)
        yield fake


class MastodonContractPlatform(ContractPlatform):
    """Stages accounts, favourites and failures on a running :class:`FakeMastodonServer`."""

    def __init__(self, fake: FakeMastodonServer) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    def settings_extra(self) -> dict[str, Any]:
        """The fake listens on 127.0.0.1, which the host guard refuses unless allowed."""
        return {"allow_private_hosts": True}

    def add_account(self) -> ContractAccount:
        """A new user of the server with a token of trickle's app."""
        username = f"contract_{uuid.uuid4().hex[:12]}"
        self.fake.add_account(username)
        token = self.fake.issue(username, CLIENT_ID, scope=SCOPES).access_token
        author = self.fake.author(username)
        return ContractAccount(
            Credentials(access_token=token),
            author.uri,
            f"{username}@{author.domain}",
            {"username": username},
        )

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The account favourites a status of one of a few makers; returns its uri."""
        status = self.fake.post(f"maker{key % 3}", at=liked_at, text=f"status {key}")
        self.fake.favourite(account.extra["username"], status, at=liked_at)
        return status.uri

    def revoke(self, account: ContractAccount) -> None:
        """The user revoked trickle's access: 401."""
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """429 with ``X-RateLimit-Reset`` at ``until``."""
        self.fake.rate_limit(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break the 200 answers of verify_credentials (identify) or favourites (poll)."""
        path = VERIFY_CREDENTIALS_PATH if call is Call.IDENTIFY else FAVOURITES_PATH

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.path != path or response.status != 200 or not response.body:
                return response
            return _break(kind, call, response)

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]


class TestMastodonContract(ConnectorContract):
    """Mastodon passes the contract suite."""

    connector_class = MastodonConnector

    @pytest.fixture
    def platform(self, fake_server: FakeMastodonServer) -> MastodonContractPlatform:
        return MastodonContractPlatform(fake_server)
