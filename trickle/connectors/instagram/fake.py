"""Instagram's web endpoints, as instaloader calls them, on 127.0.0.1.

For the connector's tests, the linking tests and the demo. It serves what
instaloader 4.16 sends and reads (see :mod:`.payloads` and :mod:`.login`):

- ``GET /`` sets the ``csrftoken`` cookie, as the start page does;
- ``POST /api/v1/web/accounts/login/ajax/`` checks the ``X-CSRFToken``, the
  username and the ``#PWD_INSTAGRAM_BROWSER:0:{time}:{password}`` form, and
  answers with the session's cookies (``sessionid``, ``ds_user_id``,
  ``csrftoken``), a wrong password, a two-factor request or a checkpoint;
- ``POST /accounts/login/ajax/two_factor/`` takes the code;
- ``GET /graphql/query`` answers instaloader's viewer query and its saved
  posts query (``edge_saved_media``, newest save first, ``first``/``after``);
- ``GET /api/v1/feed/timeline/`` answers the home feed (``feed_items``).

Sessions live in the ``sessionid`` cookie. A session logged out is sent to
the login page (302), as Instagram does; a rate limit is a 429 or a 401, both
with "Please wait a few minutes before you try again."; tests rewrite a user's
answers (:meth:`FakeInstagram.tamper`) or put an error in a 200
(:meth:`FakeInstagram.fail_in_body`).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie

from trickle.core.clock import clock
from trickle.testing.fakeplatform import Answer, FakePlatform, FakeResponse, Request, route

VIEWER_QUERY = "d6f4427fbe92d846298cf93df0b937d3"
SAVED_QUERY = "f883d95537fbcd400f466f63d42bd8a1"
SLOW_DOWN = "Please wait a few minutes before you try again."
_PASSWORD = re.compile(r"^#PWD_INSTAGRAM_BROWSER:0:(\d+):(.*)$", re.DOTALL)


@dataclass(frozen=True)
class FakePost:
    """A post someone can save: its shortcode, and its owner (the creator paid)."""

    shortcode: str
    owner_id: int
    owner_username: str
    media_id: int = 0

    def node(self, *, liked: bool) -> dict[str, object]:
        """The post as a GraphQL node of ``edge_saved_media`` (ids as strings)."""
        return {
            "__typename": "GraphImage",
            "id": str(self.media_id or abs(hash(self.shortcode)) % 10**18),
            "shortcode": self.shortcode,
            "display_url": f"https://scontent.cdninstagram.com/{self.shortcode}.jpg",
            "is_video": False,
            "taken_at_timestamp": 1767225600,
            "owner": {"id": str(self.owner_id), "username": self.owner_username},
            "viewer_has_liked": liked,
            "edge_media_preview_like": {"count": 3},
        }

    def feed_media(self, *, liked: bool) -> dict[str, object]:
        """The post as a home feed item's ``media_or_ad`` (the app's shape: numeric ids)."""
        return {
            "pk": self.media_id or abs(hash(self.shortcode)) % 10**18,
            "code": self.shortcode,
            "media_type": 1,
            "taken_at": 1767225600,
            "has_liked": liked,
            "like_count": 3,
            "caption": None,
            "user": {
                "pk": self.owner_id,
                "username": self.owner_username,
                "full_name": self.owner_username.title(),
                "is_private": False,
                "profile_pic_url": "https://scontent.cdninstagram.com/p.jpg",
            },
        }


@dataclass
class FakeInstagramUser:
    """An Instagram account: its password, its sessions, what it saved and liked."""

    id: int
    username: str
    password: str
    two_factor_code: str | None = None
    checkpoint: bool = False
    sessions: set[str] = field(default_factory=set)
    saved: list[tuple[datetime, FakePost]] = field(default_factory=list)  # newest first
    liked: set[str] = field(default_factory=set)
    feed: list[FakePost] = field(default_factory=list)
    rate_limited_until: datetime | None = None
    rate_limit_status: int = 429
    rewrite: Callable[[Request, FakeResponse], Answer] | None = None
    failing: dict[str, str] = field(default_factory=dict)  # query -> message in a 200


class FakeInstagram(FakePlatform):
    """Instagram's web endpoints on 127.0.0.1 (see the module); ``base_url`` is the
    connector's ``base_url``."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.users: dict[str, FakeInstagramUser] = {}
        self._by_session: dict[str, FakeInstagramUser] = {}
        self._pending: dict[str, tuple[FakeInstagramUser, str]] = {}  # identifier -> user, csrf
        self._next_id = 4_000_000_000
        self.logins = 0
        """Successful logins so far."""

    # -- setting the scene -------------------------------------------------------

    def add_user(
        self,
        username: str,
        password: str,
        *,
        user_id: int | None = None,
        two_factor_code: str | None = None,
    ) -> FakeInstagramUser:
        """Create an account that logs in with ``password`` (and ``two_factor_code``)."""
        with self.lock:
            if user_id is None:
                self._next_id += 1
                user_id = self._next_id
            user = FakeInstagramUser(user_id, username, password, two_factor_code)
            self.users[username] = user
            return user

    def new_session(self, username: str) -> str:
        """A session for ``username``, as a login in a browser makes one (its sessionid)."""
        with self.lock:
            user = self.users[username]
            session_id = f"{user.id}%3A{secrets.token_urlsafe(16)}%3A27"
            user.sessions.add(session_id)
            self._by_session[session_id] = user
            return session_id

    def save(self, username: str, post: FakePost, at: datetime | None = None) -> None:
        """``username`` saves ``post`` at ``at`` (default: now on trickle's clock)."""
        when = (at or clock.now()).astimezone(UTC)
        with self.lock:
            user = self.users[username]
            kept = [s for s in user.saved if s[1].shortcode != post.shortcode]
            kept.append((when, post))
            kept.sort(key=lambda s: s[0], reverse=True)
            user.saved = kept

    def like_in_feed(self, username: str, post: FakePost) -> None:
        """``post`` shows in ``username``'s home feed, liked by them."""
        with self.lock:
            user = self.users[username]
            user.liked.add(post.shortcode)
            user.feed.insert(0, post)

    def show_in_feed(self, username: str, post: FakePost) -> None:
        """``post`` shows in ``username``'s home feed, not liked."""
        with self.lock:
            self.users[username].feed.insert(0, post)

    def log_out(self, username: str) -> None:
        """Every session of ``username`` ends: their requests are sent to the login page."""
        with self.lock:
            user = self.users[username]
            for session_id in user.sessions:
                self._by_session.pop(session_id, None)
            user.sessions.clear()

    def require_checkpoint(self, username: str) -> None:
        """Logins of ``username`` must be confirmed at a checkpoint first."""
        with self.lock:
            self.users[username].checkpoint = True

    def rate_limit(self, username: str, until: datetime, status: int = 429) -> None:
        """``username``'s requests are refused with "please wait" until ``until``."""
        with self.lock:
            user = self.users[username]
            user.rate_limited_until = until
            user.rate_limit_status = status

    def tamper(
        self, username: str, rewrite: Callable[[Request, FakeResponse], Answer] | None
    ) -> None:
        """Pass every answer to ``username``'s logged-in requests through ``rewrite``."""
        with self.lock:
            self.users[username].rewrite = rewrite

    def fail_in_body(self, username: str, query: str, message: str) -> None:
        """Answer ``username``'s ``query`` (a query hash, or ``feed``) with a 200 whose body
        is ``{"status": "fail", "message": message}``."""
        with self.lock:
            self.users[username].failing[query] = message

    # -- serving -------------------------------------------------------------------

    def account_key(self, request: Request) -> str | None:
        return _cookies(request).get("sessionid")

    def _logged_in(self, request: Request) -> FakeInstagramUser | FakeResponse:
        session_id = _cookies(request).get("sessionid", "")
        with self.lock:
            user = self._by_session.get(session_id)
        if user is None:
            return FakeResponse(
                302, b"", {"Location": "https://www.instagram.com/accounts/login/?next=%2F"}
            )
        until = user.rate_limited_until
        if until is not None and clock.now() < until:
            return FakeResponse(
                user.rate_limit_status,
                {"message": SLOW_DOWN, "require_login": False, "status": "fail"},
            )
        return user

    def _answer(self, user: FakeInstagramUser, request: Request, response: FakeResponse) -> Answer:
        rewrite = user.rewrite
        return rewrite(request, response) if rewrite is not None else response

    @route("GET", "/")
    def get_home(self, request: Request) -> Answer:
        csrf = secrets.token_urlsafe(24)
        return FakeResponse(
            200,
            "<!DOCTYPE html><html><body>Instagram</body></html>",
            {
                "Content-Type": "text/html; charset=utf-8",
                "Set-Cookie": f"csrftoken={csrf}; Path=/; Secure; SameSite=Lax",
            },
        )

    @route("POST", "/api/v1/web/accounts/login/ajax/")
    def post_login(self, request: Request) -> Answer:
        csrf = request.header("X-CSRFToken") or ""
        if not csrf or _cookies(request).get("csrftoken") != csrf:
            return FakeResponse(
                403, {"message": "CSRF token missing or incorrect", "status": "fail"}
            )
        username = request.field("username") or ""
        matched = _PASSWORD.match(request.field("enc_password") or "")
        with self.lock:
            user = self.users.get(username)
        if user is None:
            return FakeResponse(200, {"user": False, "authenticated": False, "status": "ok"})
        if matched is None or matched.group(2) != user.password:
            return FakeResponse(200, {"user": True, "authenticated": False, "status": "ok"})
        if user.checkpoint:
            return FakeResponse(
                400,
                {
                    "message": "checkpoint_required",
                    "checkpoint_url": f"/challenge/{user.id}/{secrets.token_hex(6)}/",
                    "lock": False,
                    "status": "fail",
                },
            )
        if user.two_factor_code is not None:
            identifier = secrets.token_urlsafe(16)
            with self.lock:
                self._pending[identifier] = (user, csrf)
            return FakeResponse(
                400,
                {
                    "message": "",
                    "two_factor_required": True,
                    "two_factor_info": {
                        "username": user.username,
                        "two_factor_identifier": identifier,
                        "totp_two_factor_on": True,
                    },
                    "status": "fail",
                },
            )
        return self._logged_in_answer(user, csrf)

    @route("POST", "/accounts/login/ajax/two_factor/")
    def post_two_factor(self, request: Request) -> Answer:
        identifier = request.field("identifier") or ""
        with self.lock:
            pending = self._pending.get(identifier)
        csrf = request.header("X-CSRFToken") or ""
        if (
            pending is None
            or pending[1] != csrf
            or request.field("username") != pending[0].username
        ):
            return FakeResponse(
                400, {"message": "Please check the code and try again.", "status": "fail"}
            )
        user = pending[0]
        if request.field("verificationCode") != user.two_factor_code:
            return FakeResponse(
                400,
                {"message": "Please check the security code and try again.", "status": "fail"},
            )
        with self.lock:
            del self._pending[identifier]
        return self._logged_in_answer(user, csrf)

    def _logged_in_answer(self, user: FakeInstagramUser, csrf: str) -> FakeResponse:
        session_id = self.new_session(user.username)
        with self.lock:
            self.logins += 1
        response = FakeResponse(
            200,
            {"user": True, "userId": str(user.id), "authenticated": True, "oneTapPrompt": False,
             "status": "ok"},
        )  # fmt: skip
        # One Set-Cookie header per cookie, as Instagram sends them: the fake's headers are a
        # dict, so the name is spelt in three cases (HTTP header names are case-insensitive).
        response.headers["Set-Cookie"] = f"sessionid={session_id}; Path=/; HttpOnly; Secure"
        response.headers["set-cookie"] = f"ds_user_id={user.id}; Path=/; Secure"
        response.headers["SET-COOKIE"] = f"csrftoken={csrf}; Path=/; Secure"
        return response

    @route("GET", "/graphql/query")
    def get_graphql(self, request: Request) -> Answer:
        user = self._logged_in(request)
        if isinstance(user, FakeResponse):
            return user
        query = request.query.get("query_hash", "")
        try:
            variables = json.loads(request.query.get("variables", "{}"))
        except ValueError:
            return FakeResponse(400, {"message": "invalid variables", "status": "fail"})
        if query in user.failing:
            return self._answer(
                user, request, FakeResponse(200, {"message": user.failing[query], "status": "fail"})
            )
        if query == VIEWER_QUERY:
            body: dict[str, object] = {
                "data": {"user": {"id": str(user.id), "username": user.username,
                                  "profile_pic_url": "https://scontent.cdninstagram.com/p.jpg"}},
                "status": "ok",
            }  # fmt: skip
            return self._answer(user, request, FakeResponse(200, body))
        if query == SAVED_QUERY:
            if str(variables.get("id")) != str(user.id):
                return FakeResponse(200, {"data": {"user": None}, "status": "ok"})
            return self._answer(user, request, FakeResponse(200, self._saved_page(user, variables)))
        return FakeResponse(400, {"message": "unknown query", "status": "fail"})

    def _saved_page(self, user: FakeInstagramUser, variables: dict[str, object]) -> object:
        first = variables.get("first", 12)
        size = first if isinstance(first, int) and 0 < first <= 50 else 12
        after = variables.get("after")
        with self.lock:
            saved = list(user.saved)
            liked = set(user.liked)
        start = 0
        if isinstance(after, str):
            start = next((i + 1 for i, s in enumerate(saved) if _cursor(s) == after), len(saved))
        page = saved[start : start + size]
        more = start + size < len(saved)
        return {
            "data": {
                "user": {
                    "edge_saved_media": {
                        "count": len(saved),
                        "page_info": {
                            "has_next_page": more,
                            "end_cursor": _cursor(page[-1]) if page and more else None,
                        },
                        "edges": [
                            {"node": post.node(liked=post.shortcode in liked)} for _, post in page
                        ],
                    }
                }
            },
            "status": "ok",
        }

    @route("GET", "/api/v1/feed/timeline/")
    def get_feed(self, request: Request) -> Answer:
        user = self._logged_in(request)
        if isinstance(user, FakeResponse):
            return user
        if "feed" in user.failing:
            return self._answer(
                user,
                request,
                FakeResponse(200, {"message": user.failing["feed"], "status": "fail"}),
            )
        with self.lock:
            feed = list(user.feed[:12])
            liked = set(user.liked)
        body = {
            "num_results": len(feed),
            "more_available": len(user.feed) > 12,
            "next_max_id": "QVFE" + secrets.token_hex(8) if len(user.feed) > 12 else None,
            "feed_items": [
                {"media_or_ad": post.feed_media(liked=post.shortcode in liked)} for post in feed
            ],
            "status": "ok",
        }
        return self._answer(user, request, FakeResponse(200, body))


def _fail(message: str) -> dict[str, str]:
    return {"message": message, "status": "fail"}


def _cursor(saved: tuple[datetime, FakePost]) -> str:
    """An opaque cursor naming one saved post (stays valid while newer ones are saved)."""
    return f"QVFC{saved[1].shortcode}"


def _cookies(request: Request) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(request.header("Cookie") or "")
    except Exception:  # a malformed Cookie header: no cookies
        return {}
    return {name: morsel.value for name, morsel in jar.items()}
