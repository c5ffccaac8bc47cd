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

from typing import ClassVar

from pydantic import SecretStr

from trickle.connectors.auth import OAuth1
from trickle.connectors.flows import OAuth1Authorization
from trickle.connectors.quality import Capability
from trickle.connectors.settings import ConnectorSettings
from trickle.testing.fake_oauth1 import ACCESS_TOKEN_PATH, AUTHORIZE_PATH, REQUEST_TOKEN_PATH
from trickle.testing.oauth_connector import FakeLikesApi

DEFAULT_BASE_URL = "https://oauth1.example.test"


class FakeOAuth1Settings(ConnectorSettings):
    """``[connectors.fake_oauth1]``: the app's consumer key and secret."""

    required: ClassVar[tuple[str, ...]] = ("consumer_key", "consumer_secret")

    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None


class FakeOAuth1Connector(FakeLikesApi):
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
