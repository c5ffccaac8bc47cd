"""CSRF protection: every form carries a token bound to the session; every POST is checked.

The token is random per session and compared in constant time. A POST without it, or
with another session's, is refused with 400 before any view runs. SameSite cookies are
the second line of defence, not the only one.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

FIELD = "csrf_token"
_KEY = "csrf"


def token() -> str:
    """This session's CSRF token (made on first use); templates put it in every form."""
    value = session.get(_KEY)
    if not isinstance(value, str):
        value = secrets.token_urlsafe(32)
        session[_KEY] = value
    return value


def check() -> None:
    """Refuse a state-changing request whose token is missing or not this session's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get(_KEY)
    given = request.form.get(FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        abort(
            400,
            description="This form has expired or did not come from this site: reload "
            "the page and try again.",
        )
