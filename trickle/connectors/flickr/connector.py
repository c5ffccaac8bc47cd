"""Flickr: a favorite is a like, the photo's owner is the creator.

Flickr's REST API directly, rather than ``flickrapi``: flickrapi signs and
sends through its own ``requests_oauthlib`` session, so its requests would
bypass trickle's HTTP layer (deadlines, byte caps, the error policy,
redaction), and its token cache lives in files of its own. Two calls are all
trickle needs, and both are plain signed GETs of the one REST endpoint,
``https://api.flickr.com/services/rest/`` with ``format=json&nojsoncallback=1``:

- ``flickr.test.login`` tells whose the token credentials are (linking): the
  NSID (``12037949754@N01``, permanent) and the username.
- ``flickr.favorites.getList`` lists the calling user's favorites, newest
  faved first, ``per_page`` at a time (at most 500), numbered pages with
  ``pages`` (a string on the wire). Each photo says when it was faved
  (``date_faved``, unix seconds as a string): the like time. Polls after the
  first ask only for favorites since the newest one seen, less an hour
  (``min_fave_date``), so a poll never walks an old list even when every
  known favorite was removed; paging still stops at the first known photo.
- The creator is the photo's ``owner``, keyed by NSID; ``ownername`` (the
  ``owner_name`` extra) is the handle shown.

Every request is signed with OAuth 1.0a (HMAC-SHA1, in the ``Authorization``
header), with the app's key and secret and the account's token and token
secret; an account is linked through Flickr's three legs with
``perms=read``. Flickr reports errors inside HTTP 200 answers (``{"stat":
"fail", "code": 98, "message": "Invalid auth token"}``): :data:`FLICKR_ERRORS`
says what each documented code means, read by the error policy's in-body
hook. Flickr documents no rate-limit answer beyond "3600 queries per hour
across the whole key": what it sends when a key goes over (429, an HTML page,
no ``Retry-After``) is a limit of the whole app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import requests
from pydantic import SecretStr

from trickle.connectors.auth import OAuth1
from trickle.connectors.base import AccountRef, Identity, PollState
from trickle.connectors.errors import (
    AuthExpired,
    ConnectorError,
    NotConfigured,
    PlatformError,
    TransientError,
)
from trickle.connectors.flickr.payloads import FAVORITES, LOGIN, MAX_PER_PAGE, Login, Photo
from trickle.connectors.flows import OAuth1Authorization
from trickle.connectors.paginators import PageNumbers, PageRequest
from trickle.connectors.policy import ErrorPolicy
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.settings import ConnectorSettings
from trickle.core.events import LikeEvent
from trickle.core.text import printable

API_ROOT = "https://api.flickr.com"
REST_PATH = "/services/rest/"
OAUTH_ROOT = "https://www.flickr.com/services/oauth"
APP_PAGE = "https://www.flickr.com/services/apps/create/"
PHOTO_PAGE = "https://www.flickr.com/photos/{owner}/{id}/"
JSON: Mapping[str, str | int] = {"format": "json", "nojsoncallback": 1}
MAX_HANDLE = 200
"""The longest handle trickle keeps; a longer ``ownername`` gives way to the owner's NSID."""
FAVE_MARGIN = timedelta(hours=1)
"""How far before the newest favorite seen an incremental poll asks from (``min_fave_date``):
a favorite Flickr lists a little late is still found; the known ones it brings back are
dropped by the known-item set."""

FLICKR_ERRORS: Mapping[int, tuple[type[ConnectorError], str]] = {
    96: (AuthExpired, "Flickr refused the signature: link the account again"),
    97: (AuthExpired, "Flickr found no signature: link the account again"),
    98: (AuthExpired, "Flickr refused the token (revoked or invalid): link the account again"),
    99: (AuthExpired, "the token may not read this account's favorites: link it again"),
    100: (
        NotConfigured,
        "Flickr refuses trickle's API key (not valid, or expired): register an app at "
        f"{APP_PAGE} and set [connectors.flickr] consumer_key and consumer_secret",
    ),
    105: (TransientError, "Flickr's service is unavailable for now"),
    106: (TransientError, "Flickr failed on a temporary issue"),
}
"""What Flickr's documented error codes mean for trickle; every other code (1 user not found,
95 SSL required, 111 format, 112 method, 114/115 request documents, 116 bad URL) is a
:class:`PlatformError`."""


def flickr_error(response: requests.Response, body: Any) -> ConnectorError | None:
    """The typed error a Flickr answer reports inside its 200 (``"stat": "fail"``), if any."""
    if not isinstance(body, Mapping) or body.get("stat") != "fail":
        return None
    raw = body.get("code")
    code = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 6:
        code = int(raw)
    said = body.get("message")
    # Whole: the session redacts a credential the message echoes, then bounds it (cut short
    # here first, a piece of a token would stay).
    message = said if isinstance(said, str) else ""
    method = _method(response)
    kind, meaning = FLICKR_ERRORS.get(code or -1, (PlatformError, "Flickr failed the call"))
    shown = f"{code}" if code is not None else "no code"
    return kind(f"flickr: {method}: {meaning} ({shown}{': ' + message if message else ''})")


def _method(response: requests.Response) -> str:
    """The Flickr method an answer is to (the request's ``method`` parameter)."""
    url = response.request.url if response.request is not None else response.url
    try:
        names = parse_qs(urlsplit(str(url)).query).get("method") or ["?"]
    except ValueError:
        names = ["?"]
    return printable(names[0], 60)


class FlickrSettings(ConnectorSettings):
    """``[connectors.flickr]``: the common keys, and trickle's app (its key and secret)."""

    required: ClassVar[tuple[str, ...]] = ("consumer_key", "consumer_secret")

    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None


class FlickrConnector(RestConnector):
    """Favorites of the token's owner on Flickr, with the time each was faved."""

    name = "flickr"
    display_name = "Flickr"
    default_base_url = API_ROOT
    default_page_size = 100
    page_size_range = (1, MAX_PER_PAGE)
    tier = Tier.BRONZE
    capabilities = frozenset({Capability.LIKE_TIME})
    quality_rules = (
        "identifies-account",
        "polls-incrementally",
        "typed-errors",
        "secrets-redacted",
        "contract-suite",
        "like-time",
        "fixtures-from-reference",
        "fake-platform",
    )
    exemptions = {
        "links-with-token": (
            "OAuth 1.0a signs every request with a token secret as well as the token: there "
            "is no token to paste alone, so accounts link through Flickr's three legs"
        ),
    }
    rate_limit_scope = "app"
    settings_model = FlickrSettings
    auth = OAuth1()
    error_policy = ErrorPolicy(error_in_body=flickr_error)
    link_flows = (
        OAuth1Authorization(
            request_token_url=f"{OAUTH_ROOT}/request_token",
            authorize_url=f"{OAUTH_ROOT}/authorize",
            access_token_url=f"{OAUTH_ROOT}/access_token",
            authorize_params={"perms": "read"},
            app_page=APP_PAGE,
        ),
    )

    likes_path = REST_PATH
    likes_params = {**JSON, "method": "flickr.favorites.getList", "extras": "owner_name"}
    page_size_param = "per_page"
    paginator = PageNumbers(pages_path=("photos", "pages"), page_path=("photos", "page"))
    page_model = FAVORITES
    identity_path = REST_PATH
    identity_params = {**JSON, "method": "flickr.test.login"}
    identity_model = LOGIN

    def items(self, page: Any) -> Sequence[Photo]:
        """The page's photos, newest faved first."""
        return list(page.photos.photo)

    def first_request(self, account: AccountRef, state: PollState) -> PageRequest:
        """The first page; after a poll that saw favorites, only those faved since the newest
        of them (less :data:`FAVE_MARGIN`)."""
        request = super().first_request(account, state)
        newest = state.cursor.get("newest_faved")
        if isinstance(newest, int) and not isinstance(newest, bool) and newest > 0:
            since = max(0, newest - int(FAVE_MARGIN.total_seconds()))
            request = request.with_params(min_fave_date=since)
        return request

    def new_cursor(self, state: PollState, events: Sequence[LikeEvent]) -> Mapping[str, Any] | None:
        """The newest ``date_faved`` seen so far, in unix seconds."""
        times = [int(e.liked_at.timestamp()) for e in events if e.liked_at is not None]
        if not times:
            return None
        old = state.cursor.get("newest_faved")
        kept = old if isinstance(old, int) and not isinstance(old, bool) else 0
        return {**state.cursor, "newest_faved": max(kept, *times)}

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A favorite as a like of the photo, made by its owner (shown by ``ownername``, or by
        the NSID when Flickr sends none or one longer than trickle keeps)."""
        photo: Photo = item
        return LikeEvent(
            platform=self.name,
            item_id=photo.id,
            item_url=PHOTO_PAGE.format(owner=photo.owner, id=photo.id),
            creator_id=photo.owner,
            creator_handle=photo.ownername
            if photo.ownername and len(photo.ownername) <= MAX_HANDLE
            else photo.owner,
            liked_at=photo.date_faved,
            observed_at=observed_at,
        )

    def identity(self, payload: Any) -> Identity:
        """The token's owner: NSID and username."""
        login: Login = payload
        return Identity(platform_user_id=login.user.id, handle=login.user.username.content)
