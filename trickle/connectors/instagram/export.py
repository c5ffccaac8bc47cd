"""Likes from an Instagram data export: the way to Instagram likes that always works.

``trickle events import EXPORT --format instagram --user NAME`` reads the
files :mod:`.archive` finds and stores their likes through
:func:`trickle.core.importer.store_events`, under ``events import``'s rules:
all or nothing, every bad entry named by file and position.

The shapes (Instagram documents none; these are what its exports hold):

- Older, and ``liked_posts.json`` until 2025: an object,
  ``{"likes_media_likes": [{"title": OWNER, "string_list_data": [{"href":
  POST_URL, "value": REACTION, "timestamp": UNIX_SECONDS}]}]}``;
  ``{"saved_saved_media": [{"title": OWNER, "string_map_data": {"Saved on":
  {"href": POST_URL, "timestamp": UNIX_SECONDS}}}]}``.
- Newer: a bare list of ``{"timestamp": UNIX_SECONDS, "media": [...],
  "label_values": [{"label": "URL", "value": POST_URL, "href": POST_URL},
  ..., {"title": "Owner", "dict": [{"title": "", "dict": [{"label": "URL"},
  {"label": "Name"}, {"label": "Username", "value": OWNER}]}]}], "fbid": ...}``.

Text in the export is mojibake: every UTF-8 byte escaped as a character of its
own (``"\\u00f0\\u009f\\u0091\\u008d"`` for 👍); :func:`fix_text` undoes it.

**Who is paid.** The export names a post's owner by username, never by the
numeric id the ``instagram`` connector keys creators by, and usernames are
renamed and then taken by someone else. The importer does not guess an id: the
creator is platform ``instagram``, id ``@username`` (lowercase; ``@`` cannot
start a numeric id, so the two never meet), paid only once an operator has
verified who holds it (``trickle creators claim instagram @username``) or
returned to the liker when the reservation expires. Linking an Instagram
account claims its numeric id only, never an ``@username``. The item is the
post's shortcode, as the connector has it, so a like seen by both the
connector and the export is one flattr (the first stored keeps its creator).

**When.** An entry's ``timestamp`` is when the like or save was made: the
flattr counts in that month (or the first month not settled yet, as every late
like). The like or save must be after the user's baseline for Instagram: when
they joined trickle, or, if they linked an Instagram account, the latest such
link. Older ones are the baseline: counted, never stored, never paid. A post
both liked and saved is one like, at the earlier time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trickle.connectors.instagram.archive import ExportFile, Kind
from trickle.core.clock import clock, ensure_utc
from trickle.core.events import LikeTimeError, checked_like_time
from trickle.core.importer import ImportedEvent, store_events
from trickle.core.models import LinkedAccount
from trickle.core.text import printable
from trickle.core.users import UserError, get_user

PLATFORM = "instagram"
MAX_ENTRIES = 500_000
"""The most entries read from one file (far more likes than 50 MiB of export holds)."""
CREATOR_PREFIX = "@"
"""Starts the id of a creator known by username only (see the module)."""

_USERNAME = re.compile(r"^[a-z0-9._]{1,30}$")
_POST_PATH = re.compile(r"^/(?:[A-Za-z0-9._]{1,30}/)?(?:p|reel|reels|tv)/([A-Za-z0-9_-]{1,64})/?$")
_HOSTS = frozenset({"www.instagram.com", "instagram.com", "m.instagram.com"})
_WRAPPERS = {Kind.LIKED: "likes_media_likes", Kind.SAVED: "saved_saved_media"}

Label = Annotated[str, Field(max_length=200)]
Long = Annotated[str, Field(max_length=2000)]


def fix_text(text: str) -> str:
    """``text`` with Instagram's mojibake undone: characters that are all below U+0100 and
    form UTF-8 as bytes are those bytes decoded; any other text is kept as it is."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


# -- the shapes -------------------------------------------------------------------


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _StringData(_Shape):
    href: Long | None = None
    value: Long | None = None
    timestamp: StrictInt | None = None


class OldLike(_Shape):
    """A ``likes_media_likes`` entry."""

    title: Label
    string_list_data: Annotated[list[_StringData], Field(min_length=1, max_length=50)]


class OldSave(_Shape):
    """A ``saved_saved_media`` entry."""

    title: Label
    string_map_data: Annotated[dict[StrictStr, _StringData], Field(min_length=1, max_length=50)]


class _Pair(_Shape):
    label: Label | None = None
    value: Long | None = None
    href: Long | None = None


class _Group(_Shape):
    title: Label | None = None
    pairs: Annotated[list[_Pair], Field(alias="dict", max_length=50)] = []


class _LabelValue(_Shape):
    label: Label | None = None
    value: Long | None = None
    href: Long | None = None
    title: Label | None = None
    groups: Annotated[list[_Group], Field(alias="dict", max_length=50)] = []


class NewEntry(_Shape):
    """An entry of the newer bare-list shape."""

    timestamp: StrictInt
    label_values: Annotated[list[_LabelValue], Field(max_length=100)]


@dataclass(frozen=True, slots=True)
class ExportLike:
    """One like or save of the export, checked."""

    shortcode: str
    owner: str
    liked_at: datetime


class EntryError(ValueError):
    """An entry that is no like trickle can store; the message says why."""


# -- reading entries ----------------------------------------------------------------


def parse_file(file: ExportFile) -> tuple[list[tuple[str, ExportLike]], list[str]]:
    """Every entry of ``file`` as a like with where it is (``NAME entry 3``), and the error
    messages of those that are not."""
    try:
        document = json.loads(file.data)
    except UnicodeDecodeError as exc:
        return [], [f"{file.name}: not UTF-8 text ({exc.reason})"]
    except json.JSONDecodeError as exc:
        return [], [f"{file.name}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    except (ValueError, RecursionError):
        return [], [f"{file.name}: not JSON trickle can read (too deep or too large)"]
    wrapper = _WRAPPERS[file.kind]
    if isinstance(document, dict):
        entries = document.get(wrapper)
        if not isinstance(entries, list):
            return [], [f"{file.name}: expected a list under {wrapper!r} or a list of entries"]
    elif isinstance(document, list):
        entries = document
    else:
        return [], [f"{file.name}: expected a JSON object or list, got {type(document).__name__}"]
    if len(entries) > MAX_ENTRIES:
        return [], [f"{file.name}: more than {MAX_ENTRIES} entries"]
    likes: list[tuple[str, ExportLike]] = []
    errors: list[str] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{file.name} entry {number}"
        try:
            likes.append((where, parse_entry(entry, file.kind)))
        except EntryError as exc:
            errors.append(f"{where}: {exc}")
    return likes, errors


def parse_entry(entry: object, kind: Kind) -> ExportLike:
    """One entry of either shape, or :class:`EntryError`."""
    if not isinstance(entry, dict):
        raise EntryError(f"expected a JSON object, got {type(entry).__name__}")
    try:
        if "label_values" in entry:
            return _new(NewEntry.model_validate(entry))
        if kind is Kind.LIKED:
            return _old_like(OldLike.model_validate(entry))
        return _old_save(OldSave.model_validate(entry))
    except ValidationError as exc:
        raise EntryError(_problems(exc)) from None


def _old_like(entry: OldLike) -> ExportLike:
    data = entry.string_list_data[0]
    return _like(data.href, entry.title, data.timestamp)


def _old_save(entry: OldSave) -> ExportLike:
    data = entry.string_map_data.get("Saved on")
    if data is None:
        if len(entry.string_map_data) != 1:  # the label is in the account's language
            raise EntryError('string_map_data: no "Saved on"')
        (data,) = entry.string_map_data.values()
    return _like(data.href, entry.title, data.timestamp)


def _new(entry: NewEntry) -> ExportLike:
    url = next((v.value or v.href for v in entry.label_values if v.label == "URL"), None)
    owner = next(
        (
            pair.value
            for v in entry.label_values
            if v.title == "Owner"
            for group in v.groups
            for pair in group.pairs
            if pair.label == "Username"
        ),
        None,
    )
    if owner is None:
        raise EntryError('label_values: no "Owner" with a "Username"')
    return _like(url, owner, entry.timestamp)


def _like(href: str | None, owner: str, timestamp: int | None) -> ExportLike:
    if href is None:
        raise EntryError("no address of the post (href)")
    if timestamp is None:
        raise EntryError("no timestamp")
    return ExportLike(shortcode(href), username(owner), like_time(timestamp))


def shortcode(href: str) -> str:
    """The shortcode of an Instagram post's address (``/p/``, ``/reel/``, ``/tv/``)."""
    try:
        parts = urlsplit(href)
        host = (parts.hostname or "").lower()
    except ValueError:
        host = ""
        parts = urlsplit("")
    match = _POST_PATH.match(parts.path)
    if parts.scheme not in ("https", "http") or host not in _HOSTS or match is None:
        raise EntryError(f"'{printable(href, 120)}' is not the address of an Instagram post")
    return match.group(1)


def username(owner: str) -> str:
    """An Instagram username, lowercase (Instagram's are case-insensitive)."""
    name = fix_text(owner).strip().lower()
    if not _USERNAME.match(name):
        shown = printable(fix_text(owner), 60)
        raise EntryError(f"the owner '{shown}' is not an Instagram username")
    return name


def like_time(timestamp: int) -> datetime:
    """Unix seconds as a UTC time (its range is checked where every like's is)."""
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise EntryError(f"timestamp {printable(str(timestamp), 30)} is not a time") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
    )


# -- importing -----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    """What an import of an export stored, and what it kept as baseline."""

    entries: int
    stored: int
    duplicates: int
    baseline: int
    baseline_at: datetime


def baseline_at(session: Session, user_id: int, joined: datetime) -> datetime:
    """The user's baseline for Instagram: the latest link of an Instagram account, else when
    they joined."""
    linked = session.scalar(
        select(func.max(LinkedAccount.linked_at)).where(
            LinkedAccount.user_id == user_id, LinkedAccount.platform == PLATFORM
        )
    )
    return max(ensure_utc(joined), ensure_utc(linked)) if linked else ensure_utc(joined)


def import_export(
    session: Session, files: list[ExportFile], user: str, now: datetime | None = None
) -> ExportResult:
    """Store the likes and saves of ``files`` as ``user``'s, or raise :class:`ImportError_`
    and store none."""
    owner = get_user(session, user)
    likes: list[tuple[str, ExportLike]] = []
    errors: list[str] = []
    for file in files:
        found, bad = parse_file(file)
        likes += found
        errors += bad
    earliest: dict[str, tuple[str, ExportLike]] = {}
    for where, like in likes:
        first = earliest.get(like.shortcode)
        if first is not None and first[1].owner != like.owner:
            errors.append(
                f"{where}: post {like.shortcode} is @{like.owner}'s here, "
                f"@{first[1].owner}'s at {first[0]}"
            )
        elif first is None or like.liked_at < first[1].liked_at:
            earliest[like.shortcode] = (where, like)
    if not owner.active:
        raise UserError(f"{owner.name!r} is deactivated: nothing is imported for them")
    observed = now or clock.now()
    since = baseline_at(session, owner.id, owner.created_at)
    fresh = [(w, like) for w, like in earliest.values() if like.liked_at >= since]
    for where, like in earliest.values():
        if like.liked_at < since:  # baseline, but bad data all the same if out of range
            try:
                checked_like_time(like.liked_at, observed)
            except LikeTimeError as exc:
                errors.append(f"{where}: timestamp {exc}")
    events = [(where, _event(owner.name, like)) for where, like in fresh]
    result = store_events(session, events, errors, now=observed, unit="entry")
    return ExportResult(
        entries=len(likes),
        stored=result.stored,
        duplicates=result.duplicates + len(likes) - len(earliest),
        baseline=len(earliest) - len(fresh),
        baseline_at=since,
    )


def _event(user: str, like: ExportLike) -> ImportedEvent:
    data: dict[str, Any] = {
        "user": user,
        "platform": PLATFORM,
        "item_id": like.shortcode,
        "item_url": f"https://www.instagram.com/p/{like.shortcode}/",
        "creator_id": f"{CREATOR_PREFIX}{like.owner}",
        "creator_handle": like.owner,
        "liked_at": like.liked_at,
    }
    return ImportedEvent.model_validate(data)
