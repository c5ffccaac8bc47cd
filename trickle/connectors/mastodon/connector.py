"""Mastodon, on any server: a favourite is a like, the status's author is the creator.

Mastodon's REST API directly, rather than Mastodon.py: trickle needs two
GETs and a Link header, which the declarative :class:`RestConnector` and its
:class:`LinkHeader` paginator already do within trickle's HTTP limits, error
policy and host guard; Mastodon.py would bring its own session, retries and
pagination (``fetch_next``) that none of those would bound.

- ``GET /api/v1/accounts/verify_credentials`` tells whose token it is
  ("User token + ``profile`` or ``read:accounts``").
- ``GET /api/v1/favourites?limit=40`` lists the statuses the token's user
  favourited, most recently favourited first ("User token +
  ``read:favourites``"). Its ``max_id``/``min_id`` are favourite ids, which no
  answer exposes: pages follow the ``Link`` header. A full page has ``next``
  even when nothing follows (the page after is empty and has no ``Link`` at
  all), so paging ends on a short or empty page; a poll also stops at the
  first page holding a known status.
- A favourite carries no time: ``created_at`` is the status's, not the
  favourite's, so ``liked_at`` is None and the worker counts the like from
  when it was first seen.
- Keys that are the same from every server: the item is the status ``uri``,
  the creator the author's account ``uri`` (its ActivityPub actor id, Mastodon
  4.2+). The account ``id`` is each server's own, and ``acct`` is bare for an
  account of the server asked and names the account's WebFinger domain
  otherwise, which may differ from the host its URLs are on (LOCAL_DOMAIN
  and WEB_DOMAIN): qualified by hand, it could name one person two ways.
  The actor URI is what federation itself uses to tell accounts apart. A
  linked account's id is its ``uri`` too, so a creator who links claims what
  was held for them whichever server their likers are on. Since that key is
  what a creator's reserved shares wait under, a server speaks for its own
  accounts only: a token's actor URI on another origin than the server asked
  (anyone can run a server that claims to be anyone) is a PlatformError.
- Errors: 401 ("The access token is invalid") relinks; 403 (a login disabled,
  unconfirmed or pending approval, or a token without the scope) is
  Forbidden; 422 "This method requires an authenticated user" (an app's own
  token, not a user's) relinks; 429 waits until ``X-RateLimit-Reset`` (an
  ISO 8601 time); 5xx retries later; anything else is a PlatformError.
  Every answer's ``X-RateLimit-Remaining`` reaches the worker.

Linking: trickle registers its app on the user's server (``POST
/api/v1/apps``), keeps it per server and redirect URI, checks it with a
client-credentials token before reuse and registers again when the server
forgot it (pre-4.3 servers vacuumed apps); then the authorization code flow
on that server, with PKCE (S256; servers before 4.3 ignore it) and the
app's secret (Mastodon's apps are confidential clients). Tokens never
expire; unlinking revokes at ``POST /oauth/revoke``. A token made in the
server's Preferences > Development can be pasted instead. The server is user
input: every request is held to the host guard (https, public addresses).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from trickle.connectors.base import Identity
from trickle.connectors.errors import PlatformError
from trickle.connectors.flows import RegisteredApp, TokenImport
from trickle.connectors.mastodon.payloads import CREDENTIAL_ACCOUNT, FAVOURITES, Account, Status
from trickle.connectors.paginators import LinkHeader
from trickle.connectors.policy import DEFAULT_POLICY, Action
from trickle.connectors.quality import Capability, Tier
from trickle.connectors.rest import RestConnector
from trickle.connectors.session import AccountSession
from trickle.core.events import LikeEvent
from trickle.core.text import printable

FAVOURITES_PATH = "/api/v1/favourites"
VERIFY_CREDENTIALS_PATH = "/api/v1/accounts/verify_credentials"
MAX_FAVOURITES = 40
"""Mastodon's largest ``limit`` for favourites ("Max 40 statuses")."""
SCOPES = ("read:favourites", "read:accounts")
"""``read:accounts`` rather than the narrower ``profile``, which servers older than 4.3 do not
know: both let verify_credentials say whose token it is."""


class MastodonConnector(RestConnector):
    """Favourites of the token's user on their Mastodon server (see the module)."""

    name = "mastodon"
    display_name = "Mastodon"
    default_base_url = "https://mastodon.social"
    multi_host = True
    user_supplied_hosts = True
    default_page_size = MAX_FAVOURITES
    page_size_range = (1, MAX_FAVOURITES)
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
    error_policy = DEFAULT_POLICY.with_statuses({422: Action.REAUTH})
    link_flows = (
        RegisteredApp(scopes=SCOPES),
        TokenImport(
            how=(
                "in your server's Preferences > Development, create an application with the "
                "scopes read:favourites and read:accounts and paste its access token"
            )
        ),
    )

    likes_path = FAVOURITES_PATH
    page_size_param = "limit"
    paginator = LinkHeader()
    page_model = FAVOURITES
    identity_path = VERIFY_CREDENTIALS_PATH
    identity_model = CREDENTIAL_ACCOUNT

    def like(self, item: Any, observed_at: datetime) -> LikeEvent:
        """A favourite as a like of the status, made by its author; Mastodon does not say
        when it was favourited."""
        status: Status = item
        author = status.account
        return LikeEvent(
            platform=self.name,
            item_id=status.uri,
            item_url=status.url or status.uri,
            creator_id=author.uri,
            creator_handle=author.handle,
            observed_at=observed_at,
        )

    def identify(self, session: AccountSession) -> Identity:
        """Whose token it is, if the account is the asked server's own: its actor URI keys the
        creator identity the link claims, so a server may not name another server's actor."""
        identity = super().identify(session)
        if _origin(identity.platform_user_id) != _origin(session.base_url):
            raise PlatformError(
                f"mastodon: {printable(session.base_url, 100)} says the token is "
                f"{printable(identity.platform_user_id, 200)}'s, an account not on the server "
                "asked: refused, since a server speaks for its own accounts only"
            )
        return identity

    def identity(self, payload: Any) -> Identity:
        """The token's account: its actor URI as the id, ``username@domain`` as the handle."""
        account: Account = payload
        return Identity(platform_user_id=account.uri, handle=account.handle)


def _origin(url: str) -> tuple[str, str]:
    """``url``'s scheme and host (with its port), as compared (both lower case)."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
