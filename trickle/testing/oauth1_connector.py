"""The connector of the made-up OAuth 1.0a platform (:mod:`trickle.testing.fake_oauth1`).

The likes API is the one the OAuth 2 platform serves (so the payload models
are shared with :mod:`trickle.testing.oauth_connector`); what differs is
that every request is signed with the app's consumer key and secret and the
account's token and token secret (``OAuth1()`` auth), and that an account
is linked by OAuth 1.0a's three legs, on the placeholder origin
``https://oauth1.example.test`` that the ``oauth_base_url`` setting replaces.
Not a platform anyone uses, so no entry point: tests register it with
``Registry.of([FakeOAuth1Connector])``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import SecretStr, TypeAdapter

from trickle.connectors.auth import OAuth1
from trickle.connectors.base import Identity
from trickle.connectors.flows import OAuth1Authorization
from trickle.connectors.paginators import NextToken
from trickle.connectors.quality import Capability
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.events import LikeEvent
from trickle.testing.fake_likes import LIKES_PATH, ME_PATH
from trickle.testing.fake_oauth1 import ACCESS_TOKEN_PATH, AUTHORIZE_PATH, REQUEST_TOKEN_PATH
from trickle.testing.oauth_connector import Like, LikesPage, Me

DEFAULT_BASE_URL = "https://oauth1.example.test"


class FakeOAuth1Settings(ConnectorSettings):
    """``[connectors.fake_oauth1]``: the app's consumer key and secret."""

    required: ClassVar[tuple[str, ...]] = ("consumer_key", "consumer_secret")

    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None


class FakeOAuth1Connector(RestConnector):
    """Likes on the made-up OAuth 1.0a platform (see the module)."""

    name = "fake_oauth1"
    display_name = "Fake OAuth 1.0a platform"
    default_base_url = DEFAULT_BASE_URL
    settings_model = FakeOAuth1Settings
    auth = OAuth1()
    link_flows = (
        OAuth1Authorization(
            request_token_url=DEFAULT_BASE_URL + REQUEST_TOKEN_PATH,
            authorize_url=DEFAULT_BASE_URL + AUTHORIZE_PATH,
            access_token_url=DEFAULT_BASE_URL + ACCESS_TOKEN_PATH,
            authorize_params={"perms": "read"},
            app_page=DEFAULT_BASE_URL + "/services/apps/create",
        ),
    )
    default_page_size = 20
    capabilities = frozenset({Capability.LIKE_TIME})

    likes_path = LIKES_PATH
    page_size_param = "limit"
    paginator = NextToken(path=("next_cursor",), param="cursor")
    page_model = TypeAdapter(LikesPage)
    identity_path = ME_PATH
    identity_model = TypeAdapter(Me)

    def items(self, page: Any) -> list[Like]:
        """The page's likes."""
        likes: LikesPage = page
        return list(likes.likes)

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A like of an item, made by its author."""
        like: Like = item
        return LikeEvent(
            platform=self.name,
            item_id=like.id,
            item_url=f"{DEFAULT_BASE_URL}/items/{like.id}",
            creator_id=like.author.id,
            creator_handle=like.author.name,
            liked_at=like.liked_at,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's owner: permanent id and username."""
        me: Me = payload
        return Identity(platform_user_id=me.id, handle=me.username)
