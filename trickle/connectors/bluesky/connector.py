"""Bluesky: a like record in the user's repository is a like, the liked record's author is paid.

Bluesky's XRPC API directly, over trickle's HTTP layer, rather than the
``atproto`` SDK: the SDK sends with httpx, which would bypass the HTTP
layer's deadline, byte cap, redaction and rate-limit reading (and
``responses``), and trickle needs four endpoints of it.

- Likes are public records: ``GET {PDS}/xrpc/com.atproto.repo.listRecords
  ?repo=DID&collection=app.bsky.feed.like&limit=100`` needs no token. The PDS
  lists them by record key, descending by default (``reverse`` would turn it):
  like record keys are TIDs, so newest first. Pages follow ``cursor`` (the
  last record key of the page, given even on the last page: a page shorter
  than the limit is the last one).
- A like is ``{"subject": {"uri": "at://DID/COLLECTION/RKEY", "cid"}, "createdAt"}``:
  the item is the subject's at-uri (a like taken back and given again is the
  same item), the creator the subject's DID, which is permanent (handles
  change); the like time is ``createdAt`` (UTC when a record has no zone).
  The creator's handle would cost a resolution per creator, so the DID
  stands in for it until the creator links their account.
- The account's PDS is its host, named by its DID document, which anyone
  writes: every request to a PDS, a handle's web server or a did:web host
  carries the host guard (``user_supplied_hosts``: https to public addresses
  only, unless the operator sets ``allow_private_hosts``). When the stored PDS answers that the repo
  is not there (``400 InvalidRequest: Could not find repo``), the DID is
  resolved again (``identity.py``): the account moved, and the poll goes on
  at the new PDS, remembered in the poll state's cursor (``pds``); or it did
  not, and the account is deactivated, taken down or deleted: relink.
- 429 waits until ``RateLimit-Reset`` (epoch seconds; every answer carries
  ``RateLimit-Limit/-Remaining/-Reset/-Policy``); 5xx retries later.

Linking (the ``app-password`` flow): the handle is resolved to its DID, the
DID document to the PDS, and checked both ways (the document names the
handle back); the user proves the account is theirs by signing in at that
PDS with an app password (``com.atproto.server.createSession``; nothing but
``xxxx-xxxx-xxxx-xxxx`` is sent, so an account's main password never is).
The session's ``getSession`` says whose it is (``identify``), and the
session is deleted right away (``deleteSession``). Polling needs no token,
so trickle keeps none: neither the app password nor the session. atproto
OAuth (PAR, DPoP with server nonces, a published client metadata document)
would prove the same without an app password; it is not offered yet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from trickle.connectors.auth import Auth, AuthContext, Bearer, Signed
from trickle.connectors.base import AccountRef, Identity, PollResult, PollState, SignedIn
from trickle.connectors.bluesky.dns import DnsTxt, TxtLookup
from trickle.connectors.bluesky.identity import IdentityResolver, normalize_handle, origin_of
from trickle.connectors.bluesky.payloads import (
    LIKE,
    RECORD_PAGE,
    SESSION,
    SESSION_INFO,
    Like,
    SessionInfo,
    Subject,
    subject_of,
)
from trickle.connectors.errors import AuthExpired, ConnectorError, PlatformError
from trickle.connectors.flows import AppPassword
from trickle.connectors.http import json_body
from trickle.connectors.paginators import NextToken, PageRequest
from trickle.connectors.payloads import parse_payload
from trickle.connectors.policy import DEFAULT_POLICY, Action, Answer
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent
from trickle.core.text import printable

LIKE_COLLECTION = "app.bsky.feed.like"
MAX_PAGE_SIZE = 100
"""listRecords' ``limit`` maximum (the lexicon's)."""
APP_PASSWORD_PAGE = "https://bsky.app/settings/app-passwords"  # noqa: S105 - a URL
APP_PASSWORD = re.compile(r"[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}")
"""The form of an app password (specs/xrpc: "usually ... xxxx-xxxx-xxxx-xxxx")."""
WEB_PATHS = {
    "app.bsky.feed.post": "post",
    "app.bsky.feed.generator": "feed",
    "app.bsky.graph.list": "lists",
}
"""Where bsky.app shows a liked record, by its collection."""


class BlueskySettings(ConnectorSettings):
    """``[connectors.bluesky]``: where identities are resolved (the real services by default;
    fakes on 127.0.0.1 in tests and demos)."""

    plc_url: str = "https://plc.directory"
    """The PLC directory that serves did:plc documents."""
    web_origin: str | None = None
    """Ask this origin, with the handle or did:web host as ``Host``, instead of
    ``https://HOST`` for ``/.well-known/atproto-did`` and ``/.well-known/did.json``."""
    dns_server: str | None = None
    """The DNS server (``IP`` or ``IP:PORT``) asked for ``_atproto`` TXT records; None: the
    system's resolvers."""


class RepoNotFound(PlatformError):
    """The PDS asked holds no (active) repository for the DID: moved, or gone."""


def _bad_request(answer: Answer) -> Action:
    """XRPC's 400: "Could not find repo" is :class:`RepoNotFound` (resolve the DID again), an
    expired or invalid session token means relink, anything else is a failure."""
    try:
        body = answer.response.json()
    except (ValueError, RecursionError):
        return Action.FAIL
    error = body.get("error") if isinstance(body, dict) else None
    if error == "InvalidRequest" and answer.detail.startswith("Could not find repo"):
        parts = urlsplit(answer.response.url)
        raise RepoNotFound(
            f"GET {parts.scheme}://{parts.netloc}{parts.path}: 400 the repository is not there"
        )
    if error in ("ExpiredToken", "InvalidToken"):
        return Action.REAUTH
    return Action.FAIL


@dataclass(frozen=True)
class SessionToken(Auth):
    """A session's access JWT as a bearer token while there is one (linking's
    ``getSession``); nothing otherwise, for the public reads of polling, since trickle keeps
    no token of a Bluesky account."""

    def sign(self, credentials: Credentials, context: AuthContext) -> Signed:
        if credentials.access_token:
            return Bearer().sign(credentials, context)
        return Signed()


@dataclass(frozen=True)
class RecordCursor(NextToken):
    """listRecords' ``cursor``; a page shorter than the ``limit`` asked for is the last one
    (the PDS gives a cursor on every page that has records)."""

    path: tuple[str, ...] = ("cursor",)
    param: str = "cursor"

    def next_request(self, current: PageRequest, response: Any, body: Any) -> PageRequest | None:
        following = super().next_request(current, response, body)
        limit = (current.params or {}).get("limit")
        records = body.get("records") if isinstance(body, Mapping) else None
        if isinstance(limit, int) and isinstance(records, list) and len(records) < limit:
            return None
        return following


@dataclass(frozen=True)
class LikedRecord:
    """One like record of a page: what was liked, and when the record says (None when its
    ``createdAt`` is unusable: the like then counts from when trickle saw it)."""

    subject: Subject
    created_at: datetime | None


class BlueskyConnector(RestConnector):
    """Likes of a Bluesky account, from its repository on its PDS (see the module)."""

    name = "bluesky"
    display_name = "Bluesky"
    default_base_url = "https://bsky.social"
    multi_host = True
    user_supplied_hosts = True
    default_page_size = MAX_PAGE_SIZE
    page_size_range = (1, MAX_PAGE_SIZE)
    tier = Tier.GOLD
    capabilities = frozenset({Capability.LIKE_TIME, Capability.RATE_LIMIT_HEADERS})
    quality_rules = (
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "reads-rate-limits",
        "like-time",
        "fixtures-from-reference",
        "fake-platform",
    )
    exemptions = {
        "links-with-token": (
            "Bluesky has no token a user can make and paste: an account is linked with an "
            "app password, exchanged once for a session that proves it and is deleted"
        ),
    }
    settings_model = BlueskySettings
    auth = SessionToken()
    error_policy = DEFAULT_POLICY.with_statuses({400: _bad_request})
    link_flows = (
        AppPassword(
            identifier="handle",
            example="alice.bsky.social",
            app_page=APP_PASSWORD_PAGE,
        ),
    )

    likes_path = "/xrpc/com.atproto.repo.listRecords"
    likes_params = {"collection": LIKE_COLLECTION}
    page_size_param = "limit"
    paginator = RecordCursor()
    page_model = RECORD_PAGE
    identity_path = "/xrpc/com.atproto.server.getSession"
    identity_model = SESSION_INFO

    # -- identities ---------------------------------------------------------------------

    def resolver(self, txt: TxtLookup | None = None) -> IdentityResolver:
        """Handle and DID resolution with this connector's settings (``txt``: the DNS lookup,
        by default dnspython's through ``dns_server`` or the system's resolvers)."""
        settings = self.settings
        assert isinstance(settings, BlueskySettings)
        return IdentityResolver(
            self.http,
            txt or DnsTxt(settings.dns_server, timeout=settings.timeout_seconds),
            plc_url=settings.plc_url,
            web_origin=settings.web_origin,
            guard=self.host_guard,
        )

    # -- polling ------------------------------------------------------------------------

    def first_request(self, account: AccountRef, state: PollState) -> PageRequest:
        """The newest like records of the account's repository."""
        first = super().first_request(account, state)
        return first.with_params(repo=account.platform_user_id)

    def items(self, page: Any) -> Sequence[Any]:
        """The page's like records trickle can pay, each liked record once."""
        liked: dict[str, LikedRecord] = {}
        for record in page.records:
            found = _liked(record.value)
            if found is not None and found.subject.uri not in liked:
                liked[found.subject.uri] = found
        return list(liked.values())

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A like of a record (a post, a feed, a list), made by the record's author."""
        liked: LikedRecord = item
        subject = liked.subject
        return LikeEvent(
            platform=self.name,
            item_id=subject.uri,
            item_url=_web_url(subject),
            creator_id=subject.did,
            creator_handle=subject.did,
            liked_at=liked.created_at,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The session's account: its DID and handle."""
        info: SessionInfo = payload
        return Identity(platform_user_id=info.did, handle=info.handle)

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        """New likes at the account's PDS, following it where it moved (see the module)."""
        here = _stored_pds(state) or account.session.base_url
        try:
            return super().poll(self._at(account, here), state)
        except RepoNotFound:
            moved = self.resolver().pds(account.platform_user_id)
            if moved == here:
                raise AuthExpired(
                    f"{self.name}: the repository of {account.platform_user_id} is not on its "
                    f"PDS {printable(here, 100)} (deactivated, taken down or deleted): link "
                    "the account again when it is back"
                ) from None
        result = super().poll(self._at(account, moved), state)
        cursor = {**result.state.cursor, "pds": moved}
        return replace(result, state=replace(result.state, cursor=cursor))

    def _at(self, account: AccountRef, pds: str) -> AccountRef:
        """``account`` polled at ``pds``: its own session when that is where it points, else a
        session of the same credentials and deadline there."""
        if pds == account.session.base_url:
            return account
        session = self.session(account.session.credentials, host=pds, until=account.session.until)
        return replace(account, session=session, host=pds)

    # -- linking --------------------------------------------------------------------------

    def sign_in(self, identifier: str, password: str) -> SignedIn:
        """Prove the account of the handle ``identifier`` is the user's with an app password
        (see the module); nothing of the session is kept."""
        handle = normalize_handle(identifier)
        if not APP_PASSWORD.fullmatch(password.strip()):
            raise PlatformError(
                "that is not an app password (four groups of four letters or digits, "
                f"xxxx-xxxx-xxxx-xxxx): make one for trickle at {APP_PASSWORD_PAGE}; trickle "
                "never asks for an account's own password"
            )
        secret = password.strip()
        resolved = self.resolver().verify(handle)
        response = self.http.request(
            "POST",
            f"{resolved.pds}/xrpc/com.atproto.server.createSession",
            data=json.dumps({"identifier": resolved.did, "password": secret}),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            secrets=[secret],
            policy=self.error_policy,
            guard=self.host_guard,
        )
        where = "POST /xrpc/com.atproto.server.createSession"
        session = parse_payload(SESSION, json_body(response), where=where)
        secrets = [secret, session.accessJwt, session.refreshJwt]
        try:
            if session.did != resolved.did:
                raise PlatformError(
                    f"the PDS {printable(resolved.pds, 100)} signed in another account "
                    f"({session.did}) than {handle}'s ({resolved.did})"
                )
            token = Credentials(access_token=session.accessJwt)
            identity = self.identify(self.session(token, host=resolved.pds))
            if identity.platform_user_id != resolved.did:
                raise PlatformError(f"the session at {resolved.pds} is not {handle}'s")
        finally:
            self._delete_session(resolved.pds, session.refreshJwt, secrets)
        return SignedIn(
            identity=Identity(platform_user_id=resolved.did, handle=handle, host=resolved.pds),
            credentials=Credentials(),
        )

    def _delete_session(self, pds: str, refresh_jwt: str, secrets: list[str]) -> None:
        """End the session made to prove the account (``deleteSession`` with its refresh
        token). Best effort: a session not deleted expires at the PDS by itself."""
        context = AuthContext(self.name, self.settings, self.http, secrets)
        signed = Bearer().sign(Credentials(access_token=refresh_jwt), context)
        try:
            self.http.request(
                "POST",
                f"{pds}/xrpc/com.atproto.server.deleteSession",
                headers=dict(signed.headers),
                secrets=secrets,
                guard=self.host_guard,
            )
        except ConnectorError:
            return


def _liked(value: Mapping[str, Any]) -> LikedRecord | None:
    """A like record's value as what was liked and when, or None when it is not a like of a
    record trickle can pay (a client may write anything into its own repository)."""
    try:
        like: Like = LIKE.validate_python(value)
    except ValidationError:
        subject = value.get("subject")
        uri = subject.get("uri") if isinstance(subject, Mapping) else None
        found = subject_of(uri) if isinstance(uri, str) else None
        return LikedRecord(found, None) if found is not None else None
    found = subject_of(like.subject.uri)
    return LikedRecord(found, like.createdAt) if found is not None else None


def _web_url(subject: Subject) -> str:
    """Where a person sees the liked record: bsky.app for posts, feeds and lists, else its
    at-uri."""
    kind = WEB_PATHS.get(subject.collection)
    if kind is None:
        return subject.uri
    return f"https://bsky.app/profile/{subject.did}/{kind}/{subject.rkey}"


def _stored_pds(state: PollState) -> str | None:
    """The PDS an earlier poll followed the account to, if it moved since it was linked."""
    stored = state.cursor.get("pds")
    if not isinstance(stored, str):
        return None
    try:
        return origin_of(stored, what="the stored PDS")
    except PlatformError:
        return None
