"""SoundCloud on 127.0.0.1, for the connector's tests, the linking tests and the demo.

One fake serves both of SoundCloud's hosts on one origin (point the
connector's ``base_url`` and ``oauth_base_url`` at it), with their real paths
and shapes:

- ``secure.soundcloud.com``: ``GET /authorize`` (the authorization code with
  PKCE S256, required), ``POST /oauth/token`` (a form; the client's id and
  secret as form fields, SoundCloud's one client authentication; the
  ``authorization_code`` and ``refresh_token`` grants; access tokens that last
  3599 seconds, SoundCloud's ``ExpiringToken`` example, and single-use refresh
  tokens; errors as ``400 {"error": "invalid_grant"}``), and ``POST /sign-out``
  (a JSON ``{"access_token": ...}``: the session ends, its refresh token too).
  It is :class:`~trickle.testing.fake_authorize.FakeAuthorizationServer` with
  SoundCloud's paths and no scopes (SoundCloud has none).
- ``api.soundcloud.com``: ``GET /me`` (the ``Me`` schema) and ``GET
  /me/likes/tracks`` (``Tracks``: ``collection`` and an absolute ``next_href``
  with an opaque ``cursor`` while more follow, ``limit`` 1 to 200, 50 unless
  given; without ``linked_partitioning=true`` the deprecated bare list; the
  ``access`` filter), both taking ``Authorization: OAuth <token>`` only. A
  refused token is ``401`` with SoundCloud's ``Error`` body (``code``,
  ``message``, ``link``); a rate-limited account gets the ``429`` of the
  rate-limits page, its reset in ``errors[].meta.reset_time`` and no header.

Tests and the demo stage accounts (:meth:`FakeSoundCloud.add_account`: a user
with a ``soundcloud:users:N`` URN), tracks (:meth:`FakeSoundCloud.upload`),
likes (:meth:`FakeSoundCloud.like_track`), rate limits, revocations, expired
access tokens and rewritten answers, as on every fake OAuth platform.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack

from trickle.core.clock import clock
from trickle.testing.fake_authorize import AUTHORIZE_PATH, AuthorizeOptions, FakeAuthorizationServer
from trickle.testing.fake_likes import LIKES_PATH as GENERIC_LIKES_PATH
from trickle.testing.fake_likes import ME_PATH as GENERIC_ME_PATH
from trickle.testing.fake_likes import FakeOAuthAccount
from trickle.testing.fake_oauth import REVOKE_PATH, TOKEN_PATH
from trickle.testing.fake_pages import with_query
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

SC_AUTHORIZE_PATH = "/authorize"
SC_TOKEN_PATH = TOKEN_PATH  # /oauth/token, as SoundCloud's
SIGN_OUT_PATH = "/sign-out"
ME_PATH = "/me"
LIKES_PATH = "/me/likes/tracks"
TOKEN_LIFETIME = timedelta(seconds=3599)
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
ACCESS_LEVELS = ("playable", "preview", "blocked")
JSON_TYPE = "application/json; charset=utf-8"
DOCS_LINK = "https://developers.soundcloud.com/docs/api/explorer/open-api"
RATE_LIMITS_LINK = "https://developers.soundcloud.com/docs/api/rate-limits#errors"
SC_TIME = "%Y/%m/%d %H:%M:%S +0000"
"""How SoundCloud writes times (``created_at``, ``reset_time``)."""


@dataclass(frozen=True)
class FakeTrack:
    """A track someone uploaded: what a like pays its uploader for."""

    urn: str
    title: str
    permalink: str
    owner: FakeOAuthAccount
    access: str = "playable"
    created_at: datetime = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def sc_error(status: int, message: str, link: str = DOCS_LINK) -> FakeResponse:
    """SoundCloud's ``Error`` body (``code``, ``message``, ``link``)."""
    return FakeResponse(status, {"code": status, "message": message, "link": link})


class FakeSoundCloud(FakeAuthorizationServer):
    """SoundCloud's API and its authorization server on one origin (see the module)."""

    scope: tuple[str, ...] = ()
    """SoundCloud has no scopes: a grant is for everything the user may do."""

    def __init__(self, **options: Unpack[AuthorizeOptions]) -> None:
        options.setdefault("access_token_lifetime", TOKEN_LIFETIME)
        options.setdefault("require_pkce", True)
        super().__init__(**options)
        self.tracks: dict[str, FakeTrack] = {}  # by URN
        self.sign_outs = 0
        """Sessions ended through ``POST /sign-out``."""
        self._user_numbers = itertools.count(948745750)
        self._track_numbers = itertools.count(308946187)

    # -- setting the scene -----------------------------------------------------

    def add_account(self, username: str) -> FakeOAuthAccount:
        """A SoundCloud user whose permalink is ``username``, with a user URN, no likes yet."""
        with self.lock:
            account = FakeOAuthAccount(
                id=f"soundcloud:users:{next(self._user_numbers)}", username=username
            )
            self.accounts[username] = account
            return account

    def upload(self, username: str, title: str, *, access: str = "playable") -> FakeTrack:
        """``username`` uploads a track called ``title``."""
        with self.lock:
            owner = self.accounts[username]
            number = next(self._track_numbers)
            track = FakeTrack(
                f"soundcloud:tracks:{number}", title, f"{title.lower().replace(' ', '-')}-{number}",
                owner, access,
            )  # fmt: skip
            self.tracks[track.urn] = track
            return track

    def like_track(self, username: str, track: FakeTrack, at: datetime | None = None) -> None:
        """``username`` likes ``track`` at ``at`` (default: now on trickle's clock)."""
        with self.lock:
            self.tracks[track.urn] = track
        self.like(username, track.urn, at=at, author=track.owner.username)

    def unlike(self, username: str, track: FakeTrack) -> None:
        """``username`` takes their like of ``track`` back."""
        with self.lock:
            account = self.accounts[username]
            account.likes = [like for like in account.likes if like.item_id != track.urn]

    # -- how a request says whose it is ----------------------------------------

    @staticmethod
    def _as_bearer(request: Request) -> Request | None:
        """The request with its ``OAuth`` token presented the way the grant store reads tokens
        (None: no ``Authorization: OAuth <token>``; SoundCloud takes no other scheme)."""
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme != "OAuth" or not token.strip():
            return None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        headers["Authorization"] = f"Bearer {token.strip()}"
        return replace(request, headers=headers)

    def authenticate(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The account of the request's ``OAuth`` token, or SoundCloud's 401."""
        presented = self._as_bearer(request)
        found = super().authenticate(presented) if presented is not None else None
        if isinstance(found, FakeOAuthAccount):
            return found
        return sc_error(401, "invalid_token")

    def account_key(self, request: Request) -> str | None:
        """Requests are counted per user, whichever of their tokens they carry."""
        if request.path == SC_TOKEN_PATH:
            return super().account_key(request)
        presented = self._as_bearer(request)
        return super().account_key(presented) if presented is not None else None

    def api_account(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The request's account, unless refused (401) or rate limited (SoundCloud's 429)."""
        account = self.authenticate(request)
        if isinstance(account, FakeResponse):
            return account
        until = account.rate_limited_until
        if until is not None and until > clock.now():
            reset = until.astimezone(UTC) + timedelta(microseconds=999_999)
            body = {
                "errors": [
                    {
                        "meta": {
                            "rate_limit": {
                                "group": "plays",
                                "max_nr_of_requests": 15000,
                                "time_window": "PT24H",
                            },
                            "remaining_requests": 0,
                            "reset_time": reset.replace(microsecond=0).strftime(SC_TIME),
                        }
                    }
                ]
            }
            return FakeResponse(429, body)
        return account

    # -- secure.soundcloud.com ---------------------------------------------------

    @route("GET", SC_AUTHORIZE_PATH)
    def sc_authorize(self, request: Request) -> Answer:
        """``GET /authorize``: SoundCloud's authorization endpoint."""
        return self.authorize(request)

    @route("POST", SIGN_OUT_PATH)
    def sign_out_endpoint(self, request: Request) -> Answer:
        """``POST /sign-out`` with ``{"access_token": ...}``: end that token's session."""
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return sc_error(400, "the body is not JSON")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return sc_error(400, "access_token is missing")
        with self.lock:
            issued = self._access.get(token)
            if issued is None or not issued.live(clock.now()):
                return sc_error(401, "invalid_token")
            issued.grant.revoked = True
            self.sign_outs += 1
        return FakeResponse(200, {}, {"Content-Type": JSON_TYPE})

    # -- api.soundcloud.com ------------------------------------------------------

    @route("GET", ME_PATH)
    def sc_me(self, request: Request) -> Answer:
        """``GET /me``: the token owner's ``Me``."""
        account = self.api_account(request)
        if isinstance(account, FakeResponse):
            return account
        with self.lock:
            likes = len(account.likes)
        body = {
            **self._user_json(account),
            "likes_count": likes,
            "public_favorites_count": likes,
            "online": False,
            "locale": None,
            "primary_email_confirmed": True,
            "private_playlists_count": 0,
            "private_tracks_count": 0,
            "quota": {
                "unlimited_upload_quota": False,
                "upload_seconds_used": 0,
                "upload_seconds_left": 10800,
            },
        }
        return self.answer(account, request, FakeResponse(200, body, {"Content-Type": JSON_TYPE}))

    @route("GET", LIKES_PATH)
    def sc_likes(self, request: Request) -> Answer:
        """``GET /me/likes/tracks``: liked tracks, most recently liked first."""
        account = self.api_account(request)
        if isinstance(account, FakeResponse):
            return account
        try:
            limit = int(request.query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return sc_error(400, "limit must be an integer")
        if not 1 <= limit <= MAX_LIMIT:
            return sc_error(400, f"limit must be between 1 and {MAX_LIMIT}")
        access = tuple(request.query.get("access", ",".join(ACCESS_LEVELS)).split(","))
        if not set(access) <= set(ACCESS_LEVELS):
            return sc_error(400, "access must be playable, preview or blocked")
        with self.lock:
            liked = [self.tracks[like.item_id] for like in account.likes]
        liked = [track for track in liked if track.access in access]
        partitioned = request.query.get("linked_partitioning") in ("true", "1")
        start = 0
        cursor = request.query.get("cursor")
        if cursor is not None:
            after = _read_cursor(cursor)
            position = next((i for i, t in enumerate(liked) if t.urn == after), None)
            if position is None:
                return sc_error(400, "the cursor is not valid")
            start = position + 1
        page = liked[start : start + limit]
        tracks = [self._track_json(track) for track in page]
        if not partitioned:  # the deprecated list output
            response = FakeResponse(200, tracks, {"Content-Type": JSON_TYPE})
            return self.answer(account, request, response)
        body: dict[str, Any] = {"collection": tracks}
        if start + limit < len(liked):
            params = {
                "limit": str(limit),
                "cursor": _cursor(page[-1].urn),
                "linked_partitioning": "true",
                "access": ",".join(access),
            }
            body["next_href"] = with_query(self.base_url + LIKES_PATH, params)
        response = FakeResponse(200, body, {"Content-Type": JSON_TYPE})
        return self.answer(account, request, response)

    # -- SoundCloud's objects ----------------------------------------------------

    def _user_json(self, account: FakeOAuthAccount) -> dict[str, Any]:
        number = account.id.rsplit(":", 1)[-1]
        return {
            "avatar_url": "https://i1.sndcdn.com/avatars-000000000000-large.jpg",
            "city": None,
            "country": None,
            "created_at": "2018/01/01 12:08:25 +0000",
            "description": None,
            "discogs_name": None,
            "first_name": account.username.capitalize(),
            "followers_count": 0,
            "followings_count": 0,
            "full_name": account.username.capitalize(),
            "urn": account.id,
            "kind": "user",
            "last_modified": "2020/01/03 12:08:25 +0000",
            "last_name": "",
            "permalink": account.username,
            "permalink_url": f"https://soundcloud.com/{account.username}",
            "plan": "Free",
            "playlist_count": 0,
            "reposts_count": 0,
            "track_count": sum(1 for t in self.tracks.values() if t.owner is account),
            "uri": f"https://api.soundcloud.com/users/{number}",
            "username": account.username.capitalize(),
            "website": None,
            "website_title": None,
        }

    def _track_json(self, track: FakeTrack) -> dict[str, Any]:
        number = track.urn.rsplit(":", 1)[-1]
        owner = track.owner.username
        return {
            "kind": "track",
            "artwork_url": None,
            "comment_count": 0,
            "commentable": True,
            "created_at": track.created_at.strftime(SC_TIME),
            "description": None,
            "download_count": 0,
            "downloadable": False,
            "duration": 180000,
            "favoritings_count": 1,
            "genre": "Electronic",
            "urn": track.urn,
            "license": "all-rights-reserved",
            "permalink_url": f"https://soundcloud.com/{owner}/{track.permalink}",
            "playback_count": 12,
            "reposts_count": 0,
            "sharing": "public",
            "streamable": True,
            "tag_list": "",
            "title": track.title,
            "uri": f"https://api.soundcloud.com/tracks/{number}",
            "user": self._user_json(track.owner),
            "user_favorite": True,
            "waveform_url": f"https://wave.sndcdn.com/{number}_m.png",
            "access": track.access,
        }


def _cursor(urn: str) -> str:
    return base64.urlsafe_b64encode(urn.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


# The generic fake's routes are not SoundCloud's: this fake answers SoundCloud's paths only.
for _unserved in (
    ("GET", AUTHORIZE_PATH),
    ("POST", REVOKE_PATH),
    ("GET", GENERIC_ME_PATH),
    ("GET", GENERIC_LIKES_PATH),
):
    FakeSoundCloud.routes.pop(_unserved, None)
