"""The initial schema: users, accounts, creators, flattrs, settlement and ledger.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so it autoincrements) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settlement_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("unclaimed_policy", sa.String(length=20), nullable=False),
        sa.Column("escrow_days", sa.Integer(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("planned_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_runs")),
        sa.UniqueConstraint("period", name=op.f("uq_settlement_runs_period")),
    )
    op.create_table(
        "users",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "budgets",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("effective_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_budgets_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
    )
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_budgets_user_effective", ["user_id", "effective_at"], unique=False
        )

    op.create_table(
        "creators",
        sa.Column("id", BigId, nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=False),
        sa.Column("platform_id", sa.String(length=200), nullable=False),
        sa.Column("handle", sa.String(length=200), nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_creators_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creators")),
        sa.UniqueConstraint(
            "platform", "platform_id", name=op.f("uq_creators_platform_platform_id")
        ),
    )
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_creators_user_id"), ["user_id"], unique=False)

    op.create_table(
        "ledger_accounts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ledger_accounts_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
        sa.UniqueConstraint(
            "kind", "user_id", "currency", name=op.f("uq_ledger_accounts_kind_user_id_currency")
        ),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ledger_transactions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("key", name=op.f("uq_ledger_transactions_key")),
    )
    op.create_table(
        "linked_accounts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=False),
        sa.Column("platform_user_id", sa.String(length=200), nullable=False),
        sa.Column("handle", sa.String(length=200), nullable=False),
        sa.Column("credentials", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.Column("poll_state", sa.JSON(), nullable=False),
        sa.Column("baseline_done", sa.Boolean(), nullable=False),
        sa.Column("next_poll_at", sa.DateTime(), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_linked_accounts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linked_accounts")),
        sa.UniqueConstraint(
            "platform",
            "platform_user_id",
            name=op.f("uq_linked_accounts_platform_platform_user_id"),
        ),
    )
    with op.batch_alter_table("linked_accounts", schema=None) as batch_op:
        batch_op.create_index("ix_linked_accounts_due", ["status", "next_poll_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_linked_accounts_user_id"), ["user_id"], unique=False)

    op.create_table(
        "settlement_users",
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("flattrs", sa.Integer(), nullable=False),
        sa.Column("budget_minor", sa.BigInteger(), nullable=False),
        sa.Column("funds_minor", sa.BigInteger(), nullable=False),
        sa.Column("spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("posted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["settlement_runs.id"],
            name=op.f("fk_settlement_users_run_id_settlement_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_settlement_users_user_id_users")
        ),
        sa.PrimaryKeyConstraint("run_id", "user_id", name=op.f("pk_settlement_users")),
    )
    op.create_table(
        "flattrs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=True),
        sa.Column("platform", sa.String(length=50), nullable=False),
        sa.Column("item_id", sa.String(length=200), nullable=False),
        sa.Column("item_url", sa.Text(), nullable=False),
        sa.Column("creator_id", BigId, nullable=False),
        sa.Column("liked_at", sa.DateTime(), nullable=True),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("effective_at", sa.DateTime(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["linked_accounts.id"],
            name=op.f("fk_flattrs_account_id_linked_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["creator_id"], ["creators.id"], name=op.f("fk_flattrs_creator_id_creators")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_flattrs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flattrs")),
        sa.UniqueConstraint(
            "user_id", "platform", "item_id", name=op.f("uq_flattrs_user_id_platform_item_id")
        ),
    )
    with op.batch_alter_table("flattrs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flattrs_creator_id"), ["creator_id"], unique=False)
        batch_op.create_index("ix_flattrs_period_user", ["period", "user_id"], unique=False)
        batch_op.create_index(
            "ix_flattrs_unsettled",
            ["effective_at"],
            unique=False,
            sqlite_where=sa.text("period IS NULL"),
            postgresql_where=sa.text("period IS NULL"),
        )

    op.create_table(
        "ledger_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_transaction_id"), ["transaction_id"], unique=False
        )

    op.create_table(
        "shares",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("flattr_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("creator_id", BigId, nullable=False),
        sa.Column("recipient_user_id", BigId, nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("was_reserved", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["creator_id"], ["creators.id"], name=op.f("fk_shares_creator_id_creators")
        ),
        sa.ForeignKeyConstraint(
            ["flattr_id"], ["flattrs.id"], name=op.f("fk_shares_flattr_id_flattrs")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_user_id"], ["users.id"], name=op.f("fk_shares_recipient_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["settlement_runs.id"],
            name=op.f("fk_shares_run_id_settlement_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_shares_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shares")),
        sa.UniqueConstraint("flattr_id", name=op.f("uq_shares_flattr_id")),
    )
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.create_index("ix_shares_creator_state", ["creator_id", "state"], unique=False)
        batch_op.create_index("ix_shares_run_user", ["run_id", "user_id"], unique=False)
        batch_op.create_index("ix_shares_user_state", ["user_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_index("ix_shares_user_state")
        batch_op.drop_index("ix_shares_run_user")
        batch_op.drop_index("ix_shares_creator_state")

    op.drop_table("shares")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_account_id"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("flattrs", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_flattrs_unsettled",
            sqlite_where=sa.text("period IS NULL"),
            postgresql_where=sa.text("period IS NULL"),
        )
        batch_op.drop_index("ix_flattrs_period_user")
        batch_op.drop_index(batch_op.f("ix_flattrs_creator_id"))

    op.drop_table("flattrs")
    op.drop_table("settlement_users")
    with op.batch_alter_table("linked_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_linked_accounts_user_id"))
        batch_op.drop_index("ix_linked_accounts_due")

    op.drop_table("linked_accounts")
    op.drop_table("ledger_transactions")
    op.drop_table("ledger_accounts")
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_creators_user_id"))

    op.drop_table("creators")
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.drop_index("ix_budgets_user_effective")

    op.drop_table("budgets")
    op.drop_table("users")
    op.drop_table("settlement_runs")
