"""Which key sealed each linked account's credentials, so a lost key is never a silent one.

Every account records the fingerprint of the key that sealed its credentials
(``linked_accounts.key_id``). That is how ``trickle init`` knows not to create
a new key over credentials sealed with one that went missing, and how
``accounts list`` shows the accounts the configured key cannot open, instead
of letting them fail poll after poll while they look active.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trickle.core.credentials import CredentialBox, SecretKeyError
from trickle.core.db import rowcount
from trickle.core.models import AccountStatus, LinkedAccount

BACKFILL_BATCH = 500


@dataclass(frozen=True)
class KeyCensus:
    """How many accounts hold sealed credentials, by the fingerprint of the key that sealed
    them (``None``: sealed before trickle recorded it)."""

    by_key: dict[str | None, int]

    @property
    def accounts(self) -> int:
        """Accounts holding sealed credentials."""
        return sum(self.by_key.values())

    def sealed_with_other_keys(self, key_id: str | None) -> int:
        """Accounts known to be sealed with a key other than ``key_id`` (all of the recorded
        ones when there is no key)."""
        return sum(n for k, n in self.by_key.items() if k is not None and k != key_id)

    def describe_other_keys(self, key_id: str | None) -> str:
        """``"3 sealed with key 1a2b…, 1 with key 9f8e…"``, for messages."""
        parts = [
            f"{n} with key {k}"
            for k, n in sorted(self.by_key.items(), key=lambda kv: (-kv[1], kv[0] or ""))
            if k is not None and k != key_id
        ]
        return ", ".join(parts)


def key_census(session: Session) -> KeyCensus:
    """Count the accounts holding credentials, by the key that sealed them."""
    rows = session.execute(
        select(LinkedAccount.key_id, func.count())
        .where(func.length(LinkedAccount.credentials) > 0)
        .group_by(LinkedAccount.key_id)
    )
    return KeyCensus({key_id: count for key_id, count in rows})


def record_key_ids(session: Session, box: CredentialBox) -> Counter[str]:
    """Fill in the key of accounts sealed before keys were recorded: those ``box`` opens are
    its key's; the others stay unknown. Returns ``{"recorded": n, "unreadable": m}``."""
    counts: Counter[str] = Counter()
    after = 0
    while True:
        rows = session.execute(
            select(LinkedAccount.id, LinkedAccount.credentials)
            .where(
                LinkedAccount.key_id.is_(None),
                LinkedAccount.credentials.is_not(None),
                LinkedAccount.id > after,
            )
            .order_by(LinkedAccount.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return counts
        readable = []
        for account_id, sealed in rows:
            try:
                box.open(sealed or b"")
            except (SecretKeyError, ValueError, TypeError):  # another key, or not a blob of ours
                counts["unreadable"] += 1
            else:
                readable.append(account_id)
        if readable:
            session.execute(
                update(LinkedAccount)
                .where(LinkedAccount.id.in_(readable))
                .values(key_id=box.key_id)
                .execution_options(synchronize_session=False)
            )
            counts["recorded"] += len(readable)
        after = rows[-1][0]


def retire_other_keys(session: Session, key_id: str) -> int:
    """Accounts sealed with any key but ``key_id`` (or an unknown one) need linking again:
    mark them so (``auth_expired``, with the reason), after a new key replaced a lost one."""
    result = session.execute(
        update(LinkedAccount)
        .where(
            (LinkedAccount.key_id.is_(None)) | (LinkedAccount.key_id != key_id),
            func.length(LinkedAccount.credentials) > 0,
            LinkedAccount.status == AccountStatus.ACTIVE.value,
        )
        .values(
            status=AccountStatus.AUTH_EXPIRED.value,
            next_poll_at=None,
            last_error=(
                "the key that sealed this account's credentials was replaced "
                "(trickle init --new-key): link the account again"
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
