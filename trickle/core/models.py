"""The SQLAlchemy 2.0 models: what trickle stores and how it is keyed.

Money columns are integers of minor units (``*_minor``). Times are stored as
UTC without a zone and come back as aware UTC datetimes. Enumerated states
are short strings checked in Python, which keeps migrations portable between
SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from trickle.core.clock import ensure_utc
from trickle.core.events import EARLIEST_LIKE_TIME
from trickle.core.money import MAX_BALANCE_MINOR, MAX_BUDGET_MINOR

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as aware UTC."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return ensure_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return ensure_utc(value)


# Written so that both databases compare it with their own timestamps (SQLite keeps them
# as text in this very format).
_EARLIEST = f"'{EARLIEST_LIKE_TIME:%Y-%m-%d %H:%M:%S}'"

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base carrying the constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:  # every model here maps one table, which Core statements use directly
        __table__: ClassVar[Table]


class AccountStatus(StrEnum):
    """Whether the worker polls a linked account."""

    ACTIVE = "active"
    AUTH_EXPIRED = "auth_expired"  # the token stopped working: relink to resume
    DISABLED = "disabled"  # its user is deactivated: back to active when they are activated
    UNLINKED = "unlinked"  # the user unlinked it: no credentials kept, history kept


class RunStatus(StrEnum):
    """Stages of a settlement run, stored so that a crash resumes."""

    PLANNING = "planning"
    POSTING = "posting"
    DONE = "done"


class ShareState(StrEnum):
    """What happened to one flattr's share of a month's budget."""

    PAID = "paid"  # posted to the creator's user
    RESERVED = "reserved"  # held for an unclaimed creator until claimed or expired
    RETURNED = "returned"  # never claimed in time: the liker's money again


class User(Base):
    """Someone with a budget who flattrs, and possibly a creator who is paid."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """False once deactivated: not polled, spending nothing; wallet and ledger kept."""
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The user chose to be named on the public pages of the creators they flattr."""
    operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """May open the web side's admin page."""


class Budget(Base):
    """A user's monthly budget from ``effective_at`` on; the latest before a month's end applies."""

    __tablename__ = "budgets"
    __table_args__ = (
        Index("ix_budgets_user_effective", "user_id", "effective_at"),
        CheckConstraint(
            f"amount_minor >= 0 AND amount_minor <= {MAX_BUDGET_MINOR}", name="amount_range"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LinkedAccount(Base):
    """A user's account on a platform, with its encrypted credentials and poll state."""

    __tablename__ = "linked_accounts"
    __table_args__ = (
        UniqueConstraint("platform", "platform_user_id"),
        Index("ix_linked_accounts_due", "status", "next_poll_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(50))
    platform_user_id: Mapped[str] = mapped_column(String(200))
    handle: Mapped[str] = mapped_column(String(200))
    host: Mapped[str | None] = mapped_column(String(300))
    """The account's server, as an origin (``https://mastodon.social``), on platforms where every
    account lives on a server of its own; None elsewhere. ``platform_user_id`` is unique across
    all of a platform's servers (a global id such as an account URI or a DID)."""
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Sealed :class:`~trickle.core.credentials.Credentials`; None once the account is
    unlinked."""
    credentials_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Bumped on every write of ``credentials``: a renewal is saved only over the version it
    renewed, so it never overwrites credentials that changed meanwhile."""
    key_id: Mapped[str | None] = mapped_column(String(32))
    """Which secret key sealed ``credentials`` (its fingerprint): an account whose key is not
    the configured one is known to be unreadable, rather than found out by failing."""
    status: Mapped[str] = mapped_column(String(20), default=AccountStatus.ACTIVE)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    poll_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    baseline_done: Mapped[bool] = mapped_column(Boolean, default=False)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthApp(Base):
    """An OAuth app trickle holds on one server of a platform (Mastodon registers one per
    server): its client id and its secret, sealed like an account's credentials."""

    __tablename__ = "oauth_apps"
    __table_args__ = (UniqueConstraint("platform", "host", "redirect_uri"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(50))
    host: Mapped[str] = mapped_column(String(300))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(300))
    client_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(String(32))
    scopes: Mapped[str] = mapped_column(String(500))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LinkAttempt(Base):
    """A link begun and waiting for the platform to send the user back (or, in the device
    flow, for the user to enter the code): what the callback is checked against, once."""

    __tablename__ = "link_attempts"

    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    """The OAuth ``state`` (or OAuth 1.0a's request token), unguessable, single use."""
    platform: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    """Who the account is linked to; None for a sign-in, whose account decides the user."""
    flow: Mapped[str] = mapped_column(String(30))
    redirect_uri: Mapped[str | None] = mapped_column(String(500))
    host: Mapped[str | None] = mapped_column(String(300))
    secrets: Mapped[bytes] = mapped_column(LargeBinary)
    """Sealed: the PKCE verifier, OAuth 1.0a's request token secret, a device code."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginLink(Base):
    """A one-time sign-in link an operator made for a user: only its hash is kept."""

    __tablename__ = "login_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the link's token, in hex: a copy of the database signs nobody in."""
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerHeartbeat(Base):
    """A worker process saying it is alive, with its counters since it started."""

    __tablename__ = "worker_heartbeats"

    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    """The worker's lease owner name (host, pid, random part)."""
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    interval_seconds: Mapped[float] = mapped_column(Float)
    """How often it beats: it is alive while ``seen_at`` is younger than a few of these."""
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Counters since it started (see :meth:`trickle.polling.Worker.counters`)."""


class Creator(Base):
    """Whoever made a liked item, keyed by the platform's permanent id.

    ``user_id`` is set once a trickle user has claimed the identity (by
    linking that platform account, or by an operator's verified claim).
    """

    __tablename__ = "creators"
    __table_args__ = (UniqueConstraint("platform", "platform_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(50))
    platform_id: Mapped[str] = mapped_column(String(200))
    handle: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Flattr(Base):
    """One like turned into a flattr; ``period`` is set when a settlement counts it."""

    __tablename__ = "flattrs"
    __table_args__ = (
        UniqueConstraint("user_id", "platform", "item_id"),
        # Counted flattrs only: the uncounted ones are found through ix_flattrs_unsettled,
        # and leaving them out saves an entry per like at ingest.
        Index(
            "ix_flattrs_period_user",
            "period",
            "user_id",
            sqlite_where=text("period IS NOT NULL"),
            postgresql_where=text("period IS NOT NULL"),
        ),
        Index(
            "ix_flattrs_unsettled",
            "effective_at",
            sqlite_where=text("period IS NULL"),
            postgresql_where=text("period IS NULL"),
        ),
        # Every stored flattr belongs to a month settlement can hold (see core.events).
        CheckConstraint(f"effective_at >= {_EARLIEST}", name="effective_at_range"),
        CheckConstraint(f"liked_at IS NULL OR liked_at >= {_EARLIEST}", name="liked_at_range"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("linked_accounts.id", ondelete="SET NULL")
    )
    platform: Mapped[str] = mapped_column(String(50))
    item_id: Mapped[str] = mapped_column(String(200))
    item_url: Mapped[str] = mapped_column(Text)
    creator_id: Mapped[int] = mapped_column(BigId, ForeignKey("creators.id"), index=True)
    liked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    period: Mapped[str | None] = mapped_column(String(7))


class SettlementRun(Base):
    """One month's settlement: its stage, its parameters, and who holds it."""

    __tablename__ = "settlement_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(String(7), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    fee_bps: Mapped[int] = mapped_column(Integer)
    unclaimed_policy: Mapped[str] = mapped_column(String(20))
    escrow_days: Mapped[int] = mapped_column(Integer)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SettlementUser(Base):
    """A user's line in a run's plan: how much they spend this month and on how many flattrs."""

    __tablename__ = "settlement_users"

    run_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("settlement_runs.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    flattrs: Mapped[int] = mapped_column(Integer)
    budget_minor: Mapped[int] = mapped_column(BigInteger)
    funds_minor: Mapped[int] = mapped_column(BigInteger)
    spend_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger)
    posted: Mapped[bool] = mapped_column(Boolean, default=False)


class Share(Base):
    """One counted flattr's share of its month: paid, reserved or returned."""

    __tablename__ = "shares"
    __table_args__ = (
        Index("ix_shares_run_user", "run_id", "user_id"),
        Index("ix_shares_user_state", "user_id", "state"),
        Index("ix_shares_creator_state", "creator_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("settlement_runs.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))
    flattr_id: Mapped[int] = mapped_column(BigId, ForeignKey("flattrs.id"), unique=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    creator_id: Mapped[int] = mapped_column(BigId, ForeignKey("creators.id"))
    recipient_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20))
    was_reserved: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LedgerAccount(Base):
    """An account of the double-entry ledger: a user's wallet, the fees, or the deposits source."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("kind", "user_id", "currency"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    currency: Mapped[str] = mapped_column(String(3))


class LedgerTransaction(Base):
    """A balanced, append-only group of entries with a unique idempotency key."""

    __tablename__ = "ledger_transactions"
    # Settlement posts find each user's transaction of the month by (period, user, kind).
    __table_args__ = (Index("ix_ledger_transactions_period_user", "period", "user_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    period: Mapped[str | None] = mapped_column(String(7))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    memo: Mapped[str | None] = mapped_column(Text)


class LedgerEntry(Base):
    """One signed movement on one account; a transaction's entries sum to zero."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(
            f"amount_minor >= -{MAX_BALANCE_MINOR} AND amount_minor <= {MAX_BALANCE_MINOR}",
            name="amount_range",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ledger_transactions.id"), index=True
    )
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
