"""500px's v1 payloads, as far as trickle reads them (the last documented reference,
``500px/legacy-api-documentation`` before its commit of 2015-12-18).

- ``GET /v1/photos?feature=user_favorites&user_id=...``: ``{"feature",
  "filters", "current_page", "total_pages", "total_items", "photos": [...]}``,
  photos in the short format (``id`` an integer, ``name``, ``user`` in the
  user's short format: ``id`` an integer, ``username``), ``rpp`` (at most 100)
  per page, by the time favorited, newest first. No photo says when it was
  favorited.
- ``GET /v1/users``: ``{"user": {...}}``, the token's owner in the full format.

Ids are integers, checked strictly (``true`` is not user 1).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, TypeAdapter

MAX_RPP = 100
"""The most photos 500px lists per page (``rpp``)."""

Id = Annotated[StrictInt, Field(ge=1, lt=2**63)]
"""A photo or user id: a positive integer, at most 64-bit (JSON integers have no size, and an
id keys what trickle stores, in 200 characters)."""
Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strict=True, max_length=2000)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class User(_Payload):
    """A user in the short format: the photographer trickle pays, or the token's owner."""

    id: Id
    username: Name


class Photo(_Payload):
    """A favorite photo in the short format."""

    id: Id
    name: Text = ""
    user: User


class PhotosPage(_Payload):
    """A page of a photo stream."""

    current_page: StrictInt
    total_pages: StrictInt
    total_items: StrictInt
    photos: Annotated[list[Photo], Field(max_length=MAX_RPP)]


class Me(_Payload):
    """The answer to ``GET /v1/users``."""

    user: User


PHOTOS = TypeAdapter(PhotosPage)
ME = TypeAdapter(Me)
