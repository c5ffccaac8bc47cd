"""Linking for real people: pending link attempts, unlinked accounts, deactivated users.

- ``link_attempts``: a link begun (OAuth ``state`` or OAuth 1.0a request token,
  sealed PKCE verifier or request token secret, where to come back to), checked
  once by the callback and gone after it or when it expires.
- ``users.active``: false once a user is deactivated (not polled, spending
  nothing; wallet, shares and ledger kept).
- ``linked_accounts.credentials`` may be null: an ``unlinked`` account keeps
  its history and poll state but no credentials.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    with op.batch_alter_table("linked_accounts") as batch:
        batch.alter_column("credentials", existing_type=sa.LargeBinary(), nullable=True)
    op.create_table(
        "link_attempts",
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("flow", sa.String(length=30), nullable=False),
        sa.Column("redirect_uri", sa.String(length=500), nullable=True),
        sa.Column("host", sa.String(length=300), nullable=True),
        sa.Column("secrets", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_link_attempts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_link_attempts")),
    )
    op.create_index(
        op.f("ix_link_attempts_expires_at"), "link_attempts", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_link_attempts_expires_at"), table_name="link_attempts")
    op.drop_table("link_attempts")
    # Unlinked accounts have no credentials to keep: an empty value stands for none.
    op.execute("UPDATE linked_accounts SET credentials = '' WHERE credentials IS NULL")
    with op.batch_alter_table("linked_accounts") as batch:
        batch.alter_column("credentials", existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("active")
