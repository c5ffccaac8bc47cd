"""Instagram's private web API answers, as far as trickle reads them.

Instagram documents none of this: the shapes are those instaloader 4.16 reads
(``instaloader/structures.py``, ``instaloader.py``, ``instaloadercontext.py``),
checked here before anything else touches them.

- ``GET /graphql/query?query_hash=d6f4427fbe92d846298cf93df0b937d3`` (who is
  logged in; instaloader's ``test_login`` and ``Profile.own_profile``):
  ``{"data": {"user": {"id", "username", ...} | null}, "status": "ok"}``.
- ``GET /graphql/query?query_hash=f883d95537fbcd400f466f63d42bd8a1`` with
  ``variables={"id", "first", "after"}`` (``Profile.get_saved_posts``):
  ``data.user.edge_saved_media`` = ``{"count", "page_info": {"has_next_page",
  "end_cursor"}, "edges": [{"node": {"id", "shortcode", "owner": {"id",
  "username"}, "viewer_has_liked", ...}}]}``, newest save first.
- ``GET /api/v1/feed/timeline/`` (``Instaloader.get_feed_posts``):
  ``{"feed_items": [{"media_or_ad": {"pk", "code", "has_liked", "user":
  {"pk", "username"}, "ad_id"?}}], "more_available", "next_max_id"}``.
- The login (``InstaloaderContext.login``): ``{"authenticated", "user",
  "status", "two_factor_required", "two_factor_info":
  {"two_factor_identifier"}, "checkpoint_url", "message"}``.

Ids come as strings in GraphQL answers and as numbers in the app's API; both
are taken, as decimal digits, and never a boolean.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter

MAX_ITEMS_PER_PAGE = 200
"""More items than any page Instagram sends (12 to 50): a longer list is not a page."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=200, strict=True)]
Shortcode = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", strict=True)
]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=2000, strict=True)]


def _numeric_id(value: object) -> object:
    """A numeric id as its decimal string: an int (not a bool) or a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 30:
        return value
    raise ValueError("expected a numeric id (digits)")


NumericId = Annotated[str, BeforeValidator(_numeric_id)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- who is logged in ------------------------------------------------------------


class Viewer(_Payload):
    id: NumericId
    username: Text


class _ViewerData(_Payload):
    user: Viewer | None


class ViewerAnswer(_Payload):
    """The answer to the query instaloader's ``test_login`` sends; ``user`` is null when the
    session is not logged in."""

    data: _ViewerData


VIEWER = TypeAdapter(ViewerAnswer)


# -- saved posts -------------------------------------------------------------------


class Owner(_Payload):
    """A post's owner: the creator trickle pays, keyed by the numeric id."""

    id: NumericId
    username: Text | None = None


class SavedNode(_Payload):
    id: NumericId
    shortcode: Shortcode
    owner: Owner


class _Edge(_Payload):
    node: SavedNode


class PageInfo(_Payload):
    has_next_page: bool
    end_cursor: Cursor | None = None


class SavedMedia(_Payload):
    page_info: PageInfo
    edges: Annotated[list[_Edge], Field(max_length=MAX_ITEMS_PER_PAGE)]


class _SavedUser(_Payload):
    edge_saved_media: SavedMedia


class _SavedData(_Payload):
    user: _SavedUser


class SavedAnswer(_Payload):
    """One page of the account's saved posts."""

    data: _SavedData


SAVED = TypeAdapter(SavedAnswer)


# -- the home feed -------------------------------------------------------------------


class FeedUser(_Payload):
    pk: NumericId
    username: Text


class FeedMedia(_Payload):
    pk: NumericId
    code: Shortcode
    has_liked: bool = False
    user: FeedUser
    ad_id: object | None = None


class FeedItem(_Payload):
    media_or_ad: FeedMedia | None = None


class FeedAnswer(_Payload):
    """The first page of the home feed: only liked posts that happen to be in it count."""

    feed_items: Annotated[list[FeedItem], Field(max_length=MAX_ITEMS_PER_PAGE)]
    more_available: bool = False
    next_max_id: Cursor | None = None


FEED = TypeAdapter(FeedAnswer)


# -- the login -------------------------------------------------------------------------


class TwoFactorInfo(_Payload):
    two_factor_identifier: Text


class LoginAnswer(_Payload):
    """The login endpoint's answer, whatever its status."""

    status: str | None = None
    authenticated: bool | None = None
    user: bool | None = None
    message: str | None = None
    two_factor_required: bool = False
    two_factor_info: TwoFactorInfo | None = None
    checkpoint_url: str | None = None


LOGIN = TypeAdapter(LoginAnswer)
