"""500px's closed v1 API on 127.0.0.1, as its last documented reference describes it.

:class:`Fake500px` is :class:`~trickle.testing.fake_oauth1.FakeOAuth1` (the
three legs and every signature checked by RFC 5849's rules) at 500px's paths,
with its v1 API in place of the made-up likes API:

- ``POST /v1/oauth/request_token``, ``GET /v1/oauth/authorize``,
  ``POST /v1/oauth/access_token`` (whose answer is the token and its secret
  only, as 500px documented).
- ``GET /v1/users``: the token's owner in the full format.
- ``GET /v1/photos?feature=user_favorites&user_id=ID`` with ``page`` and
  ``rpp`` (default 20, at most 100): the user's favorites, the most recently
  favorited first, with ``current_page``, ``total_pages`` and ``total_items``.
  Other features are not served (400).

Errors are 500px's: a status and ``{"status": N, "error": "..."}``; a refused
OAuth request is ``401 Invalid OAuth Request``. ``deactivate()`` answers every
call as 500px has since 2018 (403, "Application is deactivated"); a rate limit
is 429 (500px documented only a monthly budget, and no answer for it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from trickle.core.clock import clock
from trickle.testing.fake_likes import FakeOAuthAccount
from trickle.testing.fake_oauth1 import FakeOAuth1, Refused
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

DEFAULT_RPP = 20
MAX_RPP = 100
DEACTIVATED = "Application is deactivated, please contact us by email: help@500px.com."


@dataclass(frozen=True)
class FakePhoto:
    """A photo someone can favorite; its photographer is the creator who gets paid."""

    id: int
    name: str
    user_id: int
    username: str

    def payload(self) -> dict[str, object]:
        """The photo in the short format, its photographer in the user's short format."""
        return {
            "id": self.id,
            "name": self.name,
            "description": "",
            "times_viewed": 12,
            "rating": 61.2,
            "created_at": "2017-05-02T09:14:03-04:00",
            "category": 0,
            "privacy": False,
            "width": 1200,
            "height": 800,
            "votes_count": 4,
            "favorites_count": 2,
            "comments_count": 0,
            "nsfw": False,
            "image_url": f"https://drscdn.500px.org/photo/{self.id}/m%3D900/v2",
            "user": {
                "id": self.user_id,
                "username": self.username,
                "firstname": self.username.title(),
                "lastname": "",
                "fullname": self.username.title(),
                "city": "",
                "country": "",
                "userpic_url": "https://pacdn.500px.org/userpic.png",
                "upgrade_status": 0,
            },
        }


def _error(status: int, message: str) -> FakeResponse:
    return FakeResponse(status, {"status": status, "error": message})


class Fake500px(FakeOAuth1):
    """A 500px v1 stand-in (see the module): add users, photos and favorites, point the
    connector's ``base_url`` at it."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self._favorites: dict[str, list[tuple[datetime, FakePhoto]]] = {}
        self._user_ids = itertools.count(386_047)
        self._photo_ids = itertools.count(4_910_421)
        self.deactivated = False

    # -- setting the scene -----------------------------------------------------

    def add_user(self, username: str, user_id: int | None = None) -> FakeOAuthAccount:
        """A 500px user with an integer id and no favorites."""
        with self.lock:
            account = self.add_account(username)
            account.id = str(user_id if user_id is not None else next(self._user_ids))
            self._favorites[username] = []
            return account

    def photo(self, photographer: str, name: str) -> FakePhoto:
        """A new photo by ``photographer``."""
        with self.lock:
            user = self.accounts[photographer]
            return FakePhoto(next(self._photo_ids), name, int(user.id), photographer)

    def favorite(self, username: str, photo: FakePhoto, at: datetime | None = None) -> None:
        """``username`` adds ``photo`` to their favorites at ``at`` (default: now)."""
        when = (at or clock.now()).astimezone(UTC)
        with self.lock:
            kept = [(t, p) for t, p in self._favorites[username] if p.id != photo.id]
            place = next((i for i, (t, _) in enumerate(kept) if t <= when), len(kept))
            kept.insert(place, (when, photo))
            self._favorites[username] = kept

    def deactivate(self) -> None:
        """500px deactivates every application, as it did in 2018: 403 from now on."""
        with self.lock:
            self.deactivated = True

    # -- the OAuth side at 500px's paths ---------------------------------------

    @route("POST", "/v1/oauth/request_token")
    def v1_request_token(self, request: Request) -> Answer:
        """``POST /v1/oauth/request_token``."""
        return self.request_token(request)

    @route("GET", "/v1/oauth/authorize")
    def v1_authorize(self, request: Request) -> Answer:
        """``GET /v1/oauth/authorize?oauth_token=...``: the signed-in user's answer."""
        return self.authorize(request)

    @route("POST", "/v1/oauth/access_token")
    def v1_access_token(self, request: Request) -> Answer:
        """``POST /v1/oauth/access_token``: the token and its secret, nothing more."""
        answer = self.access_token(request)
        if not isinstance(answer, FakeResponse) or answer.status != 200:
            return answer
        fields = dict(parse_qsl(str(answer.body)))
        kept = {k: fields[k] for k in ("oauth_token", "oauth_token_secret")}
        return FakeResponse(200, urlencode(kept), dict(answer.headers))

    # -- the API ---------------------------------------------------------------

    def _caller(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        if self.deactivated:
            return _error(403, DEACTIVATED)
        try:
            signed = self.verify(request, "access")
        except Refused as refused:
            self._refused(request, refused)
            return _error(401, "Invalid OAuth Request")
        assert signed.access_token is not None
        account = self.accounts[signed.access_token.username]
        until = account.rate_limited_until
        if until is not None and until > clock.now():
            return _error(429, "Too Many Requests")
        return account

    @route("GET", "/v1/users")
    def users(self, request: Request) -> Answer:
        """``GET /v1/users``: the token's owner."""
        account = self._caller(request)
        if isinstance(account, FakeResponse):
            return account
        body = {
            "user": {
                "id": int(account.id),
                "username": account.username,
                "firstname": account.username.title(),
                "lastname": "",
                "city": "",
                "country": "",
                "registration_date": "2012-02-09T02:27:16-05:00",
                "upgrade_status": 0,
                "locale": "en",
                "upload_limit": 20,
            }
        }
        return self.answer(account, request, FakeResponse(200, body))

    @route("GET", "/v1/photos")
    def photos(self, request: Request) -> Answer:
        """``GET /v1/photos?feature=user_favorites&user_id=ID``."""
        account = self._caller(request)
        if isinstance(account, FakeResponse):
            return account
        query = request.query
        if query.get("feature") != "user_favorites":
            return _error(400, "This fake serves the user_favorites feature only")
        owner = self._owner(query)
        if owner is None:
            return _error(404, "User not found")
        rpp = min(MAX_RPP, max(1, _number(query.get("rpp"), DEFAULT_RPP)))
        page = max(1, _number(query.get("page"), 1))
        with self.lock:
            favorites = list(self._favorites[owner])
        start = (page - 1) * rpp
        body = {
            "feature": "user_favorites",
            "filters": {"category": False, "exclude": False, "user_id": int(query["user_id"])},
            "current_page": page,
            "total_pages": math.ceil(len(favorites) / rpp),
            "total_items": len(favorites),
            "photos": [photo.payload() for _, photo in favorites[start : start + rpp]],
        }
        return self.answer(account, request, FakeResponse(200, body))

    def _owner(self, query: Mapping[str, str]) -> str | None:
        wanted = query.get("user_id", "")
        with self.lock:
            return next((a.username for a in self.accounts.values() if a.id == wanted), None)


# 500px's paths only: the made-up platform's /oauth/* and /api/* are not 500px's.
Fake500px.routes = {key: h for key, h in Fake500px.routes.items() if key[1].startswith("/v1/")}


def _number(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.isdigit() and len(text) < 9 else default
