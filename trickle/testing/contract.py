"""The contract suite every connector must pass, as a pytest base class.

A connector's tests subclass :class:`ConnectorContract`, name the connector
class, and provide one fixture, ``platform``, that yields a
:class:`ContractPlatform`: a small adapter that can stage accounts, likes and
the failures only the platform can stage (revoked credentials, rate limits,
a missing or mistyped field) on a fake (or mocked) copy of the platform's
API. The suite builds the connector and every account's session itself, on
its own HTTP client (:class:`~trickle.testing.wire.TappedHttpClient`), so it
counts every request the connector sends and breaks answers itself: an HTML
error page or truncated JSON instead of a real answer, a 503 that echoes the
credentials, a successful answer saying the rate limit is spent. It then
checks, through the public connector API only (``identify``, ``poll``,
:class:`PollState`, :class:`PollResult`, the account's session):

- the connector declares a name, a tier and quality rules that back the tier;
- ``identify`` returns the platform's permanent user id and handle;
- the baseline: a first poll (``baseline_done=False``) of likes made before
  the link fetches one page and returns exactly that page's likes, with a
  state whose ``baseline_done`` is true (only a page made entirely of likes
  dated after the link is paged past, see :func:`collect_new`);
- incremental polls return only new likes, newest first, and stop paging at
  the first page that holds an already-known item; likes are ordered by like
  time and item ids are deliberately *not* monotonic with it, so a connector
  that compares ids instead of using the known-item set fails;
- a poll from a far-future cursor returns nothing (see
  :meth:`ConnectorContract.far_future_state`);
- paging stops after ``max_pages``; every poll costs exactly the requests it
  needs, and every request goes through the account's session;
- the poll state survives the JSON round trip the worker stores it through;
- 401 -> :class:`AuthExpired`, 429 (and any other rate-limit answer the
  platform uses) -> :class:`RateLimited`, 5xx -> :class:`TransientError`,
  malformed payloads (missing field, wrong type, HTML error page, truncated
  JSON) -> :class:`PlatformError`, an error inside a 200 (for platforms whose
  error policy reads one) -> the typed error it means; never a raw exception;
- the rate-limit state of a successful answer reaches the worker (when the
  connector claims ``reads-rate-limits``);
- expired credentials are renewed, saved, and only then used, and a refused
  refresh is :class:`AuthExpired` (when it claims ``refreshes-credentials``);
- no credential value ever appears in an error message, the stored state or
  an event.

A check about a platform capability (like times, conditional requests,
rate-limit headers, expiring tokens) runs when the connector declares the
capability and claims the rule (see :mod:`trickle.connectors.quality`).

Usage (see ``docs/writing-a-connector.md``)::

    class TestPebbleContract(ConnectorContract):
        connector_class = PebbleConnector

        @pytest.fixture
        def platform(self) -> Iterator[ContractPlatform]:
            with FakePebble() as fake:
                yield PebbleContractPlatform(fake)

Importing this module needs pytest; importing :mod:`trickle.testing` does not.
"""

from __future__ import annotations

import abc
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import count
from typing import Any, ClassVar, TypeVar
from weakref import WeakKeyDictionary

import pytest

from trickle.connectors.base import (
    KNOWN_ITEMS_KEPT,
    AccountRef,
    Connector,
    Identity,
    PollResult,
    PollState,
)
from trickle.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PlatformError,
    RateLimited,
    TransientError,
)
from trickle.connectors.http import Limits
from trickle.connectors.quality import QUALITY_SCALE, RULES_BY_ID, Tier, assess, rules_for
from trickle.connectors.session import AccountSession
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent
from trickle.testing.wire import (
    Exchange,
    Rewrite,
    Tap,
    TappedHttpClient,
    html_error_page,
    spent_rate_limit,
    truncated_json,
    unavailable,
)

__all__ = [
    "QUALITY_SCALE",
    "Call",
    "ConnectorContract",
    "ContractAccount",
    "ContractPlatform",
    "CredentialStore",
    "Malformed",
    "Saved",
    "Unreadable",
    "item_key",
    "rules_for",
]

_NAME = re.compile(r"[a-z][a-z0-9_]*")

E = TypeVar("E", bound=ConnectorError)

_CLIENTS: WeakKeyDictionary[Connector, TappedHttpClient] = WeakKeyDictionary()
"""The suite's HTTP client of each connector :meth:`ConnectorContract.make_connector` built."""

# ---------------------------------------------------------------------------
# What a connector's tests provide.


class Malformed(StrEnum):
    """The ways the platform's adapter breaks a field of an answer (the suite cannot: it does
    not know the fields); each must end in :class:`PlatformError` naming the field."""

    MISSING_FIELD = "missing-field"
    """A field the connector reads is absent (in the first item, for lists)."""
    WRONG_TYPE = "wrong-type"
    """A field the connector reads has the wrong JSON type (a string for a number, ...)."""


class Unreadable(StrEnum):
    """The ways the suite breaks a successful answer itself; each must end in
    :class:`PlatformError`."""

    HTML_ERROR_PAGE = "html-error-page"
    """Status 200, ``Content-Type: text/html``, an HTML error page as the body."""
    TRUNCATED_JSON = "truncated-json"
    """The real JSON body cut off half way, still labelled ``application/json``."""


_UNREADABLE: Mapping[Unreadable, Rewrite] = {
    Unreadable.HTML_ERROR_PAGE: html_error_page,
    Unreadable.TRUNCATED_JSON: truncated_json,
}


class Call(StrEnum):
    """Which connector call a staged fault is aimed at."""

    IDENTIFY = "identify"
    POLL = "poll"


@dataclass(frozen=True)
class ContractAccount:
    """An account the platform adapter created: its credentials and who the platform says it is.

    Make every credential value long and distinctive (``"tok-" + uuid``): the
    suite looks for each one in error messages, states and events.
    """

    credentials: Credentials
    platform_user_id: str
    handle: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything the adapter wants to remember about the account (its login on the fake...)."""


class ContractPlatform(abc.ABC):
    """The adapter a connector's tests hand to the contract suite.

    It stages things on a stand-in for the platform (a
    :class:`~trickle.testing.fakeplatform.FakePlatform` on 127.0.0.1, or
    ``responses`` callbacks) and tells the suite where that stand-in is.
    Every method acts on one account only; other accounts keep working.
    What the suite can do itself (count requests, serve an HTML page,
    truncated JSON or a 5xx, say the rate limit is spent) it does not ask.
    The last two methods are optional: only connectors whose platform needs
    them implement them.
    """

    @property
    @abc.abstractmethod
    def base_url(self) -> str:
        """The stand-in's API root, used as the connector's ``base_url`` setting."""

    def settings_extra(self) -> dict[str, Any]:
        """Plugin-specific ``[connectors.NAME]`` keys the connector needs (none by default)."""
        return {}

    @abc.abstractmethod
    def add_account(self) -> ContractAccount:
        """Create a fresh account with no likes and working credentials."""

    @abc.abstractmethod
    def add_like(self, account: ContractAccount, key: int, liked_at: datetime) -> str:
        """``account`` likes item number ``key`` at ``liked_at``; return the item id the
        connector will report for it.

        Keys are distinct positive integers; the platform must list likes
        newest *like time* first, whatever the item ids are.
        """

    @abc.abstractmethod
    def revoke(self, account: ContractAccount) -> None:
        """From now on the platform answers the account's requests with 401 (and refuses to
        renew its credentials, where it renews them)."""

    @abc.abstractmethod
    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """From now on the platform answers the account's requests the way it says "rate
        limited, try again at ``until``" with HTTP ``status`` (429, or e.g. 403 for GitHub)."""

    @abc.abstractmethod
    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str:
        """From now on the platform breaks a field of its successful answers to ``call`` for
        the account as ``kind`` says; return the name of the broken field (the error message
        must name it)."""

    def expire_access_token(self, account: ContractAccount) -> None:
        """For platforms whose access tokens expire (``Capability.EXPIRING_TOKENS``): from now
        on the platform refuses every access token it has issued to the account so far, as
        expired (401), while its current refresh token still renews them. The suite needs it
        to check ``refreshes-credentials``."""
        raise NotImplementedError(f"{type(self).__name__} cannot expire an access token")

    def error_in_body(self, account: ContractAccount, call: Call) -> type[ConnectorError]:
        """For platforms that report errors inside a successful answer (Flickr's ``{"stat":
        "fail"}``, read by the connector's ``error_policy.error_in_body``): from now on the
        platform answers ``call`` for the account with status 200 and such an error; return
        the typed error it means (:class:`ConnectorError` when any will do)."""
        raise NotImplementedError(f"{type(self).__name__} cannot put an error in a 200")


def _implements(platform: ContractPlatform, method: str) -> bool:
    return getattr(type(platform), method) is not getattr(ContractPlatform, method)


@dataclass(frozen=True)
class Saved:
    """One call of a session's ``save``: the credentials it held, the renewed ones, and how
    many requests the connector had sent when they were saved."""

    old: Credentials
    new: Credentials
    after: int


class CredentialStore:
    """Stands in for the worker's ``save`` (the :data:`~trickle.connectors.session.
    SaveCredentials` of a session): records every call, and where it fell among the requests
    the suite's HTTP client saw."""

    def __init__(self, tap: Tap) -> None:
        self.tap = tap
        self.saved: list[Saved] = []

    def __call__(self, old: Credentials, new: Credentials) -> None:
        """Store ``new`` in place of ``old`` (durably, as far as the suite is concerned)."""
        self.saved.append(Saved(old, new, self.tap.attempts))


# ---------------------------------------------------------------------------
# Staging likes.


def item_key(n: int) -> int:
    """The item key of the ``n``-th like of a test (n >= 1).

    Keys alternate above and below 50,000, moving away from it: every new
    like is either the largest or the smallest id so far, so item ids are
    never monotonic with like time.
    """
    return 50_000 + 101 * n if n % 2 else 50_000 - 97 * n


@dataclass(frozen=True)
class _Like:
    item_id: str
    liked_at: datetime


class _Scene:
    """The likes one test staged for one account, in the order the platform lists them."""

    def __init__(self, platform: ContractPlatform, account: ContractAccount, start: datetime):
        self.platform = platform
        self.account = account
        self.start = start
        self._numbers = count(1)
        self.likes: list[_Like] = []  # oldest first

    def like(self, count_: int = 1) -> list[str]:
        """Stage ``count_`` more likes, each one minute after the previous; their ids, oldest
        first."""
        ids = []
        for _ in range(count_):
            n = next(self._numbers)
            liked_at = self.start + timedelta(minutes=n)
            item_id = self.platform.add_like(self.account, item_key(n), liked_at)
            self.likes.append(_Like(item_id, liked_at))
            ids.append(item_id)
        return ids

    def newest_first(self) -> list[str]:
        """Every staged item id, newest like first (the platform's order)."""
        return [like.item_id for like in reversed(self.likes)]

    def liked_at(self, item_id: str) -> datetime:
        """When the staged like of ``item_id`` was made."""
        return next(like.liked_at for like in self.likes if like.item_id == item_id)


# ---------------------------------------------------------------------------
# The suite.


class ConnectorContract:
    """The standard tests of a trickle connector; subclass it in the connector's tests.

    Subclasses set :attr:`connector_class` and override the ``platform``
    fixture. They may also set :attr:`rate_limit_statuses` (the statuses the
    platform rate-limits with; 429 is always tested) and :attr:`page_size`.
    The base class itself is not collected; every subclass is, unless it
    sets ``__test__ = False`` itself (an intermediate base).
    """

    __test__: ClassVar[bool] = False

    connector_class: ClassVar[type[Connector]]
    """The connector under test."""
    rate_limit_statuses: ClassVar[tuple[int, ...]] = (429,)
    """HTTP statuses the platform uses to say "rate limited"; 429 is tested whatever this says."""
    page_size: ClassVar[int] = 2
    """The page size the suite asks for, small so that a handful of likes spans pages. The
    suite reads ``connector.page_size`` back, so a connector with a fixed size still works."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in vars(cls):
            cls.__test__ = True
        if cls.__test__ and not isinstance(getattr(cls, "connector_class", None), type):
            raise TypeError(f"{cls.__name__} must set connector_class to the connector under test")

    # -- fixtures ------------------------------------------------------------

    @pytest.fixture
    def platform(self) -> ContractPlatform:
        """Override in the subclass: yield the adapter for a running stand-in platform."""
        pytest.fail(
            f"{type(self).__name__} must override the `platform` fixture "
            "(yield a trickle.testing.contract.ContractPlatform)",
            pytrace=False,
        )

    @pytest.fixture
    def connector(self, platform: ContractPlatform) -> Connector:
        """The connector under test, pointed at ``platform``, with the suite's page size."""
        return self.make_connector(platform)

    @pytest.fixture
    def account(self, platform: ContractPlatform) -> ContractAccount:
        """A fresh account on ``platform``."""
        return platform.add_account()

    @pytest.fixture
    def now(self) -> datetime:
        """Now on trickle's clock, to the second; staged likes lie a day or so before it."""
        return clock.now().replace(microsecond=0)

    @pytest.fixture
    def scene(self, platform: ContractPlatform, account: ContractAccount, now: datetime) -> _Scene:
        """Stages likes for ``account``, one a minute, starting a day ago."""
        return _Scene(platform, account, now - timedelta(days=1))

    # -- helpers subclasses may use in their own tests ---------------------

    def make_connector(self, platform: ContractPlatform, **settings: Any) -> Connector:
        """Build :attr:`connector_class` against ``platform``; ``settings`` override defaults.

        Its HTTP client is the suite's own (:class:`TappedHttpClient`: one retry, no back-off,
        the settings' limits, as ``App.connector()`` gives the worker's), so :meth:`tap` sees
        every request it sends.
        """
        values: dict[str, Any] = {
            "base_url": platform.base_url,
            "page_size": self.page_size,
            "timeout_seconds": 10.0,
            **platform.settings_extra(),
            **settings,
        }
        connector_settings = self.connector_class.settings_model(**values)
        http = TappedHttpClient().with_limits(Limits.of(connector_settings))
        assert isinstance(http, TappedHttpClient)
        connector = self.connector_class(connector_settings, http)
        _CLIENTS[connector] = http
        return connector

    @staticmethod
    def http_client(connector: Connector) -> TappedHttpClient:
        """The suite's HTTP client of ``connector`` (built by :meth:`make_connector`)."""
        client = _CLIENTS.get(connector)
        if client is None:
            raise LookupError("the connector was not built by make_connector")
        return client

    def tap(self, connector: Connector) -> Tap:
        """What the suite's HTTP client saw of ``connector``'s requests, and where a rewrite of
        its answers is set (:meth:`Tap.rewriting`)."""
        return self.http_client(connector).tap

    def attempts_per_request(self, connector: Connector) -> int:
        """The most attempts one request of ``connector`` may cost: the first and the HTTP
        layer's retries after a 5xx or a broken connection."""
        return self.http_client(connector).retries + 1

    @staticmethod
    def session(
        connector: Connector,
        account: ContractAccount,
        *,
        credentials: Credentials | None = None,
        save: CredentialStore | None = None,
    ) -> AccountSession:
        """The session the worker would open for ``account`` (with ``credentials`` instead of
        the account's own, when given; ``save`` standing in for the worker's)."""
        return connector.session(credentials or account.credentials, save=save)

    @staticmethod
    def account_ref(
        account: ContractAccount,
        linked_at: datetime,
        connector: Connector,
        *,
        session: AccountSession | None = None,
    ) -> AccountRef:
        """The :class:`AccountRef` the worker would pass for ``account`` (on a new session, or
        on ``session``)."""
        return AccountRef(
            id=1,
            platform_user_id=account.platform_user_id,
            handle=account.handle,
            linked_at=linked_at,
            session=session or connector.session(account.credentials),
        )

    @staticmethod
    def far_future_state(linked_at: datetime, newest_ids: list[str]) -> PollState:
        """A *far-future cursor*: a state that has seen everything the platform holds and more.

        Its ``known`` set starts with item ids the platform has never had (likes
        "from the future") followed by ``newest_ids``, the ids of the
        platform's newest likes (at least its whole first page); it has no
        ETag (so no conditional request can answer for the connector) and an
        empty connector cursor (the connector's own cursor is opaque to the
        suite). A poll from it must return nothing and stop after the first
        page.
        """
        future = tuple(f"future-item-{n}" for n in range(3))
        return PollState(
            linked_at=linked_at,
            baseline_done=True,
            known=(*future, *newest_ids),
            etag=None,
            cursor={},
        )

    def secrets_of(
        self, connector: Connector, account: ContractAccount, *more: Credentials
    ) -> list[str]:
        """Every secret a call for ``account`` may hold: the account's credentials, ``more``
        credentials (renewed ones), and the operator's secrets the connector's auth sends."""
        values = list(account.credentials.secret_values())
        for credentials in more:
            values.extend(credentials.secret_values())
        values.extend(connector.auth.app_secrets(connector.settings))
        return list(dict.fromkeys(v for v in values if v))

    def poll(
        self,
        connector: Connector,
        account: ContractAccount,
        state: PollState,
        *,
        session: AccountSession | None = None,
    ) -> PollResult:
        """Poll (on a new session for the account, or on ``session``) and check everything
        every poll result must satisfy, and that every request went through the session."""
        session = session or self.session(connector, account)
        tap = self.tap(connector)
        sent_before, session_before = tap.attempts, session.requests
        ref = self.account_ref(account, state.linked_at, connector, session=session)
        result = connector.poll(ref, state)
        self._assert_through_session(tap.attempts - sent_before, session.requests - session_before)
        assert isinstance(result, PollResult), (
            f"poll returned {type(result).__name__}, not PollResult"
        )
        assert isinstance(result.state, PollState), (
            f"PollResult.state is {type(result.state).__name__}, not PollState"
        )
        assert result.state.baseline_done, "the state after a successful poll has baseline_done"
        assert result.state.linked_at == state.linked_at, "poll must keep the state's linked_at"
        ids = []
        for event in result.events:
            assert isinstance(event, LikeEvent), f"an event is a {type(event).__name__}"
            assert event.platform == connector.name, (
                f"event platform {event.platform!r} is not the connector's name {connector.name!r}"
            )
            ids.append(event.item_id)
        assert len(ids) == len(set(ids)), f"one poll returned an item twice: {ids}"
        remembered = set(result.state.known)
        forgotten = [i for i in ids[:KNOWN_ITEMS_KEPT] if i not in remembered]
        assert not forgotten, f"the new state does not remember returned items {forgotten}"
        stored = json.dumps(result.state.to_json())  # the worker stores it as JSON
        for secret in [*self.secrets_of(connector, account), *session.secrets]:
            assert secret not in stored, "a credential appears in the stored poll state"
            for event in result.events:
                assert secret not in f"{event.item_url} {event.creator_handle}", (
                    f"a credential appears in the event for item {event.item_id}"
                )
        if self._checks("like-time"):
            for event in result.events:
                assert event.liked_at is not None, (
                    f"like-time is claimed, but item {event.item_id} has no liked_at"
                )
        return result

    def identify(
        self,
        connector: Connector,
        account: ContractAccount,
        *,
        session: AccountSession | None = None,
    ) -> Identity:
        """``identify`` (on a new session for the account, or on ``session``), checking that
        every request went through the session."""
        session = session or self.session(connector, account)
        tap = self.tap(connector)
        sent_before, session_before = tap.attempts, session.requests
        identity = connector.identify(session)
        self._assert_through_session(tap.attempts - sent_before, session.requests - session_before)
        return identity

    def call(
        self,
        connector: Connector,
        account: ContractAccount,
        call: Call,
        linked_at: datetime,
        *,
        session: AccountSession | None = None,
    ) -> None:
        """Make ``call`` for ``account``: ``identify``, or a baseline ``poll`` (on a new
        session, or on ``session``), with no checks of what it returns (for calls that must
        fail)."""
        session = session or self.session(connector, account)
        if call is Call.POLL:
            connector.poll(
                self.account_ref(account, linked_at, connector, session=session),
                PollState(linked_at=linked_at),
            )
        else:
            connector.identify(session)

    @staticmethod
    def expect_error(expected: type[E], what: str, action: Callable[[], object]) -> E:
        """The ``expected`` error ``action`` raises; a test failure saying what it did instead
        (another typed error, a raw exception, nothing)."""
        try:
            action()
        except expected as exc:
            return exc
        except ConnectorError as exc:
            pytest.fail(
                f"{what} raised {type(exc).__name__}: {exc} (expected {expected.__name__})",
                pytrace=False,
            )
        except Exception as exc:
            pytest.fail(
                f"{what} raised {type(exc).__name__}: {exc} (expected {expected.__name__}: "
                "only the typed errors of trickle.connectors.errors may leave a connector)",
                pytrace=False,
            )
        pytest.fail(f"{what} raised nothing (expected {expected.__name__})", pytrace=False)

    @staticmethod
    def assert_no_secrets(
        error: BaseException, account: ContractAccount, *, secrets: Iterable[str] = ()
    ) -> None:
        """No credential value of ``account`` (nor any of ``secrets``) appears in ``error`` or
        in the exceptions chained to it."""
        values = [*account.credentials.secret_values(), *secrets]
        seen: BaseException | None = error
        while seen is not None:
            text = f"{seen} {seen!r}"
            for secret in values:
                assert secret not in text, (
                    f"a credential appears in the message of {type(seen).__name__}"
                )
            if seen.__cause__ is not None:
                seen = seen.__cause__
            elif not seen.__suppress_context__:
                seen = seen.__context__
            else:
                seen = None

    @staticmethod
    def assert_items(result: PollResult, expected: list[str], what: str) -> None:
        """The poll returned exactly the items ``expected``, in that order (newest first)."""
        got = [event.item_id for event in result.events]
        assert got == expected, f"{what}: expected items {expected}, got {got}"

    def _claims(self, rule: str) -> bool:
        return rule in self.connector_class.quality_rules

    def _checks(self, rule: str) -> bool:
        """True when the suite checks ``rule``: the connector claims it, and its platform has
        the capability the rule is about, if it is about one."""
        uses = RULES_BY_ID[rule].uses
        return self._claims(rule) and (uses is None or uses in self.connector_class.capabilities)

    def _require(self, rule: str) -> None:
        """Skip the test (saying why) unless the suite checks ``rule`` for this connector."""
        uses = RULES_BY_ID[rule].uses
        if uses is not None and uses not in self.connector_class.capabilities:
            pytest.skip(f"{rule} does not apply: the platform lacks {uses.value!r}")
        if not self._claims(rule):
            pytest.skip(f"the connector does not claim {rule}")

    def _require_adapter(self, platform: ContractPlatform, method: str, rule: str) -> None:
        if not _implements(platform, method):
            pytest.fail(
                f"{rule}: {type(platform).__name__} must implement {method}() so that the suite "
                "can check it (see ContractPlatform)",
                pytrace=False,
            )

    @staticmethod
    def _assert_through_session(sent: int, through_session: int) -> None:
        assert sent == through_session, (
            f"{sent} request(s) went out, {through_session} through the account's session: "
            "every request must go through it (AccountRef.session, or the session identify is "
            "given), which signs, counts, reads rate limits and saves renewed credentials"
        )

    def _assert_requests(self, connector: Connector, before: int, expected: int, what: str) -> None:
        sent = self.tap(connector).attempts - before
        assert sent == expected, (
            f"{what}: expected {expected} request(s) to the platform, saw {sent}"
        )

    # -- declaration ---------------------------------------------------------

    def test_declares_name_tier_and_rules(self) -> None:
        """The registry key, display name, API root, tier and rules are declared and consistent."""
        cls = self.connector_class
        assert issubclass(cls, Connector), f"{cls.__name__} is not a trickle Connector"
        name = getattr(cls, "name", None)
        assert isinstance(name, str), "the connector declares its name"
        assert _NAME.fullmatch(name), (
            f"name {name!r} must be lower-case letters, digits and _ (it is the registry key)"
        )
        assert isinstance(getattr(cls, "display_name", None), str), "display_name is declared"
        default_base_url = getattr(cls, "default_base_url", None)
        assert isinstance(default_base_url, str), "default_base_url is declared"
        assert default_base_url.startswith("https://"), (
            "default_base_url is the real API root, over HTTPS"
        )
        assert isinstance(cls.tier, Tier), f"tier must be a trickle Tier, not {cls.tier!r}"
        assessment = assess(cls.tier, cls.quality_rules, cls.capabilities, cls.exemptions)
        assert not assessment.problems, (
            f"the quality declarations do not stand: {'; '.join(assessment.problems)} "
            "(see docs/connectors.md)"
        )
        assert not assessment.unmet, (
            f"tier {cls.tier.value} needs rules {list(assessment.unmet)} too"
        )
        assert cls.rate_limit_scope in ("account", "app"), "rate_limit_scope is account or app"

    # -- linking -------------------------------------------------------------

    def test_identify_returns_the_permanent_id_and_handle(
        self, connector: Connector, account: ContractAccount
    ) -> None:
        """``identify`` says who the credentials belong to, by the platform's permanent id."""
        if self._claims("links-with-token"):
            token = account.credentials.access_token or ""
            assert account.credentials == Credentials(access_token=token), (
                "links-with-token is claimed: the account must link with a token alone"
            )
        identity = self.identify(connector, account)
        assert isinstance(identity, Identity), f"identify returned {type(identity).__name__}"
        expected = Identity(account.platform_user_id, account.handle)
        assert identity == expected, f"identify returned {identity}, expected {expected}"

    # -- the baseline --------------------------------------------------------

    def test_baseline_poll_returns_the_first_page_only(
        self, connector: Connector, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """The first poll after linking fetches one page and returns exactly its likes."""
        size = connector.page_size
        scene.like(2 * size + 1)
        before = self.tap(connector).attempts
        result = self.poll(connector, account, PollState(linked_at=now))
        self.assert_items(
            result,
            scene.newest_first()[:size],
            "a baseline poll returns the first page's likes, newest first, and pages no further",
        )
        self._assert_requests(connector, before, 1, "a baseline poll")

    def test_baseline_poll_of_an_account_without_likes(
        self, connector: Connector, account: ContractAccount, now: datetime
    ) -> None:
        """An account with no likes yet has an empty baseline, and the baseline is then done."""
        result = self.poll(connector, account, PollState(linked_at=now))
        self.assert_items(result, [], "the baseline of an account without likes")

    def test_baseline_poll_reports_like_times(
        self, connector: Connector, account: ContractAccount, scene: _Scene
    ) -> None:
        """Likes from before and after the link both come back, with their like times when the
        connector claims like-time: the worker pays only those made after ``linked_at``."""
        before_link, after_link = scene.like(2)
        linked_at = scene.liked_at(after_link) - timedelta(seconds=30)
        result = self.poll(connector, account, PollState(linked_at=linked_at))
        self.assert_items(
            result, [after_link, before_link], "a baseline poll with likes before and after linking"
        )
        if self._checks("like-time"):
            for event in result.events:
                assert event.liked_at == scene.liked_at(event.item_id), (
                    f"item {event.item_id}: liked_at {event.liked_at} is not the platform's "
                    f"like time {scene.liked_at(event.item_id)}"
                )

    # -- incremental polls -----------------------------------------------------

    def test_incremental_poll_returns_only_new_likes(
        self, connector: Connector, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """After the baseline, each poll returns the likes made since the previous one."""
        scene.like(3)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        (new,) = scene.like(1)
        result = self.poll(connector, account, state)
        self.assert_items(result, [new], "the poll after one new like")
        newer = scene.like(2)
        result = self.poll(connector, account, result.state)
        self.assert_items(result, newer[::-1], "the poll after two new likes")
        before = self.tap(connector).attempts
        result = self.poll(connector, account, result.state)
        self.assert_items(result, [], "a poll with nothing new")
        self._assert_requests(connector, before, 1, "a poll with nothing new")

    def test_paging_stops_at_known_items_not_at_an_id_comparison(
        self, connector: Connector, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """New likes spanning several pages all come back, and paging stops at the page that
        holds the first known item. Item ids here are not ordered like the like times."""
        size = connector.page_size
        scene.like(2 * size)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        fresh = scene.like(2 * size + 1)
        before = self.tap(connector).attempts
        result = self.poll(connector, account, state)
        self.assert_items(
            result,
            fresh[::-1],
            "every new like, newest first, and nothing known (likes are in like-time order, "
            "item ids are not: use the known-item set, not an id comparison)",
        )
        pages_needed = len(fresh) // size + 1  # up to the page holding the first known item
        self._assert_requests(connector, before, pages_needed, "paging to the known items")

    def test_paging_stops_after_max_pages(
        self, platform: ContractPlatform, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """A backlog longer than ``max_pages`` pages is cut off there, newest likes kept."""
        connector = self.make_connector(platform, max_pages=2)
        size = connector.page_size
        scene.like(1)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        scene.like(3 * size)
        before = self.tap(connector).attempts
        result = self.poll(connector, account, state)
        self.assert_items(
            result, scene.newest_first()[: 2 * size], "the first two pages of a long backlog"
        )
        self._assert_requests(connector, before, 2, "paging with max_pages=2")

    def test_far_future_cursor_returns_nothing(
        self, connector: Connector, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """A state that has seen everything the platform holds, and newer items the platform
        never had, gets nothing back from one request (see :meth:`far_future_state`)."""
        scene.like(2 * connector.page_size + 1)
        state = self.far_future_state(now, scene.newest_first())
        before = self.tap(connector).attempts
        result = self.poll(connector, account, state)
        self.assert_items(result, [], "a poll from a far-future cursor")
        self._assert_requests(connector, before, 1, "a poll from a far-future cursor")

    def test_unchanged_platform_returns_nothing(
        self, connector: Connector, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """Polling again when nothing changed returns nothing, in one request (a 304 when the
        connector claims conditional-requests)."""
        scene.like(3)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        before = self.tap(connector).attempts
        result = self.poll(connector, account, state)
        self.assert_items(result, [], "a poll of an unchanged account")
        self._assert_requests(connector, before, 1, "a poll of an unchanged account")
        if self._checks("conditional-requests"):
            assert result.not_modified, (
                "conditional-requests is claimed, but an unchanged account was not answered "
                "'not modified'"
            )
            (exchange,) = self.tap(connector).since(before)
            status = exchange.reply.status if exchange.reply is not None else None
            assert status == 304, (
                "conditional-requests is claimed, but the platform did not answer 304: the "
                "first page must be asked for with the stored ETag (If-None-Match)"
            )

    def test_state_survives_the_json_round_trip(
        self, connector: Connector, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """The worker stores the state as JSON and rebuilds it; polling from the rebuilt state
        behaves as from the original."""
        scene.like(3)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        stored = json.loads(json.dumps(state.to_json()))
        rebuilt = PollState.from_json(stored, linked_at=now, baseline_done=True)
        (new,) = scene.like(1)
        result = self.poll(connector, account, rebuilt)
        self.assert_items(result, [new], "a poll from a state rebuilt from JSON")

    # -- failures the platform stages ----------------------------------------

    def test_revoked_credentials_raise_auth_expired_on_poll(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
    ) -> None:
        """401 from the platform is :class:`AuthExpired`: the user must relink."""
        scene.like(1)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        platform.revoke(account)
        ref = self.account_ref(account, now, connector)
        error = self.expect_error(
            AuthExpired, "poll with revoked credentials", lambda: connector.poll(ref, state)
        )
        self.assert_no_secrets(error, account, secrets=ref.session.secrets)

    def test_revoked_credentials_raise_auth_expired_on_identify(
        self, platform: ContractPlatform, connector: Connector, account: ContractAccount
    ) -> None:
        """401 when linking is :class:`AuthExpired` too, and says nothing of the token."""
        platform.revoke(account)
        session = self.session(connector, account)
        error = self.expect_error(
            AuthExpired, "identify with revoked credentials", lambda: connector.identify(session)
        )
        self.assert_no_secrets(error, account, secrets=session.secrets)

    def test_rate_limits_raise_rate_limited(
        self, platform: ContractPlatform, connector: Connector, now: datetime
    ) -> None:
        """429 (and every other status the platform rate-limits with) is :class:`RateLimited`,
        with a retry time in the future: the platform's own when the connector claims
        honours-rate-limits."""
        until = now + timedelta(minutes=17)
        for status in dict.fromkeys((429, *self.rate_limit_statuses)):
            account = platform.add_account()
            platform.rate_limit(account, until, status)
            for call in Call:
                where = f"{call.value} answered {status}"
                session = self.session(connector, account)
                error = self.expect_error(
                    RateLimited,
                    where,
                    lambda: self.call(connector, account, call, now, session=session),  # noqa: B023
                )
                self.assert_no_secrets(error, account, secrets=session.secrets)
                assert error.retry_at > now, f"{where}: retry_at {error.retry_at} is not later"
                assert error.scope == connector.rate_limit_scope, (
                    f"{where}: scope {error.scope!r}, the connector declares "
                    f"{connector.rate_limit_scope!r}"
                )
                if self._claims("honours-rate-limits"):
                    assert abs(error.retry_at - until) <= timedelta(seconds=2), (
                        f"{where}: retry_at {error.retry_at} is not the platform's {until}"
                    )

    @pytest.mark.parametrize("call", list(Call))
    @pytest.mark.parametrize("kind", list(Malformed))
    def test_malformed_payloads_raise_platform_error(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
        kind: Malformed,
        call: Call,
    ) -> None:
        """A payload with a missing field or a field of the wrong type is
        :class:`PlatformError` naming the field, never a raw exception."""
        scene.like(2)
        broken_field = platform.malform(account, kind, call)
        session = self.session(connector, account)
        error = self.expect_error(
            PlatformError,
            f"{call.value} with a {kind.value} payload",
            lambda: self.call(connector, account, call, now, session=session),
        )
        self.assert_no_secrets(error, account, secrets=session.secrets)
        assert broken_field in str(error), (
            f"the error does not name the broken field {broken_field!r}: {error}"
        )

    @pytest.mark.parametrize(
        "call", [pytest.param(Call.POLL, id="poll"), pytest.param(Call.IDENTIFY, id="identify")]
    )
    def test_an_error_inside_a_successful_answer_is_a_typed_error(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        now: datetime,
        call: Call,
    ) -> None:
        """A platform that reports errors inside a 200 (its error policy's ``error_in_body``
        reads them) gets the typed error the answer means, never a raw exception."""
        if connector.error_policy.error_in_body is None:
            pytest.skip(
                "the connector's error policy reads no errors inside a 200 (no error_in_body)"
            )
        self._require_adapter(platform, "error_in_body", "an error policy with error_in_body")
        expected = platform.error_in_body(account, call)
        session = self.session(connector, account)
        error = self.expect_error(
            expected,
            f"{call.value} answered 200 with an error inside",
            lambda: self.call(connector, account, call, now, session=session),
        )
        self.assert_no_secrets(error, account, secrets=session.secrets)

    # -- failures the suite stages itself -----------------------------------

    @pytest.mark.parametrize("call", list(Call))
    @pytest.mark.parametrize("kind", list(Unreadable))
    def test_unreadable_answers_raise_platform_error(
        self,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
        kind: Unreadable,
        call: Call,
    ) -> None:
        """A successful answer that is an HTML page, or JSON cut off half way, is
        :class:`PlatformError`, never a raw exception, and the error does not quote the page."""
        scene.like(2)
        session = self.session(connector, account)
        with self.tap(connector).rewriting(_UNREADABLE[kind]):
            error = self.expect_error(
                PlatformError,
                f"{call.value} answered with {kind.value}",
                lambda: self.call(connector, account, call, now, session=session),
            )
        self.assert_no_secrets(error, account, secrets=session.secrets)
        assert "<html" not in str(error).lower(), f"the error quotes the HTML page: {error}"

    @pytest.mark.parametrize("call", list(Call))
    def test_server_errors_raise_transient_error(
        self,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
        call: Call,
    ) -> None:
        """A platform answering 503 every time (its message echoing the credentials) is a
        :class:`TransientError` showing none of them, after the HTTP layer's retries and no
        more."""
        scene.like(1)
        session = self.session(connector, account)
        tap = self.tap(connector)
        before = tap.attempts
        with tap.rewriting(unavailable):
            error = self.expect_error(
                TransientError,
                f"{call.value} answered 503",
                lambda: self.call(connector, account, call, now, session=session),
            )
        self.assert_no_secrets(error, account, secrets=session.secrets)
        sent, most = tap.attempts - before, self.attempts_per_request(connector)
        assert 1 <= sent <= most, (
            f"{call.value} answered 503: {sent} requests sent; the HTTP layer retries a 5xx "
            f"(here {most - 1} time(s)), the connector must not retry it again"
        )

    def test_rate_limits_are_read_from_successful_answers(
        self, connector: Connector, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """A successful answer saying no request is left until a reset reaches the worker as
        the session's rate-limit state (what the worker stores as ``PollResult.rate_limit``)."""
        self._require("reads-rate-limits")
        scene.like(1)
        reset = now + timedelta(minutes=23)
        session = self.session(connector, account)
        with self.tap(connector).rewriting(spent_rate_limit(reset)):
            self.poll(connector, account, PollState(linked_at=now), session=session)
        limits = session.rate_limit
        assert limits is not None, (
            "reads-rate-limits is claimed, but the session read no rate-limit state from the "
            "poll's answers"
        )
        assert limits.exhausted, f"the answers said no request is left, the session read {limits}"
        assert limits.reset_at == reset, (
            f"the answers said the window resets at {reset}, the session read {limits.reset_at}"
        )

    # -- renewing credentials --------------------------------------------------

    @pytest.mark.parametrize("expiry_known", [True, False], ids=["expiry-known", "expiry-unknown"])
    def test_expired_credentials_are_renewed_saved_then_used(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
        expiry_known: bool,
    ) -> None:
        """A poll with an expired access token renews it (before any request when trickle
        knows the expiry, once after the platform's 401 when it does not), hands the renewed
        credentials to ``save`` before the retried request goes out with them (refresh, save,
        retry), saves the refresh token the platform rotated to, and the saved credentials
        renew again."""
        self._require("refreshes-credentials")
        self._require_adapter(platform, "expire_access_token", "refreshes-credentials")
        scene.like(1)
        platform.expire_access_token(account)
        old = account.credentials.changed(
            expires_at=now - timedelta(minutes=5) if expiry_known else None
        )
        tap = self.tap(connector)
        start = tap.attempts
        store = CredentialStore(tap)
        session = self.session(connector, account, credentials=old, save=store)
        result = self.poll(connector, account, PollState(linked_at=now), session=session)
        self.assert_items(result, scene.newest_first(), "a poll with expired credentials")
        assert len(store.saved) == 1, (
            f"the credentials were saved {len(store.saved)} times, expected once: renewed "
            "credentials must reach the session's save before they are used"
        )
        (saved,) = store.saved
        new = saved.new
        assert saved.old == old, "save was not handed the credentials the session held"
        assert new.access_token not in (None, "", old.access_token), (
            "the saved credentials hold no new access token"
        )
        assert new.access_token is not None
        assert session.credentials == new, "the session goes on with other credentials than saved"
        exchanges = tap.since(start)
        before_save, after_save = exchanges[: saved.after - start], exchanges[saved.after - start :]
        assert not any(e.carries(new.access_token) for e in before_save), (
            "a request went out with the renewed access token before it was saved"
        )
        assert after_save, "no request went out after the renewed credentials were saved"
        assert after_save[0].carries(new.access_token), (
            "the request after saving did not go out with the renewed access token"
        )
        old_token = old.access_token or ""
        if expiry_known:
            assert not any(e.carries(old_token) for e in exchanges), (
                "a request went out with an access token known to have expired: renew first"
            )
        else:
            assert before_save, "with no expiry known, nothing was sent before the renewal"
            assert before_save[0].carries(old_token), (
                "with no expiry known, the access token is tried first"
            )
            assert not any(e.carries(old_token) for e in after_save), (
                "a request went out with the expired access token after the renewal"
            )
        self._assert_rotation_saved(before_save, new)
        # A single-use refresh token is spent once used: the saved one must renew again.
        platform.expire_access_token(account)
        again = new.changed(expires_at=now - timedelta(minutes=5))
        store = CredentialStore(tap)
        session = self.session(connector, account, credentials=again, save=store)
        try:
            self.poll(connector, account, PollState(linked_at=now), session=session)
        except AuthExpired:
            pytest.fail(
                "the saved credentials could not be renewed again: the platform refused their "
                "refresh token (a single-use refresh token already spent? the one the platform "
                "rotated to must be saved)",
                pytrace=False,
            )
        assert len(store.saved) == 1, "the saved credentials were renewed and saved again"

    @staticmethod
    def _assert_rotation_saved(exchanges: list[Exchange], new: Credentials) -> None:
        """If the token endpoint's answer that issued ``new.access_token`` is among
        ``exchanges``, the refresh token it issued (if any) is the one saved."""
        for exchange in exchanges:
            answer = exchange.reply.json() if exchange.reply is not None else None
            if not isinstance(answer, dict) or answer.get("access_token") != new.access_token:
                continue
            rotated = answer.get("refresh_token")
            if isinstance(rotated, str) and rotated:
                assert new.refresh_token == rotated, (
                    "the platform rotated the refresh token, but another one was saved: the "
                    "rotated one is the only one it will accept next time"
                )

    @pytest.mark.parametrize("call", list(Call))
    def test_a_refused_refresh_raises_auth_expired(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        now: datetime,
        call: Call,
    ) -> None:
        """Expired credentials whose refresh token the platform refuses (one it never issued)
        are :class:`AuthExpired`, nothing is saved, and no secret shows."""
        self._require("refreshes-credentials")
        self._require_adapter(platform, "expire_access_token", "refreshes-credentials")
        platform.expire_access_token(account)
        refused = account.credentials.changed(
            refresh_token=f"contract-unknown-refresh-{uuid.uuid4().hex}",
            expires_at=now - timedelta(minutes=5),
        )
        store = CredentialStore(self.tap(connector))
        session = self.session(connector, account, credentials=refused, save=store)
        error = self.expect_error(
            AuthExpired,
            f"{call.value} with a refresh token the platform refuses",
            lambda: self.call(connector, account, call, now, session=session),
        )
        self.assert_no_secrets(error, account, secrets=[*refused.secret_values(), *session.secrets])
        assert store.saved == [], "credentials were saved although the refresh was refused"
