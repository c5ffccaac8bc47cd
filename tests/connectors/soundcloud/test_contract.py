"""The SoundCloud connector against the contract suite, with FakeSoundCloud on 127.0.0.1 as
both of SoundCloud's hosts (the API and secure.soundcloud.com, where tokens are renewed)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.soundcloud import SoundCloudConnector
from trickle.connectors.soundcloud.fake import LIKES_PATH, ME_PATH, FakeSoundCloud
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request

CLIENT_ID = "sc-contract-app-0123456789abcdef"
CLIENT_SECRET = f"sc-secret-{uuid.uuid4().hex}"

BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "urn",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "permalink",
    (Malformed.MISSING_FIELD, Call.POLL): "urn",
    (Malformed.WRONG_TYPE, Call.POLL): "user.urn",
}


def _break(kind: Malformed, call: Call, response: FakeResponse) -> FakeResponse:
    """A real answer of FakeSoundCloud with a field broken as ``kind`` says."""
    body: Any = copy.deepcopy(response.body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del body["urn"]
        else:
            body["permalink"] = 948745750  # a number where SoundCloud sends a string
    elif kind is Malformed.MISSING_FIELD:
        del body["collection"][0]["urn"]
    else:
        body["collection"][0]["user"]["urn"] = 948745750  # the deprecated numeric id
    return FakeResponse(response.status, body, dict(response.headers))


class SoundCloudContractPlatform(ContractPlatform):
    """Stages accounts (each with a grant of trickle's app), likes and failures on the fake."""

    def __init__(self, fake: FakeSoundCloud) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        """The fake's origin, serving the API."""
        return self.fake.base_url

    def settings_extra(self) -> dict[str, Any]:
        """trickle's app, and the fake as secure.soundcloud.com too."""
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "oauth_base_url": self.fake.base_url,
        }

    def add_account(self) -> ContractAccount:
        """A new SoundCloud user, with the tokens a completed authorization hands out."""
        username = f"listener-{uuid.uuid4().hex[:10]}"
        account = self.fake.add_account(username)
        tokens = self.fake.issue(username, CLIENT_ID)
        return ContractAccount(tokens.credentials(), account.id, username, {"username": username})

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The account likes track number ``key``, uploaded by one of a few artists."""
        artist = f"artist-{key % 3}"
        if artist not in self.fake.accounts:
            self.fake.add_account(artist)
        track = self.fake.upload(artist, f"track {key}")
        self.fake.like_track(account.extra["username"], track, at=liked_at)
        return track.urn

    def revoke(self, account: ContractAccount) -> None:
        """The user disconnects the app: its tokens are 401 and refreshes invalid_grant."""
        self.fake.revoke(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """SoundCloud's 429, its reset in the body."""
        assert status == 429
        self.fake.rate_limit(account.extra["username"], until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break the 200 answers of ``GET /me`` (identify) or ``GET /me/likes/tracks`` (poll)."""
        path = ME_PATH if call is Call.IDENTIFY else LIKES_PATH

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.path != path or response.status != 200:
                return response
            return _break(kind, call, response)

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]

    def expire_access_token(self, account: ContractAccount) -> None:
        """The account's access tokens end now; its refresh token still renews them."""
        self.fake.expire_access_tokens(account.extra["username"])


@pytest.fixture(scope="module")
def fake_soundcloud() -> Iterator[FakeSoundCloud]:
    """One FakeSoundCloud for the module, with the suite's app registered."""
    with FakeSoundCloud() as fake:
        fake.register_client(CLIENT_ID, CLIENT_SECRET)
        yield fake


class TestSoundCloudContract(ConnectorContract):
    """SoundCloud meets the contract every connector must, renewing its hour-long tokens."""

    connector_class = SoundCloudConnector

    @pytest.fixture
    def platform(self, fake_soundcloud: FakeSoundCloud) -> SoundCloudContractPlatform:
        """The module's fake: every test stages accounts of its own on it."""
        return SoundCloudContractPlatform(fake_soundcloud)
