"""``trickle events import``: normalized likes from a JSON Lines file, all or nothing.

One event per line with the fields ``user, platform, item_id, item_url,
creator_id, creator_handle, liked_at``. It serves operators backfilling
likes and sources without an API of their own (a plain Flattr-style button).
Every line is validated before anything is stored; one bad line rejects the
whole file with its line number, and the database is left as it was.

Other formats (a platform's own data export) are read into :class:`ImportedEvent`
records, each with where it came from, and stored by :func:`store_events` under the
same rules.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from trickle.core.clock import clock, iso_utc
from trickle.core.errors import TrickleError
from trickle.core.events import LikeEvent, LikeTimeError, checked_like_time
from trickle.core.ingest import IngestResult, store_flattrs
from trickle.core.models import User

Text = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
MAX_ERRORS_SHOWN = 20
MAX_LINE_CHARS = 100_000
"""No normalized like needs more; a longer line is refused before it is parsed."""
FUTURE_TOLERANCE = timedelta(minutes=5)


class ImportError_(TrickleError):
    """A file with bad lines (or entries: ``unit``); nothing of it was stored."""

    def __init__(self, errors: list[str], unit: str = "line") -> None:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        lines = "\n  ".join(shown)
        suffix = f"\n  ... and {more} more" if more else ""
        super().__init__(f"{len(errors)} bad {unit}(s), nothing imported:\n  {lines}{suffix}")
        self.errors = errors


class ImportedEvent(BaseModel):
    """One line of an import file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user: Text
    platform: Annotated[
        str, StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9_.-]+$")
    ]
    item_id: Text
    item_url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    creator_id: Text
    creator_handle: Text
    liked_at: AwareDatetime


@dataclass(frozen=True)
class ImportResult:
    """What an import stored."""

    lines: int
    stored: int
    duplicates: int


def parse_lines(lines: Iterable[str]) -> tuple[list[tuple[int, ImportedEvent]], list[str]]:
    """Validate every non-blank line; returns (events with line numbers, error messages)."""
    events: list[tuple[int, ImportedEvent]] = []
    errors: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            errors.append(f"line {number}: longer than {MAX_LINE_CHARS} characters")
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        except (ValueError, RecursionError):  # a 5,000-digit number, nesting 10,000 deep
            errors.append(f"line {number}: not JSON trickle can read (too deep or too large)")
            continue
        if not isinstance(data, dict):
            errors.append(f"line {number}: expected a JSON object, got {type(data).__name__}")
            continue
        try:
            events.append((number, ImportedEvent.model_validate(data)))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()
            )
            errors.append(f"line {number}: {problems}")
    return events, errors


def read_lines(path: Path) -> Iterator[str]:
    """The lines of a JSON Lines file, read as they are needed; a line far longer than any
    like (a file without newlines) is cut at :data:`MAX_LINE_CHARS` + 1 characters so that
    :func:`parse_lines` refuses it without holding it all, and the rest of it is skipped."""
    with path.open(encoding="utf-8", newline="") as handle:
        while line := handle.readline(MAX_LINE_CHARS + 1):
            if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                while (rest := handle.readline(MAX_LINE_CHARS + 1)) and not rest.endswith("\n"):
                    pass
            yield line.rstrip("\r\n")


def import_events(
    session: Session, lines: Iterable[str], now: datetime | None = None
) -> ImportResult:
    """Store every event of ``lines`` in the caller's transaction, or raise and store none."""
    events, errors = parse_lines(lines)
    return store_events(session, [(f"line {n}", e) for n, e in events], errors, now=now)


def store_events(
    session: Session,
    events: Sequence[tuple[str, ImportedEvent]],
    errors: Sequence[str] = (),
    *,
    now: datetime | None = None,
    unit: str = "line",
) -> ImportResult:
    """Store ``events`` (each with where it came from: ``line 3``) in the caller's
    transaction, or raise :class:`ImportError_` and store none.

    ``errors`` are those already found reading the file (``"line 3: ..."``); the users
    named and the like times are checked here, and every error is reported, in the order
    of where it was found.
    """
    errors = list(errors)
    names = {e.user for _, e in events}
    rows = (
        session.execute(select(User.name, User.id, User.active).where(User.name.in_(names))).all()
        if names
        else []
    )
    ids: dict[str, int] = {}
    inactive: set[str] = set()
    for name, user_id, active in rows:
        ids[name] = user_id
        if not active:
            inactive.add(name)
    for where, event in events:
        if event.user not in ids:
            errors.append(f"{where}: no user called {event.user!r}")
        elif event.user in inactive:
            errors.append(f"{where}: {event.user!r} is deactivated")
    observed = now or clock.now()
    for where, event in events:
        try:
            if checked_like_time(event.liked_at, observed) > observed + FUTURE_TOLERANCE:
                raise LikeTimeError(f"{iso_utc(event.liked_at)} is in the future")
        except LikeTimeError as exc:
            errors.append(f"{where}: liked_at {exc}")
    if errors:
        raise ImportError_(sorted(errors, key=_position), unit)
    by_user: dict[int, list[LikeEvent]] = defaultdict(list)
    for _, e in events:
        by_user[ids[e.user]].append(
            LikeEvent(
                platform=e.platform,
                item_id=e.item_id,
                item_url=e.item_url,
                creator_id=e.creator_id,
                creator_handle=e.creator_handle,
                liked_at=e.liked_at,
                observed_at=observed,
            )
        )
    total = IngestResult()
    for user_id, user_events in by_user.items():
        total = total + store_flattrs(session, user_id=user_id, account_id=None, events=user_events)
    return ImportResult(lines=len(events), stored=total.stored, duplicates=total.duplicates)


def _position(message: str) -> list[tuple[str, int]]:
    """Where an error was found, ordered naturally: ``line 9`` before ``line 10``, and
    ``saved_posts.json entry 2`` after every ``liked_posts.json entry``."""
    where = message.split(": ", 1)[0]
    return [(text, int(digits or 0)) for text, digits in re.findall(r"(\D*)(\d*)", where)]
