"""Accounts on many hosts, versioned credentials, and per-host OAuth apps.

- ``linked_accounts.host``: the account's server (an origin) on platforms where
  every account lives on a server of its own (Mastodon, Bluesky's PDS). The
  unique keys stay ``(platform, platform_user_id)`` for accounts and
  ``(platform, platform_id)`` for creators: connectors of such platforms use ids
  that are unique across all servers (an account's URI, a DID), so the same
  person seen from two servers is one creator.
- ``linked_accounts.credentials_version``: bumped on every write of the
  credentials; a renewed token is saved only over the version it renewed.
- ``oauth_apps``: the apps trickle registered per server (client id, sealed
  secret), reused until the server forgets them.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so it autoincrements) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("linked_accounts", sa.Column("host", sa.String(length=300), nullable=True))
    op.add_column(
        "linked_accounts",
        sa.Column("credentials_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "oauth_apps",
        sa.Column("id", BigId, nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=False),
        sa.Column("host", sa.String(length=300), nullable=False),
        sa.Column("redirect_uri", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("client_secret", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("scopes", sa.String(length=500), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_apps")),
        sa.UniqueConstraint(
            "platform",
            "host",
            "redirect_uri",
            name=op.f("uq_oauth_apps_platform_host_redirect_uri"),
        ),
    )


def downgrade() -> None:
    op.drop_table("oauth_apps")
    with op.batch_alter_table("linked_accounts") as batch:
        batch.drop_column("credentials_version")
        batch.drop_column("host")
