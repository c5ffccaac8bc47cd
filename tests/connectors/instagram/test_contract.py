"""The Instagram connector against the contract suite, with FakeInstagram on 127.0.0.1.

Instagram rate-limits with 429 and, as field reports of instaloader show, with a 401 saying
"Please wait a few minutes before you try again."; both are tested.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.errors import AuthExpired, ConnectorError
from trickle.connectors.instagram import InstagramConnector
from trickle.connectors.instagram.fake import SAVED_QUERY, VIEWER_QUERY, FakeInstagram, FakePost
from trickle.core.credentials import Credentials
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request


def _break(kind: Malformed, call: Call, body: Any) -> Any:
    broken = copy.deepcopy(body)
    if call is Call.IDENTIFY:
        user = broken["data"]["user"]
        if kind is Malformed.MISSING_FIELD:
            del user["id"]
        else:
            user["username"] = 583231  # a number where a name belongs
    else:
        node = broken["data"]["user"]["edge_saved_media"]["edges"][0]["node"]
        if kind is Malformed.MISSING_FIELD:
            del node["shortcode"]
        else:
            node["owner"]["id"] = True  # a boolean where the numeric id belongs
    return broken


BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "id",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "username",
    (Malformed.MISSING_FIELD, Call.POLL): "shortcode",
    (Malformed.WRONG_TYPE, Call.POLL): "owner.id",
}


@pytest.fixture(scope="module")
def fake_instagram() -> Iterator[FakeInstagram]:
    with FakeInstagram() as fake:
        yield fake


class InstagramContractPlatform(ContractPlatform):
    """Stages accounts, saved posts and failures on a running :class:`FakeInstagram`."""

    def __init__(self, fake: FakeInstagram) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    def add_account(self) -> ContractAccount:
        """A new account with a session made in a browser: its sessionid is the token."""
        username = f"contract_{uuid.uuid4().hex[:12]}"
        user = self.fake.add_user(username, f"pw-{uuid.uuid4().hex}")
        session_id = self.fake.new_session(username)
        return ContractAccount(
            Credentials(access_token=session_id), str(user.id), username, {"username": username}
        )

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The account saves post number ``key`` (owned by one of a few makers)."""
        post = FakePost(f"C{key}xQ", owner_id=7_100_000 + key % 4, owner_username=f"maker{key % 4}")
        self.fake.save(account.extra["username"], post, at=liked_at)
        return post.shortcode

    def revoke(self, account: ContractAccount) -> None:
        """The session is logged out: Instagram sends its requests to the login page."""
        self.fake.log_out(account.extra["username"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        self.fake.rate_limit(account.extra["username"], until, status)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        wanted = VIEWER_QUERY if call is Call.IDENTIFY else SAVED_QUERY

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.query.get("query_hash") != wanted or response.status != 200:
                return response
            return FakeResponse(200, _break(kind, call, response.body), dict(response.headers))

        self.fake.tamper(account.extra["username"], rewrite)
        return BROKEN_FIELDS[(kind, call)]

    def error_in_body(self, account: ContractAccount, call: Call) -> type[ConnectorError]:
        """A 200 saying ``checkpoint_required``: the login must be confirmed, then relinked."""
        query = VIEWER_QUERY if call is Call.IDENTIFY else SAVED_QUERY
        self.fake.fail_in_body(account.extra["username"], query, "checkpoint_required")
        return AuthExpired


class TestInstagramContract(ConnectorContract):
    connector_class = InstagramConnector
    rate_limit_statuses = (401, 429)

    @pytest.fixture
    def platform(self, fake_instagram: FakeInstagram) -> InstagramContractPlatform:
        return InstagramContractPlatform(fake_instagram)
