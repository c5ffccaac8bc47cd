"""GitHub's payloads, as far as trickle reads them (GitHub's REST reference, version 2022-11-28).

``GET /user/starred`` with the ``application/vnd.github.star+json`` media type
answers a list of ``{"starred_at", "repo"}`` (the ``starred-repository``
schema); ``GET /user`` the authenticated user. Ids are integers, checked
strictly: a lax int would take ``true`` as 1 and pay the wrong creator.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StrictInt, StringConstraints, TypeAdapter

from trickle.connectors.payloads import PlatformTime

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)


class Owner(_Payload):
    """A repository's owner: a user or an organisation, the creator trickle pays."""

    id: StrictInt
    login: NonEmpty


class Repository(_Payload):
    """The starred repository."""

    id: StrictInt
    full_name: NonEmpty
    html_url: NonEmpty
    owner: Owner


class Star(_Payload):
    """One star: when it was given and to what."""

    starred_at: PlatformTime
    repo: Repository


class User(_Payload):
    """The token's owner."""

    id: StrictInt
    login: NonEmpty


STARS = TypeAdapter(list[Star])
USER = TypeAdapter(User)
