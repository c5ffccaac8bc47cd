"""trickle's contract suite against the fake Bluesky: a PDS, the PLC directory behind it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from trickle.connectors.bluesky import BlueskyConnector
from trickle.connectors.bluesky.fake import FakeBluesky, FakePDS, plc_did
from trickle.core.credentials import Credentials
from trickle.testing import Call, ConnectorContract, ContractAccount, ContractPlatform, Malformed
from trickle.testing.fakeplatform import FakeResponse, Request


class BlueskyContractPlatform(ContractPlatform):
    """Accounts on the fake PDS, their DID documents at the fake PLC directory."""

    def __init__(self, fake: FakeBluesky) -> None:
        self.fake = fake

    @property
    def pds(self) -> FakePDS:
        return self.fake.pds

    @property
    def base_url(self) -> str:
        return self.fake.pds.base_url

    def settings_extra(self) -> dict[str, Any]:
        return {
            "plc_url": self.fake.plc.base_url,
            "dns_server": self.fake.dns.address,
            "allow_private_hosts": True,  # the fake PDS listens on 127.0.0.1
        }

    def add_account(self) -> ContractAccount:
        handle = f"member-{uuid.uuid4().hex[:12]}.pds.test"
        repo = self.fake.add_account(handle)
        token = self.pds.issue_session(repo.did)
        return ContractAccount(Credentials(access_token=token), repo.did, handle)

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        author = plc_did(f"author-{key % 3}")
        uri = f"at://{author}/app.bsky.feed.post/3k{key:011d}"
        self.pds.like(account.platform_user_id, uri, liked_at)
        return uri

    def revoke(self, account: ContractAccount) -> None:
        # What ends a Bluesky link: the account deactivated (or taken down) on its PDS.
        self.pds.revoke_sessions(account.platform_user_id)
        self.pds.deactivate(account.platform_user_id)

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        self.pds.rate_limit(account.platform_user_id, until)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        field = "records" if call is Call.POLL else "did"

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            wanted = "listRecords" if call is Call.POLL else "getSession"
            if response.status != 200 or wanted not in request.path:
                return response
            body = json.loads(response.encoded())
            if kind is Malformed.MISSING_FIELD:
                del body[field]
            else:
                body[field] = 12345
            return FakeResponse(200, body, response.headers)

        self.pds.tamper(account.platform_user_id, rewrite)
        return field


@pytest.fixture(scope="module")
def fake_bluesky() -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        yield fake


class TestBlueskyContract(ConnectorContract):
    connector_class = BlueskyConnector

    @pytest.fixture
    def platform(self, fake_bluesky: FakeBluesky) -> BlueskyContractPlatform:
        return BlueskyContractPlatform(fake_bluesky)
