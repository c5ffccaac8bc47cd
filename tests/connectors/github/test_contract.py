"""The GitHub connector against the contract suite, with FakeGitHub on 127.0.0.1 as GitHub."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from trickle.connectors.github import GitHubConnector
from trickle.connectors.github.fake import FakeGitHub, FakeRepo
from trickle.core.credentials import Credentials
from trickle.testing.contract import (
    QUALITY_SCALE,
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)
from trickle.testing.fakeplatform import FakeResponse, Request

DOCS = Path(__file__).resolve().parents[3] / "docs" / "connectors.md"


def _break(kind: Malformed, call: Call, response: FakeResponse) -> FakeResponse:
    """``response`` (a real answer of FakeGitHub) with a field broken as ``kind`` says."""
    body = copy.deepcopy(response.body)
    if call is Call.IDENTIFY:
        if kind is Malformed.MISSING_FIELD:
            del body["id"]
        else:
            body["login"] = 583231  # a number where GitHub sends a string
    elif kind is Malformed.MISSING_FIELD:
        del body[0]["starred_at"]
    else:
        body[0]["repo"]["id"] = "R_kgDOGq2bZw"  # a node id where GitHub sends the number
    return FakeResponse(response.status, body, dict(response.headers))


BROKEN_FIELDS = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): "id",
    (Malformed.WRONG_TYPE, Call.IDENTIFY): "login",
    (Malformed.MISSING_FIELD, Call.POLL): "starred_at",
    (Malformed.WRONG_TYPE, Call.POLL): "repo.id",
}


@pytest.fixture(scope="module")
def fake_github() -> Iterator[FakeGitHub]:
    """One FakeGitHub on 127.0.0.1 for the module (starting one per test costs half a second)."""
    with FakeGitHub() as fake:
        yield fake


class GitHubContractPlatform(ContractPlatform):
    """Stages accounts, stars and failures on a running :class:`FakeGitHub`."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    @property
    def base_url(self) -> str:
        """FakeGitHub's address."""
        return self.fake.base_url

    def add_account(self) -> ContractAccount:
        """A new GitHub user with a classic-looking personal access token."""
        token = f"ghp_{uuid.uuid4().hex}"
        login = f"contract-{token[4:12]}"
        user = self.fake.add_user(login, token)
        return ContractAccount(
            Credentials(access_token=token), str(user.id), login, {"login": login}
        )

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The account stars repository ``key`` (owned by one of a few makers)."""
        repo = FakeRepo(
            id=key, name=f"project-{key}", owner_login=f"maker-{key % 5}", owner_id=7000 + key % 5
        )
        self.fake.star(account.extra["login"], repo, at=liked_at)
        return str(key)

    def revoke(self, account: ContractAccount) -> None:
        """The token is revoked: 401 Bad credentials."""
        self.fake.revoke(account.extra["login"])

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """403 with remaining 0 (primary limit) or 429 with retry-after (secondary limit)."""
        self.fake.rate_limit(account.extra["login"], until, status=status)

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break the 200 answers of ``GET /user`` (identify) or ``GET /user/starred`` (poll)."""
        path = "/user" if call is Call.IDENTIFY else "/user/starred"

        def rewrite(request: Request, response: FakeResponse) -> FakeResponse:
            if request.path != path or response.status != 200:
                return response
            return _break(kind, call, response)

        self.fake.tamper(account.extra["login"], rewrite)
        return BROKEN_FIELDS[(kind, call)]


class TestGitHubContract(ConnectorContract):
    """GitHub passes the contract suite; it rate-limits with 403 (primary) and 429 (secondary)."""

    connector_class = GitHubConnector
    rate_limit_statuses = (403, 429)

    @pytest.fixture
    def platform(self, fake_github: FakeGitHub) -> GitHubContractPlatform:
        """The module's FakeGitHub: every test stages accounts of its own on it."""
        return GitHubContractPlatform(fake_github)


def test_quality_scale_matches_the_docs() -> None:
    """docs/connectors.md documents exactly the rules of the suite's scale, each under its tier."""
    text = DOCS.read_text(encoding="utf-8")
    documented: dict[str, str] = {}
    tier = None
    for line in text.splitlines():
        heading = re.match(r"#+\s+(Bronze|Silver|Gold)\b", line)
        if heading:
            tier = heading.group(1).lower()
            continue
        if line.startswith("## "):
            tier = None
        rule = re.match(r"- \*\*`([a-z-]+)`\*\*", line)
        if rule and tier:
            documented[rule.group(1)] = tier
    expected = {rule: tier.value for tier, rules in QUALITY_SCALE.items() for rule in rules}
    assert documented == expected
