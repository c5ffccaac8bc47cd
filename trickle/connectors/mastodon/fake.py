"""A fake Mastodon server on 127.0.0.1, for the connector's tests, the linking tests and the demo.

:class:`FakeMastodonServer` is :class:`~trickle.testing.fake_mastodon.FakeMastodon`
(apps registered through ``POST /api/v1/apps``, forgotten apps, the
authorization code flow with PKCE, client-credentials tokens, revocation,
Mastodon's scopes) serving the two API methods the way Mastodon's
documentation and its controllers answer them:

- ``GET /api/v1/favourites``: Status entities, most recently favourited
  first, ``limit`` 20 by default and 40 at most. Pages are by favourite id
  (time-ordered, like Mastodon's snowflake ids, and never the status's):
  ``Link: <...max_id=F>; rel="next", <...min_id=F>; rel="prev"`` whenever the
  page is full, even when nothing follows; an empty page has no ``Link``.
- ``GET /api/v1/accounts/verify_credentials``: the CredentialAccount (with
  ``source`` and ``role``).
- Statuses are the author's, on the author's server: a favourite on one
  server of a status from another shows the author as that server shows a
  remote account (an ``id`` of its own, ``acct`` ``username@domain``, the
  home server's ``url`` and ``uri``). Several servers make one fediverse.
- Every API answer carries ``X-RateLimit-Limit``, ``-Remaining`` and
  ``-Reset`` (an ISO 8601 time with microseconds, as Mastodon's
  ``iso8601(6)``), 300 requests per account per 5 minutes; past them, or while
  a test's :meth:`rate_limit` holds, 429 ``{"error": "Too many requests"}``.
- 401 ``{"error": "The access token is invalid"}``, a token without the
  scope 403, an app's own token 422 ``This method requires an authenticated
  user``.

Tests stage accounts (:meth:`add_account`), statuses (:meth:`post`) and
favourites (:meth:`favourite`), and use the inherited ``revoke``,
``forget_clients``, ``tamper`` and ``sign_in``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack
from urllib.parse import urlsplit

from trickle.core.clock import clock
from trickle.testing.fake_authorize import AuthorizeOptions
from trickle.testing.fake_likes import FakeOAuthAccount
from trickle.testing.fake_mastodon import (
    DEFAULT_FAVOURITES,
    FAVOURITES_PATH,
    MAX_FAVOURITES,
    VERIFY_CREDENTIALS_PATH,
    FakeMastodon,
)
from trickle.testing.fake_pages import with_query
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

RATE_LIMIT = 300
RATE_WINDOW = timedelta(minutes=5)
_SERVERS = itertools.count()
_EPOCH = datetime(2016, 3, 16, tzinfo=UTC)  # Mastodon's first release: ids count from it


@dataclass(frozen=True)
class FakeAuthor:
    """An account as its home server knows it."""

    username: str
    home: str
    """The home server's origin (``http://127.0.0.1:PORT``)."""
    id: str

    @property
    def uri(self) -> str:
        """The ActivityPub actor id."""
        return f"{self.home}/users/{self.username}"

    @property
    def url(self) -> str:
        """The profile page."""
        return f"{self.home}/@{self.username}"

    @property
    def domain(self) -> str:
        return urlsplit(self.home).netloc


@dataclass(frozen=True)
class FakeStatus:
    """A status, as its author's server knows it."""

    id: str
    author: FakeAuthor
    created_at: datetime
    text: str

    @property
    def uri(self) -> str:
        return f"{self.author.uri}/statuses/{self.id}"

    @property
    def url(self) -> str:
        return f"{self.author.url}/{self.id}"


def snowflake(at: datetime, sequence: int) -> int:
    """A Mastodon-style id: milliseconds since the epoch above, shifted, plus a sequence."""
    millis = int((at.astimezone(UTC) - _EPOCH).total_seconds() * 1000)
    return (max(millis, 0) << 16) | (sequence & 0xFFFF)


def iso8601_6(when: datetime) -> str:
    """``2019-11-23T07:40:00.000000Z``: Ruby's ``iso8601(6)`` in UTC, as Mastodon's reset."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeMastodonServer(FakeMastodon):
    """One Mastodon server (see the module)."""

    def __init__(self, **options: Unpack[AuthorizeOptions]) -> None:
        super().__init__(**options)
        # Each server numbers on its own: the same instant makes different ids on two servers.
        self._sequence = itertools.count(1 + next(_SERVERS) * 4099)
        self.statuses: dict[str, FakeStatus] = {}
        """Every status this server knows (its own and remote ones), by its id here."""
        self._local_ids: dict[str, str] = {}  # a remote status's uri -> its id here
        self._remote_accounts: dict[str, str] = {}  # a remote actor's uri -> its id here
        self._favourite_ids: dict[tuple[str, str], int] = {}  # (username, status id) -> id
        self._windows: dict[str, tuple[datetime, int]] = {}  # username -> window start, used

    # -- what tests do --------------------------------------------------------------

    def _new_id(self, at: datetime | None = None) -> str:
        return str(snowflake(at or clock.now(), next(self._sequence)))

    def add_account(self, username: str) -> FakeOAuthAccount:
        """A user of this server, with a Mastodon-style numeric id."""
        account = super().add_account(username)
        with self.lock:
            account.id = self._new_id(datetime(2024, 1, 1, tzinfo=UTC))
        return account

    def author(self, username: str) -> FakeAuthor:
        """``username`` of this server, as an author (made if they do not exist yet)."""
        with self.lock:
            account = self.accounts.get(username) or self.add_account(username)
            return FakeAuthor(username, self.base_url, account.id)

    def post(self, username: str, *, at: datetime | None = None, text: str = "") -> FakeStatus:
        """``username`` (of this server) posts a status at ``at`` (default: now)."""
        when = (at or clock.now()).astimezone(UTC)
        author = self.author(username)
        status = FakeStatus(self._new_id(when), author, when, text or f"a status of {username}'s")
        with self.lock:
            self.statuses[status.id] = status
        return status

    def favourite(self, username: str, status: FakeStatus, *, at: datetime | None = None) -> str:
        """``username`` (of this server) favourites ``status`` (of this server or another) at
        ``at`` (default: now); returns the status's id on this server."""
        when = (at or clock.now()).astimezone(UTC)
        with self.lock:
            if status.author.home == self.base_url:
                local = status.id
            else:
                local = self._local_ids.get(status.uri) or self._new_id(status.created_at)
                self._local_ids[status.uri] = local
            self.statuses[local] = status
            self._favourite_ids[(username, local)] = snowflake(when, next(self._sequence))
        self.like(username, local, at=when, author=status.author.username)
        return local

    # -- Mastodon's answers -------------------------------------------------------------

    def authenticate(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The token's account, or Mastodon's 401."""
        account = super().authenticate(request)
        if isinstance(account, FakeResponse):
            return FakeResponse(
                401,
                {"error": "The access token is invalid"},
                {
                    "WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token", '
                    'error_description="The access token is invalid"'
                },
            )
        return account

    def api_account(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The token's account within its rate limit, else Mastodon's 401 or 429."""
        account = self.authenticate(request)
        if isinstance(account, FakeResponse):
            return account
        now = clock.now()
        with self.lock:
            start, used = self._windows.get(account.username, (now, 0))
            if now >= start + RATE_WINDOW or now < start:
                start, used = now, 0
            used += 1
            self._windows[account.username] = (start, used)
        held = account.rate_limited_until
        if held is not None and held > now:
            headers = {
                "X-RateLimit-Limit": str(RATE_LIMIT),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": iso8601_6(held),
            }
            return FakeResponse(429, {"error": "Too many requests"}, headers)
        if used > RATE_LIMIT:
            return FakeResponse(429, {"error": "Too many requests"}, self._limits(account))
        return account

    def _limits(self, account: FakeOAuthAccount) -> dict[str, str]:
        with self.lock:
            start, used = self._windows.get(account.username, (clock.now(), 0))
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - used)),
            "X-RateLimit-Reset": iso8601_6(start + RATE_WINDOW),
        }

    @route("GET", VERIFY_CREDENTIALS_PATH)
    def verify_credentials(self, request: Request) -> Answer:
        """``GET /api/v1/accounts/verify_credentials``: the CredentialAccount."""
        account = self._scoped(request, ("read:accounts", "profile"))
        if isinstance(account, FakeResponse):
            return account
        body = self.account_json(FakeAuthor(account.username, self.base_url, account.id))
        body["source"] = {
            "privacy": "public",
            "sensitive": False,
            "language": "",
            "note": "",
            "fields": [],
            "follow_requests_count": 0,
        }
        body["role"] = {
            "id": "-99",
            "name": "",
            "permissions": "65536",
            "color": "",
            "highlighted": False,
        }
        return self.answer(account, request, FakeResponse(200, body, self._limits(account)))

    @route("GET", FAVOURITES_PATH)
    def favourites(self, request: Request) -> Answer:
        """``GET /api/v1/favourites?limit=N&max_id=F``: favourited statuses newest first, by
        favourite id, the pages in the ``Link`` header."""
        account = self._scoped(request, ("read:favourites",))
        if isinstance(account, FakeResponse):
            return account
        try:
            limit = int(request.query.get("limit", DEFAULT_FAVOURITES))
            max_id = _id(request.query.get("max_id"))
            since_id = _id(request.query.get("since_id"))
            min_id = _id(request.query.get("min_id"))
        except ValueError:
            return FakeResponse(422, {"error": "Validation failed: limit or an id"})
        limit = min(MAX_FAVOURITES, max(1, limit))
        with self.lock:
            ranked = [
                (self._favourite_ids[(account.username, like.item_id)], like.item_id)
                for like in account.likes
            ]
        ranked.sort(reverse=True)
        chosen = [
            entry
            for entry in ranked
            if (max_id is None or entry[0] < max_id)
            and (since_id is None or entry[0] > since_id)
            and (min_id is None or entry[0] > min_id)
        ]
        page = chosen[-limit:] if min_id is not None else chosen[:limit]
        headers = self._limits(account)
        links = []
        if len(page) == limit:
            links.append(self._link(limit, "max_id", page[-1][0], "next"))
        if page:
            links.append(self._link(limit, "min_id", page[0][0], "prev"))
        if links:
            headers["Link"] = ", ".join(links)
        body = [self.status_json(self.statuses[local], local) for _, local in page]
        return self.answer(account, request, FakeResponse(200, body, headers))

    def _link(self, limit: int, key: str, favourite_id: int, rel: str) -> str:
        params = {"limit": str(limit), key: str(favourite_id)}
        return f'<{with_query(self.base_url + FAVOURITES_PATH, params)}>; rel="{rel}"'

    # -- entities ---------------------------------------------------------------------

    def account_json(self, author: FakeAuthor) -> dict[str, Any]:
        """The Account entity of ``author`` as this server shows it."""
        local = author.home == self.base_url
        with self.lock:
            account_id = (
                author.id if local else self._remote_accounts.setdefault(author.uri, self._new_id())
            )
        return {
            "id": account_id,
            "username": author.username,
            "acct": author.username if local else f"{author.username}@{author.domain}",
            "display_name": author.username.capitalize(),
            "locked": False,
            "bot": False,
            "discoverable": True,
            "group": False,
            "created_at": "2024-01-01T00:00:00.000Z",
            "note": "",
            "url": author.url,
            "uri": author.uri,
            "avatar": f"{author.home}/avatars/original/missing.png",
            "avatar_static": f"{author.home}/avatars/original/missing.png",
            "header": f"{author.home}/headers/original/missing.png",
            "header_static": f"{author.home}/headers/original/missing.png",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": 1,
            "last_status_at": "2024-01-01",
            "emojis": [],
            "fields": [],
        }

    def status_json(self, status: FakeStatus, local_id: str) -> dict[str, Any]:
        """The Status entity of ``status`` as this server shows it (``local_id`` its id here),
        favourited by the token's user."""
        return {
            "id": local_id,
            "created_at": status.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": status.uri,
            "url": status.url,
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 1,
            "favourited": True,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "content": f"<p>{status.text}</p>",
            "reblog": None,
            "account": self.account_json(status.author),
            "media_attachments": [],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }


def _id(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    return int(value)
