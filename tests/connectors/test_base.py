"""trickle.connectors.base: poll state, the paging rule, typed errors, the Connector base."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from trickle.connectors.base import (
    KNOWN_ITEMS_KEPT,
    AccountRef,
    Connector,
    Identity,
    Page,
    PollResult,
    PollState,
    collect_new,
)
from trickle.connectors.errors import (
    MAX_RATE_LIMIT_WAIT,
    AuthExpired,
    ConnectorError,
    PlatformError,
    RateLimited,
    TransientError,
    clamp_retry_at,
)
from trickle.connectors.settings import ConnectorSettings
from trickle.core.credentials import Credentials
from trickle.core.errors import TrickleError
from trickle.core.events import LikeEvent

LINKED_AT = datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
OBSERVED_AT = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def event(item_id: str) -> LikeEvent:
    return LikeEvent(
        platform="test",
        item_id=item_id,
        item_url=f"https://example.org/items/{item_id}",
        creator_id="creator-1",
        creator_handle="creator",
        observed_at=OBSERVED_AT,
    )


def state(*known: str, baseline_done: bool = True) -> PollState:
    return PollState(linked_at=LINKED_AT, baseline_done=baseline_done, known=known)


class PageSource:
    """Pages built from item ids, newest first; records how many the consumer pulled."""

    def __init__(self, *pages: list[str]) -> None:
        self.pages = pages
        self.pulled = 0

    def __iter__(self) -> Iterator[Page]:
        for index, ids in enumerate(self.pages):
            self.pulled += 1
            yield Page([event(i) for i in ids], has_next=index < len(self.pages) - 1)


def ids(events: list[LikeEvent]) -> list[str]:
    return [e.item_id for e in events]


# ---------------------------------------------------------------------------
# PollState


class TestPollState:
    def test_a_new_state_knows_nothing_and_has_not_made_its_baseline(self) -> None:
        fresh = PollState(linked_at=LINKED_AT)
        assert fresh.known == ()
        assert fresh.etag is None
        assert fresh.cursor == {}
        assert fresh.baseline_done is False
        assert not fresh.is_known("1")

    def test_is_known(self) -> None:
        assert state("3", "2").is_known("2")
        assert not state("3", "2").is_known("1")

    def test_advanced_puts_new_ids_first_in_the_order_given(self) -> None:
        after = state("3", "2", "1").advanced(["6", "5", "4"], etag='W/"b"')
        assert after.known == ("6", "5", "4", "3", "2", "1")

    def test_advanced_marks_the_baseline_done_and_keeps_the_link_time(self) -> None:
        after = state(baseline_done=False).advanced(["1"], etag=None)
        assert after.baseline_done is True
        assert after.linked_at == LINKED_AT

    def test_advanced_drops_duplicates_and_ids_already_known(self) -> None:
        after = state("2", "1").advanced(["4", "3", "4", "2"], etag=None)
        assert after.known == ("4", "3", "2", "1")

    def test_advanced_is_bounded_and_forgets_the_oldest(self) -> None:
        old = [str(i) for i in range(KNOWN_ITEMS_KEPT, 0, -1)]  # "500" ... "1", newest first
        after = state(*old).advanced(["new-2", "new-1"], etag=None)
        assert len(after.known) == KNOWN_ITEMS_KEPT
        assert after.known[:3] == ("new-2", "new-1", str(KNOWN_ITEMS_KEPT))
        assert "1" not in after.known
        assert "2" not in after.known
        assert "3" in after.known

    def test_advanced_with_more_new_ids_than_the_bound_keeps_the_newest(self) -> None:
        many = [f"n{i}" for i in range(KNOWN_ITEMS_KEPT + 50)]
        after = state("old").advanced(many, etag=None)
        assert after.known == tuple(many[:KNOWN_ITEMS_KEPT])

    def test_advanced_replaces_the_etag_even_with_none(self) -> None:
        with_tag = state().advanced([], etag='W/"a"')
        assert with_tag.etag == 'W/"a"'
        assert with_tag.advanced([], etag=None).etag is None

    def test_advanced_keeps_the_cursor_unless_given_a_new_one(self) -> None:
        before = PollState(linked_at=LINKED_AT, cursor={"since_id": "10"})
        assert before.advanced([], etag=None).cursor == {"since_id": "10"}
        assert before.advanced([], etag=None, cursor={"since_id": "12"}).cursor == {
            "since_id": "12"
        }

    def test_advanced_does_not_change_the_original(self) -> None:
        before = state("1")
        before.advanced(["2"], etag='W/"x"')
        assert before.known == ("1",)
        assert before.etag is None
        assert not before.is_known("2")

    def test_json_round_trip(self) -> None:
        original = PollState(
            linked_at=LINKED_AT,
            baseline_done=True,
            known=("9", "8", "7"),
            etag='W/"4f1c"',
            cursor={"next_token": "abc", "page": 3},
        )
        stored = original.to_json()
        assert set(stored) == {"known", "etag", "cursor"}  # the rest has columns of its own
        rebuilt = PollState.from_json(stored, linked_at=LINKED_AT, baseline_done=True)
        assert rebuilt == original
        assert rebuilt.is_known("8")

    def test_from_json_of_nothing_is_a_fresh_state(self) -> None:
        rebuilt = PollState.from_json(None, linked_at=LINKED_AT, baseline_done=False)
        assert rebuilt == PollState(linked_at=LINKED_AT)

    def test_from_json_reads_ids_as_strings_and_times_as_utc(self) -> None:
        rebuilt = PollState.from_json(
            {"known": [3, 2], "etag": None},
            linked_at=datetime(2026, 10, 1, 10, 30, tzinfo=timezone(timedelta(hours=2))),
            baseline_done=True,
        )
        assert rebuilt.known == ("3", "2")
        assert rebuilt.is_known("3")
        assert rebuilt.linked_at == LINKED_AT
        assert rebuilt.linked_at.tzinfo == UTC


# ---------------------------------------------------------------------------
# collect_new: which pages a poll fetches, which likes it keeps


class TestCollectNew:
    def test_stops_after_the_first_page_that_holds_a_known_item(self) -> None:
        source = PageSource(["9", "8", "7"], ["6", "5", "4"], ["3", "2", "1"])
        events, fetched = collect_new(iter(source), state("4"), max_pages=50)
        assert fetched == 2
        assert source.pulled == 2  # the third page was never requested
        assert ids(events) == ["9", "8", "7", "6", "5"]

    def test_a_known_item_on_the_first_page_means_one_page(self) -> None:
        source = PageSource(["9", "8", "7"], ["6", "5", "4"])
        events, fetched = collect_new(iter(source), state("7", "6"), max_pages=50)
        assert (ids(events), fetched, source.pulled) == (["9", "8"], 1, 1)

    def test_nothing_new_is_one_page_and_no_events(self) -> None:
        source = PageSource(["3", "2", "1"], ["0"])
        events, fetched = collect_new(iter(source), state("3", "2", "1"), max_pages=50)
        assert (events, fetched) == ([], 1)

    def test_known_items_are_never_returned(self) -> None:
        source = PageSource(["9", "8", "5", "4"])
        events, _ = collect_new(iter(source), state("8", "4"), max_pages=50)
        assert ids(events) == ["9", "5"]

    def test_a_new_like_listed_after_a_re_liked_known_item_is_kept(self) -> None:
        # "7" was liked before, unliked and liked again: it is listed first, and the
        # likes made between the two polls come right after it.
        source = PageSource(["7", "9", "8", "6"], ["5"])
        events, fetched = collect_new(iter(source), state("7", "6"), max_pages=50)
        assert ids(events) == ["9", "8"]
        assert fetched == 1

    def test_the_baseline_poll_fetches_only_the_first_page(self) -> None:
        source = PageSource(["9", "8"], ["7", "6"], ["5"])
        events, fetched = collect_new(iter(source), state(baseline_done=False), max_pages=50)
        assert ids(events) == ["9", "8"]
        assert (fetched, source.pulled) == (1, 1)

    def test_an_empty_first_page_with_a_next_one_does_not_end_the_baseline(self) -> None:
        # X may answer a page whose posts were all deleted with no data and a next_token:
        # stopping there would record an empty baseline and pay for every older like later.
        source = PageSource([], ["9", "8"], ["7", "6"])
        events, fetched = collect_new(iter(source), state(baseline_done=False), max_pages=50)
        assert ids(events) == ["9", "8"]
        assert (fetched, source.pulled) == (2, 2)

    def test_a_baseline_of_empty_pages_stops_at_max_pages(self) -> None:
        source = PageSource([], [], [], ["9"])
        events, fetched = collect_new(iter(source), state(baseline_done=False), max_pages=2)
        assert (events, fetched, source.pulled) == ([], 2, 2)

    def test_without_a_known_item_it_reads_to_the_last_page(self) -> None:
        source = PageSource(["9", "8"], ["7", "6"], ["5"])
        events, fetched = collect_new(iter(source), state("unrelated"), max_pages=50)
        assert ids(events) == ["9", "8", "7", "6", "5"]
        assert fetched == 3

    def test_stops_at_max_pages(self) -> None:
        source = PageSource(["9"], ["8"], ["7"], ["6"])
        events, fetched = collect_new(iter(source), state("unrelated"), max_pages=2)
        assert ids(events) == ["9", "8"]
        assert (fetched, source.pulled) == (2, 2)

    def test_stops_when_a_page_says_no_page_follows(self) -> None:
        def pages() -> Iterator[Page]:
            yield Page([event("2")], has_next=False)
            raise AssertionError("a page after the last one was requested")

        events, fetched = collect_new(pages(), state("unrelated"), max_pages=50)
        assert (ids(events), fetched) == (["2"], 1)

    def test_an_empty_list_is_one_page_and_nothing_new(self) -> None:
        events, fetched = collect_new(iter(PageSource([])), state(), max_pages=50)
        assert (events, fetched) == ([], 1)

    def test_no_pages_at_all(self) -> None:
        assert collect_new(iter([]), state(), max_pages=50) == ([], 0)


# ---------------------------------------------------------------------------
# Errors


class TestErrors:
    @pytest.mark.parametrize("error", [AuthExpired, TransientError, PlatformError])
    def test_every_poll_error_is_a_connector_error_and_a_trickle_error(
        self, error: type[ConnectorError]
    ) -> None:
        assert issubclass(error, ConnectorError)
        assert issubclass(error, TrickleError)
        assert str(error("the message")) == "the message"

    def test_rate_limited_carries_when_to_retry_and_whose_budget_ran_out(
        self, now: datetime
    ) -> None:
        retry_at = datetime(2026, 10, 15, 13, 0, tzinfo=UTC)
        exc = RateLimited("GET /user/starred: 403: rate limited", retry_at)
        assert isinstance(exc, ConnectorError)
        assert exc.retry_at == retry_at
        assert exc.scope == "account"
        assert str(exc) == "GET /user/starred: 403: rate limited"

    def test_rate_limited_for_the_whole_app(self, now: datetime) -> None:
        exc = RateLimited("slow down", datetime(2026, 10, 15, 13, 0, tzinfo=UTC), "app")
        assert exc.scope == "app"

    def test_rate_limited_keeps_retry_at_in_utc(self, now: datetime) -> None:
        cest = timezone(timedelta(hours=2))
        exc = RateLimited("wait", datetime(2026, 10, 15, 15, 0, tzinfo=cest))
        assert exc.retry_at == datetime(2026, 10, 15, 13, 0, tzinfo=UTC)
        assert exc.retry_at.tzinfo == UTC

    def test_rate_limited_takes_a_naive_retry_at_as_utc(self, now: datetime) -> None:
        exc = RateLimited("wait", datetime(2026, 10, 15, 13, 0))
        assert exc.retry_at == datetime(2026, 10, 15, 13, 0, tzinfo=UTC)

    def test_rate_limited_waits_at_most_a_day_whatever_it_is_asked(self, now: datetime) -> None:
        assert timedelta(hours=24) == MAX_RATE_LIMIT_WAIT
        year_5138 = datetime.fromtimestamp(99_999_999_999, UTC)  # Retry-After: 99999999999
        assert RateLimited("wait", year_5138).retry_at == now + MAX_RATE_LIMIT_WAIT
        assert RateLimited("wait", now + timedelta(hours=25)).retry_at == now + MAX_RATE_LIMIT_WAIT
        assert RateLimited("wait", now + timedelta(hours=23)).retry_at == now + timedelta(hours=23)

    def test_rate_limited_never_waits_for_a_time_already_past(self, now: datetime) -> None:
        assert RateLimited("wait", now - timedelta(days=3)).retry_at == now
        assert RateLimited("wait", datetime(1, 1, 1, tzinfo=UTC)).retry_at == now

    @pytest.mark.parametrize(
        ("retry_at", "expected"),
        [
            (datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=1))), "latest"),
            (datetime.max.replace(tzinfo=timezone(-timedelta(minutes=1))), "latest"),
            (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "now"),
        ],
    )
    def test_a_retry_at_beyond_the_calendar_in_utc_is_clamped_not_an_overflow(
        self, now: datetime, retry_at: datetime, expected: str
    ) -> None:
        exc = RateLimited("wait", retry_at)
        assert exc.retry_at == (now + MAX_RATE_LIMIT_WAIT if expected == "latest" else now)
        exc.retry_at + timedelta(days=365)  # room left for the poller's jitter, and more

    def test_clamp_retry_at_can_be_given_the_time(self) -> None:
        at = datetime(2030, 1, 1, tzinfo=UTC)
        assert clamp_retry_at(at + timedelta(days=9), at) == at + MAX_RATE_LIMIT_WAIT
        assert clamp_retry_at(at - timedelta(days=9), at) == at
        assert clamp_retry_at(at + timedelta(minutes=15), at) == at + timedelta(minutes=15)


# ---------------------------------------------------------------------------
# Settings and the Connector base class


class Minimal(Connector):
    name = "minimal"
    display_name = "Minimal"
    default_base_url = "https://api.example.org/"
    default_page_size = 40

    def identify(self, credentials: Credentials) -> Identity:
        return Identity(platform_user_id="1", handle="someone")

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        return PollResult(events=[], state=state)


class TestConnector:
    def test_is_abstract(self) -> None:
        with pytest.raises(TypeError):
            Connector(ConnectorSettings(), http=None)  # type: ignore[abstract,arg-type]

    def test_uses_the_real_api_root_without_a_trailing_slash(self) -> None:
        connector = Minimal(ConnectorSettings(), http=None)  # type: ignore[arg-type]
        assert connector.base_url == "https://api.example.org"

    def test_settings_point_it_at_another_host(self) -> None:
        settings = ConnectorSettings(base_url="http://127.0.0.1:8123/")
        connector = Minimal(settings, http=None)  # type: ignore[arg-type]
        assert connector.base_url == "http://127.0.0.1:8123"

    @pytest.mark.parametrize(("setting", "asked"), [(None, 40), (3, 5), (7, 7), (500, 60)])
    def test_page_size_is_held_to_what_the_platform_accepts(
        self, setting: int | None, asked: int
    ) -> None:
        class Bounded(Minimal):
            page_size_range = (5, 60)

        connector = Bounded(ConnectorSettings(page_size=setting), http=None)  # type: ignore[arg-type]

        assert connector.page_size == asked

    def test_page_size_comes_from_settings_else_the_connector(self) -> None:
        assert Minimal(ConnectorSettings(), http=None).page_size == 40  # type: ignore[arg-type]
        sized = Minimal(ConnectorSettings(page_size=7), http=None)  # type: ignore[arg-type]
        assert sized.page_size == 7


def test_an_identity_keeps_its_id_whole_and_shortens_a_long_handle() -> None:
    identity = Identity(platform_user_id="u" * 200, handle="n" * 300)

    assert identity.platform_user_id == "u" * 200
    assert len(identity.handle) == 200


@pytest.mark.parametrize("bad", ["", "u" * 201])
def test_an_identity_whose_id_trickle_cannot_store_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="empty or longer than 200 characters"):
        Identity(platform_user_id=bad, handle="someone")
