"""Vimeo: a liked video is a like, the video's owner is the creator.

Vimeo's REST API directly, not PyVimeo: ``VimeoClient`` is a ``requests.Session``
of its own (its own timeouts, no response cap, its own exceptions), so requests
through it would bypass trickle's HTTP layer and the account's session; it adds
nothing trickle needs (no paging helper, no token renewal).

- ``GET /me`` tells whose token it is (linking): the member's ``uri``
  (``/users/N``, permanent) and the name their profile ``link`` ends with.
- ``GET /me/likes?per_page=100`` lists the liked videos in Vimeo's collection
  wrapper, most recently liked first; pages follow ``paging.next``, a URI relative
  to the API root, followed on the API's own origin only. Every request asks for
  API version 3.4 (``Accept: application/vnd.vimeo.*+json;version=3.4``).
- The like time is ``metadata.interactions.like.added_time`` (the token owner's
  like, which on ``/me/likes`` is the liker's); where Vimeo leaves it out the like
  counts from when trickle first sees it.
- The creator is the video's ``user``, keyed by its ``uri``; a video without an
  owner has nobody to pay and is skipped.
- Auth: OAuth 2 bearer tokens from the authorization code flow at
  ``api.vimeo.com/oauth/authorize`` (scopes ``public private``: private covers
  liked videos that are not public), exchanged at ``/oauth/access_token`` with
  the app's id and secret in HTTP Basic; they do not expire. A personal access
  token generated on the app's page links too.
- Every answer carries ``X-RateLimit-Limit/-Remaining/-Reset`` (read on every
  answer, so the worker slows down before Vimeo refuses); a 429 waits until the
  reset. 401 means relink, 403 a permission the token lacks, 5xx try again later.

Unlinking revokes the token with ``DELETE /tokens`` (Vimeo's own revocation,
not RFC 7009).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import SecretStr

from trickle.connectors.auth import AuthContext
from trickle.connectors.base import Identity
from trickle.connectors.flows import AuthorizationCode, TokenImport
from trickle.connectors.paginators import NextUrl
from trickle.connectors.policy import DEFAULT_POLICY, Action
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.connectors.vimeo.payloads import LIKES, USER, LikesPage, User, Video
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

API = "https://api.vimeo.com"
ACCEPT = {"Accept": "application/vnd.vimeo.*+json;version=3.4"}
APP_PAGE = "https://developer.vimeo.com/apps"
SCOPES = ("public", "private")
MAX_PAGE_SIZE = 100
"""``per_page``: "up to a maximum of 100"."""


class VimeoSettings(ConnectorSettings):
    """``[connectors.vimeo]``: the common keys, and trickle's Vimeo app, if registered (a
    personal access token links without one)."""

    client_id: str | None = None
    client_secret: SecretStr | None = None


class VimeoConnector(RestConnector):
    """Videos the token's owner liked on Vimeo, with the time of each like."""

    name = "vimeo"
    display_name = "Vimeo"
    default_base_url = API
    default_page_size = MAX_PAGE_SIZE
    page_size_range = (1, MAX_PAGE_SIZE)
    tier = Tier.GOLD
    capabilities = frozenset({Capability.LIKE_TIME, Capability.RATE_LIMIT_HEADERS})
    quality_rules = (
        "links-with-token",
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "reads-rate-limits",
        "like-time",
        "fixtures-from-reference",
        "fake-platform",
    )
    settings_model = VimeoSettings
    link_flows = (
        AuthorizationCode(
            authorize_url=API + "/oauth/authorize",
            token_url=API + "/oauth/access_token",
            scopes=SCOPES,
            pkce=False,
            client_auth="client_secret_basic",
            app_page=APP_PAGE,
        ),
        TokenImport(
            how=(
                f"generate a personal access token on your app's page at {APP_PAGE} "
                "(Authenticated, scopes Public and Private)"
            )
        ),
    )

    likes_path = "/me/likes"
    page_size_param = "per_page"
    likes_headers = ACCEPT
    paginator = NextUrl(("paging", "next"))
    page_model = LIKES
    identity_path = "/me"
    identity_headers = ACCEPT
    identity_model = USER

    def items(self, page: Any) -> list[Video]:
        """The page's liked videos that have an owner (one without has nobody to pay)."""
        likes: LikesPage = page
        return [video for video in likes.data if video.user is not None]

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A liked video as a like of it, made by its owner, at Vimeo's ``added_time``."""
        video: Video = item
        owner = video.user
        assert owner is not None  # items() keeps only videos with an owner
        liked = video.metadata.interactions.like
        return LikeEvent(
            platform=self.name,
            item_id=video.uri,
            item_url=video.link,
            creator_id=owner.uri,
            creator_handle=owner.handle,
            liked_at=liked.added_time if liked is not None else None,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's owner: their ``uri`` and profile name."""
        user: User = payload
        return Identity(platform_user_id=user.uri, handle=user.handle)

    def revoke(self, credentials: Credentials) -> bool | None:
        """Revoke the token with ``DELETE /tokens`` (204); a 401 means it was gone already."""
        if not credentials.access_token:
            return False
        secrets = [*credentials.secret_values(), *self.auth.app_secrets(self.settings)]
        signed = self.auth.sign(
            credentials, AuthContext(self.name, self.settings, self.http, secrets)
        )
        response = self.http.request(
            "DELETE",
            self.base_url + "/tokens",
            headers={**ACCEPT, **signed.headers},
            secrets=secrets,
            policy=DEFAULT_POLICY.with_statuses({401: Action.OK}),
        )
        return response.status_code in (204, 401)
