"""The App.net response envelope and its Post and User objects, as pnut.io and App.net send them.

Both APIs answer every resource endpoint with ``{"meta": {...}, "data": ...}``
(pnut.io's "Responses", App.net's "Response Envelope"): ``meta.code`` is a
copy of the HTTP status, a paginated list adds ``meta.more``, ``meta.min_id``
and ``meta.max_id``, and an error has no ``data`` but ``meta.error_message``.
Post and User ids are integers "always expressed as a string": they are
checked strictly as strings of digits, so a number (or ``true``) never passes
for an id and pays the wrong creator. Only the fields trickle reads are
modelled; the others are ignored.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
)

MAX_PAGE = 200
"""The most objects one page may hold: both APIs cap ``count`` at 200."""

NumericId = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{1,20}$")]
"""A Post or User id: an integer expressed as a string."""
Username = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]
"""A username: 20 characters of a-z, 0-9 and _ on both platforms; held to a bound, not to the
alphabet, so that a server's wider usernames still link."""
Url = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=2048)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Meta(_Payload):
    """The envelope's ``meta``: the status copied, and a list's paging metadata (read by the
    :class:`~trickle.connectors.paginators.BeforeId` paginator, checked here too)."""

    code: StrictInt
    more: StrictBool | None = None


class User(_Payload):
    """A User object: ``id`` never changes, ``username`` may."""

    id: NumericId
    username: Username


class Post(_Payload):
    """A Post object. ``user`` is omitted when the author's account was deleted (pnut.io then
    sends ``user_id``). App.net's posts carry ``canonical_url``; pnut.io's do not."""

    id: NumericId
    user: User | None = None
    canonical_url: Url | None = None


class PostList(_Payload):
    """A page of a paginated posts endpoint (``/users/{user_id}/bookmarks``,
    ``/users/{user_id}/stars``), newest first."""

    meta: Meta
    data: list[Post] = Field(max_length=MAX_PAGE)


class UserEnvelope(_Payload):
    """``GET /users/me``: the token's user."""

    meta: Meta
    data: User


POST_LIST = TypeAdapter(PostList)
USER_ENVELOPE = TypeAdapter(UserEnvelope)
