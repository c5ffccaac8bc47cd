"""X (Twitter): a liked post is a like, the post's author is the creator.

X's REST API v2 directly, rather than tweepy: tweepy's ``Client`` sends every
request to its own hard-coded ``https://api.twitter.com`` on its own
``requests.Session``, builds the ``Authorization`` header from a bearer token
itself (and logs the headers at debug level), and renews nothing. None of
that can go through trickle's account session, which must sign, bound, count,
read the rate limits of and renew every request, and point at a fake X in
tests and demos.

- ``GET /2/users/me`` tells who a token belongs to (linking).
- ``GET /2/users/{id}/liked_tweets?expansions=author_id&tweet.fields=created_at,author_id
  &user.fields=username&max_results=N`` lists the account's likes, most recent first;
  pages follow ``meta.next_token`` as ``pagination_token``. A page may hold fewer posts
  than ``max_results``, or none, and still name a next page (X drops deleted and
  withheld posts from a page after choosing it). Likes have been private since June
  2024: only the linked user's own id is asked for, with their own token.
- X says nothing of when a like was made (``created_at`` is the post's time): a like
  counts from when trickle first saw it.
- The creator is the post's ``author_id`` (permanent); the handle is the author's
  ``username`` from ``includes.users`` (its owner may change it), or the id itself
  when X left the author out (a suspended or protected account, reported in
  ``errors`` beside the partial data).
- ``max_results`` is held to 10..100: X's OpenAPI document says 5..100, its reference
  page 10..100, and both accept 10. Every post a page returns counts towards the
  project's monthly post cap (and is billed on pay-per-use), so pages are small (10) and
  idle accounts are polled rarely (every 30 minutes at most, every 12 hours at least).
- Rate limits: 75 requests per 15 minutes per user on this endpoint (and per app, for
  app-only tokens, which cannot read likes); every answer's ``x-rate-limit-*`` headers
  are read, and a 429 waits until ``x-rate-limit-reset``. A 429 saying a usage cap was
  exceeded (``usage-capped``) waits until the next UTC day for a daily cap, a day for a
  monthly one; a 402 (pay-per-use credits depleted) is tried again later.
- Errors are problem details (``type``, ``title``, ``detail``); an answer with status 200
  may carry ``errors`` and no ``data`` when the account itself cannot be read (deleted,
  suspended: relink), while ``errors`` beside data only say some posts were left out.

Linking: OAuth 2.0 authorization code with PKCE at ``https://x.com/i/oauth2/authorize``,
as a confidential client (X's "Web App, Automated App or Bot": trickle keeps the client
secret on its server), which authenticates at ``https://api.x.com/2/oauth2/token`` with
HTTP Basic, as X requires; scopes ``tweet.read users.read like.read offline.access``.
Access tokens last two hours and ``offline.access`` brings a refresh token, which X
replaces on every refresh: the session's refresh, save, retry order keeps the new one.
Unlinking revokes the token at ``https://api.x.com/2/oauth2/revoke``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from pydantic import Field, SecretStr

from trickle.connectors.auth import OAuth2
from trickle.connectors.base import Identity
from trickle.connectors.errors import AuthExpired, ConnectorError, PlatformError
from trickle.connectors.flows import AuthorizationCode, TokenImport
from trickle.connectors.paginators import NextToken
from trickle.connectors.policy import DEFAULT_POLICY, Action, ErrorPolicy
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.connectors.twitter.payloads import LIKED_PAGE, ME, LikedPage, Me, Post, User
from trickle.core.events import LikeEvent
from trickle.core.text import printable

API = "https://api.x.com"
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_URL = f"{API}/2/oauth2/token"
REVOKE_URL = f"{API}/2/oauth2/revoke"
APP_PAGE = "https://developer.x.com/en/portal/dashboard"
SCOPES = ("tweet.read", "users.read", "like.read", "offline.access")
ME_PATH = "/2/users/me"
LIKED_PATH = "/2/users/{platform_user_id}/liked_tweets"
MIN_RESULTS = 10
MAX_RESULTS = 100
PROBLEMS = "https://api.twitter.com/2/problems/"
ACCOUNT_GONE = frozenset(
    {"resource-not-found", "resource-unavailable", "not-authorized-for-resource"}
)
"""Problem types that, about the account itself, mean it cannot be read with this link."""
MONTHLY_CAP_WAIT = timedelta(hours=24)


class TwitterSettings(ConnectorSettings):
    """``[connectors.twitter]``: trickle's app at X (its OAuth 2.0 client id and secret) and
    polling intervals that suit a platform that counts every post it returns."""

    required: ClassVar[tuple[str, ...]] = ("client_id", "client_secret")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    min_interval_seconds: int = Field(default=1800, ge=1)
    max_interval_seconds: int = Field(default=43200, ge=1)


def _problem_name(problem: Mapping[str, Any]) -> str:
    kind = problem.get("type")
    return kind.removeprefix(PROBLEMS) if isinstance(kind, str) else ""


def _said(problem: Mapping[str, Any]) -> str:
    """What the problem says, whole: the session redacts a credential it echoes and only then
    bounds it (cut short here first, a piece of a token would stay)."""
    parts = [problem.get(key) for key in ("title", "detail")]
    return ": ".join(p for p in parts if isinstance(p, str) and p) or "an error"


def _about_a_part(problem: Mapping[str, Any]) -> bool:
    """True for a problem about one post or one included object (partial data), not about
    the request or the account."""
    return problem.get("resource_type") == "tweet" or problem.get("section") == "includes"


def error_in_body(response: requests.Response, body: Any) -> ConnectorError | None:
    """The error an answer with status 200 reports: ``errors`` and no ``data``, about the
    account (not about one of its posts). A deleted, suspended or hidden account is
    :class:`AuthExpired` (this link cannot read it); any other problem a
    :class:`PlatformError`."""
    if not isinstance(body, Mapping) or body.get("data") is not None:
        return None
    errors = body.get("errors")
    if not isinstance(errors, list):
        return None
    problems = [e for e in errors[:20] if isinstance(e, Mapping) and not _about_a_part(e)]
    if not problems:
        return None
    problem = problems[0]
    where = f"{response.request.method or 'GET'} {urlsplit(response.url).path}"
    where = printable(where, 200)
    if _problem_name(problem) in ACCOUNT_GONE:
        return AuthExpired(
            f"twitter: {where}: 200 with {_said(problem)}: X will not show this account's "
            "likes to this link: link the account again"
        )
    return PlatformError(f"twitter: {where}: 200 with {_said(problem)}")


def retry_at_in_body(body: Any, now: datetime) -> datetime | None:
    """When a 429 that says a usage cap was exceeded (``usage-capped``, ``period`` Daily or
    Monthly) may be tried again: the next UTC day, or a day from now (trickle's longest
    wait) for a monthly cap. Other 429s wait for ``x-rate-limit-reset``."""
    if not isinstance(body, Mapping) or _problem_name(body) != "usage-capped":
        return None
    if body.get("period") == "Daily":
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today + timedelta(days=1)
    return now + MONTHLY_CAP_WAIT


X_POLICY = ErrorPolicy(
    statuses={**DEFAULT_POLICY.statuses, 402: Action.RETRY_LATER},
    error_in_body=error_in_body,
    retry_at_in_body=retry_at_in_body,
)
"""The shared table (401 relink after one refresh, 403 forbidden, 429 wait, 5xx retry), 402
(pay-per-use credits depleted) retried later, and X's errors inside a 200."""


@dataclass(frozen=True)
class LikedPost:
    """A liked post with its author as ``includes.users`` gives it (None: left out)."""

    post: Post
    author: User | None


class TwitterConnector(RestConnector):
    """Posts the account liked on X; no like times (see the module)."""

    name = "twitter"
    display_name = "X (Twitter)"
    default_base_url = API
    default_page_size = MIN_RESULTS
    page_size_range = (MIN_RESULTS, MAX_RESULTS)
    tier = Tier.GOLD
    capabilities = frozenset({Capability.EXPIRING_TOKENS, Capability.RATE_LIMIT_HEADERS})
    quality_rules = (
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "honours-rate-limits",
        "reads-rate-limits",
        "refreshes-credentials",
        "fixtures-from-reference",
        "fake-platform",
    )
    exemptions = {
        "links-with-token": (
            "X's user tokens last two hours: an account links with an access token and the "
            "refresh token that came with it"
        ),
    }
    settings_model = TwitterSettings
    auth = OAuth2(token_url=TOKEN_URL, client_auth="client_secret_basic")
    error_policy = X_POLICY
    link_flows = (
        AuthorizationCode(
            authorize_url=AUTHORIZE_URL,
            token_url=TOKEN_URL,
            scopes=SCOPES,
            client_auth="client_secret_basic",
            revoke_url=REVOKE_URL,
            app_page=APP_PAGE,
        ),
        TokenImport(
            how=(
                "tokens issued to trickle's own app (its client id) elsewhere, with the scopes "
                f"{' '.join(SCOPES)}: pass the refresh token too, and --expires-in 7200"
            )
        ),
    )

    likes_path = LIKED_PATH
    likes_params = {
        "expansions": "author_id",
        "tweet.fields": "created_at,author_id",
        "user.fields": "username",
    }
    page_size_param = "max_results"
    paginator = NextToken(("meta", "next_token"), "pagination_token")
    page_model = LIKED_PAGE
    identity_path = ME_PATH
    identity_model = ME

    def items(self, page: Any) -> Sequence[LikedPost]:
        """The page's posts, each with its author from ``includes.users``."""
        liked: LikedPage = page
        authors = {user.id: user for user in liked.includes.users}
        return [LikedPost(post, authors.get(post.author_id)) for post in liked.data]

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A liked post as a like of its author's; X gives no like time."""
        liked: LikedPost = item
        post, author = liked.post, liked.author
        url = (
            f"https://x.com/{author.username}/status/{post.id}"
            if author is not None
            else f"https://x.com/i/web/status/{post.id}"
        )
        return LikeEvent(
            platform=self.name,
            item_id=post.id,
            item_url=url,
            creator_id=post.author_id,
            creator_handle=author.username if author is not None else post.author_id,
            liked_at=None,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's owner: permanent id and username."""
        me: Me = payload
        return Identity(platform_user_id=me.data.id, handle=me.data.username)
