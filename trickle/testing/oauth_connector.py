"""The connectors of the made-up OAuth 2 platform (:mod:`trickle.testing.fake_oauth`).

A plain :class:`~trickle.connectors.rest.RestConnector` declaration, as a real
platform's would be, whose credentials expire: ``OAuth2(token_url=...)``
auth, so its sessions refresh one-hour tokens with single-use refresh tokens.
It links by the flows a real OAuth 2 platform offers, on the placeholder
origin ``https://oauth.example.test``: the authorization code with PKCE, the
device flow (RFC 8628), and a token made elsewhere.

Two apps, two connectors: :class:`FakeOAuthConnector` is a confidential
client (a client secret, sent as ``client_secret_post``);
:class:`FakePublicOAuthConnector` a public one (RFC 8252's native app: its
``client_id`` alone, PKCE for the code flow). They are not platforms anyone
uses, so they have no entry point: tests register them with
``Registry.of([FakeOAuthConnector])`` (or hand that registry to
``trickle.cli.main`` for a ``trickle run`` process), with settings pointing
``base_url`` (the API), ``oauth_base_url`` (the OAuth endpoints, for
linking) and, for refreshes, ``token_url`` (or ``oauth_base_url`` alone) at a
running :class:`~trickle.testing.fake_device.FakeDeviceServer` (or, to
refresh only, a :class:`~trickle.testing.fake_oauth.FakeOAuth`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr, StringConstraints, TypeAdapter

from trickle.connectors.auth import OAuth2
from trickle.connectors.base import Identity
from trickle.connectors.flows import AuthorizationCode, DeviceAuthorization, TokenImport
from trickle.connectors.paginators import NextToken
from trickle.connectors.payloads import PlatformTime
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.events import LikeEvent
from trickle.testing.fake_authorize import AUTHORIZE_PATH
from trickle.testing.fake_device import DEVICE_CODE_PATH
from trickle.testing.fake_oauth import LIKES_PATH, ME_PATH, REVOKE_PATH, TOKEN_PATH

DEFAULT_BASE_URL = "https://oauth.example.test"
SCOPES = ("likes:read", "profile")
TOKEN_HOW = "Make a token at https://oauth.example.test/settings/tokens with likes:read."  # noqa: S105 - instructions


class FakeOAuthSettings(ConnectorSettings):
    """``[connectors.fake_oauth]``: the app registered with the platform, and where its token
    endpoint is when it is not the default one (a fake on 127.0.0.1)."""

    required: ClassVar[tuple[str, ...]] = ("client_id", "client_secret")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None


class FakePublicOAuthSettings(FakeOAuthSettings):
    """``[connectors.fake_oauth_public]``: a public client has a ``client_id`` and no secret."""

    required: ClassVar[tuple[str, ...]] = ("client_id",)


NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Author(_Model):
    """Whose item was liked: the creator to pay."""

    id: NonEmpty
    name: NonEmpty


class Like(_Model):
    """One item of ``GET /api/likes``."""

    id: NonEmpty
    liked_at: PlatformTime
    author: Author


class LikesPage(_Model):
    """A page of ``GET /api/likes``: likes newest first, the cursor of the next page."""

    likes: list[Like]
    next_cursor: str | None = None


class Me(_Model):
    """``GET /api/me``."""

    id: NonEmpty
    username: NonEmpty


class FakeLikesApi(RestConnector):
    """The made-up likes API (:mod:`trickle.testing.fake_likes`) as a declaration: its paths,
    paging and mappings, shared by the OAuth 2 and the OAuth 1.0a test connectors, which
    differ only in how they sign requests and link accounts."""

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
            item_url=f"{self.default_base_url}/items/{like.id}",
            creator_id=like.author.id,
            creator_handle=like.author.name,
            liked_at=like.liked_at,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's owner: permanent id and username."""
        me: Me = payload
        return Identity(platform_user_id=me.id, handle=me.username)


class FakeOAuthConnector(FakeLikesApi):
    """Likes on the made-up OAuth 2 platform: expiring tokens renewed with single-use refresh
    tokens (see the module)."""

    name = "fake_oauth"
    display_name = "Fake OAuth 2 platform"
    default_base_url = DEFAULT_BASE_URL
    settings_model = FakeOAuthSettings
    auth = OAuth2(token_url=DEFAULT_BASE_URL + TOKEN_PATH)
    link_flows = (
        AuthorizationCode(
            authorize_url=DEFAULT_BASE_URL + AUTHORIZE_PATH,
            token_url=DEFAULT_BASE_URL + TOKEN_PATH,
            scopes=SCOPES,
            client_auth="client_secret_post",
            revoke_url=DEFAULT_BASE_URL + REVOKE_PATH,
            app_page=DEFAULT_BASE_URL + "/settings/apps",
        ),
        DeviceAuthorization(
            device_url=DEFAULT_BASE_URL + DEVICE_CODE_PATH,
            token_url=DEFAULT_BASE_URL + TOKEN_PATH,
            scopes=SCOPES,
            client_auth="client_secret_post",
            revoke_url=DEFAULT_BASE_URL + REVOKE_PATH,
            app_page=DEFAULT_BASE_URL + "/settings/apps",
        ),
        TokenImport(how=TOKEN_HOW),
    )
    default_page_size = 20
    tier = Tier.GOLD
    capabilities = frozenset({Capability.LIKE_TIME, Capability.EXPIRING_TOKENS})
    quality_rules = (
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "like-time",
        "refreshes-credentials",
        "fake-platform",
    )
    exemptions = {
        "links-with-token": "OAuth 2: an account links with an access and a refresh token",
        "fixtures-from-reference": "a made-up platform: there is no reference to take them from",
    }


class FakePublicOAuthConnector(FakeOAuthConnector):
    """The same platform through a public client (a native app, RFC 8252): the code flow with
    PKCE and the device flow send the ``client_id`` alone, and so do refreshes."""

    name = "fake_oauth_public"
    display_name = "Fake OAuth 2 platform (public client)"
    settings_model = FakePublicOAuthSettings
    auth = OAuth2(token_url=DEFAULT_BASE_URL + TOKEN_PATH, client_auth="none")
    link_flows = (
        AuthorizationCode(
            authorize_url=DEFAULT_BASE_URL + AUTHORIZE_PATH,
            token_url=DEFAULT_BASE_URL + TOKEN_PATH,
            scopes=SCOPES,
            client_auth="none",
            revoke_url=DEFAULT_BASE_URL + REVOKE_PATH,
            app_page=DEFAULT_BASE_URL + "/settings/apps",
        ),
        DeviceAuthorization(
            device_url=DEFAULT_BASE_URL + DEVICE_CODE_PATH,
            token_url=DEFAULT_BASE_URL + TOKEN_PATH,
            scopes=SCOPES,
            revoke_url=DEFAULT_BASE_URL + REVOKE_PATH,
            app_page=DEFAULT_BASE_URL + "/settings/apps",
        ),
        TokenImport(how=TOKEN_HOW),
    )
