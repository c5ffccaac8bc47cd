"""GitHub's starring API on 127.0.0.1, for the demo, end-to-end tests and benchmarks.

It answers the two endpoints trickle's GitHub connector uses with GitHub's
real shapes: ``GET /user`` and ``GET /user/starred`` (``star+json`` items,
newest first, ``per_page``/``page``, a ``Link`` header, a weak ``ETag`` and
``304`` for ``If-None-Match``, the ``x-ratelimit-*`` headers). Tokens can be
revoked (401), users can be rate limited (403 with remaining 0, or 429 with
``retry-after`` as for GitHub's secondary limits), and tests can rewrite a
user's answers (:meth:`FakeGitHub.tamper`) to serve malformed payloads.

On the same origin it is github.com's login side too (:attr:`FakeGitHub.oauth`,
:mod:`.fake_oauth`): OAuth apps, the device and web flows, and
``DELETE /applications/{client_id}/token``. The tokens it issues are accepted by
the API above for the user who authorized them, so one fake serves both a
connector's ``base_url`` and its ``oauth_base_url``.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from trickle.connectors.github.fake_oauth import GitHubOAuth
from trickle.core.clock import clock
from trickle.testing.fakeplatform import Answer, FakePlatform, FakeResponse, Request, route

RATE_LIMIT = 5000


@dataclass(frozen=True)
class FakeRepo:
    """A repository someone can star; its owner is the creator who gets paid."""

    id: int
    name: str
    owner_login: str
    owner_id: int
    owner_type: str = "User"

    def payload(self) -> dict[str, object]:
        """The repository object as GitHub sends it (the fields that matter plus a few more)."""
        full = f"{self.owner_login}/{self.name}"
        return {
            "id": self.id,
            "node_id": f"R_{self.id}",
            "name": self.name,
            "full_name": full,
            "private": False,
            "owner": {
                "login": self.owner_login,
                "id": self.owner_id,
                "node_id": f"U_{self.owner_id}",
                "type": self.owner_type,
                "site_admin": False,
                "html_url": f"https://github.com/{self.owner_login}",
            },
            "html_url": f"https://github.com/{full}",
            "description": None,
            "fork": False,
            "url": f"https://api.github.com/repos/{full}",
            "stargazers_count": 1,
        }


@dataclass
class FakeGitHubUser:
    """A GitHub account: its token, and its stars newest first."""

    id: int
    login: str
    token: str
    stars: list[tuple[datetime, FakeRepo]] = field(default_factory=list)
    version: int = 0
    revoked: bool = False
    rate_limited_until: datetime | None = None
    rate_limit_status: int = 403
    used: int = 0
    rewrite: Callable[[Request, FakeResponse], Answer] | None = None


class FakeGitHub(FakePlatform):
    """A GitHub stand-in: add users and stars, point the connector's ``base_url`` (and, to link
    accounts through OAuth, its ``oauth_base_url``) at it."""

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.users: dict[str, FakeGitHubUser] = {}  # by login
        self._by_token: dict[str, FakeGitHubUser] = {}
        self._next_id = 1000
        self.oauth = GitHubOAuth(
            accounts=lambda login: login in self.users,
            origin=lambda: self.base_url,
            lock=self.lock,
        )
        """github.com's OAuth side: its apps, flows and test API (:class:`GitHubOAuth`)."""

    # -- setting the scene -----------------------------------------------------

    def add_user(self, login: str, token: str, user_id: int | None = None) -> FakeGitHubUser:
        """Create an account with a token."""
        with self.lock:
            if user_id is None:
                self._next_id += 1
                user_id = self._next_id
            user = FakeGitHubUser(id=user_id, login=login, token=token)
            self.users[login] = user
            self._by_token[token] = user
            return user

    def star(self, login: str, repo: FakeRepo, at: datetime | None = None) -> None:
        """``login`` stars ``repo`` at ``at`` (default: now on trickle's clock)."""
        when = (at or clock.now()).astimezone(UTC)
        with self.lock:
            user = self.users[login]
            user.stars = [s for s in user.stars if s[1].id != repo.id]
            keys = [-s[0].timestamp() for s in user.stars]
            user.stars.insert(bisect.bisect_right(keys, -when.timestamp()), (when, repo))
            user.version += 1

    def star_many(self, login: str, stars: Iterable[tuple[FakeRepo, datetime | None]]) -> None:
        """Many :meth:`star` calls at once, in order (one sort instead of one insertion each:
        benchmarks give thousands of accounts hundreds of stars)."""
        now = clock.now()
        fresh: dict[int, tuple[datetime, FakeRepo]] = {}
        calls = 0
        for repo, at in stars:
            calls += 1
            fresh.pop(repo.id, None)  # starred again: it moves to its latest place
            fresh[repo.id] = ((at or now).astimezone(UTC), repo)
        if not fresh:
            return
        with self.lock:
            user = self.users[login]
            merged = [s for s in user.stars if s[1].id not in fresh] + list(fresh.values())
            merged.sort(key=lambda s: -s[0].timestamp())  # stable: ties keep the star() order
            user.stars = merged
            user.version += calls

    def unstar(self, login: str, repo_id: int) -> None:
        """Remove a star."""
        with self.lock:
            user = self.users[login]
            user.stars = [s for s in user.stars if s[1].id != repo_id]
            user.version += 1

    def revoke(self, login: str) -> None:
        """The user revoked the token: every request answers 401."""
        with self.lock:
            self.users[login].revoked = True

    def rate_limit(self, login: str, until: datetime, *, status: int = 403) -> None:
        """The user's token has no requests left until ``until``: 403 with remaining 0 (the
        primary limit), or with ``status=429`` a secondary limit answered with ``retry-after``."""
        with self.lock:
            self.users[login].rate_limited_until = until
            self.users[login].rate_limit_status = status

    def tamper(self, login: str, rewrite: Callable[[Request, FakeResponse], Answer] | None) -> None:
        """Pass every answer to ``login``'s authenticated requests through ``rewrite``; None
        stops rewriting. Tests use it to serve malformed payloads and, since a rewrite may
        return any :data:`~trickle.testing.fakeplatform.Answer`, hostile ones: endless or
        dripping bodies, answers that never come."""
        with self.lock:
            self.users[login].rewrite = rewrite

    # -- the API -------------------------------------------------------------

    def _authenticate(self, request: Request) -> FakeGitHubUser | FakeResponse:
        header = request.header("Authorization") or ""
        token = header.removeprefix("Bearer ").removeprefix("token ").strip()
        with self.lock:
            user = self._by_token.get(token)
            if user is None:
                user = self.users.get(self.oauth.token_owner(token) or "")
        if user is None or user.revoked:
            return FakeResponse(
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        now = clock.now()
        if user.rate_limited_until and user.rate_limited_until > now:
            if user.rate_limit_status == 429:
                wait = math.ceil((user.rate_limited_until - now).total_seconds())
                return FakeResponse(
                    429,
                    {"message": "You have exceeded a secondary rate limit."},
                    {"retry-after": str(wait)},
                )
            return FakeResponse(
                403,
                {"message": f"API rate limit exceeded for user ID {user.id}."},
                self._limit_headers(0, int(user.rate_limited_until.timestamp())),
            )
        return user

    def _limit_headers(self, remaining: int, reset: int) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(0, remaining)),
            "x-ratelimit-used": str(RATE_LIMIT - max(0, remaining)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-resource": "core",
        }

    def _answer(self, user: FakeGitHubUser, request: Request, response: FakeResponse) -> Answer:
        rewrite = user.rewrite
        return rewrite(request, response) if rewrite is not None else response

    @route("GET", "/user")
    def get_user(self, request: Request) -> Answer:
        """``GET /user``: the authenticated user."""
        user = self._authenticate(request)
        if isinstance(user, FakeResponse):
            return user
        response = FakeResponse(
            200,
            {
                "login": user.login,
                "id": user.id,
                "node_id": f"U_{user.id}",
                "type": "User",
                "site_admin": False,
                "html_url": f"https://github.com/{user.login}",
                "name": user.login.title(),
            },
        )
        return self._answer(user, request, response)

    @route("GET", "/user/starred")
    def get_starred(self, request: Request) -> Answer:
        """``GET /user/starred``: stars newest first, paginated, with ETag and Link."""
        user = self._authenticate(request)
        if isinstance(user, FakeResponse):
            return user
        try:
            per_page = min(100, max(1, int(request.query.get("per_page", "30"))))
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            return FakeResponse(422, {"message": "Validation Failed"})
        star_json = "star+json" in (request.header("Accept") or "")
        with self.lock:
            user.used += 1
            stars = list(user.stars)
            version = user.version
            used = user.used
        reset = int(clock.now().timestamp()) // 3600 * 3600 + 3600
        headers = self._limit_headers(RATE_LIMIT - used, reset)
        tag = hashlib.sha1(
            f"{user.id}:{version}:{page}:{per_page}:{star_json}".encode(), usedforsecurity=False
        ).hexdigest()
        etag = f'W/"{tag}"'
        headers["ETag"] = etag
        headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
        if request.header("If-None-Match") == etag:
            with self.lock:
                user.used -= 1  # a 304 does not count against the rate limit
            return self._answer(user, request, FakeResponse(304, b"", headers))
        start = (page - 1) * per_page
        chunk = stars[start : start + per_page]
        body: list[dict[str, object]]
        if star_json:
            body = [
                {"starred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "repo": repo.payload()}
                for at, repo in chunk
            ]
        else:
            body = [repo.payload() for _, repo in chunk]
        last = max(1, -(-len(stars) // per_page))
        links = []
        if page < last:
            links.append(f'<{self._page_url(per_page, page + 1)}>; rel="next"')
            links.append(f'<{self._page_url(per_page, last)}>; rel="last"')
        if page > 1:
            links.append(f'<{self._page_url(per_page, 1)}>; rel="first"')
            links.append(f'<{self._page_url(per_page, page - 1)}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return self._answer(user, request, FakeResponse(200, body, headers))

    # -- github.com's login side (see fake_oauth) --------------------------------------

    @route("POST", "/login/device/code")
    def login_device_code(self, request: Request) -> Answer:
        """``POST /login/device/code``: the device flow's first step."""
        return self.oauth.device_code(request)

    @route("POST", "/login/oauth/access_token")
    def login_access_token(self, request: Request) -> Answer:
        """``POST /login/oauth/access_token``: both flows' token endpoint."""
        return self.oauth.access_token(request)

    @route("GET", "/login/oauth/authorize")
    def login_authorize(self, request: Request) -> Answer:
        """``GET /login/oauth/authorize``: the web flow's authorization page."""
        return self.oauth.authorize(request)

    @route("GET", "/login/device")
    def login_device_page(self, request: Request) -> Answer:
        """``GET /login/device``: where a user enters their device code."""
        return self.oauth.device_page(request)

    @route("POST", "/login/device")
    def login_device_submit(self, request: Request) -> Answer:
        """``POST /login/device``: the device page's form."""
        return self.oauth.device_submit(request)

    @route("DELETE", "/applications/{client_id}/token")
    def delete_app_token(self, request: Request) -> Answer:
        """``DELETE /applications/{client_id}/token``: an app revokes one of its tokens."""
        return self.oauth.delete_token(request)

    def _page_url(self, per_page: int, page: int) -> str:
        query = urlencode(
            {"per_page": per_page, "sort": "created", "direction": "desc", "page": page}
        )
        return f"{self.base_url}/user/starred?{query}"
