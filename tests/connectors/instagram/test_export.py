"""Likes from an Instagram data export: each in the month it was made, paid to the
``@username`` an operator verifies, one flattr with the connector's, all entries or none.

The fixtures under ``fixtures/export/`` follow the shapes of Instagram's "Download your
information" JSON (see :mod:`trickle.connectors.instagram.export`): the object shapes of
current (``your_instagram_activity/``) and older (``likes/``, ``saved/``) exports, and the
bare list of ``label_values`` entries of 2025's, their text escaped as Instagram escapes it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import World
from trickle.connectors.instagram.archive import ExportFile, Kind, read_export
from trickle.connectors.instagram.export import (
    EntryError,
    ExportResult,
    fix_text,
    import_export,
    parse_entry,
    parse_file,
)
from trickle.core.db import Database
from trickle.core.events import LikeEvent
from trickle.core.importer import ImportError_
from trickle.core.ingest import store_flattrs
from trickle.core.models import Creator, Flattr, LinkedAccount
from trickle.core.users import UserError, get_user, set_active

EXPORTS = Path(__file__).resolve().parent / "fixtures" / "export"
JOINED = datetime(2026, 9, 1, tzinfo=UTC)
LIKED = "your_instagram_activity/likes/liked_posts.json"
SAVED = "your_instagram_activity/saved/saved_posts.json"
THUMBS = "👍".encode().decode("latin-1")

pytestmark = pytest.mark.usefixtures("now")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def old_like(owner: str = "ada.makes", href: Any = None, timestamp: Any = 1791018900) -> Any:
    return {
        "title": owner,
        "string_list_data": [
            {
                "href": "https://www.instagram.com/p/C8xQ2mLrT4a/" if href is None else href,
                "value": THUMBS,
                "timestamp": timestamp,
            }
        ],
    }


def liked_file(*entries: Any, name: str = LIKED) -> ExportFile:
    return ExportFile(name, Kind.LIKED, json.dumps({"likes_media_likes": list(entries)}).encode())


def run(db: Database, files: list[ExportFile], user: str = "alice") -> ExportResult:
    with db.session() as session:
        return import_export(session, files, user)


def flattrs(db: Database) -> list[tuple[str, str, str, str, datetime | None, datetime]]:
    """(item, item url, creator id, handle, liked at, effective at) of every flattr."""
    with db.reader() as session:
        rows = session.execute(
            select(
                Flattr.item_id,
                Flattr.item_url,
                Creator.platform_id,
                Creator.handle,
                Flattr.liked_at,
                Flattr.effective_at,
            )
            .join(Creator, Creator.id == Flattr.creator_id)
            .order_by(Flattr.effective_at)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def alice(world: World) -> World:
    world.user("alice", joined=JOINED)
    return world


# ---------------------------------------------------------------------------
# a whole export


EXPECTED = [
    (
        "CAsv3dPo5tZ",
        "https://www.instagram.com/p/CAsv3dPo5tZ/",
        "@zoe.cafe",
        "zoe.cafe",
        when("2026-09-20T08:00:00"),
        when("2026-09-20T08:00:00"),
    ),
    (
        "C8xQ2mLrT4a",
        "https://www.instagram.com/p/C8xQ2mLrT4a/",
        "@ada.makes",
        "ada.makes",
        when("2026-10-03T09:15:00"),
        when("2026-10-03T09:15:00"),
    ),
    (
        "C9bZk1pNw7e",
        "https://www.instagram.com/p/C9bZk1pNw7e/",
        "@grace_hopper_art",
        "grace_hopper_art",
        when("2026-10-10T18:40:00"),
        when("2026-10-10T18:40:00"),
    ),
]


def test_every_like_and_save_counts_in_the_month_it_was_made_paid_to_the_owners_username(
    alice: World,
) -> None:
    result = run(alice.db, read_export(EXPORTS / "current"))
    assert result == ExportResult(entries=5, stored=3, duplicates=1, baseline=1, baseline_at=JOINED)
    # C8xQ2mLrT4a was liked on Oct 3 and saved on Oct 12: one flattr, at the like.
    # The like of B7old0nePst (June 2025) is from before alice joined: the baseline.
    assert flattrs(alice.db) == EXPECTED


def test_an_older_exports_layout_gives_the_same_likes(alice: World) -> None:
    assert run(alice.db, read_export(EXPORTS / "older")).stored == 2
    assert flattrs(alice.db) == [EXPECTED[0], EXPECTED[2]]


def test_the_2025_list_of_label_values_gives_the_same_likes(alice: World) -> None:
    result = run(alice.db, read_export(EXPORTS / "labels"))
    assert (result.entries, result.stored, result.baseline) == (3, 3, 0)
    assert flattrs(alice.db) == EXPECTED


def test_importing_an_export_again_stores_nothing_twice(alice: World) -> None:
    run(alice.db, read_export(EXPORTS / "current"))
    again = run(alice.db, read_export(EXPORTS / "labels"))
    assert (again.stored, again.duplicates) == (0, 3)
    assert len(flattrs(alice.db)) == 3


def test_a_like_the_connector_saw_first_stays_one_flattr_of_the_connectors_creator(
    alice: World, now: datetime
) -> None:
    with alice.db.session() as session:
        store_flattrs(
            session,
            user_id=get_user(session, "alice").id,
            account_id=None,
            events=[
                LikeEvent(
                    platform="instagram",
                    item_id="C8xQ2mLrT4a",
                    item_url="https://www.instagram.com/p/C8xQ2mLrT4a/",
                    creator_id="25025320",
                    creator_handle="ada.makes",
                    observed_at=now,
                )
            ],
        )
    result = run(alice.db, read_export(EXPORTS / "current"))
    assert (result.stored, result.duplicates) == (2, 2)
    assert [(item, creator) for item, _, creator, *_ in flattrs(alice.db)] == [
        ("CAsv3dPo5tZ", "@zoe.cafe"),
        ("C9bZk1pNw7e", "@grace_hopper_art"),
        ("C8xQ2mLrT4a", "25025320"),
    ]


def test_the_creator_is_paid_only_once_the_username_is_claimed(alice: World) -> None:
    alice.user("zoe", joined=JOINED)
    run(alice.db, read_export(EXPORTS / "current"))
    alice.settle("2026-09")
    assert [(creator, state) for _, creator, _, state in alice.shares("alice")] == [
        ("@zoe.cafe", "reserved")
    ]
    alice.claim("@zoe.cafe", "zoe", platform="instagram")
    assert [(creator, state) for _, creator, _, state in alice.shares("alice")] == [
        ("@zoe.cafe", "paid")
    ]


def test_likes_before_the_latest_link_of_an_instagram_account_are_the_baseline(
    alice: World,
) -> None:
    linked = when("2026-10-05T00:00:00")
    with alice.db.session() as session:
        for platform, at in (("instagram", linked), ("github", when("2026-10-14T00:00:00"))):
            session.add(
                LinkedAccount(
                    user_id=get_user(session, "alice").id,
                    platform=platform,
                    platform_user_id=f"{platform}-1",
                    handle="alice",
                    linked_at=at,
                    interval_seconds=3600,
                )
            )
    result = run(alice.db, read_export(EXPORTS / "current"))
    assert (result.stored, result.baseline, result.baseline_at) == (1, 3, linked)
    assert [item for item, *_ in flattrs(alice.db)] == ["C9bZk1pNw7e"]


# ---------------------------------------------------------------------------
# bad entries: each named, nothing stored

BAD_ENTRIES = [
    ({"string_list_data": old_like()["string_list_data"]}, "title: Field required"),
    (old_like(href="https://evil.example/p/C8xQ2mLrT4a/"), "is not the address of an Instagram"),
    (old_like(href="javascript:alert(1)"), "is not the address of an Instagram post"),
    (old_like(href="https://www.instagram.com/ada.makes/"), "is not the address of an Instagram"),
    (old_like(href="https://[::1/p/x/"), "is not the address of an Instagram post"),
    (old_like(timestamp="1791018900"), "timestamp: Input should be a valid integer"),
    (old_like(timestamp=True), "timestamp: Input should be a valid integer"),
    (old_like(timestamp=10**30), "is not a time"),
    (old_like(timestamp=None), "no timestamp"),
    (old_like(timestamp=946684799), "before 2000-01-01"),
    (old_like(timestamp=1893456000), "is in the future"),
    (old_like(owner="[bold red]ada[/]"), re.escape("'[bold red]ada[/]' is not an Instagram")),
    (old_like(owner="ad\u00c3\u00a4"), "'adä' is not an Instagram username"),
    (old_like(owner="ada\x1b[2J"), re.escape("'ada\\x1b[2J' is not an Instagram username")),
    ({"title": "ada.makes", "string_list_data": []}, "List should have at least 1 item"),
    ([1, 2], "expected a JSON object, got list"),
    ({"timestamp": 1791018900, "label_values": [{"label": "URL"}]}, 'no "Owner"'),
]


@pytest.mark.parametrize(("entry", "message"), BAD_ENTRIES)
def test_a_bad_entry_is_named_by_file_and_number_and_nothing_is_stored(
    alice: World, entry: Any, message: str
) -> None:
    files = [liked_file(old_like(href="https://www.instagram.com/p/Good1/"), entry)]
    with pytest.raises(ImportError_, match=message) as caught:
        run(alice.db, files)
    assert [e.split(": ")[0] for e in caught.value.errors] == [f"{LIKED} entry 2"]
    assert str(caught.value).startswith("1 bad entry(s), nothing imported:")
    assert flattrs(alice.db) == []


def test_a_like_before_2000_is_bad_data_even_though_it_is_before_the_baseline(
    alice: World,
) -> None:
    with pytest.raises(ImportError_, match=r"entry 1: timestamp .* before 2000-01-01"):
        run(alice.db, [liked_file(old_like(timestamp=900000000))])


def test_one_post_with_two_owners_is_refused(alice: World) -> None:
    files = [liked_file(old_like(), old_like(owner="bob", timestamp=1791019000))]
    with pytest.raises(ImportError_, match="entry 2: post C8xQ2mLrT4a is @bob's here"):
        run(alice.db, files)


def test_errors_of_both_files_are_reported_in_order(alice: World) -> None:
    saved = ExportFile(SAVED, Kind.SAVED, b'{"saved_saved_media": [{"title": "x"}]}')
    files = [saved, liked_file(old_like(), {}, {})]
    with pytest.raises(ImportError_) as caught:
        run(alice.db, files)
    assert [e.split(": ")[0] for e in caught.value.errors] == [
        f"{LIKED} entry 2",
        f"{LIKED} entry 3",
        f"{SAVED} entry 1",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{", "not UTF-8 text"),
        (b'{"likes_media_likes": [', re.escape("not JSON (Expecting value at line 1 column 24)")),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON trickle can read"),
        (b'{"likes": []}', "expected a list under 'likes_media_likes'"),
        (b'"likes"', "expected a JSON object or list, got str"),
    ],
)
def test_a_file_that_is_no_list_of_likes_is_one_error(
    alice: World, data: bytes, message: str
) -> None:
    with pytest.raises(ImportError_, match=message):
        run(alice.db, [ExportFile(LIKED, Kind.LIKED, data)])


def test_a_file_of_too_many_entries_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("trickle.connectors.instagram.export.MAX_ENTRIES", 2)
    _, errors = parse_file(liked_file(old_like(), old_like(), old_like()))
    assert errors == [f"{LIKED}: more than 2 entries"]


def test_an_unknown_or_deactivated_user_has_nothing_imported(alice: World) -> None:
    with pytest.raises(UserError, match="no user called 'mallory'"):
        run(alice.db, read_export(EXPORTS / "current"), user="mallory")
    with alice.db.session() as session:
        set_active(session, "alice", False)
    with pytest.raises(UserError, match="'alice' is deactivated"):
        run(alice.db, read_export(EXPORTS / "current"))
    assert flattrs(alice.db) == []


# ---------------------------------------------------------------------------
# entries one by one


def test_a_save_whose_label_is_in_another_language_is_its_one_entry() -> None:
    entry = {
        "title": "zoe.cafe",
        "string_map_data": {
            "Gespeichert am": {"href": "https://instagram.com/p/CAsv3dPo5tZ", "timestamp": 1}
        },
    }
    assert parse_entry(entry, Kind.SAVED).shortcode == "CAsv3dPo5tZ"


def test_reels_tv_and_addresses_with_the_owner_or_a_query_are_posts() -> None:
    for href in (
        "https://www.instagram.com/reel/C9bZk1pNw7e/?igsh=abc",
        "https://www.instagram.com/tv/C9bZk1pNw7e",
        "https://www.instagram.com/grace_hopper_art/p/C9bZk1pNw7e/",
        "https://m.instagram.com/p/C9bZk1pNw7e/",
    ):
        assert parse_entry(old_like(href=href), Kind.LIKED).shortcode == "C9bZk1pNw7e"


def test_usernames_are_lowercase() -> None:
    assert parse_entry(old_like(owner="Ada.Makes"), Kind.LIKED).owner == "ada.makes"


# ---------------------------------------------------------------------------
# mojibake, and input nobody planned for


def mojibake(text: str) -> str:
    """What Instagram's export makes of ``text``: each UTF-8 byte a character."""
    return text.encode("utf-8").decode("latin-1")


@given(st.text())
def test_mojibake_is_undone(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates have no UTF-8, so no export holds them
        return
    assert fix_text(mojibake(text)) == text


@given(st.text(alphabet=st.characters(min_codepoint=0x100)))
def test_text_that_is_not_mojibake_is_kept(text: str) -> None:
    assert fix_text(text) == text


def test_the_exports_reaction_is_the_thumbs_up_it_escapes() -> None:
    assert fix_text(THUMBS) == "👍"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["title", "href", "value", "timestamp", "label", "dict", "label_values", "x"]
            )
            | st.text(max_size=10),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@given(JSON_VALUES, st.sampled_from(list(Kind)))
def test_any_entry_is_a_like_or_an_entry_error_never_a_crash(entry: Any, kind: Kind) -> None:
    try:
        like = parse_entry(entry, kind)
    except EntryError as exc:
        like, problem = None, str(exc)
    else:
        problem = ""
    assert (like is None) == bool(problem)


@given(st.binary(max_size=200), st.sampled_from(list(Kind)))
def test_any_file_is_entries_or_errors_never_a_crash(data: bytes, kind: Kind) -> None:
    likes, errors = parse_file(ExportFile("f.json", kind, data))
    assert all(message.startswith("f.json") for message in errors)
    assert all(where.startswith("f.json entry ") for where, _ in likes)
