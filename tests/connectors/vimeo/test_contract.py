"""The Vimeo connector against the contract suite, with FakeVimeo on 127.0.0.1 as api.vimeo.com."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.vimeo import VimeoConnector
from trickle.connectors.vimeo.fake import LIKES_PATH, ME_PATH, FakeVimeo
from trickle.core.credentials import Credentials
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request

CLIENT_ID = "vimeo-contract-app-0123456789abcdef"
CLIENT_SECRET = f"vimeo-secret-{uuid.uuid4().hex}"

BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "uri",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "link",
    (Malformed.MISSING_FIELD, Call.POLL): "uri",
    (Malformed.WRONG_TYPE, Call.POLL): "added_time",
}


def _break(kind: Malformed, call: Call, response: FakeResponse) -> FakeResponse:
    """A real answer of FakeVimeo with a field broken as ``kind`` says."""
    body: Any = copy.deepcopy(response.body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del body["uri"]
        else:
            body["link"] = ["https://vimeo.com/staff"]
    elif kind is Malformed.MISSING_FIELD:
        del body["data"][0]["uri"]
    else:
        body["data"][0]["metadata"]["interactions"]["like"]["added_time"] = ["2026-10-15"]
    return FakeResponse(response.status, body, dict(response.headers))


class VimeoContractPlatform(ContractPlatform):
    """Stages members (each with a token of trickle's app), likes and failures on the fake."""

    def __init__(self, fake: FakeVimeo) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        """The fake's origin, serving the API."""
        return self.fake.base_url

    def add_account(self) -> ContractAccount:
        """A new member with a token (Vimeo's do not expire: the token alone links)."""
        username = f"member{uuid.uuid4().hex[:10]}"
        account = self.fake.add_account(username)
        tokens = self.fake.issue(username, CLIENT_ID, scope=("public", "private"))
        credentials = Credentials(access_token=tokens.access_token)
        return ContractAccount(credentials, account.id, username, {"username": username})

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The member likes video number ``key``, uploaded by one of a few filmmakers."""
        maker = f"filmmaker{key % 3}"
        if maker not in self.fake.accounts:
            self.fake.add_account(maker)
        video = self.fake.upload(maker, f"film {key}")
        self.fake.like_video(account.extra["username"], video, at=liked_at)
        return video.uri

    def revoke(self, account: ContractAccount) -> None:
        """The member removes the app from their connected apps: its token is 401."""
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """Vimeo's 429, no request remaining until ``X-RateLimit-Reset``."""
        assert status == 429
        self.fake.rate_limit(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break the 200 answers of ``GET /me`` (identify) or ``GET /me/likes`` (poll)."""
        path = ME_PATH if call is Call.IDENTIFY else LIKES_PATH

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.path != path or response.status != 200:
                return response
            return _break(kind, call, response)

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]


@pytest.fixture(scope="module")
def fake_vimeo() -> Iterator[FakeVimeo]:
    """One FakeVimeo for the module, with the suite's app registered."""
    with FakeVimeo() as fake:
        fake.register_client(CLIENT_ID, CLIENT_SECRET, "client_secret_basic")
        yield fake


class TestVimeoContract(ConnectorContract):
    """Vimeo meets the contract every connector must, with its like times and rate limits."""

    connector_class = VimeoConnector

    @pytest.fixture
    def platform(self, fake_vimeo: FakeVimeo) -> VimeoContractPlatform:
        """The module's fake: every test stages members of its own on it."""
        return VimeoContractPlatform(fake_vimeo)
