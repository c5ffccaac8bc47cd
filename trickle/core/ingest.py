"""Storing likes as flattrs: idempotent, deduplicated, with the baseline applied.

Every like is keyed by (user, platform, item id), so storing the same like
twice (a retried poll, a re-imported file, two accounts of one user on the
same platform) keeps one flattr. Creators are upserted by (platform,
permanent id); a renamed handle is updated, the identity never changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TypeVar

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from trickle.core.db import insert
from trickle.core.events import LikeEvent
from trickle.core.models import Creator, Flattr

CHUNK = 500
T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """``itertools.batched`` for Python 3.11: tuples of up to ``size`` items."""
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


@dataclass(frozen=True, slots=True)
class IngestResult:
    """How many likes became flattrs, were already stored, or predate the link."""

    stored: int = 0
    duplicates: int = 0
    baseline: int = 0

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(
            self.stored + other.stored,
            self.duplicates + other.duplicates,
            self.baseline + other.baseline,
        )


def split_baseline(
    events: Iterable[LikeEvent], linked_at: datetime, *, first_poll: bool = True
) -> tuple[list[LikeEvent], list[LikeEvent]]:
    """Separate a poll's likes into (made after linking, baseline).

    A like whose platform-reported time is before the link is baseline on
    every poll (an old star can resurface when a newer one is removed). A
    like without a time cannot be told from an old one on the first poll, so
    it is baseline there; on later polls it is new, since paging stops at
    known items.
    """
    after: list[LikeEvent] = []
    before: list[LikeEvent] = []
    for event in events:
        if event.liked_at is not None:
            (after if event.liked_at >= linked_at else before).append(event)
        elif first_poll:
            before.append(event)
        else:
            after.append(event)
    return after, before


def upsert_creators(session: Session, events: Iterable[LikeEvent]) -> dict[tuple[str, str], int]:
    """Make sure every event's creator exists; returns (platform, platform id) -> creator id.

    Most likes are for creators already stored, so they are looked up first and only the
    missing ones are inserted (``ON CONFLICT DO NOTHING``, for a concurrent writer inserting
    the same one), then looked up in turn. A creator whose handle changed is renamed.
    """
    handles: dict[tuple[str, str], str] = {}
    for event in events:
        handles[(event.platform, event.creator_id)] = event.creator_handle
    if not handles:
        return {}
    connection = session.connection()
    keys = sorted(handles)  # one lock order for every writer (PostgreSQL deadlocks otherwise)
    stored = _find_creators(connection, keys)
    missing = [key for key in keys if key not in stored]
    if missing:
        add = insert(session, Creator.__table__).on_conflict_do_nothing(
            index_elements=["platform", "platform_id"]
        )
        for chunk in batched(missing, CHUNK):
            # Rows as execute() parameters, not .values(rows): one statement compiled once
            # (and cached) instead of a new one with a bound parameter per value on every call.
            connection.execute(
                add,
                [{"platform": p, "platform_id": i, "handle": handles[(p, i)]} for p, i in chunk],
            )
        stored.update(_find_creators(connection, missing))
    renamed = [
        {"id": creator_id, "handle": handles[key]}
        for key, (creator_id, handle) in sorted(stored.items())
        if handle != handles[key]
    ]
    if renamed:
        session.execute(update(Creator), renamed)  # ORM bulk update by primary key
    return {key: creator_id for key, (creator_id, _) in stored.items()}


def _find_creators(
    connection: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str]]:
    """(platform, platform id) -> (creator id, stored handle), for those of ``keys`` stored."""
    found: dict[tuple[str, str], tuple[int, str]] = {}
    by_platform: dict[str, list[str]] = {}
    for platform, platform_id in keys:
        by_platform.setdefault(platform, []).append(platform_id)
    for platform, platform_ids in by_platform.items():
        for chunk in batched(platform_ids, CHUNK):
            rows = connection.execute(
                select(Creator.id, Creator.platform_id, Creator.handle).where(
                    Creator.platform == platform, Creator.platform_id.in_(chunk)
                )
            )
            for creator_id, platform_id, handle in rows:
                found[(platform, platform_id)] = (creator_id, handle)
    return found


def store_flattrs(
    session: Session,
    *,
    user_id: int,
    account_id: int | None,
    events: Sequence[LikeEvent],
) -> IngestResult:
    """Insert ``events`` as flattrs of ``user_id``; likes already stored are only counted."""
    if not events:
        return IngestResult()
    unique = list({(e.platform, e.item_id): e for e in events}.values())
    creator_ids = upsert_creators(session, unique)
    stmt = (
        insert(session, Flattr.__table__)
        .on_conflict_do_nothing(index_elements=["user_id", "platform", "item_id"])
        .returning(Flattr.__table__.c.id)
    )
    stored = 0
    for chunk in batched(unique, CHUNK):
        rows = [
            {
                "user_id": user_id,
                "account_id": account_id,
                "platform": e.platform,
                "item_id": e.item_id,
                "item_url": e.item_url,
                "creator_id": creator_ids[(e.platform, e.creator_id)],
                "liked_at": e.liked_at,
                "observed_at": e.observed_at,
                "effective_at": e.effective_at,
            }
            for e in chunk
        ]
        stored += len(session.execute(stmt, rows).all())  # RETURNING: the rows inserted
    return IngestResult(stored=stored, duplicates=len(events) - stored)


def ingest_poll(
    session: Session,
    *,
    user_id: int,
    account_id: int,
    events: Sequence[LikeEvent],
    linked_at: datetime,
    first_poll: bool,
) -> IngestResult:
    """Store a poll's likes, keeping those made before the account was linked as baseline."""
    events, baseline = split_baseline(events, linked_at, first_poll=first_poll)
    result = store_flattrs(session, user_id=user_id, account_id=account_id, events=events)
    return result + IngestResult(baseline=len(baseline))
