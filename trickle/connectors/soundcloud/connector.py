"""SoundCloud: a liked track is a like, the track's uploader is the creator.

SoundCloud's REST API directly, not a client library: SoundCloud maintains no
Python SDK any more ("use the API directly"), and ``soundcloud-lib`` (``sclib``)
cannot list a user's likes at all (it resolves tracks and playlists only),
scrapes a web client id, sends its requests past ``requests`` (so neither
trickle's limits nor ``responses`` would see them) and swallows errors.

- ``GET /me`` tells whose token it is (linking): the user's URN and permalink.
- ``GET /me/likes/tracks?linked_partitioning=true&limit=200&access=playable,preview,blocked``
  lists the liked tracks, most recently liked first; pages follow ``next_href``
  (an absolute URL, followed on the API's own origin only). Every ``access``
  level is asked for: a like of a track the listener may only preview is a like.
- SoundCloud says nothing of when a track was liked (a track's ``created_at``
  is its upload): likes count from when trickle first sees them.
- The creator is the track's ``user``, keyed by its URN (``soundcloud:users:N``;
  numeric ids are deprecated); the handle is its ``permalink``.
- Auth is OAuth 2.1: the authorization code with PKCE at
  ``secure.soundcloud.com``, requests signed ``Authorization: OAuth <token>``
  (not Bearer). Access tokens last about an hour and refresh tokens are single
  use, so the session renews them in the order refresh, save, retry.
- Rate limits are counted per app (client id) and announced by no header; a 429
  names its reset in the body (``errors[].meta.reset_time``), read by the error
  policy. 401 means relink (after one refresh), 403 a track or account the token
  may not read, 5xx try again later.

Unlinking signs the session out at ``POST https://secure.soundcloud.com/sign-out``
(SoundCloud's own form of revocation, not RFC 7009), renewing an expired access
token first, since the session is named by it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from pydantic import SecretStr

from trickle.connectors.auth import AuthContext, OAuth2
from trickle.connectors.base import Identity
from trickle.connectors.errors import AuthExpired
from trickle.connectors.flows import AuthorizationCode, on_origin
from trickle.connectors.paginators import NextUrl
from trickle.connectors.policy import DEFAULT_POLICY, Action, ErrorPolicy
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.connectors.soundcloud.payloads import ME, TRACKS, Me, Track, Tracks, reset_time
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

AUTH_ORIGIN = "https://secure.soundcloud.com"
AUTHORIZE_URL = AUTH_ORIGIN + "/authorize"
TOKEN_URL = AUTH_ORIGIN + "/oauth/token"
SIGN_OUT_URL = AUTH_ORIGIN + "/sign-out"
APP_PAGE = "https://soundcloud.com/you/apps"
MAX_PAGE_SIZE = 200
"""``limit``: 1 to 200 (the spec's ``limit`` parameter; 50 unless given)."""
EVERY_ACCESS = "playable,preview,blocked"
JSON_HEADERS = {"Accept": "application/json; charset=utf-8"}
"""The media type every request of the API guide asks for."""


class SoundCloudSettings(ConnectorSettings):
    """``[connectors.soundcloud]``: the common keys and trickle's SoundCloud app (both needed:
    SoundCloud treats every client as confidential, at the code exchange and every refresh)."""

    required: ClassVar[tuple[str, ...]] = ("client_id", "client_secret")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None
    """The token endpoint, when not SoundCloud's (or ``oauth_base_url``'s)."""


POLICY = ErrorPolicy(retry_at_in_body=reset_time)
"""The shared statuses (404 and 422, the spec's other errors, fail), and a 429's reset read
from its body."""


class SoundCloudConnector(RestConnector):
    """Tracks the token's owner liked on SoundCloud, paid to each track's uploader."""

    name = "soundcloud"
    display_name = "SoundCloud"
    default_base_url = "https://api.soundcloud.com"
    default_page_size = MAX_PAGE_SIZE
    page_size_range = (1, MAX_PAGE_SIZE)
    tier = Tier.GOLD
    capabilities = frozenset({Capability.EXPIRING_TOKENS})
    quality_rules = (
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "refreshes-credentials",
        "fixtures-from-reference",
        "fake-platform",
    )
    exemptions: ClassVar[dict[str, str]] = {
        "links-with-token": (
            "SoundCloud has no personal tokens: an access token lasts an hour and renews only "
            "with the app that obtained it, so accounts link through trickle's app"
        ),
    }
    rate_limit_scope = "app"
    settings_model = SoundCloudSettings
    auth = OAuth2(token_url=TOKEN_URL, scheme="OAuth", client_auth="client_secret_post")
    error_policy = POLICY
    link_flows = (
        AuthorizationCode(
            authorize_url=AUTHORIZE_URL,
            token_url=TOKEN_URL,
            pkce=True,
            client_auth="client_secret_post",
            app_page=APP_PAGE,
        ),
    )

    likes_path = "/me/likes/tracks"
    likes_params: ClassVar[dict[str, str | int]] = {
        "linked_partitioning": "true",
        "access": EVERY_ACCESS,
    }
    page_size_param = "limit"
    likes_headers = JSON_HEADERS
    paginator = NextUrl(("next_href",))
    page_model = TRACKS
    identity_path = "/me"
    identity_headers = JSON_HEADERS
    identity_model = ME

    def items(self, page: Any) -> list[Track]:
        """The page's liked tracks that have an uploader (one without has nobody to pay)."""
        tracks: Tracks = page
        return [track for track in tracks.collection if track.user is not None]

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A liked track as a like of it, made by its uploader; SoundCloud gives no like time."""
        track: Track = item
        user = track.user
        assert user is not None  # items() keeps only tracks with an uploader
        return LikeEvent(
            platform=self.name,
            item_id=track.urn,
            item_url=track.permalink_url,
            creator_id=user.urn,
            creator_handle=user.permalink,
            liked_at=None,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's owner: URN and permalink."""
        me: Me = payload
        return Identity(platform_user_id=me.urn, handle=me.permalink)

    def revoke(self, credentials: Credentials) -> bool | None:
        """Sign the session out (``POST /sign-out`` with the access token as JSON), renewing the
        access token first when it has expired; a refresh the platform refuses means the grant
        is gone already."""
        if not credentials.access_token:
            return False
        secrets = [*credentials.secret_values(), *self.auth.app_secrets(self.settings)]
        if self.auth.needs_refresh(credentials, clock.now()):
            context = AuthContext(self.name, self.settings, self.http, secrets)
            try:
                credentials = self.auth.refresh(credentials, context)
            except AuthExpired:
                return True
            secrets += credentials.secret_values()
        response = self.http.request(
            "POST",
            on_origin(SIGN_OUT_URL, self.settings.oauth_base_url),
            data=json.dumps({"access_token": credentials.access_token}),
            headers={**JSON_HEADERS, "Content-Type": "application/json"},
            secrets=secrets,
            policy=DEFAULT_POLICY.with_statuses({401: Action.FAIL}),
        )
        return response.status_code == 200
