"""Indexes for settling large months.

- ``ix_ledger_transactions_period_user``: the post stage joins every share of a
  batch to its liker's settle transaction of the month; without this index both
  databases scan the month's transactions for each row, and posting grows with
  the square of the users.
- ``ix_flattrs_period_user`` becomes partial (``period IS NOT NULL``): the
  uncounted flattrs are found through ``ix_flattrs_unsettled``, so leaving them
  out saves an index entry per like at ingest, and the plan's ``UPDATE`` adds
  each counted flattr's entry instead of moving it.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = sa.text("period IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_ledger_transactions_period_user",
        "ledger_transactions",
        ["period", "user_id", "kind"],
        unique=False,
    )
    op.drop_index("ix_flattrs_period_user", table_name="flattrs")
    op.create_index(
        "ix_flattrs_period_user",
        "flattrs",
        ["period", "user_id"],
        unique=False,
        sqlite_where=COUNTED,
        postgresql_where=COUNTED,
    )


def downgrade() -> None:
    op.drop_index("ix_flattrs_period_user", table_name="flattrs")
    op.create_index("ix_flattrs_period_user", "flattrs", ["period", "user_id"], unique=False)
    op.drop_index("ix_ledger_transactions_period_user", table_name="ledger_transactions")
