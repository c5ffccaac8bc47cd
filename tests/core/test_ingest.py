"""Ingestion: likes become flattrs once, creators by permanent id, the baseline is never paid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from trickle.core.db import Database
from trickle.core.events import LikeEvent
from trickle.core.ingest import (
    CHUNK,
    IngestResult,
    batched,
    ingest_poll,
    split_baseline,
    store_flattrs,
    upsert_creators,
)
from trickle.core.models import Creator, Flattr, LinkedAccount
from trickle.core.money import Money
from trickle.core.users import add_user

LINKED = datetime(2026, 10, 10, 9, 0, tzinfo=UTC)
SEEN = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def like(
    item: str,
    creator: str = "100",
    handle: str | None = None,
    liked_at: datetime | None = SEEN,
    platform: str = "github",
) -> LikeEvent:
    return LikeEvent(
        platform=platform,
        item_id=item,
        item_url=f"https://example.test/{item}",
        creator_id=creator,
        creator_handle=handle or f"creator{creator}",
        observed_at=SEEN,
        liked_at=liked_at,
    )


def make_user(db: Database, name: str) -> int:
    with db.session() as session:
        return add_user(session, name, Money(500, "EUR")).id


def make_account(db: Database, user_id: int, platform_user_id: str = "9") -> int:
    with db.session() as session:
        account = LinkedAccount(
            user_id=user_id,
            platform="github",
            platform_user_id=platform_user_id,
            handle=f"gh{platform_user_id}",
            credentials=b"sealed",
            linked_at=LINKED,
            interval_seconds=300,
        )
        session.add(account)
        session.flush()
        return account.id


def flattrs(db: Database) -> list[tuple[int, str, str, str]]:
    """(user id, platform, item id, creator platform id) of every flattr."""
    with db.reader() as session:
        rows = session.execute(
            select(Flattr.user_id, Flattr.platform, Flattr.item_id, Creator.platform_id)
            .join(Creator, Creator.id == Flattr.creator_id)
            .order_by(Flattr.user_id, Flattr.platform, Flattr.item_id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def creators(db: Database) -> list[tuple[str, str, str]]:
    with db.reader() as session:
        rows = session.execute(
            select(Creator.platform, Creator.platform_id, Creator.handle).order_by(
                Creator.platform, Creator.platform_id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


# ---------------------------------------------------------------------------
# store_flattrs


def test_likes_are_stored_as_flattrs_with_their_times(db: Database) -> None:
    alice = make_user(db, "alice")
    early = SEEN - timedelta(days=2)
    with db.session() as session:
        result = store_flattrs(
            session, user_id=alice, account_id=None, events=[like("a", liked_at=early), like("b")]
        )
    assert result == IngestResult(stored=2, duplicates=0)
    with db.reader() as session:
        stored = session.scalars(select(Flattr).order_by(Flattr.item_id)).all()
        assert [(f.item_id, f.item_url) for f in stored] == [
            ("a", "https://example.test/a"),
            ("b", "https://example.test/b"),
        ]
        assert stored[0].liked_at == early
        assert stored[0].effective_at == early
        assert stored[0].observed_at == SEEN
        assert stored[0].period is None
        assert stored[0].account_id is None


def test_a_like_stored_again_in_a_later_call_is_only_counted(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        store_flattrs(session, user_id=alice, account_id=None, events=[like("a"), like("b")])
    with db.session() as session:
        result = store_flattrs(
            session, user_id=alice, account_id=None, events=[like("b"), like("c"), like("a")]
        )
    assert result == IngestResult(stored=1, duplicates=2)
    assert [f[2] for f in flattrs(db)] == ["a", "b", "c"]


def test_a_like_repeated_within_one_batch_is_stored_once(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        result = store_flattrs(
            session, user_id=alice, account_id=None, events=[like("a"), like("a"), like("b")]
        )
    assert result == IngestResult(stored=2, duplicates=1)
    assert len(flattrs(db)) == 2


def test_the_same_item_liked_by_two_users_is_a_flattr_of_each(db: Database) -> None:
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    with db.session() as session:
        store_flattrs(session, user_id=alice, account_id=None, events=[like("a")])
        result = store_flattrs(session, user_id=bob, account_id=None, events=[like("a")])
    assert result.stored == 1
    assert flattrs(db) == [(alice, "github", "a", "100"), (bob, "github", "a", "100")]


def test_the_same_item_id_on_two_platforms_is_two_flattrs(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        result = store_flattrs(
            session,
            user_id=alice,
            account_id=None,
            events=[like("a"), like("a", platform="mastodon")],
        )
    assert result.stored == 2


def test_an_empty_batch_stores_nothing(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        assert store_flattrs(session, user_id=alice, account_id=None, events=[]) == IngestResult()
    assert flattrs(db) == []
    assert creators(db) == []


def test_a_batch_larger_than_one_chunk_is_stored_whole(db: Database) -> None:
    alice = make_user(db, "alice")
    events = [like(f"item{i:05d}", creator=str(i % 700)) for i in range(CHUNK * 2 + 17)]
    with db.session() as session:
        first = store_flattrs(session, user_id=alice, account_id=None, events=events)
    with db.session() as session:
        again = store_flattrs(session, user_id=alice, account_id=None, events=events)
    assert first == IngestResult(stored=len(events), duplicates=0)
    assert again == IngestResult(stored=0, duplicates=len(events))
    assert len(flattrs(db)) == len(events)
    assert len(creators(db)) == 700


def test_flattrs_remember_the_account_they_came_from(db: Database) -> None:
    alice = make_user(db, "alice")
    account = make_account(db, alice)
    with db.session() as session:
        store_flattrs(session, user_id=alice, account_id=account, events=[like("a")])
    with db.reader() as session:
        assert session.scalars(select(Flattr.account_id)).all() == [account]


# ---------------------------------------------------------------------------
# creators


def test_creators_are_stored_once_per_platform_and_permanent_id(db: Database) -> None:
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    with db.session() as session:
        store_flattrs(
            session, user_id=alice, account_id=None, events=[like("a", "100"), like("b", "100")]
        )
        store_flattrs(session, user_id=bob, account_id=None, events=[like("c", "100")])
        store_flattrs(
            session, user_id=bob, account_id=None, events=[like("d", "100", platform="mastodon")]
        )
    assert creators(db) == [("github", "100", "creator100"), ("mastodon", "100", "creator100")]
    with db.reader() as session:
        assert session.scalar(select(func.count(func.distinct(Flattr.creator_id)))) == 2


def test_a_renamed_creator_keeps_its_identity_and_gets_the_new_handle(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        store_flattrs(session, user_id=alice, account_id=None, events=[like("a", "100", "carol")])
    with db.reader() as session:
        before = session.scalar(select(Creator.id))
    with db.session() as session:
        store_flattrs(
            session, user_id=alice, account_id=None, events=[like("b", "100", "carol-renamed")]
        )
    assert creators(db) == [("github", "100", "carol-renamed")]
    with db.reader() as session:
        assert session.scalars(select(Flattr.creator_id)).all() == [before, before]


def test_a_new_handle_on_a_duplicate_like_still_renames_the_creator(db: Database) -> None:
    alice = make_user(db, "alice")
    with db.session() as session:
        store_flattrs(session, user_id=alice, account_id=None, events=[like("a", "100", "carol")])
    with db.session() as session:
        result = store_flattrs(
            session, user_id=alice, account_id=None, events=[like("a", "100", "caroline")]
        )
    assert result.duplicates == 1
    assert creators(db) == [("github", "100", "caroline")]


def test_upsert_creators_returns_the_id_of_each_identity(db: Database) -> None:
    with db.session() as session:
        first = upsert_creators(session, [like("a", "1"), like("b", "2")])
        again = upsert_creators(session, [like("c", "2"), like("d", "3")])
        assert upsert_creators(session, []) == {}
    assert set(first) == {("github", "1"), ("github", "2")}
    assert again[("github", "2")] == first[("github", "2")]
    assert again[("github", "3")] not in first.values()


def test_known_and_new_creators_beyond_one_chunk_on_two_platforms_get_one_id_each(
    db: Database,
) -> None:
    known = [like(f"k{n}", str(n)) for n in range(0, CHUNK + 50, 2)]
    with db.session() as session:
        before = upsert_creators(session, known)
    mixed = [like(f"m{n}", str(n)) for n in range(CHUNK + 50)]
    mixed += [like(f"x{n}", str(n), platform="mastodon") for n in range(3)]
    with db.session() as session:
        after = upsert_creators(session, mixed)
    assert len(after) == CHUNK + 50 + 3
    assert {key: after[key] for key in before} == before
    assert len(set(after.values())) == len(after)
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(Creator)) == len(after)


# ---------------------------------------------------------------------------
# the baseline


def test_split_baseline_keeps_likes_made_at_or_after_the_link() -> None:
    at_link, after = like("at", liked_at=LINKED), like("after", liked_at=LINKED + timedelta(1))
    before = like("before", liked_at=LINKED - timedelta(seconds=1))
    assert split_baseline([before, at_link, after], LINKED) == ([at_link, after], [before])


def test_a_like_made_before_the_link_is_baseline_on_every_poll() -> None:
    # An old star can resurface on page one when a newer one is removed.
    old = like("old", liked_at=LINKED - timedelta(days=300))
    assert split_baseline([old], LINKED, first_poll=False) == ([], [old])


def test_an_untimed_like_is_baseline_on_the_first_poll_only() -> None:
    untimed = like("untimed", liked_at=None)
    assert split_baseline([untimed], LINKED) == ([], [untimed])
    assert split_baseline([untimed], LINKED, first_poll=True) == ([], [untimed])
    assert split_baseline([untimed], LINKED, first_poll=False) == ([untimed], [])


def test_split_baseline_of_nothing_is_nothing() -> None:
    assert split_baseline([], LINKED) == ([], [])


def test_a_first_poll_stores_only_likes_made_after_linking(db: Database) -> None:
    alice = make_user(db, "alice")
    account = make_account(db, alice)
    events = [
        like("old", liked_at=LINKED - timedelta(days=300)),
        like("untimed", liked_at=None),
        like("new", liked_at=LINKED + timedelta(hours=1)),
    ]
    with db.session() as session:
        result = ingest_poll(
            session,
            user_id=alice,
            account_id=account,
            events=events,
            linked_at=LINKED,
            first_poll=True,
        )
    assert result == IngestResult(stored=1, duplicates=0, baseline=2)
    assert [f[2] for f in flattrs(db)] == ["new"]


def test_later_polls_store_untimed_likes_but_never_old_ones(db: Database) -> None:
    alice = make_user(db, "alice")
    account = make_account(db, alice)
    events = [
        like("untimed", liked_at=None),
        like("old", liked_at=LINKED - timedelta(days=9)),
        like("new", liked_at=LINKED + timedelta(days=1)),
    ]
    with db.session() as session:
        result = ingest_poll(
            session,
            user_id=alice,
            account_id=account,
            events=events,
            linked_at=LINKED,
            first_poll=False,
        )
    assert result == IngestResult(stored=2, duplicates=0, baseline=1)
    assert [f[2] for f in flattrs(db)] == ["new", "untimed"]


def test_a_repeated_poll_counts_duplicates_and_baseline_separately(db: Database) -> None:
    alice = make_user(db, "alice")
    account = make_account(db, alice)
    events = [like("new", liked_at=LINKED + timedelta(hours=1)), like("old", liked_at=None)]
    for _ in range(2):  # the same first poll, retried
        with db.session() as session:
            result = ingest_poll(
                session,
                user_id=alice,
                account_id=account,
                events=events,
                linked_at=LINKED,
                first_poll=True,
            )
    assert result == IngestResult(stored=0, duplicates=1, baseline=1)


def test_ingest_results_add_up() -> None:
    assert IngestResult(1, 2, 3) + IngestResult(10, 20, 30) == IngestResult(11, 22, 33)


@pytest.mark.parametrize(("count", "size"), [(0, 3), (1, 3), (3, 3), (7, 3)])
def test_batched_yields_every_item_in_order_in_tuples_of_at_most_size(
    count: int, size: int
) -> None:
    chunks = list(batched(range(count), size))
    assert [i for chunk in chunks for i in chunk] == list(range(count))
    assert all(1 <= len(chunk) <= size for chunk in chunks)
    assert all(len(chunk) == size for chunk in chunks[:-1])
