"""500px: a favorite is a like, the photographer is the creator. A legacy platform.

500px closed its public API on 2018-06-15 (free access had ended on
2018-01-24; keys then got ``{"error": "Application is deactivated, ...",
"status": 403}``). This connector speaks the last documented v1 API, for a
server that still does: the operator sets ``base_url`` to it (there is no
default host, since api.500px.com no longer answers), and its OAuth 1.0a
endpoints are on the same origin unless ``oauth_base_url`` says otherwise.
``trickle connectors list`` shows it as legacy and ``trickle link`` warns.
Nothing of 500px's web site is scraped.

500px's REST API directly: ``python-500px`` has been dead since 2017 and signs
through its own client. Two calls, both signed GETs (OAuth 1.0a, HMAC-SHA1):

- ``GET /v1/users``: the token's owner (``id``, an integer, and ``username``).
- ``GET /v1/photos?feature=user_favorites&user_id=ID&rpp=N``: the user's
  favorites by the time favorited, newest first, numbered pages
  (``current_page`` of ``total_pages``). No photo says when it was
  favorited, so a like counts from when trickle first saw it.
- The creator is the photo's ``user``, keyed by its integer ``id``.

Errors are HTTP statuses with ``{"status": N, "error": "..."}``: 401 (an
invalid OAuth request) asks to link again, 403 (an application 500px
deactivated) is a refusal to show the operator, 429 and 5xx are waited out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, ClassVar

from pydantic import SecretStr, model_validator

from trickle.connectors.auth import OAuth1
from trickle.connectors.base import AccountRef, Identity, PollState
from trickle.connectors.errors import NotConfigured
from trickle.connectors.fivehundredpx.payloads import MAX_RPP, ME, PHOTOS, Me, Photo
from trickle.connectors.flows import OAuth1Authorization
from trickle.connectors.paginators import PageNumbers, PageRequest
from trickle.connectors.quality import Legacy, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.events import LikeEvent

CLOSED_ON = date(2018, 6, 15)
HISTORICAL_ROOT = "https://api.500px.com"
"""Where the v1 API was; it answers no more, so nothing is sent there unless asked."""
PHOTO_PAGE = "https://500px.com/photo/{id}"
APP_PAGE = "https://500px.com/settings/applications"


class FiveHundredPxSettings(ConnectorSettings):
    """``[connectors.fivehundredpx]``: the server that still speaks v1 (required), and
    trickle's app there (its consumer key and secret). The OAuth endpoints are on
    ``base_url``'s origin unless ``oauth_base_url`` is set."""

    required: ClassVar[tuple[str, ...]] = ("base_url", "consumer_key", "consumer_secret")

    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _oauth_on_the_api_server(self) -> FiveHundredPxSettings:
        if self.oauth_base_url is None and self.base_url:
            self.oauth_base_url = self.base_url
        return self


class FiveHundredPxConnector(RestConnector):
    """Favorites of the token's owner on a server of 500px's closed v1 API (see the module)."""

    name = "fivehundredpx"
    display_name = "500px"
    default_base_url = HISTORICAL_ROOT
    default_page_size = MAX_RPP
    page_size_range = (1, MAX_RPP)
    legacy = Legacy(
        CLOSED_ON,
        "trickle speaks its last documented v1 API to a server that still does: set "
        "[connectors.fivehundredpx] base_url to it",
    )
    tier = Tier.BRONZE
    capabilities = frozenset()
    quality_rules = (
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "fixtures-from-reference",
        "fake-platform",
    )
    exemptions = {
        "links-with-token": (
            "OAuth 1.0a signs every request with a token secret as well as the token: there "
            "is no token to paste alone"
        ),
    }
    settings_model = FiveHundredPxSettings
    auth = OAuth1()
    link_flows = (
        OAuth1Authorization(
            request_token_url=f"{HISTORICAL_ROOT}/v1/oauth/request_token",
            authorize_url=f"{HISTORICAL_ROOT}/v1/oauth/authorize",
            access_token_url=f"{HISTORICAL_ROOT}/v1/oauth/access_token",
            app_page=APP_PAGE,
        ),
    )

    likes_path = "/v1/photos"
    likes_params = {"feature": "user_favorites"}
    page_size_param = "rpp"
    paginator = PageNumbers(pages_path=("total_pages",), page_path=("current_page",))
    page_model = PHOTOS
    identity_path = "/v1/users"
    identity_model = ME

    @property
    def base_url(self) -> str:
        """The server the operator named; there is no default, the real one is gone."""
        if not self.settings.base_url:
            raise NotConfigured(self.legacy_message())
        return self.settings.base_url.rstrip("/")

    @classmethod
    def legacy_message(cls) -> str:
        """Why nothing is sent without a ``base_url``."""
        return (
            f"fivehundredpx: 500px closed its public API on {CLOSED_ON.isoformat()}: set "
            "[connectors.fivehundredpx] base_url to a server that still speaks its v1 API"
        )

    def first_request(self, account: AccountRef, state: PollState) -> PageRequest:
        """The first page of the account's favorites (its ``user_id`` in the query)."""
        request = super().first_request(account, state)
        return request.with_params(user_id=account.platform_user_id)

    def items(self, page: Any) -> Sequence[Photo]:
        """The page's photos, most recently favorited first."""
        return list(page.photos)

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A favorite as a like of the photo, made by its photographer."""
        photo: Photo = item
        return LikeEvent(
            platform=self.name,
            item_id=str(photo.id),
            item_url=PHOTO_PAGE.format(id=photo.id),
            creator_id=str(photo.user.id),
            creator_handle=photo.user.username,
            liked_at=None,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's owner: integer id and username."""
        me: Me = payload
        return Identity(platform_user_id=str(me.user.id), handle=me.user.username)
