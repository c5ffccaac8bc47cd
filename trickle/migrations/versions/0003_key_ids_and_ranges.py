"""What the database itself guarantees: which key sealed each account, dates and amounts in range.

- ``linked_accounts.key_id``: the fingerprint of the key that sealed the
  account's credentials, so that accounts a lost or replaced key can no longer
  open are known (``trickle init`` refuses to create a new key over them).
  Existing rows are filled in by ``trickle init`` with the key it finds.
- ``flattrs``: no like time before 2000-01-01 (bad data, and no month can be
  settled across it). Rows written before this check are repaired first: a
  like time out of range is dropped and the flattr counts from when it was seen.
- ``budgets.amount_minor`` within 0..10**9 and ``ledger_entries.amount_minor``
  within +/-10**14 (``trickle.core.money``'s limits, as they were when this
  migration was written): budgets above the limit are lowered to it.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EARLIEST = "'2000-01-01 00:00:00'"
MAX_BUDGET_MINOR = 10**9
MAX_BALANCE_MINOR = 10**14


def upgrade() -> None:
    op.add_column("linked_accounts", sa.Column("key_id", sa.String(length=32), nullable=True))

    naive_utc = datetime(2000, 1, 1)  # noqa: DTZ001 - times are stored naive, in UTC
    earliest = sa.bindparam("earliest", naive_utc, type_=sa.DateTime())
    flattrs = sa.table(
        "flattrs",
        sa.column("liked_at", sa.DateTime()),
        sa.column("observed_at", sa.DateTime()),
        sa.column("effective_at", sa.DateTime()),
    )
    op.execute(flattrs.update().where(flattrs.c.liked_at < earliest).values(liked_at=None))
    op.execute(
        flattrs.update()
        .where(flattrs.c.effective_at < earliest)
        .values(
            effective_at=sa.case(
                (flattrs.c.observed_at >= earliest, flattrs.c.observed_at), else_=earliest
            )
        )
    )
    budgets = sa.table("budgets", sa.column("amount_minor", sa.BigInteger()))
    op.execute(
        budgets.update()
        .where(budgets.c.amount_minor > MAX_BUDGET_MINOR)
        .values(amount_minor=MAX_BUDGET_MINOR)
    )

    with op.batch_alter_table("flattrs") as batch:
        batch.create_check_constraint(
            "ck_flattrs_effective_at_range", sa.text(f"effective_at >= {EARLIEST}")
        )
        batch.create_check_constraint(
            "ck_flattrs_liked_at_range", sa.text(f"liked_at IS NULL OR liked_at >= {EARLIEST}")
        )
    with op.batch_alter_table("budgets") as batch:
        batch.create_check_constraint(
            "ck_budgets_amount_range",
            sa.text(f"amount_minor >= 0 AND amount_minor <= {MAX_BUDGET_MINOR}"),
        )
    with op.batch_alter_table("ledger_entries") as batch:
        batch.create_check_constraint(
            "ck_ledger_entries_amount_range",
            sa.text(
                f"amount_minor >= -{MAX_BALANCE_MINOR} AND amount_minor <= {MAX_BALANCE_MINOR}"
            ),
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_constraint("ck_ledger_entries_amount_range", type_="check")
    with op.batch_alter_table("budgets") as batch:
        batch.drop_constraint("ck_budgets_amount_range", type_="check")
    with op.batch_alter_table("flattrs") as batch:
        batch.drop_constraint("ck_flattrs_liked_at_range", type_="check")
        batch.drop_constraint("ck_flattrs_effective_at_range", type_="check")
    op.drop_column("linked_accounts", "key_id")
