"""Finding the likes and saved posts in an Instagram data export, and reading them safely.

Instagram's "Download your information" (JSON format) is a zip archive, or a
folder once unpacked, that holds, among much else:

- ``your_instagram_activity/likes/liked_posts.json`` and
  ``your_instagram_activity/saved/saved_posts.json`` (exports since 2023);
- ``likes/liked_posts.json`` and ``saved/saved_posts.json`` (older ones).

:func:`read_export` takes any of: the zip archive, the unpacked folder (or a
folder holding it, one level up, as a re-zipped export has it), or one of the
two JSON files itself. The export is untrusted input: every file read is at
most :data:`MAX_FILE_BYTES`, an archive too (an export with its photos and
videos is larger: unpack it and give the folder, or request one of "Likes" and
"Saved" only). From an archive only those known paths are read, never
extracted to disk, each read stopping at the cap whatever size the archive
claims (a zip bomb inflates no further); a member name with ``..``, an
absolute path or a drive is never taken. Only regular files are read (a FIFO,
a device or a socket is refused, without waiting on it).
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from trickle.core.errors import TrickleError
from trickle.core.text import printable

MAX_FILE_BYTES = 50 * 1024 * 1024
"""The most read of any one file of an export, and of a zip archive of one: 50 MiB holds
hundreds of thousands of likes (about 250 bytes each)."""


class Kind(StrEnum):
    """What a file of the export lists."""

    LIKED = "liked"
    SAVED = "saved"


KNOWN_PATHS: dict[str, Kind] = {
    "your_instagram_activity/likes/liked_posts.json": Kind.LIKED,
    "your_instagram_activity/saved/saved_posts.json": Kind.SAVED,
    "likes/liked_posts.json": Kind.LIKED,
    "saved/saved_posts.json": Kind.SAVED,
}
"""Where exports keep the likes and the saved posts, newest layout first."""

FILE_NAMES = {"liked_posts.json": Kind.LIKED, "saved_posts.json": Kind.SAVED}
HOW_TO_GET_ONE = (
    "request one in Instagram: Settings, Accounts Center, Your information and permissions, "
    "Download your information, format JSON"
)


class ExportError(TrickleError):
    """An export trickle cannot read at all (rather than one with bad entries)."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One file of the export: where it is in the export, what it lists, its bytes."""

    name: str
    kind: Kind
    data: bytes


def read_export(path: Path) -> list[ExportFile]:
    """The likes and saved posts files of the export at ``path`` (see the module)."""
    shown = printable(str(path), 300)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ExportError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
    if stat.S_ISDIR(mode):
        return _from_folder(path, shown)
    data = _read_file(path, shown)
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _from_archive(data, shown)
    kind = FILE_NAMES.get(path.name)
    if kind is None:
        raise ExportError(
            f"{shown} is neither an Instagram export (its .zip or its folder) nor its "
            "liked_posts.json or saved_posts.json"
        )
    return [ExportFile(path.name, kind, data)]


def _read_file(path: Path, shown: str) -> bytes:
    """At most :data:`MAX_FILE_BYTES` of a regular file, or a clear error."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ExportError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ExportError(f"cannot read {shown}: not a regular file")
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ExportError(
                f"cannot read {shown}: {exc.strerror or type(exc).__name__}"
            ) from None
    if len(data) > MAX_FILE_BYTES:
        raise ExportError(f"{shown} is larger than {_mib(MAX_FILE_BYTES)}: {_TOO_LARGE}")
    return data


_TOO_LARGE = (
    "an export with photos and videos is; unpack it and give its folder, or request an "
    'export of "Likes" and "Saved" only'
)


def _from_folder(folder: Path, shown: str) -> list[ExportFile]:
    roots = [folder]
    try:
        roots += sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError as exc:
        raise ExportError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
    found: dict[str, Path] = {}
    for root in roots:
        for known in KNOWN_PATHS:
            candidate = root / known
            if candidate.exists():
                found[candidate.relative_to(folder).as_posix()] = candidate
    names = _one_export(list(found), shown)
    return [
        ExportFile(name, _kind(name), _read_file(found[name], printable(str(found[name]), 300)))
        for name in names
    ]


def _from_archive(data: bytes, shown: str) -> list[ExportFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise ExportError(f"{shown} is not a zip archive trickle can read ({exc})") from None
    with archive:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            name = _member_name(info.filename)
            if name is not None and not info.is_dir():
                members.setdefault(name, info)
        found = [n for n in members if _known_suffix(n) is not None]
        files = []
        for name in _one_export(found, shown):
            where = f"{shown}: {printable(name, 200)}"
            try:
                with archive.open(members[name]) as member:
                    content = member.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError) as exc:
                # a bad CRC or header, a compression zipfile lacks, an encrypted member
                message = printable(str(exc), 200)
                raise ExportError(f"cannot read {where}: {message}") from None
            except (OSError, EOFError) as exc:  # a truncated or corrupt deflate stream
                raise ExportError(f"cannot read {where}: {type(exc).__name__}") from None
            if len(content) > MAX_FILE_BYTES:
                raise ExportError(f"{where} unpacks to more than {_mib(MAX_FILE_BYTES)}")
            files.append(ExportFile(name, _kind(name), content))
    return files


def _member_name(raw: str) -> str | None:
    """A member's name as a relative POSIX path, or None for one that could point outside
    the archive (``..``, absolute, a drive letter)."""
    name = raw.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ":" in parts[0] or ".." in parts:
        return None
    return "/".join(part for part in parts if part != ".")


def _known_suffix(name: str) -> str | None:
    """The known path ``name`` is, at the export's root or one folder down."""
    for known in KNOWN_PATHS:
        if name == known:
            return known
        head, _, rest = name.partition("/")
        if rest == known and head:
            return known
    return None


def _kind(name: str) -> Kind:
    known = _known_suffix(name)
    assert known is not None  # only known paths are ever read
    return KNOWN_PATHS[known]


def _one_export(names: list[str], shown: str) -> list[str]:
    """The known files found, all of one export (one root), newest layout first."""
    if not names:
        raise ExportError(
            f"{shown} holds no your_instagram_activity/likes/liked_posts.json nor "
            f"your_instagram_activity/saved/saved_posts.json (nor likes/liked_posts.json, "
            f"saved/saved_posts.json of older exports): {HOW_TO_GET_ONE}, with at least "
            '"Likes" or "Saved" selected'
        )
    roots = {name[: len(name) - len(_known_suffix(name) or "")] for name in names}
    if len(roots) > 1:
        listed = ", ".join(printable(root or "(top)", 80) for root in sorted(roots))
        raise ExportError(f"{shown} holds more than one export ({listed}): give one at a time")
    order = list(KNOWN_PATHS)
    return sorted(names, key=lambda n: order.index(_known_suffix(n) or ""))


def _mib(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB"
