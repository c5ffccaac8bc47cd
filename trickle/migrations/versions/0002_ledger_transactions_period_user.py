"""Index each user's transactions of a month, for settlement posting.

The post stage joins every share of a batch to its liker's settle transaction
of the month; without this index both databases scan the month's
transactions for each row, and posting grows with the square of the users.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_transactions_period_user",
        "ledger_transactions",
        ["period", "user_id", "kind"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_transactions_period_user", table_name="ledger_transactions")
