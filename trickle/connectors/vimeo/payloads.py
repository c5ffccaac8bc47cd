"""Vimeo's payloads, as far as trickle reads them (Vimeo's OpenAPI spec, ``vimeo/openapi``
``api.yaml``, API 3.4, and its common-formats page).

- ``GET /me/likes`` answers a page of ``video`` objects in Vimeo's collection wrapper:
  ``{"total", "page", "per_page", "paging": {"next", "previous", "first", "last"},
  "data": [...]}``, ``paging.next`` a URI relative to the API root, null on the last page.
- A ``video`` is named by its ``uri`` (``/videos/258684937``) and ``link``; its owner is
  ``user`` (nullable), a ``user`` whose ``uri`` (``/users/152184``) is permanent and whose
  ``link`` is the profile page (``https://vimeo.com/staff``, the vanity name last).
- ``metadata.interactions.like`` describes the token owner's like of the video:
  ``added`` and ``added_time`` ("the time in ISO 8601 format when the user liked the
  video"), the like time trickle pays by.
- ``GET /me`` answers the authenticated ``user``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

from trickle.connectors.payloads import PlatformTime

USER_URI = r"^/users/[0-9]{1,20}$"
VIDEO_URI = r"^/videos/[0-9]{1,20}$"

UserUri = Annotated[str, StringConstraints(strict=True, pattern=USER_URI)]
VideoUri = Annotated[str, StringConstraints(strict=True, pattern=VIDEO_URI)]
Url = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=2048)]
Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Payload):
    """A Vimeo member: a video's owner (the creator trickle pays) or the token's owner."""

    uri: UserUri
    name: Name
    link: Url

    @property
    def handle(self) -> str:
        """The profile's name: the last segment of ``link`` (``vimeo.com/staff``, or
        ``vimeo.com/user152184`` for a member without a vanity name), else the display name."""
        segment = urlsplit(self.link).path.rstrip("/").rsplit("/", 1)[-1]
        return segment or self.name


class Like(_Payload):
    """``metadata.interactions.like``: the token owner's like of the video."""

    added: bool = True
    added_time: PlatformTime | None = None


class Interactions(_Payload):
    like: Like | None = None


class Metadata(_Payload):
    interactions: Interactions


class Video(_Payload):
    """One liked video."""

    uri: VideoUri
    link: Url
    user: User | None
    metadata: Metadata


class Paging(_Payload):
    next: Url | None = None


class LikesPage(_Payload):
    """A page of ``GET /me/likes``."""

    data: list[Video]
    paging: Paging


LIKES = TypeAdapter(LikesPage)
USER = TypeAdapter(User)
