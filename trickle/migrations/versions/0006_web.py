"""The web side: sign-ins, login links, public likers, operators, worker heartbeats.

- ``users.public``: the user chose to be named on creators' public pages
  (default private); ``users.operator``: may open the admin page.
- ``link_attempts.user_id`` may be null: a sign-in through a platform, whose
  account decides (or creates) the user.
- ``login_links``: one-time sign-in links (only a hash of the token is kept).
- ``worker_heartbeats``: each worker process's last sign of life and counters,
  for ``/healthz`` and ``/metrics``.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "users", sa.Column("operator", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    with op.batch_alter_table("link_attempts") as batch:
        batch.alter_column("user_id", existing_type=BigId, nullable=True)
    op.create_table(
        "login_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_login_links_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_login_links")),
    )
    op.create_index(op.f("ix_login_links_user_id"), "login_links", ["user_id"], unique=False)
    op.create_table(
        "worker_heartbeats",
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_worker_heartbeats")),
    )
    op.create_index(
        op.f("ix_worker_heartbeats_seen_at"), "worker_heartbeats", ["seen_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_worker_heartbeats_seen_at"), table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
    op.drop_index(op.f("ix_login_links_user_id"), table_name="login_links")
    op.drop_table("login_links")
    op.execute(sa.text("DELETE FROM link_attempts WHERE user_id IS NULL"))
    with op.batch_alter_table("link_attempts") as batch:
        batch.alter_column("user_id", existing_type=BigId, nullable=False)
    op.drop_column("users", "operator")
    op.drop_column("users", "public")
