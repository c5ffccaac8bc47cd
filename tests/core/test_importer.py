"""Importing likes from JSON Lines: all of the file or none of it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from trickle.core.db import Database
from trickle.core.importer import (
    MAX_ERRORS_SHOWN,
    ImportedEvent,
    ImportError_,
    ImportResult,
    import_events,
    parse_lines,
    read_lines,
    store_events,
)
from trickle.core.models import Creator, Flattr, User
from trickle.core.money import Money
from trickle.core.users import add_user, set_active

pytestmark = pytest.mark.usefixtures("now")


def line(**changes: object) -> str:
    """One valid import line, with ``changes`` applied (None removes a field)."""
    event: dict[str, object] = {
        "user": "alice",
        "platform": "github",
        "item_id": "repo-1",
        "item_url": "https://github.com/carol/tool",
        "creator_id": "583231",
        "creator_handle": "carol",
        "liked_at": "2026-10-01T08:30:00Z",
    }
    for key, value in changes.items():
        if value is None:
            del event[key]
        else:
            event[key] = value
    return json.dumps(event)


def add_alice_and_bob(db: Database) -> Database:
    with db.session() as session:
        add_user(session, "alice", Money(500, "EUR"))
        add_user(session, "bob", Money(500, "EUR"))
    return db


@pytest.fixture
def users(db: Database) -> Database:
    """alice and bob, on each dialect."""
    return add_alice_and_bob(db)


@pytest.fixture
def sqlite_users(sqlite_db: Database) -> Database:
    """alice and bob, on SQLite only (for checks that do not depend on the dialect)."""
    return add_alice_and_bob(sqlite_db)


def stored(db: Database) -> tuple[int, int]:
    """(flattrs, creators) in the database."""
    with db.reader() as session:
        return (
            session.scalar(select(func.count()).select_from(Flattr)) or 0,
            session.scalar(select(func.count()).select_from(Creator)) or 0,
        )


def run_import(db: Database, lines: list[str]) -> ImportResult:
    with db.session() as session:
        return import_events(session, lines)


# ---------------------------------------------------------------------------
# good files


def test_a_good_file_is_imported(users: Database, now: datetime) -> None:
    lines = [
        line(),
        line(item_id="repo-2", liked_at="2026-10-02T10:00:00+02:00"),
        "",
        line(user="bob", item_id="repo-1"),
    ]
    assert run_import(users, lines) == ImportResult(lines=3, stored=3, duplicates=0)
    with users.reader() as session:
        rows = session.execute(
            select(
                User.name, Flattr.item_id, Flattr.liked_at, Flattr.observed_at, Flattr.account_id
            )
            .join(User, User.id == Flattr.user_id)
            .order_by(User.name, Flattr.item_id)
        ).all()
        handles = session.scalars(select(Creator.handle)).all()
    assert [tuple(r) for r in rows] == [
        ("alice", "repo-1", datetime.fromisoformat("2026-10-01T08:30:00+00:00"), now, None),
        ("alice", "repo-2", datetime.fromisoformat("2026-10-02T08:00:00+00:00"), now, None),
        ("bob", "repo-1", datetime.fromisoformat("2026-10-01T08:30:00+00:00"), now, None),
    ]
    assert handles == ["carol"]


def test_likes_already_stored_or_repeated_in_the_file_are_counted_as_duplicates(
    users: Database,
) -> None:
    run_import(users, [line()])
    result = run_import(users, [line(), line(item_id="repo-2"), line(item_id="repo-2")])
    assert result == ImportResult(lines=3, stored=1, duplicates=2)
    assert stored(users) == (2, 1)


def test_surrounding_whitespace_in_values_is_ignored(users: Database) -> None:
    assert run_import(users, [line(user="  alice ", item_id=" repo-9 ")]).stored == 1
    with users.reader() as session:
        assert session.scalar(select(Flattr.item_id)) == "repo-9"


def test_a_like_a_few_minutes_ahead_of_our_clock_is_accepted(
    users: Database, now: datetime
) -> None:
    soon = (now + timedelta(minutes=4)).isoformat()
    assert run_import(users, [line(liked_at=soon)]).stored == 1


def test_an_explicit_now_is_the_observation_time(users: Database, now: datetime) -> None:
    earlier = now - timedelta(days=30)
    with users.session() as session:
        import_events(session, [line(liked_at="2026-09-01T00:00:00Z")], now=earlier)
    with users.reader() as session:
        assert session.scalar(select(Flattr.observed_at)) == earlier


def test_an_empty_file_imports_nothing(users: Database) -> None:
    assert run_import(users, ["", "  \n"]) == ImportResult(lines=0, stored=0, duplicates=0)


# ---------------------------------------------------------------------------
# bad files: every bad line reported, nothing stored

BAD_LINES = [
    pytest.param("{not json", r"line 2: not JSON \(.* at column \d+\)", id="not-json"),
    pytest.param('["a", "list"]', "line 2: expected a JSON object, got list", id="not-object"),
    pytest.param("42", "line 2: expected a JSON object, got int", id="number"),
    pytest.param(line(creator_id=None), "line 2: creator_id: Field required", id="missing-field"),
    pytest.param(line(extra="x"), "line 2: extra: Extra inputs are not permitted", id="extra"),
    pytest.param(line(liked_at="yesterday"), "line 2: liked_at: Input should be", id="bad-time"),
    pytest.param(
        line(liked_at="2026-10-01T08:30:00"), "line 2: liked_at: .*timezone", id="naive-time"
    ),
    pytest.param(line(user="mallory"), "line 2: no user called 'mallory'", id="unknown-user"),
    pytest.param(
        line(liked_at="2026-12-01T00:00:00Z"),
        r"line 2: liked_at 2026-12-01T00:00:00Z is in the future",
        id="future",
    ),
    pytest.param(
        line(liked_at="1969-12-31T23:59:59Z"),
        r"line 2: liked_at 1969-12-31T23:59:59Z is before 2000-01-01",
        id="1969",
    ),
    pytest.param(
        line(liked_at="0001-01-01T00:00:00+00:00"), "line 2: liked_at .* is before", id="year-1"
    ),
    pytest.param(
        line(liked_at="0001-01-01T00:30:00+01:00"),
        "line 2: liked_at .* is outside the calendar in UTC",
        id="offset-before-year-1",
    ),
    pytest.param(
        line(liked_at="9999-12-31T23:59:59-01:00"),
        "line 2: liked_at .* is outside the calendar in UTC",
        id="offset-past-9999",
    ),
    pytest.param(line(liked_at="9999-12-31T00:00:00Z"), "line 2: .* in the future", id="9999"),
    pytest.param("[" * 100_000 + "]" * 100_000, "line 2: longer than 100000", id="huge-line"),
    pytest.param("[" * 20_000, "line 2: not JSON trickle can read", id="too-deep"),
    pytest.param('{"user": ' + "1" * 5000 + "}", "line 2: not JSON trickle can read", id="digits"),
    pytest.param(line(item_id=""), "line 2: item_id: String should have at least 1", id="empty"),
    pytest.param(line(platform="Git Hub"), "line 2: platform: String should match", id="platform"),
    pytest.param(
        line(item_id=12), "line 2: item_id: Input should be a valid string", id="number-id"
    ),
]


def test_a_file_without_newlines_is_read_a_bounded_line_at_a_time(tmp_path) -> None:
    path = tmp_path / "one-line.jsonl"
    path.write_text("x" * 1_000_000 + "\n" + line() + "\n")
    lines = list(read_lines(path))
    assert [len(lines[0]), lines[1]] == [100_001, line()]


@pytest.mark.parametrize(("bad", "message"), BAD_LINES)
def test_a_bad_line_is_reported_by_number_and_nothing_is_stored(
    sqlite_users: Database, bad: str, message: str
) -> None:
    lines = [line(item_id="ok-1"), bad, line(item_id="ok-3")]
    with pytest.raises(ImportError_, match=message) as caught:
        run_import(sqlite_users, lines)
    assert len(caught.value.errors) == 1
    assert str(caught.value).startswith("1 bad line(s), nothing imported:")
    assert stored(sqlite_users) == (0, 0)


def test_every_bad_line_is_reported_in_line_order(users: Database) -> None:
    lines = [
        line(user="mallory"),  # 1: only found once the users are looked up
        line(item_id="fine"),  # 2
        "{",  # 3
        "",  # 4
        line(liked_at="2030-01-01T00:00:00Z"),  # 5
        line(creator_handle=None),  # 6
    ]
    with pytest.raises(ImportError_) as caught:
        run_import(users, lines)
    assert [e.split(":")[0] for e in caught.value.errors] == [
        "line 1",
        "line 3",
        "line 5",
        "line 6",
    ]
    assert stored(users) == (0, 0)


def test_a_file_with_good_lines_for_an_existing_user_is_still_rejected_whole(
    users: Database,
) -> None:
    run_import(users, [line(item_id="before")])
    with pytest.raises(ImportError_):
        run_import(users, [line(item_id="new-1"), line(item_id="new-2", creator_id="9"), "[]"])
    assert stored(users) == (1, 1)


def test_a_long_list_of_errors_is_shortened_with_a_count(users: Database) -> None:
    count = MAX_ERRORS_SHOWN + 7
    with pytest.raises(ImportError_) as caught:
        run_import(users, ["nope"] * count)
    message = str(caught.value)
    assert message.startswith(f"{count} bad line(s), nothing imported:")
    assert message.endswith("... and 7 more")
    assert message.count("not JSON") == MAX_ERRORS_SHOWN
    assert len(caught.value.errors) == count


def test_parse_lines_numbers_lines_from_one_and_skips_blank_ones() -> None:
    events, errors = parse_lines(["", line(item_id="x"), "   ", line(item_id="y")])
    assert errors == []
    assert [(n, e.item_id) for n, e in events] == [(2, "x"), (4, "y")]
    assert all(isinstance(e, ImportedEvent) for _, e in events)


def test_a_deactivated_user_has_nothing_imported(sqlite_users: Database) -> None:
    with sqlite_users.session() as session:
        set_active(session, "alice", False)
    with pytest.raises(ImportError_, match=r"line 1: 'alice' is deactivated"):
        run_import(sqlite_users, [line()])
    assert stored(sqlite_users) == (0, 0)


# ---------------------------------------------------------------------------
# store_events: the same rules for events read from another format


def event(**changes: object) -> ImportedEvent:
    return ImportedEvent.model_validate(json.loads(line(**changes)))


def test_events_from_another_format_are_stored_under_the_same_rules(users: Database) -> None:
    with users.session() as session:
        result = store_events(session, [("entry 1", event()), ("entry 2", event(item_id="b"))])
    assert result == ImportResult(lines=2, stored=2, duplicates=0)


def test_errors_from_another_format_are_reported_by_where_in_natural_order(
    users: Database,
) -> None:
    events = [
        ("b.json entry 10", event(user="mallory")),
        ("a.json entry 2", event(item_id="x", liked_at="2030-01-01T00:00:00Z")),
    ]
    with users.session() as session, pytest.raises(ImportError_) as caught:
        store_events(session, events, ["b.json entry 9: no post address"], unit="entry")
    assert [e.split(":")[0] for e in caught.value.errors] == [
        "a.json entry 2",
        "b.json entry 9",
        "b.json entry 10",
    ]
    assert str(caught.value).startswith("3 bad entry(s), nothing imported:")
    assert stored(users) == (0, 0)
