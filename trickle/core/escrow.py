"""Reserved shares: posted when their creator claims the identity, returned when they expire.

A share for a creator who has not joined is a pending transfer: it stays in
the liker's wallet, counted against their available funds, until either

- someone proves they are that creator (links the platform account, or an
  operator verifies a claim): each pending share is then posted from the
  liker's wallet to the claimant's, under the key ``claim:share:ID``; or
- ``escrow_days`` pass: the share is voided and the money is the liker's again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trickle.core.clock import clock
from trickle.core.db import insert, rowcount
from trickle.core.errors import TrickleError
from trickle.core.ledger import AccountKind, ensure_account, post
from trickle.core.models import Creator, Share, ShareState, User

CHUNK = 1000


class ClaimError(TrickleError):
    """A creator identity that belongs to someone else already."""


@dataclass(frozen=True)
class ClaimResult:
    """What a claim moved: shares posted to the claimant and their total per currency."""

    creator_id: int
    newly_claimed: bool
    posted_shares: int
    posted_minor: dict[str, int]
    returned_shares: int


def get_or_create_creator(
    session: Session, platform: str, platform_id: str, handle: str
) -> Creator:
    """The creator row for (platform, permanent id), created when no like named it yet."""
    session.execute(
        insert(session, Creator.__table__)
        .values(platform=platform, platform_id=platform_id, handle=handle)
        .on_conflict_do_nothing(index_elements=["platform", "platform_id"])
    )
    return session.scalars(
        select(Creator).where(Creator.platform == platform, Creator.platform_id == platform_id)
    ).one()


def claim_creator(
    session: Session, *, platform: str, platform_id: str, user_id: int, handle: str | None = None
) -> ClaimResult:
    """Give the identity (platform, platform_id) to ``user_id`` and post its reserved shares.

    Claiming an identity the same user already holds only posts what is still
    pending (so it is safe to repeat); one held by another user is refused.
    """
    creator = get_or_create_creator(session, platform, platform_id, handle or platform_id)
    if creator.user_id is not None and creator.user_id != user_id:
        owner = session.get_one(User, creator.user_id).name
        raise ClaimError(
            f"{platform} creator {platform_id} ({creator.handle}) is already claimed by {owner}"
        )
    newly = creator.user_id is None
    if newly:
        creator.user_id = user_id
        creator.claimed_at = clock.now()
    if handle and creator.handle != handle:
        creator.handle = handle
    session.flush()
    posted, amounts, returned = _release_reserved(session, creator.id, user_id)
    return ClaimResult(creator.id, newly, posted, amounts, returned)


def _release_reserved(
    session: Session, creator_id: int, claimant_id: int
) -> tuple[int, dict[str, int], int]:
    now = clock.now()
    posted = returned = 0
    amounts: dict[str, int] = {}
    while True:
        shares = session.scalars(
            select(Share)
            .where(Share.creator_id == creator_id, Share.state == ShareState.RESERVED.value)
            .order_by(Share.id)
            .limit(CHUNK)
            .with_for_update()  # an expiry running at the same time waits for us
        ).all()
        if not shares:
            return posted, amounts, returned
        for share in shares:
            share.resolved_at = now
            if share.user_id == claimant_id:
                # A liker claiming their own creator identity: the hold simply ends.
                share.state = ShareState.RETURNED.value
                returned += 1
                continue
            liker = ensure_account(session, AccountKind.WALLET, share.currency, share.user_id)
            claimant = ensure_account(session, AccountKind.WALLET, share.currency, claimant_id)
            post(
                session,
                key=f"claim:share:{share.id}",
                kind="claim",
                currency=share.currency,
                entries=[(liker, -share.amount_minor), (claimant, share.amount_minor)],
                period=share.period,
                user_id=share.user_id,
            )
            share.state = ShareState.PAID.value
            share.recipient_user_id = claimant_id
            posted += 1
            amounts[share.currency] = amounts.get(share.currency, 0) + share.amount_minor
        session.flush()


@dataclass(frozen=True)
class ExpiryResult:
    """Reserved shares voided by one expiry pass, and their total per currency."""

    shares: int
    returned_minor: dict[str, int]


def expire_reserved(session: Session, now: datetime | None = None) -> ExpiryResult:
    """Void every reserved share whose escrow ran out: the money is the liker's again."""
    now = now or clock.now()
    due = (Share.state == ShareState.RESERVED.value, Share.expires_at <= now)
    totals = {
        currency: int(total)
        for currency, total in session.execute(
            select(Share.currency, func.sum(Share.amount_minor))
            .where(*due)
            .group_by(Share.currency)
        )
    }
    count = rowcount(
        session.execute(
            update(Share)
            .where(*due)
            .values(state=ShareState.RETURNED.value, resolved_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    return ExpiryResult(shares=count, returned_minor=totals)
