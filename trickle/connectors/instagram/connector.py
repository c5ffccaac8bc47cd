"""Instagram: a saved post is a like, the post's owner is the creator. Best effort, at a risk.

Instagram offers no official way to list what a user liked or saved: the
legacy API's ``/users/self/media/liked`` died in April 2018, the Basic Display
API in December 2024, and the Graph API serves business accounts their own
media only. What remains is the private web API Instagram's own web app uses,
with the user's logged-in web session. That is what this connector uses,
through **instaloader** (the maintained Python client of that API), whose
queries are sent through trickle's HTTP layer (:mod:`.client`). Using it is
against Instagram's terms: Instagram may challenge the session, lock or ban
the account, and change the API without notice (instaloader's issues record
it breaking several times a year). The tier says so: bronze.

- Linking: the user logs in (username, password, the two-factor code when
  asked; :mod:`.login`), gives an instaloader session file, or pastes the
  ``sessionid`` cookie of a logged-in browser. Only the session's cookies are
  kept, sealed; never the password.
- Identify: the GraphQL query instaloader's ``test_login`` sends; a null user
  means the session is no longer logged in.
- Poll: the account's **saved posts** (``Profile.get_saved_posts``: GraphQL
  ``edge_saved_media``, newest save first, ``first``/``after`` paging as
  instaloader's ``NodeIterator`` does it), page by page, so paging stops at
  the first page holding a known post. With ``feed_likes = true`` the first
  page of the home feed is read too, for posts it shows the user has liked
  (``viewer_has_liked``): instaloader lists no likes, and this sees only
  liked posts that happen to be in the feed. Instagram says when neither a
  like nor a save was made, so every flattr counts from when it was first
  seen. The creator is the post owner's numeric id; the item is the post's
  shortcode (its ``/p/{shortcode}/`` address, as in the data export).
- Errors: a login redirect, a 401, a checkpoint or challenge, or
  ``login_required`` is :class:`AuthExpired` (the user must log in again,
  maybe confirm the login in Instagram's app first); "Please wait a few
  minutes before you try again" (Instagram says it with a 401 too),
  ``feedback_required`` and a 429 are :class:`RateLimited`, for at least
  :data:`RATE_LIMIT_BACKOFF`, since Instagram never says how long, and
  instaloader's own experience is that retrying sooner makes it worse.

The data export (likes with their times, saved posts) is the way that always
works: :mod:`.export`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from trickle.connectors.base import (
    AccountRef,
    Connector,
    Identity,
    Page,
    PollResult,
    PollState,
    collect_new,
)
from trickle.connectors.errors import AuthExpired, ConnectorError, PlatformError, RateLimited
from trickle.connectors.flows import SecondFactor, SessionLogin, TokenImport
from trickle.connectors.instagram import login
from trickle.connectors.instagram.client import (
    InstaloaderBridge,
    SessionCookie,
    instaloader_headers,
)
from trickle.connectors.instagram.payloads import FEED, SAVED, VIEWER, FeedMedia, SavedNode
from trickle.connectors.payloads import parse_payload
from trickle.connectors.policy import DEFAULT_POLICY, Action, Answer, ErrorPolicy
from trickle.connectors.quality import Tier
from trickle.connectors.session import AccountSession
from trickle.connectors.settings import ConnectorSettings
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.events import LikeEvent
from trickle.core.text import printable

VIEWER_QUERY = "d6f4427fbe92d846298cf93df0b937d3"
"""instaloader's ``test_login`` query: who the session is logged in as."""
SAVED_QUERY = "f883d95537fbcd400f466f63d42bd8a1"
"""instaloader's ``Profile.get_saved_posts`` query."""
FEED_PATH = "api/v1/feed/timeline/"
"""instaloader's ``Instaloader.get_feed_posts`` endpoint."""
MAX_PAGE_SIZE = 50
"""The most saved posts asked for per page (instaloader asks for 12)."""
RATE_LIMIT_BACKOFF = timedelta(hours=1)
"""The least an Instagram rate limit parks an account (see the module)."""
TERMS_WARNING = (
    "Instagram has no API for likes: trickle logs in to its private web API as your browser "
    "would. That is against Instagram's terms: it may ask you to confirm the login, lock or "
    "ban the account. The password is used once and not kept; only the session is."
)
_CHALLENGES = ("checkpoint_required", "challenge_required", "login_required")
_SLOW_DOWN = ("wait a few minutes", "feedback_required")


class InstagramSettings(ConnectorSettings):
    """``[connectors.instagram]``: the common keys, and whether to read the home feed."""

    base_url: str | None = None
    page_size: int | None = Field(default=None, ge=1, le=MAX_PAGE_SIZE)
    feed_likes: bool = False
    """Also read the home feed's first page for posts it shows as liked (one request more
    per poll, at the same private API)."""


def _says(detail: str, phrases: tuple[str, ...]) -> bool:
    lowered = detail.lower()
    return any(phrase in lowered for phrase in phrases)


def _unauthorized(answer: Answer) -> Action:
    """401: Instagram's "Please wait a few minutes" is a rate limit; otherwise the session
    is gone."""
    return Action.RATE_LIMIT if _says(answer.detail, _SLOW_DOWN) else Action.REAUTH


def _refused(otherwise: Action) -> Any:
    """400 and 403: a checkpoint, challenge or required login is a session to renew, a
    slow-down a rate limit, anything else ``otherwise``."""

    def rule(answer: Answer) -> Action:
        if _says(answer.detail, _CHALLENGES):
            return Action.REAUTH
        if _says(answer.detail, _SLOW_DOWN):
            return Action.RATE_LIMIT
        return otherwise

    return rule


def _redirect(answer: Answer) -> Action:
    """Instagram sends a session it will not serve to the login page or a challenge."""
    location = answer.response.headers.get("Location", "")
    if "/accounts/login" in location or "/challenge" in location:
        return Action.REAUTH
    return Action.FAIL


def _error_in_body(response: Any, body: Any) -> ConnectorError | None:
    """``{"status": "fail", "message": ...}`` in a 200, which instaloader also refuses."""
    if not isinstance(body, dict) or body.get("status") in (None, "ok"):
        return None
    message = printable(str(body.get("message") or ""), 200)
    if _says(message, _CHALLENGES) or body.get("require_login") is True:
        return AuthExpired(
            f"instagram: {message or 'login required'}: confirm the login in Instagram's app, "
            "then link the account again"
        )
    if _says(message, _SLOW_DOWN):
        return RateLimited(f"instagram: {message}", clock.now() + RATE_LIMIT_BACKOFF)
    return PlatformError(f"instagram: the answer's status is {printable(str(body['status']), 40)}")


INSTAGRAM_POLICY = ErrorPolicy(
    statuses={
        **DEFAULT_POLICY.statuses,
        301: _redirect,
        302: _redirect,
        400: _refused(Action.FAIL),
        401: _unauthorized,
        403: _refused(Action.FORBIDDEN),
    },
    error_in_body=_error_in_body,
)


@contextmanager
def _patiently() -> Iterator[None]:
    """An Instagram rate limit waits at least :data:`RATE_LIMIT_BACKOFF`."""
    try:
        yield
    except RateLimited as exc:
        retry_at = max(exc.retry_at, clock.now() + RATE_LIMIT_BACKOFF)
        raise RateLimited(str(exc), retry_at, exc.scope) from None


class InstagramConnector(Connector):
    """Saved posts (and, if asked, liked posts in the home feed) of a logged-in session."""

    name = "instagram"
    display_name = "Instagram"
    default_base_url = "https://www.instagram.com"
    default_page_size = 12
    page_size_range = (1, MAX_PAGE_SIZE)
    settings_model = InstagramSettings
    auth = SessionCookie()
    error_policy = INSTAGRAM_POLICY
    tier = Tier.BRONZE
    capabilities = frozenset()
    quality_rules = (
        "links-with-token",
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "fake-platform",
    )
    link_flows = (
        SessionLogin(session_file="instaloader --login USERNAME", warning=TERMS_WARNING),
        TokenImport(
            how=(
                "paste the value of the sessionid cookie of a browser logged in to "
                "instagram.com (developer tools, storage, cookies). "
                f"{TERMS_WARNING}"
            )
        ),
    )

    # -- linking ------------------------------------------------------------------

    def log_in(self, username: str, password: str) -> Credentials | SecondFactor:
        """Log in to Instagram (see :mod:`.login`)."""
        with _patiently():
            return login.log_in(self.http, self.base_url, instaloader_headers(), username, password)

    def confirm_login(self, pending: SecondFactor, code: str) -> Credentials:
        """Finish a login with the two-factor code."""
        with _patiently():
            return login.confirm_login(
                self.http, self.base_url, instaloader_headers(), pending, code
            )

    def read_session_file(self, data: bytes) -> Credentials:
        """The session of an instaloader session file."""
        return login.read_session_file(data)

    # -- identify and poll --------------------------------------------------------

    def identify(self, session: AccountSession) -> Identity:
        """Who the session is logged in as: numeric id and username."""
        with _patiently():
            body = InstaloaderBridge(session).graphql_query(VIEWER_QUERY, {})
        viewer = parse_payload(VIEWER, body, where="GET /graphql/query (viewer)").data.user
        if viewer is None:
            raise AuthExpired("instagram: the session is not logged in (any more): link again")
        return Identity(platform_user_id=viewer.id, handle=viewer.username)

    def poll(self, account: AccountRef, state: PollState) -> PollResult:
        """Saved posts not seen before, page by page until a known one (and the feed's liked
        posts when ``feed_likes`` is set)."""
        session = account.session
        sent_before = session.requests
        bridge = InstaloaderBridge(session)
        referer = f"https://www.instagram.com/{account.handle}/"

        def pages() -> Iterator[Page]:
            after: str | None = None
            while True:
                variables: dict[str, Any] = {"id": account.platform_user_id}
                variables["first"] = self.page_size
                if after is not None:
                    variables["after"] = after
                body = bridge.graphql_query(SAVED_QUERY, variables, referer)
                media = parse_payload(
                    SAVED, body, where="GET /graphql/query (saved posts)"
                ).data.user.edge_saved_media
                observed = clock.now()
                events = [self._saved(edge.node, observed) for edge in media.edges]
                info = media.page_info
                after = info.end_cursor if info.has_next_page and media.edges else None
                yield Page(events, has_next=after is not None)
                if after is None:
                    return

        with _patiently():
            events, _ = collect_new(pages(), state, self.settings.max_pages)
            if getattr(self.settings, "feed_likes", False):
                events += self._feed_likes(bridge, state, {e.item_id for e in events})
        return PollResult(
            events=events,
            state=state.advanced((e.item_id for e in events), etag=None),
            requests=session.requests - sent_before,
            rate_limit=session.rate_limit,
        )

    def _feed_likes(
        self, bridge: InstaloaderBridge, state: PollState, seen: set[str]
    ) -> list[LikeEvent]:
        body = bridge.get_json(FEED_PATH, params={})
        feed = parse_payload(FEED, body, where=f"GET /{FEED_PATH}")
        observed = clock.now()
        liked = [
            self._fed(item.media_or_ad, observed)
            for item in feed.feed_items
            if item.media_or_ad is not None
            and item.media_or_ad.has_liked
            and item.media_or_ad.ad_id is None
        ]
        fresh = [e for e in liked if not state.is_known(e.item_id) and e.item_id not in seen]
        return list({e.item_id: e for e in fresh}.values())

    def _saved(self, node: SavedNode, observed_at: datetime) -> LikeEvent:
        return self._event(node.shortcode, node.owner.id, node.owner.username, observed_at)

    def _fed(self, media: FeedMedia, observed_at: datetime) -> LikeEvent:
        return self._event(media.code, media.user.pk, media.user.username, observed_at)

    def _event(
        self, shortcode: str, owner_id: str, owner: str | None, observed_at: datetime
    ) -> LikeEvent:
        return LikeEvent(
            platform=self.name,
            item_id=shortcode,
            item_url=f"https://www.instagram.com/p/{shortcode}/",
            creator_id=owner_id,
            creator_handle=owner or owner_id,
            observed_at=observed_at,
        )
