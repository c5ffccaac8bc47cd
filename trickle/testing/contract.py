"""The contract suite every connector must pass, as a pytest base class.

A connector's tests subclass :class:`ConnectorContract`, name the connector
class, and provide one fixture, ``platform``, that yields a
:class:`ContractPlatform`: a small adapter that can stage accounts, likes and
failures on a fake (or mocked) copy of the platform's API. The suite then
checks, through the public connector API only (``identify``, ``poll``,
:class:`PollState`, :class:`PollResult`):

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
- paging stops after ``max_pages``;
- the poll state survives the JSON round trip the worker stores it through;
- 401 -> :class:`AuthExpired`, 429 (and any other rate-limit answer the
  platform uses) -> :class:`RateLimited`, and malformed payloads (missing
  field, wrong type, HTML error page, truncated JSON) -> :class:`PlatformError`,
  never a raw exception;
- no credential value ever appears in an error message, the stored state or
  an event.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import count
from typing import Any, ClassVar

import pytest

from trickle.connectors.base import (
    KNOWN_ITEMS_KEPT,
    AccountRef,
    Connector,
    Identity,
    PollResult,
    PollState,
)
from trickle.connectors.errors import AuthExpired, ConnectorError, PlatformError, RateLimited
from trickle.connectors.http import HttpClient, Limits
from trickle.connectors.quality import QUALITY_SCALE, Tier, assess, rules_for
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

__all__ = [
    "QUALITY_SCALE",
    "Call",
    "ConnectorContract",
    "ContractAccount",
    "ContractPlatform",
    "Malformed",
    "item_key",
    "rules_for",
]

_NAME = re.compile(r"[a-z][a-z0-9_]*")

_CLIENT = HttpClient(retries=1, backoff_factor=0)
"""The suite's HTTP client: one retry, no back-off; each connector gets a view of it."""

# ---------------------------------------------------------------------------
# What a connector's tests provide.


class Malformed(StrEnum):
    """The ways a platform answer can be broken; each must end in :class:`PlatformError`."""

    MISSING_FIELD = "missing-field"
    """A field the connector reads is absent (in the first item, for lists)."""
    WRONG_TYPE = "wrong-type"
    """A field the connector reads has the wrong JSON type (a string for a number, ...)."""
    HTML_ERROR_PAGE = "html-error-page"
    """Status 200, ``Content-Type: text/html``, an HTML error page as the body."""
    TRUNCATED_JSON = "truncated-json"
    """The real JSON body cut off half way, still labelled ``application/json``."""


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
        """From now on the platform answers the account's requests with 401."""

    @abc.abstractmethod
    def rate_limit(self, account: ContractAccount, until: datetime, status: int) -> None:
        """From now on the platform answers the account's requests the way it says "rate
        limited, try again at ``until``" with HTTP ``status`` (429, or e.g. 403 for GitHub)."""

    @abc.abstractmethod
    def malform(self, account: ContractAccount, kind: Malformed, call: Call) -> str | None:
        """From now on the platform breaks its answer to ``call`` for the account as ``kind``
        says; return the name of the broken field for the field kinds (the error message must
        name it), else None."""

    def request_count(self, account: ContractAccount) -> int | None:
        """Requests the platform has received for the account so far, or None if it cannot
        tell (then the suite checks paging by the likes returned only)."""
        return None


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
        """Build :attr:`connector_class` against ``platform``; ``settings`` override defaults."""
        values: dict[str, Any] = {
            "base_url": platform.base_url,
            "page_size": self.page_size,
            "timeout_seconds": 10.0,
            **platform.settings_extra(),
            **settings,
        }
        connector_settings = self.connector_class.settings_model(**values)
        # As App.connector() does: the settings' limits on a shared client.
        http = _CLIENT.with_limits(Limits.of(connector_settings))
        return self.connector_class(connector_settings, http)

    @staticmethod
    def account_ref(
        account: ContractAccount, linked_at: datetime, connector: Connector
    ) -> AccountRef:
        """The :class:`AccountRef` the worker would pass for ``account``."""
        return AccountRef(
            id=1,
            platform_user_id=account.platform_user_id,
            handle=account.handle,
            linked_at=linked_at,
            session=connector.session(account.credentials),
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

    def poll(
        self,
        connector: Connector,
        account: ContractAccount,
        state: PollState,
    ) -> PollResult:
        """Poll and check everything every poll result must satisfy."""
        result = connector.poll(self.account_ref(account, state.linked_at, connector), state)
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
        for secret in account.credentials.secret_values():
            assert secret not in stored, "a credential appears in the stored poll state"
            for event in result.events:
                assert secret not in f"{event.item_url} {event.creator_handle}", (
                    f"a credential appears in the event for item {event.item_id}"
                )
        if "like-time" in self.connector_class.quality_rules:
            for event in result.events:
                assert event.liked_at is not None, (
                    f"like-time is claimed, but item {event.item_id} has no liked_at"
                )
        return result

    def call(
        self, connector: Connector, account: ContractAccount, call: Call, linked_at: datetime
    ) -> None:
        """Make ``call`` for ``account``: ``identify``, or a baseline ``poll``."""
        if call is Call.POLL:
            connector.poll(
                self.account_ref(account, linked_at, connector), PollState(linked_at=linked_at)
            )
        else:
            connector.identify(connector.session(account.credentials))

    @staticmethod
    def assert_no_secrets(error: BaseException, account: ContractAccount) -> None:
        """No credential value appears in ``error`` or in the exceptions chained to it."""
        seen: BaseException | None = error
        while seen is not None:
            text = f"{seen} {seen!r}"
            for secret in account.credentials.secret_values():
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

    def _assert_requests(
        self,
        platform: ContractPlatform,
        account: ContractAccount,
        before: int | None,
        expected: int,
        what: str,
    ) -> None:
        after = platform.request_count(account)
        if before is None or after is None:
            return
        assert after - before == expected, (
            f"{what}: expected {expected} request(s) to the platform, saw {after - before}"
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
        identity = connector.identify(connector.session(account.credentials))
        assert isinstance(identity, Identity), f"identify returned {type(identity).__name__}"
        expected = Identity(account.platform_user_id, account.handle)
        assert identity == expected, f"identify returned {identity}, expected {expected}"

    # -- the baseline --------------------------------------------------------

    def test_baseline_poll_returns_the_first_page_only(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
    ) -> None:
        """The first poll after linking fetches one page and returns exactly its likes."""
        size = connector.page_size
        scene.like(2 * size + 1)
        state = PollState(linked_at=now)
        before = platform.request_count(account)
        result = self.poll(connector, account, state)
        self.assert_items(
            result,
            scene.newest_first()[:size],
            "a baseline poll returns the first page's likes, newest first, and pages no further",
        )
        self._assert_requests(platform, account, before, 1, "a baseline poll")

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
        if self._claims("like-time"):
            for event in result.events:
                assert event.liked_at == scene.liked_at(event.item_id), (
                    f"item {event.item_id}: liked_at {event.liked_at} is not the platform's "
                    f"like time {scene.liked_at(event.item_id)}"
                )

    # -- incremental polls -----------------------------------------------------

    def test_incremental_poll_returns_only_new_likes(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
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
        before = platform.request_count(account)
        result = self.poll(connector, account, result.state)
        self.assert_items(result, [], "a poll with nothing new")
        self._assert_requests(platform, account, before, 1, "a poll with nothing new")

    def test_paging_stops_at_known_items_not_at_an_id_comparison(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
    ) -> None:
        """New likes spanning several pages all come back, and paging stops at the page that
        holds the first known item. Item ids here are not ordered like the like times."""
        size = connector.page_size
        scene.like(2 * size)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        fresh = scene.like(2 * size + 1)
        before = platform.request_count(account)
        result = self.poll(connector, account, state)
        self.assert_items(
            result,
            fresh[::-1],
            "every new like, newest first, and nothing known (likes are in like-time order, "
            "item ids are not: use the known-item set, not an id comparison)",
        )
        pages_needed = len(fresh) // size + 1  # up to the page holding the first known item
        self._assert_requests(platform, account, before, pages_needed, "paging to the known items")

    def test_paging_stops_after_max_pages(
        self, platform: ContractPlatform, account: ContractAccount, scene: _Scene, now: datetime
    ) -> None:
        """A backlog longer than ``max_pages`` pages is cut off there, newest likes kept."""
        connector = self.make_connector(platform, max_pages=2)
        size = connector.page_size
        scene.like(1)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        scene.like(3 * size)
        before = platform.request_count(account)
        result = self.poll(connector, account, state)
        self.assert_items(
            result, scene.newest_first()[: 2 * size], "the first two pages of a long backlog"
        )
        self._assert_requests(platform, account, before, 2, "paging with max_pages=2")

    def test_far_future_cursor_returns_nothing(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
    ) -> None:
        """A state that has seen everything the platform holds, and newer items the platform
        never had, gets nothing back from one request (see :meth:`far_future_state`)."""
        scene.like(2 * connector.page_size + 1)
        state = self.far_future_state(now, scene.newest_first())
        before = platform.request_count(account)
        result = self.poll(connector, account, state)
        self.assert_items(result, [], "a poll from a far-future cursor")
        self._assert_requests(platform, account, before, 1, "a poll from a far-future cursor")

    def test_unchanged_platform_returns_nothing(
        self,
        platform: ContractPlatform,
        connector: Connector,
        account: ContractAccount,
        scene: _Scene,
        now: datetime,
    ) -> None:
        """Polling again when nothing changed returns nothing (a 304 when the connector claims
        conditional-requests)."""
        scene.like(3)
        state = self.poll(connector, account, PollState(linked_at=now)).state
        before = platform.request_count(account)
        result = self.poll(connector, account, state)
        self.assert_items(result, [], "a poll of an unchanged account")
        self._assert_requests(platform, account, before, 1, "a poll of an unchanged account")
        if self._claims("conditional-requests"):
            assert result.not_modified, (
                "conditional-requests is claimed, but an unchanged account was not answered "
                "'not modified'"
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

    # -- failures ------------------------------------------------------------

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
        with pytest.raises(AuthExpired) as caught:
            connector.poll(self.account_ref(account, now, connector), state)
        self.assert_no_secrets(caught.value, account)

    def test_revoked_credentials_raise_auth_expired_on_identify(
        self, platform: ContractPlatform, connector: Connector, account: ContractAccount
    ) -> None:
        """401 when linking is :class:`AuthExpired` too, and says nothing of the token."""
        platform.revoke(account)
        with pytest.raises(AuthExpired) as caught:
            connector.identify(connector.session(account.credentials))
        self.assert_no_secrets(caught.value, account)

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
                with pytest.raises(RateLimited) as caught:
                    self.call(connector, account, call, now)
                error = caught.value
                self.assert_no_secrets(error, account)
                where = f"{call.value} answered {status}"
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
        """A payload with a missing field, a wrong type, an HTML page instead of JSON or a
        truncated body is :class:`PlatformError` (naming the field), never a raw exception."""
        scene.like(2)
        broken_field = platform.malform(account, kind, call)
        try:
            self.call(connector, account, call, now)
        except PlatformError as exc:
            error: ConnectorError = exc
        except Exception as exc:
            pytest.fail(
                f"{call.value} with a {kind.value} payload raised {type(exc).__name__}: {exc} "
                "(expected PlatformError)"
            )
        else:
            pytest.fail(f"{call.value} with a {kind.value} payload raised nothing")
        self.assert_no_secrets(error, account)
        if broken_field is not None:
            assert broken_field in str(error), (
                f"the error does not name the broken field {broken_field!r}: {error}"
            )
