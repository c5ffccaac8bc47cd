"""The connector of the Mastodon-like test platform (:mod:`trickle.testing.fake_mastodon`).

A platform of many servers (``multi_host``): an account lives on a server
of its own, whose origin is the account's host, and trickle's app is
registered on each server before the authorization code flow runs there
(the ``RegisteredApp`` flow). Favourites are Mastodon's: statuses without
the time they were favourited, paged by the ``Link`` header; the ids it
reports (the account's and the author's profile URLs, the status's URI) are
unique across servers, as ``docs/architecture.md`` asks of such platforms.

Not a platform anyone uses, so no entry point: tests register it with
``Registry.of([FakeMastodonConnector])`` and link with
``Linker(app).authorize("fake_mastodon", user, redirect_uri=..., host=fake.base_url)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

from trickle.connectors.base import Identity
from trickle.connectors.flows import RegisteredApp
from trickle.connectors.paginators import LinkHeader
from trickle.connectors.rest import RestConnector
from trickle.core.events import LikeEvent
from trickle.testing.fake_mastodon import FAVOURITES_PATH, VERIFY_CREDENTIALS_PATH

SCOPES = ("read:accounts", "read:favourites")

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Model):
    """A Mastodon Account: ``url`` is its profile, unique across servers."""

    id: NonEmpty
    username: NonEmpty
    acct: NonEmpty
    url: NonEmpty


class Status(_Model):
    """A favourited Status: ``uri`` is its ActivityPub id, unique across servers."""

    id: NonEmpty
    uri: NonEmpty
    url: NonEmpty
    account: Account


def handle_of(account: Account) -> str:
    """``user@server`` (``acct`` is bare for an account of the server asked)."""
    if "@" in account.acct:
        return account.acct
    return f"{account.acct}@{urlsplit(account.url).netloc}"


class FakeMastodonConnector(RestConnector):
    """Favourites on the Mastodon-like test platform (see the module)."""

    name = "fake_mastodon"
    display_name = "Fake Mastodon"
    default_base_url = "https://mastodon.example.test"
    multi_host = True
    link_flows = (RegisteredApp(scopes=SCOPES),)
    default_page_size = 40

    likes_path = FAVOURITES_PATH
    page_size_param = "limit"
    paginator = LinkHeader()
    page_model = TypeAdapter(list[Status])
    identity_path = VERIFY_CREDENTIALS_PATH
    identity_model = TypeAdapter(Account)

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A favourite: the status, by its author; Mastodon does not say when it was made."""
        status: Status = item
        return LikeEvent(
            platform=self.name,
            item_id=status.uri,
            item_url=status.url,
            creator_id=status.account.url,
            creator_handle=handle_of(status.account),
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's account: its profile URL as the id, ``user@server`` as the handle."""
        account: Account = payload
        return Identity(platform_user_id=account.url, handle=handle_of(account))
