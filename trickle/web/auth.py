"""Who is signed in: the session cookie, sign-in and sign-out, guards, safe redirects, and
the rate limit on sign-in attempts.

The session is Flask's: a cookie signed with ``[web] cookie_secret`` (HttpOnly,
SameSite=Lax so a platform's redirect back still carries it, Secure when the
base URL is https). It holds the user's id and the time they signed in, and is
cleared at every sign-in so nothing from before carries over.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from trickle.core.models import User

F = TypeVar("F", bound=Callable[..., Any])
MAX_NEXT_LENGTH = 500


def sign_in(user: User) -> None:
    """Start a fresh session for ``user``."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["at"] = int(time.time())


def sign_out() -> None:
    """End the session."""
    session.clear()


def current_user() -> User | None:
    """The signed-in, active user of this request, or None."""
    if "user" not in g:
        uid = session.get("uid")
        user = None
        if isinstance(uid, int):
            from trickle.web.app import trickle_app

            with trickle_app().db.reader() as db:
                user = db.get(User, uid)
            if user is not None and not user.active:
                user = None
        g.user = user
    return cast(User | None, g.user)


def login_required(view: F) -> F:
    """Send whoever is not signed in to the sign-in page, coming back here afterwards."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("public.home", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, guarded)


def operator_required(view: F) -> F:
    """Only operators (``trickle users operator NAME``); others get a 404 page."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("public.home", next=request.path))
        if not user.operator:
            abort(404)
        return view(*args, **kwargs)

    return cast(F, guarded)


def safe_next(target: str | None, default: str = "/me") -> str:
    """``target`` if it is a path on this site, else ``default``: a ``next=`` parameter never
    sends anyone to another site (no scheme, no host, no ``//`` or ``/\\``, no control
    characters)."""
    if not target or len(target) > MAX_NEXT_LENGTH:
        return default
    if any(ord(c) < 32 or c == "\\" for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def go_next(target: str | None, default: str = "/me") -> Response:
    """A redirect to :func:`safe_next` of ``target``."""
    return redirect(safe_next(target, default))


class RateLimit:
    """At most ``limit`` attempts per client address in any 60 seconds (this process)."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count an attempt from ``key``; False when it is one too many."""
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:  # forget quiet addresses rather than grow
                self._seen = {
                    k: v for k, v in self._seen.items() if v and v[-1] > now - self.window
                }
            times = self._seen.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True


def limit_sign_ins() -> None:
    """Refuse (429) a sign-in attempt past the per-address limit."""
    limiter: RateLimit = current_app.extensions["trickle_sign_in_limit"]
    if not limiter.allow(request.remote_addr or "unknown"):
        abort(429, description="Too many sign-in attempts from your address: wait a minute.")
