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

A member's ``link`` must be an absolute http(s) URL, and the handle taken from it no longer
than the 200 characters trickle keeps: anything else is a malformed payload naming the field.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from trickle.connectors.payloads import PlatformTime

USER_URI = r"^/users/[0-9]{1,20}$"
VIDEO_URI = r"^/videos/[0-9]{1,20}$"

UserUri = Annotated[str, StringConstraints(strict=True, pattern=USER_URI)]
VideoUri = Annotated[str, StringConstraints(strict=True, pattern=VIDEO_URI)]
Url = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=2048)]
Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
MAX_HANDLE = 200
"""The longest handle trickle keeps (an account's and a creator's columns hold 200)."""


def _web_url(value: str) -> str:
    """An absolute http(s) URL that reads as one (``urlsplit`` refuses ``https://[x``)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("not a URL") from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError("not a URL: an absolute http(s) URL was expected")
    return value


WebUrl = Annotated[Url, AfterValidator(_web_url)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Payload):
    """A Vimeo member: a video's owner (the creator trickle pays) or the token's owner."""

    uri: UserUri
    name: Name
    link: WebUrl

    @model_validator(mode="after")
    def _handle_fits(self) -> User:
        if len(self.handle) > MAX_HANDLE:
            raise ValueError(f"the profile name is longer than {MAX_HANDLE} characters")
        return self

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
