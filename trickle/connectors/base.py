"""What every connector is: the base class, and the values passed in and out of a poll.

A connector knows one platform's API and nothing else. It is handed an
account (its :class:`~trickle.connectors.session.AccountSession`, which
carries its credentials and signs every request) and the state its previous
poll left, and returns the likes it has not returned before plus the new
state. Storage, scheduling, deduplication and the baseline are the worker's
job. Most connectors are :class:`~trickle.connectors.rest.RestConnector`
declarations; this plain base class is for what is not a REST API.

Only a :class:`PollResult` or one of the typed errors of
:mod:`trickle.connectors.errors` may come out of a poll. The worker treats
anything else as a bug in the connector and the account as failed, and goes
on with the others.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from trickle.connectors.auth import Auth, Bearer
from trickle.connectors.errors import NotConfigured, RateLimitScope
from trickle.connectors.flows import LinkFlow, TokenImport
from trickle.connectors.hosts import HostGuard
from trickle.connectors.policy import DEFAULT_POLICY, ErrorPolicy
from trickle.connectors.quality import Capability, Legacy, Tier
from trickle.connectors.ratelimits import RateLimit
from trickle.connectors.session import AccountSession, SaveCredentials
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import ensure_utc
from trickle.core.credentials import Credentials
from trickle.core.events import MAX_ID_LENGTH, LikeEvent, shortened_handle

if TYPE_CHECKING:
    from trickle.connectors.http import HttpClient

KNOWN_ITEMS_KEPT = 500
"""How many of an account's most recent item ids the poll state remembers."""


# ---------------------------------------------------------------------------
# Values passed in and out of a poll.


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an account is on its platform: the permanent id and the current handle.

    ``platform_user_id`` must be unique across every host of the platform (on a platform of
    many servers, a global id: the account's URI, a DID), since it keys the account and the
    creator identity it claims. ``host`` is the account's server (its origin,
    ``https://mastodon.social``) on such platforms, else None.
    """

    platform_user_id: str
    handle: str
    host: str | None = None

    def __post_init__(self) -> None:
        if not self.platform_user_id or len(self.platform_user_id) > MAX_ID_LENGTH:
            raise ValueError(f"the account's id is empty or longer than {MAX_ID_LENGTH} characters")
        object.__setattr__(self, "handle", shortened_handle(self.handle))


@dataclass(frozen=True, slots=True)
class SignedIn:
    """An account proven by signing in with a password (:meth:`Connector.sign_in`): who it
    is, and the credentials to keep for polling it (empty when polling needs none)."""

    identity: Identity
    credentials: Credentials


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The account a poll acts for; every request for it goes through ``session``."""

    id: int
    platform_user_id: str
    handle: str
    linked_at: datetime
    session: AccountSession
    host: str | None = None

    @property
    def credentials(self) -> Credentials:
        """The account's credentials as they are now (for connectors that are not HTTP)."""
        return self.session.credentials


@dataclass(frozen=True)
class PollState:
    """What the previous poll left for the next one, stored as JSON with the account.

    ``known`` holds the most recent item ids seen, newest first (bounded);
    paging stops at the first page that holds one of them. ``etag`` is the
    validator of the first page for a conditional request. ``cursor`` is the
    connector's own, opaque to everyone else.
    """

    linked_at: datetime
    baseline_done: bool = False
    known: tuple[str, ...] = ()
    etag: str | None = None
    cursor: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def _known_set(self) -> frozenset[str]:
        return frozenset(self.known)

    def is_known(self, item_id: str) -> bool:
        """True when ``item_id`` was seen by an earlier poll."""
        return item_id in self._known_set

    def advanced(
        self,
        new_item_ids: Iterable[str],
        *,
        etag: str | None,
        cursor: Mapping[str, Any] | None = None,
    ) -> PollState:
        """The state after a successful poll that saw ``new_item_ids`` (newest first)."""
        fresh = [i for i in dict.fromkeys(new_item_ids) if not self.is_known(i)]
        known = (*fresh, *self.known)[:KNOWN_ITEMS_KEPT]
        return replace(
            self,
            baseline_done=True,
            known=known,
            etag=etag,
            cursor=dict(self.cursor if cursor is None else cursor),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (``linked_at`` and ``baseline_done`` live in their own columns)."""
        return {"known": list(self.known), "etag": self.etag, "cursor": dict(self.cursor)}

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any] | None, *, linked_at: datetime, baseline_done: bool
    ) -> PollState:
        """Rebuild the state stored by :meth:`to_json`."""
        data = data or {}
        return cls(
            linked_at=ensure_utc(linked_at),
            baseline_done=baseline_done,
            known=tuple(str(i) for i in data.get("known") or ()),
            etag=data.get("etag"),
            cursor=dict(data.get("cursor") or {}),
        )


@dataclass(frozen=True)
class PollResult:
    """What a poll found: the new likes, the state to store, and a hint for the next poll.

    ``requests`` and ``rate_limit`` are what the account's session counted and read; the
    worker takes them from the session itself, whatever a connector says here.
    """

    events: list[LikeEvent]
    state: PollState
    next_poll_hint: timedelta | None = None
    requests: int = 0
    not_modified: bool = False
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class Page:
    """One page of a platform's list of likes, newest first, and whether another follows."""

    events: list[LikeEvent]
    has_next: bool


def collect_new(
    pages: Iterator[Page], state: PollState, max_pages: int
) -> tuple[list[LikeEvent], int]:
    """Walk pages newest first and keep the likes ``state`` does not know.

    Stops after the first page that holds a known item (everything beyond it
    is older), after ``max_pages``, and on a baseline poll after the first
    page that is not made entirely of likes the platform dates at or after
    the link (older likes are the baseline; likes made since the link, even
    more than a page of them, are all collected). An empty page that says
    another follows (X's, when every post on it was deleted or withheld) says
    nothing about the baseline: paging goes on to the first page with likes,
    which is then the baseline. Returns the new events and the number of
    pages fetched.
    """
    events: list[LikeEvent] = []
    fetched = 0
    for page in pages:
        fetched += 1
        events.extend(e for e in page.events if not state.is_known(e.item_id))
        reached_known = any(state.is_known(e.item_id) for e in page.events)
        if reached_known or not page.has_next or fetched >= max_pages:
            break
        if not state.baseline_done and page.events and not _all_since(page.events, state.linked_at):
            break
    return events, fetched


def _all_since(events: list[LikeEvent], since: datetime) -> bool:
    return bool(events) and all(e.liked_at is not None and e.liked_at >= since for e in events)


class Connector(abc.ABC):
    """Base class of every platform connector; see ``docs/writing-a-connector.md``.

    Subclasses set the class attributes and implement :meth:`identify` and :meth:`poll`.
    Every request goes through the account's session (:meth:`session` makes one), so tests
    can stand in for the platform with ``responses`` and every connector gets the HTTP
    layer's limits, retries, rate-limit reading, auth and redaction.
    """

    name: ClassVar[str]
    """Registry key and the ``platform`` of every event: ``"github"``."""
    display_name: ClassVar[str]
    default_base_url: ClassVar[str]
    """The real API root, used unless the account's host or ``[connectors.NAME] base_url``
    says otherwise."""
    settings_model: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    """The model of ``[connectors.NAME]``: :class:`ConnectorSettings`, or a subclass with the
    platform's own keys."""
    auth: ClassVar[Auth] = Bearer()
    """How requests prove whose they are (see :mod:`trickle.connectors.auth`)."""
    link_flows: ClassVar[tuple[LinkFlow, ...]] = (TokenImport(),)
    """How an account is linked, the preferred first (see :mod:`trickle.connectors.flows`)."""
    error_policy: ClassVar[ErrorPolicy] = DEFAULT_POLICY
    """What the platform's answers mean (see :mod:`trickle.connectors.policy`)."""
    multi_host: ClassVar[bool] = False
    """True when each account lives on a server of its own (Mastodon, Bluesky)."""
    user_supplied_hosts: ClassVar[bool] = False
    """True when the hosts the connector sends to are named by users (a Mastodon server, a
    Bluesky PDS): every request of its sessions, and the linking service's to its servers,
    is then held to :attr:`host_guard` (see :mod:`trickle.connectors.hosts`)."""
    default_page_size: ClassVar[int] = 100
    page_size_range: ClassVar[tuple[int, int]] = (1, 1000)
    """The page sizes the platform accepts (X's ``max_results`` 10..100, Mastodon's limit
    up to 40): a ``page_size`` setting outside them is held to the nearest."""
    tier: ClassVar[Tier] = Tier.BRONZE
    quality_rules: ClassVar[tuple[str, ...]] = ()
    """The rules of ``docs/connectors.md`` this connector meets, by id."""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    """What the platform offers (like times, conditional requests...), whatever the connector
    does: rules about a capability the platform lacks do not apply."""
    exemptions: ClassVar[Mapping[str, str]] = {}
    """Exemptible rules the connector does not meet, each with the reason."""
    rate_limit_scope: ClassVar[RateLimitScope] = "account"
    """Whose budget a platform rate limit counts: each token's, or the whole app's."""
    legacy: ClassVar[Legacy | None] = None
    """Set when the platform's public API has closed (:class:`~trickle.connectors.quality.
    Legacy`): ``trickle connectors list`` shows it and ``trickle link`` warns."""

    def __init__(self, settings: ConnectorSettings, http: HttpClient) -> None:
        self.settings = settings
        self.http = http

    @property
    def base_url(self) -> str:
        """API root without a trailing slash (for accounts without a host of their own)."""
        return (self.settings.base_url or self.default_base_url).rstrip("/")

    def base_url_for(self, host: str | None) -> str:
        """The API root for an account on ``host`` (its origin), or :attr:`base_url`."""
        return host.rstrip("/") if host else self.base_url

    @property
    def host_guard(self) -> HostGuard | None:
        """The guard of this connector's requests when its hosts are user-supplied (private
        addresses allowed by ``allow_private_hosts``), else None."""
        if not self.user_supplied_hosts:
            return None
        return HostGuard(allow_private=self.settings.allow_private_hosts)

    @property
    def page_size(self) -> int:
        """Items requested per page: the setting (else :attr:`default_page_size`), held to
        :attr:`page_size_range`, what the platform accepts."""
        low, high = self.page_size_range
        return min(high, max(low, self.settings.page_size or self.default_page_size))

    def session(
        self,
        credentials: Credentials,
        *,
        host: str | None = None,
        save: SaveCredentials | None = None,
        until: float | None = None,
    ) -> AccountSession:
        """A session for an account holding ``credentials`` on ``host``; ``save`` stores
        renewed credentials before they are used (the worker's; None: kept in the session);
        no request of it runs past ``until`` (``time.monotonic()`` seconds; None: no budget
        but each request's own deadline)."""
        return AccountSession(
            http=self.http,
            platform=self.name,
            auth=self.auth,
            settings=self.settings,
            credentials=credentials,
            base_url=self.base_url_for(host),
            policy=self.error_policy,
            rate_limit_scope=self.rate_limit_scope,
            save=save,
            until=until,
            guard=self.host_guard,
        )

    def revoke(self, credentials: Credentials) -> bool | None:
        """Revoke ``credentials`` at the platform its own way, for a platform whose
        revocation is not RFC 7009 (GitHub's): True when revoked, False when these
        credentials cannot be revoked by trickle (a token the user made at the platform).
        None, the default: the linking service revokes them at the RFC 7009 endpoint of the
        flow that issued them, if it has one. Raises a connector error when the platform
        refused or could not be asked."""
        return None

    def sign_in(self, identifier: str, password: str) -> SignedIn:
        """For a connector that declares an :class:`~trickle.connectors.flows.AppPassword`
        flow: sign in as the account ``identifier`` names with ``password`` (an app password,
        used once, never kept), and say who it is and what to keep. Raises a connector error
        when the platform refuses (:class:`AuthExpired`) or cannot be asked."""
        raise NotConfigured(f"{self.name} does not link accounts with a password")

    @abc.abstractmethod
    def identify(self, session: AccountSession) -> Identity:
        """Ask the platform who the session's credentials belong to (used when linking)."""

    @abc.abstractmethod
    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        """Fetch the likes made since ``state``, newest first, and the state to keep."""
