"""pnut.io bookmarks and App.net stars: one App.net-derived API, two dialects.

pnut.io grew out of App.net's API: the same response envelope, posts and
users, string ids, ``before_id``/``since_id``/``count`` paging with
``meta.more``/``meta.min_id``, ``X-RateLimit-*`` headers and a 429 with
``Retry-After``. :class:`AdnConnector` is what they share; the two registered
connectors are its dialects:

- ``pnut`` (:class:`PnutConnector`): ``GET https://api.pnut.io/v1/users/{user_id}/bookmarks``
  and ``GET /v1/users/me``; OAuth 2 at ``https://pnut.io/oauth/authenticate`` and
  ``https://api.pnut.io/v1/oauth/access_token``; a 429's ``meta.retry_in``.
- ``appnet`` (:class:`AppNetConnector`): ``GET /stream/0/users/{user_id}/stars`` and
  ``GET /stream/0/users/me`` on an App.net-compatible server the operator names. App.net
  itself closed in March 2017: there is no default host, and the connector refuses to run
  until ``[connectors.appnet] base_url`` is set.

Both REST APIs directly, rather than a client library: App.net's ADNpy has been dead since
2014, and pnutpy defaults to the retired ``/v0`` root, raises its own exceptions for every
status, and would add nothing to two GET requests trickle's HTTP layer already bounds, signs
and reads through the error policy.

What the references say and this follows:

- Paging ids are the list's own (``pagination_id`` on each object: a bookmark's or a star's),
  not post ids: the next page is ``before_id=meta.min_id`` while ``meta.more`` is true
  (:class:`~trickle.connectors.paginators.BeforeId`), and paging stops after the first page
  holding a known post, never by comparing ids.
- Neither API says when a post was bookmarked or starred (a post's ``created_at`` is when it
  was written): likes are counted from when trickle first sees them.
- The creator is the post's ``user.id`` (permanent), its handle ``user.username``. A post
  whose author's account is gone comes without ``user``: nobody is there to be paid or ever
  to claim, so it is not a flattr.
- ``count`` is at most 200.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from pydantic import SecretStr

from trickle.connectors.auth import AuthContext
from trickle.connectors.base import Identity
from trickle.connectors.errors import NotConfigured
from trickle.connectors.flows import AuthorizationCode, LinkFlow, TokenImport
from trickle.connectors.paginators import BeforeId
from trickle.connectors.pnut.payloads import (
    MAX_PAGE,
    POST_LIST,
    USER_ENVELOPE,
    Post,
    PostList,
    UserEnvelope,
)
from trickle.connectors.policy import DEFAULT_STATUSES, Action, ErrorPolicy
from trickle.connectors.quality import Capability, Legacy, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent

APPNET_CLOSED_ON = date(2017, 3, 15)
"""The day App.net shut down (reports range from the 14th to the 16th)."""
MAX_RETRY_IN = timedelta(days=1)
"""The longest ``meta.retry_in`` believed (pnut.io documents 600 seconds)."""

ADN_STATUSES = {
    **DEFAULT_STATUSES,
    400: Action.FAIL,  # malformed request ("Wrong type")
    401: Action.REAUTH,  # no token, or one no longer authorized (revoked, expired)
    403: Action.REAUTH,  # a token of the wrong kind or scope: link again with trickle's app
    404: Action.FAIL,  # no such user
    429: Action.RATE_LIMIT,  # Retry-After (and pnut.io's meta.retry_in)
    500: Action.RETRY_LATER,
}
"""The statuses both references list, and what each means for a poll."""
ERROR_MESSAGE = ("meta", "error_message")
"""Where an error answer says what went wrong (both references)."""


def retry_in(body: Any, now: datetime) -> datetime | None:
    """pnut.io's rate-limit answer: ``meta.retry_in``, the seconds until the limit resets."""
    meta = body.get("meta") if isinstance(body, dict) else None
    seconds = meta.get("retry_in") if isinstance(meta, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return None
    if not 0 <= seconds <= MAX_RETRY_IN.total_seconds():
        return None
    return now + timedelta(seconds=seconds)


class AdnSettings(ConnectorSettings):
    """``[connectors.pnut]`` / ``[connectors.appnet]``: the common keys, and trickle's client
    (app) registered with the platform, if the operator registered one."""

    client_id: str | None = None
    client_secret: SecretStr | None = None


class AppNetSettings(AdnSettings):
    """``[connectors.appnet]``: ``base_url`` is required, App.net's own host being gone."""

    required: ClassVar[tuple[str, ...]] = ("base_url",)


@dataclass(frozen=True)
class ServerAuthorizationCode(AuthorizationCode):
    """App.net's server-side flow on an App.net-compatible server: App.net's paths on the
    origin ``oauth_base_url`` names, without which the flow does not run (App.net's own
    ``account.app.net`` is gone)."""

    @property
    def needs(self) -> tuple[str, ...]:
        return ("oauth_base_url", *super().needs)


class AdnConnector(RestConnector):
    """What pnut.io and App.net share (see the module); not a connector of its own."""

    settings_model = AdnSettings
    default_page_size = 100
    page_size_range = (1, MAX_PAGE)
    tier = Tier.GOLD
    capabilities = frozenset({Capability.RATE_LIMIT_HEADERS})
    quality_rules = (
        "links-with-token",
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "reads-rate-limits",
        "fixtures-from-reference",
        "fake-platform",
    )

    page_size_param = "count"
    paginator = BeforeId()
    page_model = POST_LIST
    identity_model = USER_ENVELOPE
    token_path: ClassVar[str]
    """``DELETE`` it with a token to deauthorize that token."""

    @abstractmethod
    def post_url(self, post: Post) -> str:
        """Where a person sees ``post``."""

    def items(self, page: Any) -> list[Post]:
        """The page's posts whose author still has an account (see the module)."""
        posts: PostList = page
        return [post for post in posts.data if post.user is not None]

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A bookmarked or starred post as a like of its author's, at no known time."""
        post: Post = item
        assert post.user is not None  # items() keeps only posts with an author
        return LikeEvent(
            platform=self.name,
            item_id=post.id,
            item_url=self.post_url(post),
            creator_id=post.user.id,
            creator_handle=post.user.username,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's user: permanent id and username."""
        me: UserEnvelope = payload
        return Identity(platform_user_id=me.data.id, handle=me.data.username)

    def revoke(self, credentials: Credentials) -> bool | None:
        """Deauthorize a token trickle's app obtained with ``DELETE /token`` (both APIs'); a
        token the user made and pasted is theirs to revoke. A 401 means it was already."""
        token = credentials.access_token
        if credentials.issued_by in (None, "token") or not token:
            return False
        secrets = [token, *self.settings.secret_values()]
        signed = self.auth.sign(credentials, AuthContext(self.name, self.settings, None, secrets))
        response = self.http.request(
            "DELETE",
            self.base_url + self.token_path,
            headers=dict(signed.headers),
            secrets=secrets,
            policy=self.error_policy.with_statuses({401: Action.OK}),
        )
        return response.status_code in (200, 401)


PNUT_APP_PAGE = "https://pnut.io/dev"


class PnutConnector(AdnConnector):
    """Bookmarks of the token's user on pnut.io."""

    name = "pnut"
    display_name = "pnut.io"
    default_base_url = "https://api.pnut.io/v1"
    error_policy = ErrorPolicy(
        statuses=ADN_STATUSES, retry_at_in_body=retry_in, message_path=ERROR_MESSAGE
    )
    link_flows: ClassVar[tuple[LinkFlow, ...]] = (
        AuthorizationCode(
            authorize_url="https://pnut.io/oauth/authenticate",
            token_url="https://api.pnut.io/v1/oauth/access_token",  # noqa: S106 - a URL
            scopes=("basic",),
            pkce=False,  # not in pnut.io's flow
            client_auth="client_secret_post",
            app_page=PNUT_APP_PAGE,
        ),
        TokenImport(
            how=(
                f"create a client at {PNUT_APP_PAGE} with the redirect URI "
                "urn:ietf:wg:oauth:2.0:oob, authorize it (any scope reads bookmarks) and paste "
                "the access token pnut.io shows"
            )
        ),
    )

    likes_path = "/users/{platform_user_id}/bookmarks"
    likes_params = {"include_html": 0, "include_counts": 0}
    identity_path = "/users/me"
    token_path = "/token"  # noqa: S105 - a path

    def post_url(self, post: Post) -> str:
        """pnut.io's canonical thread view of the post."""
        return f"https://posts.pnut.io/{post.id}"


APPNET_CLOSED = APPNET_CLOSED_ON.isoformat()
"""The day App.net shut down (reports of the day range from the 14th to the 16th)."""


class AppNetConnector(AdnConnector):
    """Stars of the token's user on an App.net-compatible server (App.net itself closed in
    March 2017)."""

    name = "appnet"
    display_name = "App.net (compatible servers only)"
    legacy = Legacy(
        APPNET_CLOSED_ON,
        "trickle speaks App.net's stream API to a compatible server: set "
        "[connectors.appnet] base_url to it",
    )
    default_base_url = "https://alpha-api.app.net"
    """App.net's own API root, for the record: it is never used (see :attr:`base_url`)."""
    settings_model = AppNetSettings
    error_policy = ErrorPolicy(statuses=ADN_STATUSES, message_path=ERROR_MESSAGE)
    link_flows: ClassVar[tuple[LinkFlow, ...]] = (
        ServerAuthorizationCode(
            authorize_url="https://account.app.net/oauth/authenticate",
            token_url="https://account.app.net/oauth/access_token",  # noqa: S106 - a URL
            scopes=("basic",),
            pkce=False,  # App.net's server-side flow has none
            client_auth="client_secret_post",
        ),
        TokenImport(
            how=(
                "paste a user access token the App.net-compatible server issued (its "
                "developer pages, or any client of its that shows one)"
            )
        ),
    )

    likes_path = "/stream/0/users/{platform_user_id}/stars"
    identity_path = "/stream/0/users/me"
    token_path = "/stream/0/token"  # noqa: S105 - a path

    @property
    def base_url(self) -> str:
        """The operator's App.net-compatible server; :class:`NotConfigured` when none is set,
        rather than a request to a host that closed in 2017."""
        if not self.settings.base_url:
            raise NotConfigured(
                f"appnet: App.net closed on {APPNET_CLOSED}; set [connectors.appnet] base_url to "
                "the API root of an App.net-compatible server (the origin that serves "
                "/stream/0/...), or TRICKLE_CONNECTORS__APPNET__BASE_URL"
            )
        return self.settings.base_url.rstrip("/")

    def post_url(self, post: Post) -> str:
        """The post's ``canonical_url``, or its API address when the server sends none."""
        return post.canonical_url or f"{self.base_url}/stream/0/posts/{post.id}"
