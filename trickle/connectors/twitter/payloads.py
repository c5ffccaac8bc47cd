"""X's payloads, as far as trickle reads them (X API v2, OpenAPI document version 2.159).

``GET /2/users/{id}/liked_tweets`` answers ``Get2UsersIdLikedTweetsResponse``:
``data`` (the liked posts, at least one when present), ``includes.users`` (the
expanded authors), ``meta`` (``result_count``, ``next_token``) and ``errors``
(problems beside partial data: a post or an author that may not be shown).
``GET /2/users/me`` answers ``Get2UsersMeResponse``: ``data`` is the user.

Ids are strings of 1 to 19 digits (``UserId``, ``TweetId``) and usernames 1 to
15 letters, digits and underscores (``UserName``), exactly as the OpenAPI
document's patterns say: a number where X sends a string, or an id that is not
digits, is a malformed payload, never a creator to pay. X gives no time of a
like (a post's ``created_at`` is when it was posted), so none is read.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

Snowflake = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{1,19}$")]
"""``UserId`` and ``TweetId``: digits, sent as a string so that 64-bit ids survive JSON."""
UserName = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_]{1,15}$")]
"""``UserName``: the handle, which its owner may change."""
Token = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Payload):
    """A user (``User``): the permanent ``id`` and the current ``username``."""

    id: Snowflake
    username: UserName


class Post(_Payload):
    """A liked post (``Tweet``), with ``tweet.fields=author_id``."""

    id: Snowflake
    author_id: Snowflake


class Includes(_Payload):
    """``includes``: with ``expansions=author_id``, the posts' authors."""

    users: list[User] = Field(default_factory=list, max_length=1000)


class Meta(_Payload):
    """``meta`` of a page: how many posts it holds and the token of the next page."""

    result_count: int | None = None
    next_token: Token | None = None


class LikedPage(_Payload):
    """One page of ``GET /2/users/{id}/liked_tweets``. ``data`` is absent from a page with
    no posts (an account without likes, or a page whose posts were all deleted)."""

    data: list[Post] = Field(default_factory=list, max_length=100)
    includes: Includes = Field(default_factory=Includes)
    meta: Meta = Field(default_factory=Meta)


class Me(_Payload):
    """``GET /2/users/me``."""

    data: User


LIKED_PAGE = TypeAdapter(LikedPage)
ME = TypeAdapter(Me)
