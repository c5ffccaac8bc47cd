"""SoundCloud's payloads, as far as trickle reads them (the OpenAPI spec of the public API,
``soundcloud/api`` ``openapi/api.yaml``, and the API guide at developers.soundcloud.com).

- ``GET /me/likes/tracks?linked_partitioning=true`` answers the ``Tracks`` schema:
  ``{"collection": [Track, ...], "next_href": "https://api.soundcloud.com/..."}``,
  ``next_href`` absent (or null) on the last page.
- A ``Track`` is identified by its ``urn`` (``soundcloud:tracks:1234``) and names its
  uploader in ``user``, a ``User`` (``urn`` ``soundcloud:users:12345``, ``permalink``,
  ``username``); the spec marks ``user`` nullable.
- ``GET /me`` answers the ``Me`` schema (``urn``, ``permalink``, ``username``...).
- A 429 carries, per the rate-limits page, ``{"errors": [{"meta": {"rate_limit": {...},
  "remaining_requests": 0, "reset_time": "2015/06/01 09:49:40 +0000"}}]}``.

Numeric ids are deprecated ("use URNs"), so creators and accounts are keyed by their URN,
checked against its documented form: a lax parse would pay whoever a broken payload names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

USER_URN = r"^soundcloud:users:[0-9]{1,20}$"
TRACK_URN = r"^soundcloud:tracks:[0-9]{1,20}$"
RESET_TIME_FORMAT = "%Y/%m/%d %H:%M:%S %z"
"""``reset_time`` of a 429, "yyyy/MM/dd HH:mm:ss Z" (SoundCloud's rate-limits page)."""

UserUrn = Annotated[str, StringConstraints(strict=True, pattern=USER_URN)]
TrackUrn = Annotated[str, StringConstraints(strict=True, pattern=TRACK_URN)]
Permalink = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]
"""A user's permalink, the handle shown: no longer than the 200 characters trickle keeps."""
Url = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=2048)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Payload):
    """A track's uploader: the creator trickle pays, by URN; ``permalink`` is the name in their
    profile's address (``soundcloud.com/<permalink>``), the handle shown."""

    urn: UserUrn
    permalink: Permalink
    permalink_url: Url | None = None


class Track(_Payload):
    """One liked track (``Track``); ``user`` is null for a track nobody owns any more."""

    urn: TrackUrn
    permalink_url: Url
    user: User | None


class Tracks(_Payload):
    """A page of ``/me/likes/tracks`` with ``linked_partitioning=true``."""

    collection: list[Track]
    next_href: Url | None = None


class Me(_Payload):
    """``GET /me``: whose token it is."""

    urn: UserUrn
    permalink: Permalink


TRACKS = TypeAdapter(Tracks)
ME = TypeAdapter(Me)


def reset_time(body: Any, now: datetime) -> datetime | None:
    """The latest ``reset_time`` a 429's body names (its ``errors[].meta``), if it names one
    that reads; None otherwise (the HTTP layer then waits its default)."""
    if not isinstance(body, Mapping):
        return None
    errors = body.get("errors")
    if not isinstance(errors, list):
        return None
    times: list[datetime] = []  # aware: the format's %z is required
    for error in errors[:20]:
        meta = error.get("meta") if isinstance(error, Mapping) else None
        value = meta.get("reset_time") if isinstance(meta, Mapping) else None
        if not isinstance(value, str) or len(value) > 40:
            continue
        try:
            times.append(datetime.strptime(value, RESET_TIME_FORMAT))  # noqa: DTZ007 - %z
        except ValueError:
            continue
    return max(times) if times else None
