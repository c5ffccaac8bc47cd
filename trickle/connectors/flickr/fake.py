"""Flickr on 127.0.0.1: its REST endpoint and its OAuth 1.0a side, for tests and the demo.

:class:`FakeFlickr` is :class:`~trickle.testing.fake_oauth1.FakeOAuth1` (the
three legs and every signature checked by RFC 5849's rules) at Flickr's own
paths, with Flickr's REST API in place of the made-up likes API:

- ``POST /services/oauth/request_token``, ``GET /services/oauth/authorize``
  (with ``perms``), ``POST /services/oauth/access_token``, whose answer names
  the account (``fullname``, ``user_nsid``, ``username``) as Flickr's does.
- ``GET /services/rest/?method=...&format=json&nojsoncallback=1``, signed with
  the token credentials: ``flickr.test.login`` and ``flickr.favorites.getList``
  (``per_page`` up to 500, ``page``, ``min_fave_date``, ``max_fave_date``, the
  ``owner_name`` extra), favorites newest faved first, ``pages`` and ``total``
  as strings and ``date_faved`` as a string of unix seconds. Without
  ``nojsoncallback=1`` the JSON comes wrapped in ``jsonFlickrApi(...)``, as
  Flickr's does; a format other than ``json`` is code 111 (this fake speaks
  no XML).

Errors are Flickr's: inside an HTTP 200, ``{"stat": "fail", "code": N,
"message": ...}``. A refused signature is 96, missing OAuth parameters 97, an
unknown or revoked token 98, an unknown consumer key 100, an unknown method
112. Tests stage a documented error for one account with
:meth:`FakeFlickr.fail` (105 "Service currently unavailable"...), and a rate
limit with ``rate_limit``: 429 with a small HTML page and no ``Retry-After``,
the answer Flickr's users report (Flickr documents none).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from trickle.core.clock import clock
from trickle.testing.fake_likes import FakeOAuthAccount
from trickle.testing.fake_oauth1 import FakeOAuth1, Refused
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

REST_PATH = "/services/rest/"
OAUTH_PATH = "/services/oauth"
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 500
JSON_TYPE = "application/json; charset=utf-8"

SIGNATURE_PROBLEMS = {
    "parameter_absent": (97, "Missing signature"),
    "token_rejected": (98, "Invalid auth token"),
    "token_revoked": (98, "Invalid auth token"),
    "consumer_key_unknown": (100, "Invalid API Key (Key not found)"),
}
"""How Flickr's REST endpoint reports a refused OAuth request (anything else: 96)."""

TOO_MANY = (
    "<html><body><h1>429 Too Many Requests</h1>\n"
    "You have sent too many requests in a given amount of time.\n</body></html>\n"
)


@dataclass(frozen=True)
class FakePhoto:
    """A photo someone can fave; its owner is the creator who gets paid."""

    id: str
    owner: str
    ownername: str
    title: str
    secret: str = "a123456b78"  # noqa: S105 - Flickr's photo secret, part of its image URLs
    server: str = "65535"
    farm: int = 66

    def payload(self, faved: datetime, *, owner_name: bool) -> dict[str, object]:
        """The photo as ``flickr.favorites.getList`` lists it."""
        body: dict[str, object] = {
            "id": self.id,
            "owner": self.owner,
            "secret": self.secret,
            "server": self.server,
            "farm": self.farm,
            "title": self.title,
            "ispublic": 1,
            "isfriend": 0,
            "isfamily": 0,
            "date_faved": str(int(faved.timestamp())),
        }
        if owner_name:
            body["ownername"] = self.ownername
        return body


@dataclass
class _Faves:
    """One member's favorites, newest faved first, and an error staged for their calls."""

    faves: list[tuple[datetime, FakePhoto]] = field(default_factory=list)
    failing: tuple[int, str] | None = None


class FakeFlickr(FakeOAuth1):
    """A Flickr stand-in (see the module): add members, photos and faves, point the
    connector's ``base_url`` and ``oauth_base_url`` at it."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self._members: dict[str, _Faves] = {}  # by username
        self._nsids = itertools.count(10_000_001)
        self._photo_ids = itertools.count(52_000_000_001)

    # -- setting the scene -----------------------------------------------------

    def add_member(self, username: str, nsid: str | None = None) -> FakeOAuthAccount:
        """A Flickr member with an NSID (``10000001@N07``) and no favorites."""
        with self.lock:
            account = self.add_account(username)
            account.id = nsid or f"{next(self._nsids)}@N07"
            self._members[username] = _Faves()
            return account

    def photo(self, owner: str, title: str) -> FakePhoto:
        """A new photo by the member ``owner``."""
        with self.lock:
            member = self.accounts[owner]
            return FakePhoto(str(next(self._photo_ids)), member.id, owner, title)

    def fave(self, username: str, photo: FakePhoto, at: datetime | None = None) -> None:
        """``username`` faves ``photo`` at ``at`` (default: now on trickle's clock); faving it
        again moves it to its new time."""
        when = (at or clock.now()).astimezone(UTC).replace(microsecond=0)
        with self.lock:
            member = self._members[username]
            kept = [(t, p) for t, p in member.faves if p.id != photo.id]
            place = next((i for i, (t, _) in enumerate(kept) if t <= when), len(kept))
            kept.insert(place, (when, photo))
            member.faves = kept

    def unfave(self, username: str, photo_id: str) -> None:
        """``username`` removes a photo from their favorites."""
        with self.lock:
            member = self._members[username]
            member.faves = [(t, p) for t, p in member.faves if p.id != photo_id]

    def fail(self, username: str, code: int | None, message: str = "") -> None:
        """From now on every REST call for ``username`` answers ``stat: fail`` with ``code``
        (None: answers normally again)."""
        with self.lock:
            self._members[username].failing = None if code is None else (code, message)

    # -- the OAuth side at Flickr's paths ------------------------------------------

    @route("POST", f"{OAUTH_PATH}/request_token")
    def flickr_request_token(self, request: Request) -> Answer:
        """``POST /services/oauth/request_token``."""
        return self.request_token(request)

    @route("GET", f"{OAUTH_PATH}/authorize")
    def flickr_authorize(self, request: Request) -> Answer:
        """``GET /services/oauth/authorize?oauth_token=...&perms=read``."""
        return self.authorize(request)

    @route("POST", f"{OAUTH_PATH}/access_token")
    def flickr_access_token(self, request: Request) -> Answer:
        """``POST /services/oauth/access_token``: the token credentials, and who they are
        (``fullname``, ``user_nsid``, ``username``)."""
        answer = self.access_token(request)
        if not isinstance(answer, FakeResponse) or answer.status != 200:
            return answer
        fields = dict(parse_qsl(str(answer.body)))
        fields["fullname"] = fields.get("username", "").title()
        return FakeResponse(200, urlencode(fields), dict(answer.headers))

    # -- the REST endpoint ------------------------------------------------------------

    @route("GET", REST_PATH)
    def rest(self, request: Request) -> Answer:
        """``GET /services/rest/``: one signed call, answered as Flickr does."""
        query = request.query
        wrapped = query.get("nojsoncallback") != "1"
        if query.get("format") != "json":
            shown = query.get("format", "rest")
            return _stat_fail(111, f'Format "{shown}" not found', wrapped=False)
        try:
            signed = self.verify(request, "access")
        except Refused as refused:
            self._refused(request, refused)
            code, message = SIGNATURE_PROBLEMS.get(refused.problem, (96, "Invalid signature"))
            return _stat_fail(code, message, wrapped=wrapped)
        assert signed.access_token is not None
        account = self.accounts[signed.access_token.username]
        now = clock.now()
        if account.rate_limited_until is not None and account.rate_limited_until > now:
            return FakeResponse(429, TOO_MANY, {"Content-Type": "text/html"})
        with self.lock:
            failing = self._members[account.username].failing
        if failing is not None:
            return self.answer(account, request, _stat_fail(*failing, wrapped=wrapped))
        method = query.get("method", "")
        if method == "flickr.test.login":
            body: dict[str, object] = {
                "user": {"id": account.id, "username": {"_content": account.username}},
                "stat": "ok",
            }
        elif method == "flickr.favorites.getList":
            found = self._favorites(account, query, wrapped=wrapped)
            if isinstance(found, FakeResponse):
                return found
            body = found
        else:
            return _stat_fail(112, f'Method "{method}" not found', wrapped=wrapped)
        return self.answer(account, request, _stat_ok(body, wrapped=wrapped))

    def _favorites(
        self, caller: FakeOAuthAccount, query: Mapping[str, str], *, wrapped: bool
    ) -> dict[str, object] | FakeResponse:
        """The favorites page the query asks for (the caller's, or ``user_id``'s)."""
        wanted = query.get("user_id")
        username = caller.username
        if wanted is not None:
            match = [a.username for a in self.accounts.values() if a.id == wanted]
            if not match:
                return _stat_fail(1, "User not found", wrapped=wrapped)
            username = match[0]
        per_page = _number(query.get("per_page"), DEFAULT_PER_PAGE)
        per_page = min(MAX_PER_PAGE, max(1, per_page))
        page = max(1, _number(query.get("page"), 1))
        earliest = _number(query.get("min_fave_date"), 0)
        latest = _number(query.get("max_fave_date"), 0)
        owner_name = "owner_name" in (query.get("extras") or "").replace(" ", "").split(",")
        with self.lock:
            faves = list(self._members[username].faves)
        chosen = [
            (t, p)
            for t, p in faves
            if t.timestamp() >= earliest and (not latest or t.timestamp() <= latest)
        ]
        pages = math.ceil(len(chosen) / per_page)
        start = (page - 1) * per_page
        return {
            "photos": {
                "page": page,
                "pages": str(pages),
                "perpage": per_page,
                "total": str(len(chosen)),
                "photo": [
                    photo.payload(faved, owner_name=owner_name)
                    for faved, photo in chosen[start : start + per_page]
                ],
            },
            "stat": "ok",
        }


# Flickr's paths only: the made-up platform's /oauth/* and /api/* are not Flickr's.
FakeFlickr.routes = {
    key: handler for key, handler in FakeFlickr.routes.items() if key[1].startswith("/services/")
}


def _number(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.isdigit() and len(text) < 12 else default


def _stat_ok(body: dict[str, object], *, wrapped: bool) -> FakeResponse:
    return _json(body, wrapped=wrapped)


def _stat_fail(code: int, message: str, *, wrapped: bool) -> FakeResponse:
    return _json({"stat": "fail", "code": code, "message": message}, wrapped=wrapped)


def _json(body: dict[str, object], *, wrapped: bool) -> FakeResponse:
    text = json.dumps(body)
    if wrapped:
        return FakeResponse(200, f"jsonFlickrApi({text})", {"Content-Type": "text/javascript"})
    return FakeResponse(200, text, {"Content-Type": JSON_TYPE})
