"""Linking a platform account to a user: who the token belongs to, stored encrypted.

Linking asks the platform (through the connector) whose credentials these
are, stores them sealed, schedules the first poll (which records the
baseline: likes made before the link are never paid), and claims the
platform identity as the user's own creator identity, which posts every
share reserved for it so far. Linking again refreshes the credentials of an
account whose token expired and puts it back on the schedule, its poll state
kept (likes made meanwhile are paid). Linking an account the user unlinked
starts a new baseline: likes made while it was unlinked are not paid.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trickle.app import App
from trickle.connectors.base import Identity
from trickle.connectors.errors import TransientError
from trickle.core.clock import clock
from trickle.core.credentials import Credentials
from trickle.core.errors import TrickleError
from trickle.core.escrow import ClaimResult, claim_creator
from trickle.core.models import AccountStatus, Creator, LinkedAccount, User
from trickle.core.money import Money
from trickle.core.users import MAX_NAME_LENGTH, UserError, add_user, check_name, get_user


class LinkError(TrickleError):
    """An account that cannot be linked as asked."""


@dataclass(frozen=True)
class LinkResult:
    """The linked account and what its creator identity's claim posted."""

    account_id: int
    user: str
    platform: str
    platform_user_id: str
    handle: str
    relinked: bool
    claim: ClaimResult
    new_user: bool = False
    """A sign-in created the user."""


MAX_TOKEN_LENGTH = 4096


def check_credentials(credentials: Credentials) -> None:
    """Refuse credentials no platform issues: empty, longer than 4096 characters, or with
    spaces or control characters (a pasted line break would otherwise travel in a header)."""
    if not credentials.secret_values():
        raise LinkError("no token given")
    for name, value in _named_values(credentials):
        if not value:
            raise LinkError(f"the {name} is empty")
        if len(value) > MAX_TOKEN_LENGTH:
            raise LinkError(f"the {name} is longer than {MAX_TOKEN_LENGTH} characters")
        if any(char.isspace() or not char.isprintable() for char in value):
            raise LinkError(
                f"the {name} contains spaces or control characters: paste it on one line"
            )


def _named_values(credentials: Credentials) -> list[tuple[str, str]]:
    named = [
        ("token", credentials.access_token),
        ("refresh token", credentials.refresh_token),
        ("token secret", credentials.token_secret),
    ]
    named += [(key, value) for key, value in credentials.extra.items()]
    return [(name, value) for name, value in named if value is not None]


def check_active(user: User) -> User:
    """``user``, unless they are deactivated: nothing is linked to a deactivated user."""
    if not user.active:
        raise LinkError(f"{user.name} is deactivated: `trickle users activate {user.name}` first")
    return user


def link_account(
    app: App,
    platform: str,
    user_name: str | None,
    credentials: Credentials,
    *,
    host: str | None = None,
    identity: Identity | None = None,
) -> LinkResult:
    """Identify ``credentials`` on ``platform`` (on the server ``host``, an origin, for a
    platform of many servers) and link that account to ``user_name``. An ``identity`` the
    link flow already proved (a password sign-in) is not asked for again, and its
    credentials may be empty: the account is then polled without any.

    ``user_name`` None is a sign-in: the account is linked to the user it already belongs
    to (or who claimed its creator identity), and when it belongs to nobody, to a new user
    named after its handle (``LinkResult.new_user``)."""
    if identity is None or credentials.secret_values():
        check_credentials(credentials)
    connector = app.connector(platform)
    if user_name is not None:
        with app.db.reader() as session:
            check_active(get_user(session, user_name))  # before asking the platform anything
    box = app.box  # a missing key is an error before the platform is asked anything
    if identity is None:
        platform_session = connector.session(credentials, host=host)
        try:
            identity = connector.identify(platform_session)
        except TransientError as exc:
            raise LinkError(
                f"could not reach {connector.display_name} at {platform_session.base_url}: "
                f"{exc}. Check the network, or [connectors.{platform}] base_url in the "
                "settings, and try again"
            ) from None
        # Credentials renewed while identifying are the ones to keep (single-use refresh).
        credentials = platform_session.credentials
    sealed = box.seal(credentials)
    # Platforms date likes to the second (GitHub's starred_at): a like in the very second
    # of the link counts as made after it.
    now = clock.now().replace(microsecond=0)
    settings = app.connector_settings(platform)
    with app.db.session() as session:
        account = session.scalars(
            select(LinkedAccount).where(
                LinkedAccount.platform == platform,
                LinkedAccount.platform_user_id == identity.platform_user_id,
            )
        ).one_or_none()
        new_user = False
        if user_name is None:
            user, new_user = _signing_in(
                session, app, platform, identity.platform_user_id, identity.handle, account
            )
        else:
            user = get_user(session, user_name)
        check_active(user)
        relinked = account is not None
        if account is None:
            account = LinkedAccount(
                user_id=user.id,
                platform=platform,
                platform_user_id=identity.platform_user_id,
                handle=identity.handle,
                host=identity.host or host,
                credentials=sealed,
                credentials_version=0,
                key_id=box.key_id,
                status=AccountStatus.ACTIVE.value,
                linked_at=now,
                poll_state={},
                baseline_done=False,
                next_poll_at=now,
                interval_seconds=settings.min_interval_seconds,
                failures=0,
            )
            session.add(account)
        elif account.user_id != user.id:
            # Not naming whose: on the web side the person asking is not the operator, and
            # who a trickle user is stays theirs to tell (`trickle accounts list` shows it).
            raise LinkError(
                f"{platform} account {identity.handle!r} is already linked to another "
                "trickle user: unlink it there first"
            )
        else:
            if account.status == AccountStatus.UNLINKED.value:
                account.linked_at = now  # a new link: a new baseline
                account.baseline_done = False
            account.credentials = sealed
            account.credentials_version = account.credentials_version + 1
            account.key_id = box.key_id
            account.host = identity.host or host
            account.handle = identity.handle
            account.status = AccountStatus.ACTIVE.value
            account.failures = 0
            account.last_error = None
            account.next_poll_at = now
        session.flush()
        claim = claim_creator(
            session,
            platform=platform,
            platform_id=identity.platform_user_id,
            user_id=user.id,
            handle=identity.handle,
        )
        return LinkResult(
            account.id,
            user.name,
            platform,
            identity.platform_user_id,
            identity.handle,
            relinked,
            claim,
            new_user=new_user,
        )


def _signing_in(
    session: Session,
    app: App,
    platform: str,
    platform_id: str,
    handle: str,
    account: LinkedAccount | None,
) -> tuple[User, bool]:
    """Who signs in with this platform account: its owner, else whoever claimed its creator
    identity, else a new user (budget 0, the operator's currency) named after the handle."""
    if account is not None:
        return session.get_one(User, account.user_id), False
    claimed = session.scalar(
        select(Creator.user_id).where(
            Creator.platform == platform, Creator.platform_id == platform_id
        )
    )
    if claimed is not None:
        return session.get_one(User, claimed), False
    name = _free_name(session, handle, platform)
    return add_user(session, name, Money(0, app.settings.currency)), True


def _free_name(session: Session, handle: str, platform: str) -> str:
    """A user name not taken yet: the handle if it is a valid name, else the platform's name;
    ``-2``, ``-3``... appended while taken."""
    try:
        base = check_name(handle.lstrip("@")[: MAX_NAME_LENGTH - 8])
    except UserError:
        base = check_name(f"{platform}-user")
    taken = set(
        session.scalars(
            select(User.name).where(or_(User.name == base, User.name.like(f"{base}-%")))
        )
    )
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
