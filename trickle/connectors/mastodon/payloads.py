"""Mastodon's payloads, as far as trickle reads them (docs.joinmastodon.org, the entities pages).

``GET /api/v1/favourites`` answers an array of Status; ``GET
/api/v1/accounts/verify_credentials`` a CredentialAccount. Of a Status
trickle reads ``id``, ``uri`` (its ActivityPub id, "used for federation"),
``url`` (its web page: nullable) and ``account``; of an Account ``id``,
``username``, ``acct`` (``username`` for the server's own users,
``username@domain`` for others), ``url`` (the profile page: nullable) and
``uri`` (the ActivityPub actor id, added in Mastodon 4.2).

Every server gives an account and a status ids of its own (a remote
account's ``id`` on one server is not its ``id`` on another), so the keys
that are the same from every server are the ``uri`` values; a server older
than 4.2 sends no account ``uri`` and its favourites are a
:class:`~trickle.connectors.errors.PlatformError` naming ``account.uri``.
Ids are strings ("cast from an integer, but not guaranteed to be a
number"), checked strictly; URIs must be absolute http(s) URLs; every
string is bounded, the keys trickle stores (status and actor URIs, the
handle) to the 200 characters their columns hold.
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

MAX_TEXT = 2048
"""The longest URL believed (Mastodon's are far shorter)."""
MAX_KEY = 200
"""The longest key trickle stores (an item id, a creator id, a handle: 200 characters)."""
MAX_USERNAME = 100
"""Mastodon's usernames are 30 characters at most; a remote server's are believed to 100."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT, strict=True)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY, strict=True)]


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError("not an absolute http(s) URL")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("a URL with spaces or control characters")
    return value


Url = Annotated[Text, AfterValidator(_absolute_url)]
KeyUrl = Annotated[Key, AfterValidator(_absolute_url)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Payload):
    """A Mastodon account: the author of a status, or the token's own (CredentialAccount)."""

    id: Key
    username: Annotated[str, StringConstraints(min_length=1, max_length=MAX_USERNAME, strict=True)]
    acct: Key
    url: Url | None = None
    uri: KeyUrl

    @model_validator(mode="after")
    def _handle_fits(self) -> Account:
        if len(self.handle) > MAX_KEY:
            raise ValueError(f"the handle {self.username}@... is longer than {MAX_KEY} characters")
        return self

    @property
    def domain(self) -> str:
        """The account's server as the ``acct`` names it, else the host of its actor URI."""
        _, at, domain = self.acct.partition("@")
        return domain if at and domain else urlsplit(self.uri).netloc

    @property
    def handle(self) -> str:
        """``username@domain``, the way the fediverse writes an account."""
        return f"{self.username}@{self.domain}"


class Status(_Payload):
    """A favourited status."""

    id: Key
    uri: Key
    url: Url | None = None
    account: Account


FAVOURITES = TypeAdapter(list[Status])
CREDENTIAL_ACCOUNT = TypeAdapter(Account)
