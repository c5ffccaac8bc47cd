"""Ripple: a made-up platform, a connector for it, and that connector broken in the ways the
contract suite must catch; what ``test_contract.py`` runs the suite against.

Ripple's API is served by ``responses`` callbacks (no socket): ``GET /me``,
``GET /likes`` (newest like first, ``per_page`` and an opaque
``page_token``, ``x-ratelimit-*`` headers on every answer), and an OAuth 2
token endpoint whose access tokens expire within the hour and whose refresh
tokens are single-use: each refresh rotates the refresh token and the old
one is refused from then on. Like Flickr, Ripple may also report an error
inside a 200: ``{"stat": "fail", "code": 98, ...}``.

:class:`RippleConnector` is an honest :class:`~trickle.connectors.rest.RestConnector`
for it and passes the whole suite; each class after it carries one bug.
(Another branch builds a full OAuth 2 test platform in ``trickle/testing``;
this one stays as small as the self-test allows.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from pydantic import BaseModel, ConfigDict, SecretStr, StrictInt, StringConstraints, TypeAdapter

from trickle.connectors.auth import AuthContext, OAuth2
from trickle.connectors.base import AccountRef, Identity, PollResult, PollState
from trickle.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PlatformError,
    TransientError,
)
from trickle.connectors.paginators import NextToken
from trickle.connectors.payloads import PlatformTime, parse_payload
from trickle.connectors.policy import DEFAULT_POLICY, ErrorPolicy
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.session import AccountSession
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent
from trickle.core.text import printable
from trickle.testing.contract import (
    Call,
    ConnectorContract,
    ContractAccount,
    ContractPlatform,
    Malformed,
)

API = "https://api.ripple.example/v2"
TOKEN_URL = "https://ripple.example/oauth/token"
CLIENT_ID = "ripple-contract-suite"
CLIENT_SECRET = "rcs_6f1d0c3a9b8e4f2a7c5d1e0b3a9f8c7d"
TOKEN_LIFETIME = timedelta(hours=1)
RATE_LIMIT = 1000
INVALID_AUTH_TOKEN = 98
"""Ripple's code, inside a 200, for "this account's token is no longer valid"."""

Mutation = Callable[[dict[str, Any]], None]
Answer = tuple[int, dict[str, str], str]


# ---------------------------------------------------------------------------
# The platform.


@dataclass
class Member:
    """A Ripple account: its tokens, its likes newest first, and what the test staged."""

    uid: str
    name: str
    access_tokens: set[str] = field(default_factory=set)
    refresh_token: str | None = None
    likes: list[tuple[datetime, int]] = field(default_factory=list)
    revoked: bool = False
    slowed_until: datetime | None = None
    broken: dict[str, Mutation] = field(default_factory=dict)
    """Path -> what to do to the successful answer's body."""
    failing_in_body: set[str] = field(default_factory=set)
    """Paths answered 200 with ``{"stat": "fail"}``."""
    used: int = 0


class Ripple:
    """Ripple's API and token endpoint as ``responses`` callbacks."""

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self._by_access: dict[str, Member] = {}
        self._by_refresh: dict[str, Member] = {}
        self._expired: set[str] = set()

    def install(self, mock: responses.RequestsMock) -> None:
        """Answer Ripple's URLs in ``mock``."""
        mock.add_callback(responses.GET, f"{API}/me", callback=self._me)
        mock.add_callback(responses.GET, f"{API}/likes", callback=self._likes)
        mock.add_callback(responses.POST, TOKEN_URL, callback=self._token)

    # -- staging -------------------------------------------------------------

    def add_member(self, name: str) -> tuple[Member, str, str]:
        """A new account, its access token and its refresh token."""
        member = Member(uid=f"rp-{uuid.uuid4().hex[:10]}", name=name)
        self.members[member.uid] = member
        access, refresh = self._issue(member)
        return member, access, refresh

    def like(self, uid: str, item: int, at: datetime) -> None:
        """The member likes ``item`` at ``at``."""
        member = self.members[uid]
        member.likes.append((at, item))
        member.likes.sort(key=lambda like: like[0], reverse=True)

    def expire(self, uid: str) -> None:
        """Every access token the member holds has expired."""
        self._expired |= self.members[uid].access_tokens

    # -- the API ---------------------------------------------------------------

    def _issue(self, member: Member) -> tuple[str, str]:
        access, refresh = f"rpa_{uuid.uuid4().hex}", f"rpr_{uuid.uuid4().hex}"
        member.access_tokens.add(access)
        self._by_access[access] = member
        if member.refresh_token is not None:
            self._by_refresh.pop(member.refresh_token, None)  # single-use: spent now
        member.refresh_token = refresh
        self._by_refresh[refresh] = member
        return access, refresh

    def _authenticate(self, request: requests.PreparedRequest) -> Member | Answer:
        token = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        member = self._by_access.get(token)
        if member is None or member.revoked or token in self._expired:
            body = {"error": "invalid_token", "message": "The access token is not valid."}
            return 401, {"Content-Type": "application/json"}, json.dumps(body)
        now = clock.now()
        if member.slowed_until is not None and member.slowed_until > now:
            wait = int((member.slowed_until - now).total_seconds()) + 1
            body = {"error": "slow_down", "message": "Too many requests."}
            return 429, {"Retry-After": str(wait)}, json.dumps(body)
        return member

    def _answer(self, member: Member, path: str, body: dict[str, Any]) -> Answer:
        member.used += 1
        reset = int(clock.now().timestamp()) // 900 * 900 + 900
        headers = {
            "Content-Type": "application/json",
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(0, RATE_LIMIT - member.used)),
            "x-ratelimit-reset": str(reset),
        }
        if path in member.failing_in_body:
            body = {"stat": "fail", "code": INVALID_AUTH_TOKEN, "message": "Invalid auth token"}
        elif path in member.broken:
            member.broken[path](body)
        return 200, headers, json.dumps(body)

    def _me(self, request: requests.PreparedRequest) -> Answer:
        member = self._authenticate(request)
        if not isinstance(member, Member):
            return member
        body = {"stat": "ok", "member": {"id": member.uid, "name": member.name}}
        return self._answer(member, "/me", body)

    def _likes(self, request: requests.PreparedRequest) -> Answer:
        member = self._authenticate(request)
        if not isinstance(member, Member):
            return member
        query = {k: v[-1] for k, v in parse_qs(urlsplit(request.url or "").query).items()}
        size = int(query.get("per_page", "20"))
        start = int(query.get("page_token", "p0").removeprefix("p"))
        chunk = member.likes[start : start + size]
        more = start + size < len(member.likes)
        body = {
            "stat": "ok",
            "likes": [
                {
                    "liked_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "item": {
                        "id": item,
                        "url": f"https://ripple.example/i/{item}",
                        "creator": {"id": f"rc-{item % 3}", "name": f"maker{item % 3}"},
                    },
                }
                for at, item in chunk
            ],
            "next_page_token": f"p{start + size}" if more else None,
        }
        return self._answer(member, "/likes", body)

    def _token(self, request: requests.PreparedRequest) -> Answer:
        raw = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, headers, json.dumps({"error": "invalid_client"})
        member = self._by_refresh.get(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or member is None or member.revoked:
            body = {"error": "invalid_grant", "error_description": "The grant is not valid."}
            return 400, headers, json.dumps(body)
        access, refresh = self._issue(member)
        token = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
            "refresh_token": refresh,
            "scope": "likes:read",
        }
        return 200, headers, json.dumps(token)


# ---------------------------------------------------------------------------
# The honest connector.

NonEmpty = Annotated[str, StringConstraints(min_length=1, strict=True)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Creator(_Payload):
    id: NonEmpty
    name: NonEmpty


class _Item(_Payload):
    id: StrictInt
    url: NonEmpty
    creator: _Creator


class _Like(_Payload):
    liked_at: PlatformTime
    item: _Item


class _LikesPage(_Payload):
    likes: list[_Like]
    next_page_token: NonEmpty | None


class _Member(_Payload):
    id: NonEmpty
    name: NonEmpty


class _Me(_Payload):
    member: _Member


class RippleSettings(ConnectorSettings):
    """``[connectors.ripple]``: the app's OAuth client."""

    required = ("client_id", "client_secret")
    client_id: str | None = None
    client_secret: SecretStr | None = None


def stat_fail(response: requests.Response, body: Any) -> ConnectorError | None:
    """Ripple's error inside a 200: code 98 means the token is no longer valid."""
    if not isinstance(body, dict) or body.get("stat") != "fail":
        return None
    said = printable(str(body.get("message", "")), 200)
    if body.get("code") == INVALID_AUTH_TOKEN:
        return AuthExpired(f"ripple: {said}: link the account again")
    return PlatformError(f"ripple: the platform reported an error: {said}")


class RippleConnector(RestConnector):
    """Ripple likes: a declaration on RestConnector, with OAuth 2 refresh."""

    name = "ripple"
    display_name = "Ripple"
    default_base_url = API
    settings_model = RippleSettings
    auth = OAuth2(token_url=TOKEN_URL)
    error_policy = ErrorPolicy(statuses=DEFAULT_POLICY.statuses, error_in_body=stat_fail)
    tier = Tier.SILVER
    capabilities = frozenset(
        {Capability.LIKE_TIME, Capability.EXPIRING_TOKENS, Capability.RATE_LIMIT_HEADERS}
    )
    quality_rules = (
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "reads-rate-limits",
        "like-time",
        "refreshes-credentials",
    )
    exemptions = {
        "links-with-token": "accounts link through OAuth 2, with a refresh token",
        "fixtures-from-reference": "a made-up platform: there is no reference to write from",
    }

    likes_path = "/likes"
    page_size_param = "per_page"
    paginator = NextToken(("next_page_token",), "page_token")
    page_model = TypeAdapter(_LikesPage)
    identity_path = "/me"
    identity_model = TypeAdapter(_Me)

    def items(self, page: Any) -> list[_Like]:
        """A page's likes, newest first."""
        return list(page.likes)

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A like of the item, made by its creator."""
        like: _Like = item
        return LikeEvent(
            platform=self.name,
            item_id=str(like.item.id),
            item_url=like.item.url,
            creator_id=like.item.creator.id,
            creator_handle=like.item.creator.name,
            liked_at=like.liked_at,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The member: permanent id and name."""
        me: _Me = payload
        return Identity(platform_user_id=me.member.id, handle=me.member.name)


# ---------------------------------------------------------------------------
# The same connector, each with one bug.


class ComparesIds(RippleConnector):
    """Stops paging at the first item whose id is not above the highest id it knows, as if ids
    grew with like time (they say nothing about it)."""

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        if not state.baseline_done:
            return super().poll(account, state)
        highest = max((int(i) for i in state.known if i.isdigit()), default=-1)
        session = account.session
        request: Any = self.first_request(account, state)
        events: list[LikeEvent] = []
        for _ in range(self.settings.max_pages):
            response = session.get(request.url, params=request.params)
            body = session.json(response)
            page = parse_payload(self.page_model, body, where="GET /likes")
            observed = clock.now()
            older = False
            for item in self.items(page):
                event = self.like(item, observed)
                if int(event.item_id) <= highest:
                    older = True
                    break
                events.append(event)
            request = self.paginator.next_request(request, response, body)
            if older or request is None:
                break
        return PollResult(events, state.advanced((e.item_id for e in events), etag=None))


class PagesPastKnown(RippleConnector):
    """Reads every page (up to ``max_pages``) and only then drops the likes it knows."""

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        everything = super().poll(account, replace(state, known=()))
        events = [e for e in everything.events if not state.is_known(e.item_id)]
        return PollResult(events, state.advanced((e.item_id for e in events), etag=None))


class LeaksToken(RippleConnector):
    """Adds the access token to the message of every PlatformError, "to help debugging"."""

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        try:
            return super().poll(account, state)
        except PlatformError as exc:
            raise PlatformError(f"{exc} (token {account.credentials.access_token})") from None

    def identify(self, session: AccountSession) -> Identity:
        try:
            return super().identify(session)
        except PlatformError as exc:
            raise PlatformError(f"{exc} (token {session.credentials.access_token})") from None


class Generic401(RippleConnector):
    """Turns the credentials being refused into a generic platform error."""

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        try:
            return super().poll(account, state)
        except AuthExpired as exc:
            raise PlatformError(f"ripple refused the poll: {exc}") from None

    def identify(self, session: AccountSession) -> Identity:
        try:
            return super().identify(session)
        except AuthExpired as exc:
            raise PlatformError(f"ripple refused the request: {exc}") from None


@dataclass(frozen=True)
class _KeepsRefreshToken(OAuth2):
    """OAuth 2 that ignores the refresh token of the token endpoint's answer."""

    def refresh(self, credentials: Credentials, context: AuthContext) -> Credentials:
        renewed = super().refresh(credentials, context)
        return renewed.changed(refresh_token=credentials.refresh_token)


class KeepsOldRefreshToken(RippleConnector):
    """Keeps using the refresh token it had after Ripple rotated it (spent: single-use)."""

    auth = _KeepsRefreshToken(token_url=TOKEN_URL)


class OwnSession(RippleConnector):
    """Polls on a session of its own instead of the account's: the worker's ``save`` never
    sees renewed credentials, nor the worker the requests and rate limits."""

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        session = self.session(account.session.credentials)
        return super().poll(replace(account, session=session), state)


class SwallowsOutages(RippleConnector):
    """Reports "nothing new" when Ripple is down, instead of failing the poll."""

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        try:
            return super().poll(account, state)
        except TransientError:
            return PollResult(events=[], state=state)


def _misread(response: requests.Response, body: Any) -> ConnectorError | None:
    """Looks for the error code where Ripple does not put it."""
    if isinstance(body, dict) and body.get("stat") == "fail":
        return stat_fail(response, {"stat": "fail", **body["error"]})
    return None


class MisreadsBodyErrors(RippleConnector):
    """Reads an error inside a 200 from a field Ripple does not send (a raw KeyError)."""

    error_policy = ErrorPolicy(statuses=DEFAULT_POLICY.statuses, error_in_body=_misread)


# ---------------------------------------------------------------------------
# The adapter, and the suite as the self-test runs it.

BROKEN_FIELDS: dict[tuple[Malformed, Call], tuple[str, Mutation]] = {
    (Malformed.MISSING_FIELD, Call.IDENTIFY): ("member.id", lambda b: b["member"].pop("id")),
    (Malformed.WRONG_TYPE, Call.IDENTIFY): ("member.name", lambda b: b["member"].update(name=7)),
    (Malformed.MISSING_FIELD, Call.POLL): (
        "likes.0.liked_at",
        lambda b: b["likes"][0].pop("liked_at"),
    ),
    (Malformed.WRONG_TYPE, Call.POLL): (
        "likes.0.item.id",
        lambda b: b["likes"][0]["item"].update(id="r-50101"),
    ),
}
PATHS = {Call.IDENTIFY: "/me", Call.POLL: "/likes"}


class RippleContractPlatform(ContractPlatform):
    """Stages accounts, likes and failures on :class:`Ripple`."""

    def __init__(self, ripple: Ripple) -> None:
        self.ripple = ripple

    @property
    def base_url(self) -> str:
        """Ripple's API root."""
        return API

    def settings_extra(self) -> dict[str, Any]:
        """The app's OAuth client."""
        return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

    def add_account(self) -> ContractAccount:
        """A new member, linked through OAuth: tokens that expire in an hour."""
        name = f"member-{uuid.uuid4().hex[:8]}"
        member, access, refresh = self.ripple.add_member(name)
        credentials = Credentials(
            access_token=access,
            refresh_token=refresh,
            expires_at=clock.now() + TOKEN_LIFETIME,
            token_type="Bearer",
        )
        return ContractAccount(credentials, member.uid, name, {"uid": member.uid})

    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """The member likes item ``key``."""
        self.ripple.like(account.extra["uid"], key, liked_at)
        return str(key)

    def revoke(self, account: ContractAccount) -> None:
        """The member revoked the app: 401, and no refresh."""
        self.ripple.members[account.extra["uid"]].revoked = True

    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """Ripple rate-limits with 429 and Retry-After only."""
        assert status == 429, f"Ripple does not rate-limit with {status}"
        self.ripple.members[account.extra["uid"]].slowed_until = until

    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """Break a field of the answers to ``/me`` or ``/likes``."""
        name, mutation = BROKEN_FIELDS[(kind, call)]
        self.ripple.members[account.extra["uid"]].broken[PATHS[call]] = mutation
        return name

    def expire_access_token(self, account: ContractAccount) -> None:
        """The member's access tokens expire; the refresh token still works."""
        self.ripple.expire(account.extra["uid"])

    def error_in_body(self, account: ContractAccount, call: Call) -> type[ConnectorError]:
        """``{"stat": "fail", "code": 98}`` with 200: the token is not valid any more."""
        self.ripple.members[account.extra["uid"]].failing_in_body.add(PATHS[call])
        return AuthExpired


class RippleContract(ConnectorContract):
    """The suite against Ripple; subclasses name the connector (an intermediate base)."""

    __test__ = False
    connector_class = RippleConnector

    @pytest.fixture
    def platform(self) -> Iterator[RippleContractPlatform]:
        """Ripple, answered by ``responses`` for the test."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            ripple = Ripple()
            ripple.install(mock)
            yield RippleContractPlatform(ripple)
