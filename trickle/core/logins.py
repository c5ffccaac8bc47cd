"""One-time login links: an operator makes one for a user, the user opens it once.

Only the SHA-256 of a link's token is stored, so the database (or a backup
of it) signs nobody in. A link is good once and for a limited time; using it
deletes it, and so does its expiry.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from trickle.core.clock import clock
from trickle.core.db import rowcount
from trickle.core.errors import TrickleError
from trickle.core.models import LoginLink, User
from trickle.core.users import get_user

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 100
MAX_LIFETIME = timedelta(days=30)


class LoginLinkError(TrickleError):
    """A login link that cannot be made as asked."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_login_link(session: Session, name: str, lifetime: timedelta) -> str:
    """A new one-time token signing ``name`` in within ``lifetime``."""
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise LoginLinkError("a login link lasts more than 0 seconds and at most 30 days")
    user = get_user(session, name)
    if not user.active:
        raise LoginLinkError(f"{user.name} is deactivated: `trickle users activate` first")
    now = clock.now()
    session.execute(delete(LoginLink).where(LoginLink.expires_at <= now))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        LoginLink(
            token_hash=_hash(token), user_id=user.id, created_at=now, expires_at=now + lifetime
        )
    )
    return token


def redeem_login_link(session: Session, token: str) -> User | None:
    """The active user ``token`` signs in, once (the link is deleted); None for a token that is
    unknown, used, expired, or whose user is deactivated."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    link = session.get(LoginLink, _hash(token), with_for_update=True)
    if link is None:
        return None
    taken = rowcount(
        session.execute(delete(LoginLink).where(LoginLink.token_hash == link.token_hash))
    )
    if not taken or link.expires_at <= clock.now():
        return None
    user = session.get(User, link.user_id)
    return user if user is not None and user.active else None
