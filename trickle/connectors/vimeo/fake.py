"""Vimeo on 127.0.0.1, for the connector's tests, the linking tests and the demo.

Everything is on one origin, as Vimeo's API is on ``api.vimeo.com``, with its
real paths and shapes:

- ``GET /oauth/authorize`` (the authorization code; ``scope`` among Vimeo's,
  ``public`` unless asked; PKCE neither required nor refused) and ``POST
  /oauth/access_token`` (the app's id and secret in HTTP Basic; the answer
  Vimeo's ``auth``: ``access_token``, ``token_type`` ``bearer``, ``scope``;
  tokens that do not expire and no refresh token), and ``DELETE /tokens``
  (the bearer token revoked, 204). It is
  :class:`~trickle.testing.fake_authorize.FakeAuthorizationServer` with Vimeo's
  paths and scopes.
- ``GET /me`` (the ``user``) and ``GET /me/likes`` (``video`` objects in the
  collection wrapper, ``page`` and ``per_page`` up to 100, ``paging.next``
  relative, ``metadata.interactions.like.added_time``), with the
  ``X-RateLimit-Limit/-Remaining/-Reset`` headers on every answer. A refused
  token is ``401`` with Vimeo's ``error`` body (``error``, ``link``,
  ``developer_message``, ``error_code``); a rate-limited member a ``429`` with
  no requests remaining until the reset.

Tests and the demo stage members (:meth:`FakeVimeo.add_account`: a ``/users/N``
URI and a profile link), videos (:meth:`FakeVimeo.upload`), likes
(:meth:`FakeVimeo.like_video`), rate limits, revocations and rewritten answers,
as on every fake OAuth platform.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack

from trickle.core.clock import clock
from trickle.testing.fake_authorize import AuthorizeOptions, FakeAuthorizationServer
from trickle.testing.fake_likes import LIKES_PATH as GENERIC_LIKES_PATH
from trickle.testing.fake_likes import ME_PATH as GENERIC_ME_PATH
from trickle.testing.fake_likes import FakeLike, FakeOAuthAccount
from trickle.testing.fake_oauth import REVOKE_PATH, TOKEN_PATH, bearer
from trickle.testing.fake_pages import with_query
from trickle.testing.fakeplatform import Answer, FakeResponse, Request, route

ACCESS_TOKEN_PATH = "/oauth/access_token"  # noqa: S105 - a path
TOKENS_PATH = "/tokens"
ME_PATH = "/me"
LIKES_PATH = "/me/likes"
VIMEO_SCOPES = (
    "public", "private", "purchased", "create", "edit", "delete", "interact", "upload",
    "promo_codes", "video_files", "stats", "email", "purchase",
)  # fmt: skip
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25
RATE_LIMIT = 500
"""Requests a member may make per window here."""
WINDOW = timedelta(minutes=15)
VIDEO_TYPE = "application/vnd.vimeo.video+json"
USER_TYPE = "application/vnd.vimeo.user+json"
ERROR_TYPE = "application/vnd.vimeo.error+json"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def vimeo_error(status: int, error: str, code: int, developer: str) -> FakeResponse:
    """Vimeo's ``error`` body."""
    body = {
        "error": error,
        "link": None,
        "developer_message": developer,
        "error_code": code,
    }
    return FakeResponse(status, body, {"Content-Type": ERROR_TYPE})


@dataclass(frozen=True)
class FakeVideo:
    """A video a member uploaded: what a like pays its owner for."""

    uri: str
    name: str
    owner: FakeOAuthAccount
    created_time: datetime = datetime(2024, 3, 5, 21, 4, 47, tzinfo=UTC)


class FakeVimeo(FakeAuthorizationServer):
    """Vimeo's API and authorization server on one origin (see the module)."""

    scope: tuple[str, ...] = ("public",)
    """Vimeo's scope when none is asked for."""

    def __init__(self, **options: Unpack[AuthorizeOptions]) -> None:
        options.setdefault("require_pkce", False)
        options.setdefault("access_token_lifetime", None)
        options.setdefault("refresh_tokens", False)
        super().__init__(**options)
        self.videos: dict[str, FakeVideo] = {}  # by URI
        self.revoked_tokens = 0
        """Tokens revoked through ``DELETE /tokens``."""
        self._windows: dict[str, tuple[datetime, int]] = {}  # per member: window start, requests
        self._member_numbers = itertools.count(152184)
        self._video_numbers = itertools.count(258684937)

    @property
    def offered_scopes(self) -> tuple[str, ...]:
        """Vimeo's scopes."""
        return VIMEO_SCOPES

    def covers(self, granted: Iterable[str], scope: str) -> bool:
        return scope in set(granted)

    # -- setting the scene -----------------------------------------------------

    def add_account(self, username: str) -> FakeOAuthAccount:
        """A Vimeo member whose profile is ``vimeo.com/<username>``, with a ``/users/N`` URI."""
        with self.lock:
            account = FakeOAuthAccount(id=f"/users/{next(self._member_numbers)}", username=username)
            self.accounts[username] = account
            return account

    def upload(self, username: str, name: str) -> FakeVideo:
        """``username`` uploads a video called ``name``."""
        with self.lock:
            video = FakeVideo(f"/videos/{next(self._video_numbers)}", name, self.accounts[username])
            self.videos[video.uri] = video
            return video

    def like_video(self, username: str, video: FakeVideo, at: datetime | None = None) -> None:
        """``username`` likes ``video`` at ``at`` (default: now on trickle's clock)."""
        with self.lock:
            self.videos[video.uri] = video
        self.like(username, video.uri, at=at, author=video.owner.username)

    # -- the API's answers -------------------------------------------------------

    def authenticate(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The bearer token's member, or Vimeo's 401."""
        found = super().authenticate(request)
        if isinstance(found, FakeOAuthAccount):
            return found
        return vimeo_error(
            401,
            "You must provide a valid authenticated access token.",
            8003,
            "The access token is invalid, expired or revoked.",
        )

    def api_account(self, request: Request) -> FakeOAuthAccount | FakeResponse:
        """The request's member, unless refused (401) or over the limit (429)."""
        account = self.authenticate(request)
        if isinstance(account, FakeResponse):
            return account
        until = account.rate_limited_until
        if until is not None and until > clock.now():
            response = vimeo_error(
                429, "Too many API requests. Please try again later.", 9000, "Rate limit hit."
            )
            response.headers.update(self._limits(account, remaining=0, reset=until))
            return response
        return account

    def _limits(
        self,
        account: FakeOAuthAccount,
        *,
        remaining: int | None = None,
        reset: datetime | None = None,
    ) -> dict[str, str]:
        """The rate-limit headers of an answer to ``account`` (counting this request)."""
        now = clock.now()
        with self.lock:
            start, used = self._windows.get(account.username, (now, 0))
            if now >= start + WINDOW:
                start, used = now, 0
            used += 1
            self._windows[account.username] = (start, used)
        left = max(0, RATE_LIMIT - used) if remaining is None else remaining
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(left),
            "X-RateLimit-Reset": _iso(reset or start + WINDOW),
        }

    def _answer(self, account: FakeOAuthAccount, request: Request, body: Any, kind: str) -> Answer:
        headers = {"Content-Type": kind, **self._limits(account)}
        return self.answer(account, request, FakeResponse(200, body, headers))

    # -- api.vimeo.com/oauth -------------------------------------------------------

    @route("POST", ACCESS_TOKEN_PATH)
    def access_token_endpoint(self, request: Request) -> Answer:
        """``POST /oauth/access_token``: the token endpoint, with Vimeo's ``auth`` answer."""
        answer = self.token(request)
        body = answer.body if isinstance(answer, FakeResponse) else None
        if (
            not isinstance(answer, FakeResponse)
            or answer.status != 200
            or not isinstance(body, dict)
        ):
            return answer
        with self.lock:
            issued = self._access.get(str(body.get("access_token")))
        if issued is None:
            return answer
        auth = {**body, "token_type": "bearer", "user": self._user_json(issued.grant.account)}
        headers = {**answer.headers, "Content-Type": "application/vnd.vimeo.auth+json"}
        return FakeResponse(200, auth, headers)

    @route("DELETE", TOKENS_PATH)
    def delete_token(self, request: Request) -> Answer:
        """``DELETE /tokens``: the bearer token the request carries is revoked."""
        account = self.authenticate(request)
        if isinstance(account, FakeResponse):
            return account
        with self.lock:
            issued = self._access.get(bearer(request) or "")
            if issued is not None:
                issued.grant.revoked = True
                self.revoked_tokens += 1
        return FakeResponse(204, b"")

    # -- api.vimeo.com -------------------------------------------------------------

    @route("GET", ME_PATH)
    def vimeo_me(self, request: Request) -> Answer:
        """``GET /me``: the token owner's ``user``."""
        account = self.api_account(request)
        if isinstance(account, FakeResponse):
            return account
        return self._answer(account, request, self._user_json(account), USER_TYPE)

    @route("GET", LIKES_PATH)
    def vimeo_likes(self, request: Request) -> Answer:
        """``GET /me/likes?page=N&per_page=M``: liked videos, most recently liked first."""
        account = self.api_account(request)
        if isinstance(account, FakeResponse):
            return account
        try:
            page = int(request.query.get("page", "1"))
            per_page = int(request.query.get("per_page", DEFAULT_PER_PAGE))
        except ValueError:
            return vimeo_error(400, "Invalid parameters.", 2204, "page and per_page are numbers")
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            return vimeo_error(
                400, "Invalid parameters.", 2204, f"per_page is at most {MAX_PER_PAGE}"
            )
        with self.lock:
            likes = list(account.likes)
        total = len(likes)
        last = max(1, -(-total // per_page))
        shown = likes[(page - 1) * per_page : page * per_page]

        def at(number: int) -> str:
            return with_query(LIKES_PATH, {"page": str(number), "per_page": str(per_page)})

        body = {
            "total": total,
            "page": page,
            "per_page": per_page,
            "paging": {
                "next": at(page + 1) if page < last else None,
                "previous": at(page - 1) if page > 1 else None,
                "first": at(1),
                "last": at(last),
            },
            "data": [self._video_json(like) for like in shown],
        }
        return self._answer(account, request, body, VIDEO_TYPE)

    # -- Vimeo's objects -----------------------------------------------------------

    def _user_json(self, account: FakeOAuthAccount) -> dict[str, Any]:
        return {
            "uri": account.id,
            "name": account.username.capitalize(),
            "link": f"https://vimeo.com/{account.username}",
            "capabilities": {"hasLiveSubscription": False},
            "location": "",
            "gender": "",
            "bio": None,
            "short_bio": None,
            "created_time": "2014-03-24T17:37:11+00:00",
            "pictures": {"uri": None, "active": False, "type": "default", "sizes": []},
            "websites": [],
            "metadata": {"connections": {}, "interactions": {}},
            "location_details": None,
            "skills": [],
            "available_for_hire": False,
            "can_work_remotely": False,
            "resource_key": account.id.rsplit("/", 1)[-1].rjust(40, "0"),
            "account": "basic",
        }

    def _video_json(self, like: FakeLike) -> dict[str, Any]:
        with self.lock:
            video = self.videos[like.item_id]
        number = video.uri.rsplit("/", 1)[-1]
        return {
            "uri": video.uri,
            "name": video.name,
            "description": None,
            "type": "video",
            "link": f"https://vimeo.com/{number}",
            "duration": 210,
            "width": 1920,
            "height": 1080,
            "language": None,
            "created_time": _iso(video.created_time),
            "modified_time": _iso(video.created_time),
            "release_time": _iso(video.created_time),
            "content_rating": ["safe"],
            "license": None,
            "privacy": {
                "view": "anybody",
                "embed": "public",
                "download": False,
                "add": True,
                "comments": "anybody",
            },
            "pictures": {"uri": None, "active": False, "type": "default", "sizes": []},
            "tags": [],
            "stats": {"plays": 12},
            "categories": [],
            "metadata": {
                "connections": {},
                "interactions": {
                    "like": {
                        "added": True,
                        "added_time": _iso(like.liked_at),
                        "options": ["GET", "PUT", "DELETE"],
                        "uri": f"/me/likes/{number}",
                    },
                    "watchlater": {"added": False, "added_time": None, "options": [], "uri": ""},
                    "report": {"options": ["POST"], "reason": [], "uri": f"{video.uri}/report"},
                },
            },
            "user": self._user_json(video.owner),
            "resource_key": number.rjust(40, "0"),
            "status": "available",
        }


# The generic fake's routes are not Vimeo's: this fake answers Vimeo's paths only.
for _unserved in (("POST", TOKEN_PATH), ("POST", REVOKE_PATH), ("GET", GENERIC_ME_PATH),
                  ("GET", GENERIC_LIKES_PATH)):  # fmt: skip
    FakeVimeo.routes.pop(_unserved, None)
