"""Flickr's payloads, as far as trickle reads them (the App Garden's API reference).

Every call goes to the one REST endpoint with ``format=json&nojsoncallback=1``
and answers an object whose ``stat`` is ``"ok"`` (an error is ``"fail"`` with a
``code`` and a ``message``, read by the connector's error policy before these
models see the body). Flickr's JSON is its XML turned inside out: attributes
become members whose values are mostly strings, and an element's text becomes
``_content``:

- ``flickr.favorites.getList``: ``{"photos": {"page", "pages", "perpage",
  "total", "photo": [...]}, "stat": "ok"}``; ``pages`` and ``total`` arrive as
  strings, ``page`` and ``perpage`` as numbers (either is accepted, as digits).
  Each photo has ``id``, ``owner`` (the owner's NSID), ``title`` and
  ``date_faved`` (unix seconds, a string), and ``ownername`` when the
  ``owner_name`` extra is asked for.
- ``flickr.test.login``: ``{"user": {"id": NSID, "username": {"_content": ...}},
  "stat": "ok"}``.

Ids are checked strictly: a photo id is a string of digits, an NSID is digits,
``@N`` and digits (``47058503995@N01``), so a number or a stray value never keys
a photo or pays a creator.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)

from trickle.connectors.payloads import PlatformTime

MAX_PER_PAGE = 500
"""The largest ``per_page`` Flickr allows; a page holding more is not Flickr's."""

PhotoId = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{1,30}$")]
Nsid = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{1,20}@N[0-9]{1,4}$")]
Text = Annotated[str, StringConstraints(strict=True, max_length=1000)]
NonEmpty = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]


def _digits(value: Any) -> int:
    """A count as Flickr sends it: a number, or a string of digits."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a number or a string of digits")
    text = str(value)
    if not text.isdigit() or len(text) > 12:
        raise ValueError("expected a number or a string of digits")
    return int(text)


def _unix_seconds(value: Any) -> datetime:
    """A time as Flickr sends it: unix seconds as a string of digits."""
    if not isinstance(value, str) or not value.isdigit() or len(value) > 12:
        raise ValueError("expected unix seconds as a string of digits")
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("unix seconds out of range") from None


Count = Annotated[int, BeforeValidator(_digits)]
DateFaved = Annotated[PlatformTime, BeforeValidator(_unix_seconds)]
"""``date_faved``: unix seconds as a string, then held to the range of :data:`PlatformTime`."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class Photo(_Payload):
    """One favorite: the photo, its owner (the creator trickle pays) and when it was faved."""

    id: PhotoId
    owner: Nsid
    title: Text = ""
    ownername: Text | None = None
    date_faved: DateFaved


class Photos(_Payload):
    """A page of the favorites list."""

    page: Count
    pages: Count
    perpage: Count
    total: Count
    photo: Annotated[list[Photo], Field(max_length=MAX_PER_PAGE)]


class FavoritesPage(_Payload):
    """The answer to ``flickr.favorites.getList``."""

    photos: Photos
    stat: Literal["ok"]


class _Content(_Payload):
    content: NonEmpty = Field(alias="_content")


class LoginUser(_Payload):
    """Who the token credentials belong to: the NSID and the username."""

    id: Nsid
    username: _Content


class Login(_Payload):
    """The answer to ``flickr.test.login``."""

    user: LoginUser
    stat: Literal["ok"]


FAVORITES = TypeAdapter(FavoritesPage)
LOGIN = TypeAdapter(Login)
